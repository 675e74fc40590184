// Cluster mode when things go wrong or cross nodes (docs/cluster.md): a node killed with kill -9
// has its running jobs failed `node NODE lost` (or retried on a survivor) by the others within
// its lease; a cancel sent to one node stops a run on another; an event stream on one node sees
// another node's progress; a PostgreSQL restart under three nodes loses nothing; a webhook event
// is delivered once by the cluster, not once per node. Same three nodes and shared folder as
// cluster_test.cpp.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "api_checks.h"
#include "cluster_support.h"
#include "daemon_harness.h"
#include "sse_client.h"
#include "supervision_support.h"
#include "webhook_receiver.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Poco::JSON::Object;

// The failover bound the tests hold the daemon to: lease_timeout + one heartbeat + a poll fit in
// it with room for a loaded machine. A lost node cannot be declared before its last heartbeat
// is lease_timeout old, i.e. sooner than lease_timeout - heartbeat_interval after the kill.
constexpr auto kFailoverWithin = 3 * kLeaseTimeout;
constexpr auto kFailoverNotBefore = kLeaseTimeout - kHeartbeatInterval;
// How long a wait for a failover may look before giving up (past kFailoverWithin, to measure).
constexpr auto kFailoverWait = kFailoverWithin + 10s;
// A cancel crosses nodes within about one poll_interval; the collector dies on SIGTERM at once.
constexpr auto kCrossNodeCancelWithin = 5s;
// An event of another node reaches a stream within about one poll_interval.
constexpr auto kCrossNodeEventWithin = 5s;
// How long the collectors work while the database is down: longer than a lease, so that every
// node's heartbeat is stale when the database returns.
constexpr int kWorkWhileDownSeconds = 3;
constexpr auto kAfterRestartWithin = 30s;
constexpr int kWebhookJobs = 6;

const std::string kSecret = "cluster webhook secret";

std::string jobPath(const std::string& job_id) { return "/api/collectors/runs/job/" + job_id; }
std::string jobEvents(const std::string& job_id) { return jobPath(job_id) + "/events"; }
std::string batchEvents(const std::string& batch_id) {
  return "/api/collectors/runs/batch/" + batch_id + "/events";
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

bool isTerminal(const Object& job) { return isTerminalName(stringField(job, "status")); }

// Reports progress and blocks until released, whichever node runs it.
constexpr const char* kWorkUntilReleased = R"sh(
write_pid "$COLLECTOR_JOB_ID.$COLLECTOR_NODE_ID"
record S "$COLLECTOR_JOB_ID" "$COLLECTOR_NODE_ID"
progress 30 "working on $COLLECTOR_NODE_ID"
wait_for_release "$COLLECTOR_JOB_ID.$COLLECTOR_NODE_ID"
record E "$COLLECTOR_JOB_ID" "$COLLECTOR_NODE_ID"
)sh";


// The nodes that started `job` (its S records), in order.
std::vector<std::string> nodesThatStarted(const TestCluster& cluster, const std::string& job) {
  std::vector<std::string> nodes;
  for (const auto& words : cluster.records()) {
    if (words.size() == 3 && words[0] == "S" && words[1] == job) nodes.push_back(words[2]);
  }
  return nodes;
}

std::string stateOf(const HttpClient& client, const std::string& node_id) {
  const auto nodes = listNodes(client);
  const auto node = nodes ? findNode(*nodes, node_id) : std::nullopt;
  return node ? node->state : "<not listed>";
}

TEST_F(Cluster, AKilledNodesRunningJobFailsAsNodeLostOnASurvivorWithinTheLease) {
  auto cluster = threeNodes({{kNodeC, "victim"}});
  cluster->addCollector("doomed", kWorkUntilReleased, {{"nodes", "tag:victim"}});
  cluster->addCollector("calm", kWorkUntilReleased, {{"nodes", kNodeA}});
  cluster->startAll();
  const HttpClient a = cluster->node(kNodeA).client();
  const Triggered doomed = triggerOrThrow(a, {"doomed"});
  const Triggered calm = triggerOrThrow(cluster->node(kNodeB).client(), {"calm"});
  const std::string job = doomed.job_ids[0];
  ASSERT_EQ(waitForJob(a, job, [](const Object& j) {
              return stringField(j, "message") == "working on node-c";
            }).status, 200);
  EXPECT_EQ(jobNodeId(a, job), kNodeC);
  ASSERT_EQ(waitForJobStatus(a, calm.job_ids[0], "running").status, 200);
  ProcessReaper reaper;
  const pid_t orphan = waitForPidFile(cluster->pidPath(job + "." + kNodeC));
  ASSERT_GT(orphan, 0);
  reaper.addGroup(orphan);

  const auto killed_at = Clock::now();
  cluster->node(kNodeC).daemon().killHard();
  const HttpResponse ended = waitForJob(a, job, isTerminal, kFailoverWait);
  const auto failover = Clock::now() - killed_at;
  std::printf("failover: %.2f s\n", seconds(failover));
  ASSERT_TRUE(IsJsonResponse(ended, 200));
  EXPECT_TRUE(HasJobStatusShape(*ended.object()));
  EXPECT_EQ(jsonOf(*ended.object(), "status"), jsonString("failed")) << ended.describe();
  EXPECT_EQ(jsonOf(*ended.object(), "error"), jsonString("node node-c lost"));
  EXPECT_EQ(jsonOf(*ended.object(), "progress_percent"), "30") << "left as it was";
  EXPECT_EQ(jsonOf(*ended.object(), "batch_status"), jsonString("failed"));
  EXPECT_LT(failover, kFailoverWithin);
  EXPECT_GE(failover, kFailoverNotBefore) << "node-c was declared lost before its lease ran out";
  // The killed node's collector died with it (PR_SET_PDEATHSIG), so nothing runs unsupervised.
  EXPECT_TRUE(waitUntilGone(orphan, 5s)) << "collector " << orphan << " outlived its node";

  // Only node-c's job: node-a's run goes on. node-c is listed lost, running nothing.
  EXPECT_EQ(jobStatus(a, calm.job_ids[0]), "running");
  EXPECT_EQ(stateOf(a, kNodeC), "lost");

  // node-c restarts: it touches nobody else's run, and the failed job keeps its error.
  cluster->node(kNodeC).start();
  EXPECT_TRUE(waitUntil([&] { return stateOf(a, kNodeC) == "alive"; }, 10s))
      << "node-c is " << stateOf(a, kNodeC);
  EXPECT_EQ(jobStatus(cluster->node(kNodeC).client(), calm.job_ids[0]), "running");
  EXPECT_EQ(jsonOf(*a.job(job).object(), "error"), jsonString("node node-c lost"));

  cluster->release(calm.job_ids[0] + "." + kNodeA);
  const HttpResponse calm_done = waitForJobTerminal(a, calm.job_ids[0]);
  EXPECT_EQ(jsonOf(*calm_done.object(), "status"), jsonString("completed")) << calm_done.describe();
  EXPECT_TRUE(NothingRunning(cluster->node(kNodeB).client()));
}

TEST_F(Cluster, AKilledNodesJobWithRetriesLeftRunsAgainOnASurvivor) {
  auto cluster = threeNodes();
  cluster->addCollector("phoenix", kWorkUntilReleased,
                        {{"retries", "1"}, {"retry_backoff", "200ms"}});
  cluster->startAll();
  const Triggered run = triggerOrThrow(cluster->node(kNodeA).client(), {"phoenix"});
  const std::string job = run.job_ids[0];
  ASSERT_EQ(waitForJobStatus(cluster->node(kNodeA).client(), job, "running").status, 200);
  // Wherever the first attempt runs is the node to kill.
  ASSERT_EQ(waitForJob(cluster->node(kNodeA).client(), job, [](const Object& j) {
              return stringField(j, "message").rfind("working on ", 0) == 0;
            }).status, 200);
  const std::vector<std::string> first_run = nodesThatStarted(*cluster, job);
  ASSERT_EQ(first_run.size(), 1u);
  const std::string victim = first_run[0];
  EXPECT_EQ(jobNodeId(cluster->node(kNodeA).client(), job), victim);
  const HttpClient observer = cluster->node(victim == kNodeA ? kNodeB : kNodeA).client();
  ProcessReaper reaper;
  const pid_t first = waitForPidFile(cluster->pidPath(job + "." + victim));
  ASSERT_GT(first, 0);
  reaper.addGroup(first);

  const auto killed_at = Clock::now();
  cluster->node(victim).daemon().killHard();
  const HttpResponse again = waitForJob(
      observer, job,
      [&](const Object& j) {
        return stringField(j, "status") == "running" && intField(j, "attempt") == 2;
      },
      kFailoverWait);
  const auto failover = Clock::now() - killed_at;
  std::printf("failover (retried on a survivor): %.2f s\n", seconds(failover));
  ASSERT_TRUE(IsJsonResponse(again, 200));
  ASSERT_EQ(jsonOf(*again.object(), "status"), jsonString("running")) << again.describe();
  EXPECT_LT(failover, kFailoverWithin);
  const auto previous = objectsOf(*again.object(), "previous_attempts");
  ASSERT_EQ(previous.size(), 1u) << again.body;
  EXPECT_EQ(jsonOf(*previous[0], "error"), jsonString("node " + victim + " lost"));
  ASSERT_TRUE(waitUntil([&] { return nodesThatStarted(*cluster, job).size() == 2; }))
      << "the second attempt did not start";
  const std::string survivor = nodesThatStarted(*cluster, job)[1];
  EXPECT_NE(survivor, victim);
  EXPECT_EQ(jobNodeId(observer, job), survivor);
  EXPECT_TRUE(waitUntilGone(first, 5s)) << "the first attempt outlived its node";

  const pid_t second = waitForPidFile(cluster->pidPath(job + "." + survivor));
  reaper.addGroup(second);
  cluster->release(job + "." + survivor);
  const HttpResponse done = waitForJobTerminal(observer, job);
  ASSERT_TRUE(IsJsonResponse(done, 200));
  EXPECT_EQ(jsonOf(*done.object(), "status"), jsonString("completed")) << done.describe();
  EXPECT_EQ(jsonOf(*done.object(), "attempt"), "2");
  EXPECT_EQ(jobNodeId(observer, job), survivor);
  // Started on the victim and on the survivor; ended only on the survivor.
  std::vector<std::string> story;
  for (const auto& words : cluster->records()) story.push_back(words[0] + " " + words.back());
  EXPECT_EQ(story, (std::vector<std::string>{"S " + victim, "S " + survivor, "E " + survivor}));
  EXPECT_TRUE(NothingRunning(observer));
}

TEST_F(Cluster, ACancelSentToOneNodeStopsTheRunOnAnother) {
  auto cluster = threeNodes();
  cluster->addCollector("held", kWorkUntilReleased, {{"nodes", kNodeB}});
  cluster->startAll();
  const HttpClient a = cluster->node(kNodeA).client();
  const Triggered run = triggerOrThrow(a, {"held"});
  const std::string job = run.job_ids[0];
  ASSERT_EQ(waitForJobStatus(a, job, "running").status, 200);
  EXPECT_EQ(jobNodeId(a, job), kNodeB);
  ProcessReaper reaper;
  const pid_t pid = waitForPidFile(cluster->pidPath(job + "." + kNodeB));
  ASSERT_GT(pid, 0);
  reaper.addGroup(pid);

  // Progress over HTTP goes to the node that runs the job; another node says which one that is
  // and changes nothing.
  const HttpResponse elsewhere =
      a.put(jobPath(job), R"({"progress": 90, "message": "sent to the wrong node"})");
  EXPECT_TRUE(IsErrorResponse(elsewhere, 409,
                              "Job " + job + " runs on node " + kNodeB +
                                  "; send its progress to that node"));
  EXPECT_NE(jsonOf(*a.job(job).object(), "progress_percent"), "90");

  const auto asked_at = Clock::now();
  const HttpResponse accepted = a.post(jobPath(job) + "/cancel", "");
  ASSERT_TRUE(IsJsonResponse(accepted, 202)) << accepted.describe();
  EXPECT_TRUE(HasJobStatusShape(*accepted.object()));
  EXPECT_EQ(jsonOf(*accepted.object(), "job_id"), jsonString(job));
  EXPECT_EQ(jsonOf(*accepted.object(), "status"), jsonString("running"));

  const HttpResponse ended = waitForJobTerminal(a, job);
  const auto took = Clock::now() - asked_at;
  std::printf("[cluster] cross-node cancel: %.2f s\n", seconds(took));
  ASSERT_TRUE(IsJsonResponse(ended, 200));
  EXPECT_EQ(jsonOf(*ended.object(), "status"), jsonString("cancelled")) << ended.describe();
  EXPECT_EQ(jsonOf(*ended.object(), "error"), jsonString("cancelled by request"));
  EXPECT_EQ(jsonOf(*ended.object(), "batch_status"), jsonString("cancelled"));
  EXPECT_LT(took, kCrossNodeCancelWithin);
  EXPECT_TRUE(waitUntilGone(pid));
  // node-b stopped it: the line is in node-b's log of the job.
  const std::string log =
      readFile(cluster->node(kNodeB).config().jobLogPath(job)).value_or("<no log on node-b>");
  EXPECT_NE(log.find("[collectord] cancelled by request: sending SIGTERM to the process group\n"),
            std::string::npos)
      << log;
  EXPECT_TRUE(IsErrorResponse(cluster->node(kNodeC).client().post(jobPath(job) + "/cancel", ""),
                              409, "Job " + job + " is already cancelled; there is nothing to cancel"));
  EXPECT_TRUE(NothingRunning(a));
}

TEST_F(Cluster, AStreamOnOneNodeSeesProgressOfAJobRunningOnAnother) {
  auto cluster = threeNodes();
  cluster->addCollector("talker", R"sh(
progress 10 "first"
wait_for_release "$COLLECTOR_JOB_ID.1"
progress 50 "second"
wait_for_release "$COLLECTOR_JOB_ID.2"
)sh",
                        {{"nodes", kNodeB}});
  cluster->startAll();
  const HttpClient a = cluster->node(kNodeA).client();
  const Triggered run = triggerOrThrow(a, {"talker"});
  const std::string job = run.job_ids[0];
  ASSERT_EQ(waitForJob(a, job, [](const Object& j) { return stringField(j, "message") == "first"; })
                .status,
            200);
  EXPECT_EQ(jobNodeId(a, job), kNodeB);

  SseStream stream(cluster->node(kNodeA).daemon().port(), jobEvents(job));
  SseStream batch_stream(cluster->node(kNodeC).daemon().port(), batchEvents(run.batch_id));
  ASSERT_TRUE(stream.head() && stream.head()->status == 200);
  ASSERT_TRUE(batch_stream.head() && batch_stream.head()->status == 200);
  const auto opening = stream.next();
  ASSERT_TRUE(opening) << "no opening event";
  EXPECT_EQ(stringField(*opening->json(), "message"), "first");

  cluster->release(job + ".1");
  const auto released_at = Clock::now();
  const auto events = stream.readUntil(
      [](const SseEvent& e) { return stringField(*e.json(), "message") == "second"; },
      kCrossNodeEventWithin + 5s);
  ASSERT_FALSE(events.empty());
  ASSERT_EQ(stringField(*events.back().json(), "message"), "second")
      << "node-a's stream never showed node-b's progress";
  EXPECT_EQ(jsonOf(*events.back().json(), "progress_percent"), "50");
  const auto latency = events.back().received - released_at;
  std::printf("[cluster] progress on node-b seen on node-a after %.3f s\n", seconds(latency));
  EXPECT_LT(latency, kCrossNodeEventWithin);

  cluster->release(job + ".2");
  const auto rest = stream.readToClose(20s);
  ASSERT_TRUE(rest) << "node-a's job stream did not end with the job";
  ASSERT_FALSE(rest->empty());
  EXPECT_EQ(stringField(*rest->back().json(), "status"), "completed");
  EXPECT_EQ(jsonOf(*rest->back().json(), "progress_percent"), "100");
  const auto batch_events = batch_stream.readToClose(20s);
  ASSERT_TRUE(batch_events) << "node-c's batch stream did not end with the batch";
  const auto batches = eventsNamed(*batch_events, "batch");
  ASSERT_FALSE(batches.empty());
  EXPECT_EQ(stringField(*batches.back().json(), "status"), "completed");
}

TEST_F(Cluster, ADatabaseRestartUnderThreeNodesLosesNothing) {
  auto cluster = threeNodes();
  const std::vector<std::string> names = {"sta", "stb", "stc"};
  const std::string script = R"sh(
write_pid "$COLLECTOR_JOB_ID.$COLLECTOR_NODE_ID"
progress 10 "before the restart"
wait_for_release down
i=0
while [ $i -lt 20 ]; do i=$((i + 1)); progress $((20 + i)) "while the database is away $i"; done
sleep )sh" + std::to_string(kWorkWhileDownSeconds) + R"sh(
progress 100 "finished on $COLLECTOR_NODE_ID while the database was away"
)sh";
  cluster->addCollector("sta", script, {{"nodes", kNodeA}});
  cluster->addCollector("stb", script, {{"nodes", kNodeB}});
  cluster->addCollector("stc", script, {{"nodes", kNodeC}});
  cluster->startAll();
  const HttpClient a = cluster->node(kNodeA).client();
  const Triggered run = triggerOrThrow(a, names);
  const std::vector<std::string> nodes = {kNodeA, kNodeB, kNodeC};
  ProcessReaper reaper;
  std::vector<pid_t> pids;
  for (std::size_t i = 0; i < names.size(); ++i) {
    ASSERT_EQ(waitForJob(a, run.job_ids[i],
                         [](const Object& j) {
                           return stringField(j, "message") == "before the restart";
                         }).status,
              200);
    pids.push_back(waitForPidFile(cluster->pidPath(run.job_ids[i] + "." + nodes[i])));
    ASSERT_GT(pids.back(), 0) << names[i] << " did not start on " << nodes[i];
    reaper.addGroup(pids.back());
  }

  const auto down_at = Clock::now();
  killServer();
  cluster->release("down");
  for (std::size_t i = 0; i < pids.size(); ++i) {
    EXPECT_TRUE(waitUntilGone(pids[i], 20s)) << names[i] << " did not finish";
  }
  startServer();
  std::printf("[cluster] database away for %.1f s\n", seconds(Clock::now() - down_at));

  for (std::size_t i = 0; i < names.size(); ++i) {
    const HttpResponse done = waitForJob(a, run.job_ids[i], isTerminal, kAfterRestartWithin);
    ASSERT_TRUE(IsJsonResponse(done, 200)) << done.describe();
    SCOPED_TRACE(names[i] + " on " + nodes[i]);
    EXPECT_EQ(jsonOf(*done.object(), "status"), jsonString("completed")) << done.describe();
    EXPECT_EQ(jsonOf(*done.object(), "progress_percent"), "100");
    EXPECT_EQ(jsonOf(*done.object(), "message"),
              jsonString("finished on " + nodes[i] + " while the database was away"));
    EXPECT_EQ(jsonOf(*done.object(), "error"), "null");
    EXPECT_EQ(jobNodeId(a, run.job_ids[i]), nodes[i]);
  }
  EXPECT_EQ(jsonOf(*waitForBatchTerminal(a, run.batch_id).object(), "status"),
            jsonString("completed"));
  EXPECT_TRUE(waitUntil([&] {
    const auto listed = listNodes(a);
    if (!listed || listed->size() != 3) return false;
    for (const NodeView& node : *listed) {
      if (node.state != "alive") return false;
    }
    return true;
  })) << "every node should be alive again; " << kNodeB << " is " << stateOf(a, kNodeB);
  EXPECT_TRUE(NothingRunning(a));
  EXPECT_EQ(cluster->node(kNodeB).client().trigger({"sta"}).status, 201) << "triggers work again";
}

TEST_F(Cluster, AWebhookEventIsDeliveredOnceByTheWholeCluster) {
  auto cluster = threeNodes();
  TempDir hooks;
  const std::string secret_file = hooks.file("secret");
  writeFile(secret_file, kSecret + "\n", 0600);
  WebhookReceiver receiver(hooks, "receiver", secret_file);
  cluster->appendToMain("[webhooks]\nretry_backoff = 100ms\nretry_backoff_max = 400ms\n"
                        "[webhook.ops]\nurl = " + receiver.url() + "\nsecret = @file:" +
                        secret_file + "\nevents = batch.completed, job.completed\n");
  // Pinned round the nodes, so that the batch's jobs end on every node.
  std::vector<std::string> names;
  const std::vector<std::string> ids = cluster->ids();
  for (int i = 0; i < kWebhookJobs; ++i) {
    names.push_back("w" + std::to_string(i + 1));
    cluster->addCollector(names.back(), "record R \"$COLLECTOR_JOB_ID\" \"$COLLECTOR_NODE_ID\"\n",
                          {{"nodes", ids[i % ids.size()]}});
  }
  cluster->startAll();

  const Triggered run = triggerOrThrow(cluster->node(kNodeA).client(), names);
  const std::string event = "batch.completed:" + run.batch_id;
  ASSERT_TRUE(waitUntil([&] { return !receiver.requestsFor(event).empty(); }))
      << "no " << event << " arrived";
  // A later batch's event, sent after it, is the barrier: a second delivery of the first event
  // by another node would have come by then.
  const Triggered later = triggerOrThrow(cluster->node(kNodeC).client(), {names[0]});
  ASSERT_TRUE(waitUntil([&] {
    return !receiver.requestsFor("batch.completed:" + later.batch_id).empty() &&
           !receiver.requestsFor("job.completed:" + later.job_ids[0]).empty();
  })) << "the later batch's events did not arrive";

  const auto got = receiver.requestsFor(event);
  ASSERT_EQ(got.size(), 1u) << "batch.completed delivered " << got.size() << " times";
  EXPECT_EQ(got[0]->getValue<int>("answered"), 200);
  EXPECT_TRUE(got[0]->getValue<bool>("signature_ok"));
  for (const std::string& job : run.job_ids) {
    EXPECT_EQ(receiver.requestsFor("job.completed:" + job).size(), 1u) << job;
  }
  std::map<std::string, int> per_node;
  for (const auto& words : cluster->records()) ++per_node[words.back()];
  EXPECT_EQ(per_node.size(), ids.size()) << "the jobs were pinned to every node";

  // Each node's listing shows the one delivery of the cluster.
  for (const std::string& id : cluster->ids()) {
    const HttpResponse listing = cluster->node(id).client().get("/api/webhooks/deliveries?limit=1000");
    ASSERT_TRUE(IsJsonResponse(listing, 200)) << listing.describe();
    int found = 0;
    for (const auto& delivery : objectsOf(*listing.object(), "deliveries")) {
      if (stringField(*delivery, "event_id") != event) continue;
      ++found;
      EXPECT_EQ(stringField(*delivery, "state"), "delivered") << id;
    }
    EXPECT_EQ(found, 1) << "deliveries of " << event << " listed by " << id;
  }
}

}  // namespace
}  // namespace collectord::test
