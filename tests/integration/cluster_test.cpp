// Cluster mode (docs/cluster.md): three collectord nodes, node-a, node-b and node-c, on one
// PostgreSQL database of a server of the suite's own. A batch spread over the nodes runs each
// job exactly once; a collector's concurrency holds across the cluster and max_concurrent per
// node; `nodes = tag:...` and bare node ids choose where a collector runs; GET /api/nodes; the
// configuration checks. Failover, cancels, event streams, a database restart and webhooks
// across nodes are in cluster_failover_test.cpp. Collector scripts share one folder: they append
// records ("S JOB NODE") to one file and block on release files the test creates.

#include <Poco/String.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "api_checks.h"
#include "cluster_support.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;
using Records = std::vector<std::vector<std::string>>;

constexpr int kBatchSize = 300;
// 300 processes and ~1,000 store writes on a shared two-core machine.
constexpr auto kBigBatchTimeout = 90s;
constexpr int kSoloRuns = 6;
constexpr int kMaxConcurrentPerNode = 2;
constexpr int kLimitedCollectors = 12;
constexpr int kTagRunsPerNode = 2;
// A node is lost once its heartbeat is older than the lease; detection may take one more
// heartbeat and a poll. Three leases bound all of it with room for a loaded machine.
constexpr auto kLostWithin = 3 * kLeaseTimeout;

// Records the job's start, waits for the test to release this job, records its end.
constexpr const char* kRecordAndWait = R"sh(
record S "$COLLECTOR_JOB_ID" "$COLLECTOR_NODE_ID"
wait_for_release "$COLLECTOR_JOB_ID"
record E "$COLLECTOR_JOB_ID" "$COLLECTOR_NODE_ID"
)sh";

// One record line: which job ran on which node.
constexpr const char* kRecordRun = "record R \"$COLLECTOR_JOB_ID\" \"$COLLECTOR_NODE_ID\"\n";

std::string threeDigits(int i) {
  char text[8];
  std::snprintf(text, sizeof text, "%03d", i);
  return text;
}

std::string describe(const Records& records) {
  std::string text;
  for (const auto& words : records) {
    text += "\n ";
    for (const std::string& word : words) text += " " + word;
  }
  return text.empty() ? " (none)" : text;
}

// Records of `kind` ("S", "E", "R", "V") as (job, node) pairs, in file order.
std::vector<std::pair<std::string, std::string>> recordsOf(const Records& records,
                                                           const std::string& kind) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& words : records) {
    if (words.size() == 3 && words[0] == kind) out.emplace_back(words[1], words[2]);
  }
  return out;
}

// Jobs with an S record and no E record, with their node.
std::map<std::string, std::string> liveJobs(const Records& records) {
  std::map<std::string, std::string> live;
  for (const auto& [job, node] : recordsOf(records, "S")) live[job] = node;
  for (const auto& [job, node] : recordsOf(records, "E")) live.erase(job);
  return live;
}

// The most S..E intervals open at once, per node, over the whole file.
std::map<std::string, int> maxConcurrencyPerNode(const Records& records) {
  std::map<std::string, std::set<std::string>> open;
  std::map<std::string, int> most;
  for (const auto& words : records) {
    if (words.size() != 3) continue;
    if (words[0] == "S") {
      open[words[2]].insert(words[1]);
      most[words[2]] = std::max(most[words[2]], static_cast<int>(open[words[2]].size()));
    } else if (words[0] == "E") {
      open[words[2]].erase(words[1]);
    }
  }
  return most;
}

std::string describeCounts(const std::map<std::string, int>& counts) {
  std::string text;
  for (const auto& [key, count] : counts) text += " " + key + "=" + std::to_string(count);
  return text;
}


TEST_F(Cluster, ABatchOf300JobsRunsEachJobExactlyOnceSpreadOverTheNodes) {
  auto cluster = threeNodes();
  std::vector<std::string> names;
  for (int i = 1; i <= kBatchSize; ++i) {
    names.push_back("b" + threeDigits(i));
    cluster->addCollector(names.back(), kRecordRun);
  }
  cluster->startAll();
  const HttpClient a = cluster->node(kNodeA).client();
  const HttpClient c = cluster->node(kNodeC).client();

  const Triggered run = triggerOrThrow(a, names);
  const HttpResponse batch = waitForBatchTerminal(c, run.batch_id, kBigBatchTimeout);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_TRUE(HasBatchShape(*batch.object()));
  ASSERT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed"))
      << "seen from node-c: " << jsonOf(*batch.object(), "message");
  std::map<std::string, int> statuses;
  for (const auto& job : objectsOf(*batch.object(), "collectors")) {
    ++statuses[stringField(*job, "status")];
  }
  EXPECT_EQ(statuses, (std::map<std::string, int>{{"completed", kBatchSize}}))
      << describeCounts(statuses);

  // Each job ran exactly once, on one node, and the API names the same node.
  const Records records = cluster->records();
  const std::set<std::string> triggered(run.job_ids.begin(), run.job_ids.end());
  std::map<std::string, std::vector<std::string>> runs;  // job -> nodes it ran on
  std::map<std::string, int> per_node;
  for (const auto& [job, node] : recordsOf(records, "R")) {
    runs[job].push_back(node);
    ++per_node[node];
  }
  EXPECT_EQ(recordsOf(records, "R").size(), records.size()) << "malformed records";
  EXPECT_EQ(runs.size(), static_cast<std::size_t>(kBatchSize)) << "distinct jobs that ran";
  std::vector<std::string> twice, unknown;
  for (const auto& [job, nodes] : runs) {
    if (nodes.size() > 1) twice.push_back(job + " on " + nodes[0] + " and " + nodes[1]);
    if (!triggered.count(job)) unknown.push_back(job);
  }
  EXPECT_TRUE(twice.empty()) << twice.size() << " jobs ran more than once, e.g. " << twice.front();
  EXPECT_TRUE(unknown.empty()) << "records of jobs not in the batch, e.g. " << unknown.front();
  for (const auto& [node, count] : per_node) {
    EXPECT_TRUE(node == kNodeA || node == kNodeB || node == kNodeC) << "COLLECTOR_NODE_ID " << node;
  }
  EXPECT_GE(per_node.size(), 2u) << "every job ran on one node:" << describeCounts(per_node);
  std::cout << "[cluster] 300 jobs per node:" << describeCounts(per_node) << "\n";

  int disagreements = 0;
  std::string first_disagreement;
  for (const std::string& job : run.job_ids) {
    const std::string api_node = jobNodeId(a, job);
    const auto ran = runs.find(job);
    const std::string recorded = ran == runs.end() ? "<no record>" : ran->second.front();
    if (api_node != recorded && disagreements++ == 0) {
      first_disagreement = job + ": API node_id '" + api_node + "', ran on " + recorded;
    }
  }
  EXPECT_EQ(disagreements, 0) << first_disagreement;
  EXPECT_TRUE(NothingRunning(cluster->node(kNodeB).client()));
}

TEST_F(Cluster, ConcurrencyOneHoldsAcrossNodesAndOverlappingTriggersQueue) {
  auto cluster = threeNodes();
  // mkdir is atomic: a second run while one holds the lock records a violation and fails.
  cluster->addCollector("solo", R"sh(
if mkdir "$SHARED/solo.lock" 2>/dev/null; then
  record S "$COLLECTOR_JOB_ID" "$COLLECTOR_NODE_ID"
  wait_for_release "$COLLECTOR_JOB_ID"
  record E "$COLLECTOR_JOB_ID" "$COLLECTOR_NODE_ID"
  rmdir "$SHARED/solo.lock"
else
  record V "$COLLECTOR_JOB_ID" "$COLLECTOR_NODE_ID"
  exit 1
fi
)sh");
  // One probe per node: its run completing proves that node looked at the queue meanwhile.
  for (const std::string& id : {kNodeA, kNodeB, kNodeC}) {
    cluster->addCollector("probe" + id.substr(5), kRecordRun, {{"nodes", id}});
  }
  cluster->startAll();
  const std::vector<std::string> ids = cluster->ids();

  // Separate triggers through every node, all while the first run is active: they queue.
  std::vector<std::string> jobs;
  for (int i = 0; i < kSoloRuns; ++i) {
    const HttpResponse response = cluster->node(ids[i % 3]).client().trigger({"solo"});
    ASSERT_TRUE(IsJsonResponse(response, 201)) << "trigger " << i << ": " << response.describe();
    const auto created = objectsOf(*response.object(), "collectors");
    ASSERT_EQ(created.size(), 1u) << response.body;
    jobs.push_back(stringField(*created[0], "job_id"));
  }

  std::map<std::string, int> ran_on;
  for (int step = 0; step < kSoloRuns; ++step) {
    std::map<std::string, std::string> live;
    ASSERT_TRUE(waitUntil([&] {
      const Records records = cluster->records();
      live = liveJobs(records);
      return recordsOf(records, "S").size() == static_cast<std::size_t>(step + 1) &&
             live.size() == 1;
    })) << "run " << step + 1 << " did not start alone; records:" << describe(cluster->records());
    const auto [job, node] = *live.begin();
    ++ran_on[node];
    // Every other node gets a chance to start a queued solo run (which it must not take).
    for (const std::string& other : ids) {
      if (other == node) continue;
      const Triggered probe = triggerOrThrow(cluster->node(other).client(),
                                             {"probe" + other.substr(5)});
      const HttpResponse done = waitForBatchTerminal(cluster->node(other).client(), probe.batch_id);
      ASSERT_EQ(jsonOf(*done.object(), "status"), jsonString("completed")) << done.describe();
    }
    const Records records = cluster->records();
    ASSERT_TRUE(recordsOf(records, "V").empty()) << "two solo runs at once:" << describe(records);
    ASSERT_EQ(liveJobs(records).size(), 1u) << describe(records);
    const HttpClient observer = cluster->node(ids[(step + 1) % 3]).client();
    const auto item = collectorItem(observer, "solo");
    ASSERT_TRUE(item);
    EXPECT_EQ(intField(*item, "running"), 1) << "cluster-wide running count";
    EXPECT_EQ(intField(*item, "queued"), kSoloRuns - step - 1) << "cluster-wide queued count";
    cluster->release(job);
  }

  for (const std::string& job : jobs) {
    const HttpResponse done = waitForJobTerminal(cluster->node(kNodeA).client(), job);
    ASSERT_TRUE(IsJsonResponse(done, 200));
    EXPECT_EQ(jsonOf(*done.object(), "status"), jsonString("completed")) << done.describe();
  }
  const Records records = cluster->records();
  EXPECT_TRUE(recordsOf(records, "V").empty()) << describe(records);
  std::set<std::string> started;
  for (const auto& [job, node] : recordsOf(records, "S")) started.insert(job);
  EXPECT_EQ(started, std::set<std::string>(jobs.begin(), jobs.end()));
  std::cout << "[cluster] solo runs per node:" << describeCounts(ran_on) << "\n";
}

// Every node runs the schedule; each period runs once in the whole cluster. Three nodes each
// firing on their own would reach five runs of `every 1s` within about two seconds; once per
// period takes at least three (four, less the first period's, whose slots the nodes do not
// share yet).
TEST_F(Cluster, AScheduleRunsOncePerPeriodWhateverTheNumberOfNodes) {
  auto cluster = threeNodes();
  cluster->addCollector("tick", kRecordRun, {{"schedule", "every 1s"}});
  cluster->startAll();
  const auto started = std::chrono::steady_clock::now();
  constexpr std::size_t kRuns = 5;
  ASSERT_TRUE(waitUntil([&] { return cluster->records().size() >= kRuns; }, 30s));
  const auto took = std::chrono::steady_clock::now() - started;
  std::set<std::string> jobs;
  for (const auto& record : cluster->records()) jobs.insert(record.at(1));
  EXPECT_EQ(jobs.size(), cluster->records().size()) << "a run recorded twice";
  EXPECT_GE(took, 2900ms) << kRuns << " runs in " << std::chrono::duration<double>(took).count()
                          << " s: a period ran twice";
}

TEST_F(Cluster, MaxConcurrentIsPerNode) {
  const std::string limit =
      "[collectors]\nmax_concurrent = " + std::to_string(kMaxConcurrentPerNode) + "\n";
  auto cluster = threeNodes({}, {{kNodeA, limit}, {kNodeB, limit}, {kNodeC, limit}});
  std::vector<std::string> names;
  for (int i = 1; i <= kLimitedCollectors; ++i) {
    names.push_back("m" + threeDigits(i));
    cluster->addCollector(names.back(), kRecordAndWait);
  }
  cluster->startAll();
  const Triggered run = triggerOrThrow(cluster->node(kNodeB).client(), names);
  constexpr int kClusterSlots = 3 * kMaxConcurrentPerNode;

  // The cluster fills every node's slots, and no more.
  std::map<std::string, std::string> live;
  ASSERT_TRUE(waitUntil([&] { return (live = liveJobs(cluster->records())).size() == kClusterSlots; }))
      << "expected " << kClusterSlots << " runs at once; records:" << describe(cluster->records());
  std::map<std::string, int> live_per_node;
  for (const auto& [job, node] : live) ++live_per_node[node];
  EXPECT_EQ(live_per_node, (std::map<std::string, int>{{kNodeA, kMaxConcurrentPerNode},
                                                       {kNodeB, kMaxConcurrentPerNode},
                                                       {kNodeC, kMaxConcurrentPerNode}}))
      << describeCounts(live_per_node);
  std::string problem;
  const auto nodes = listNodes(cluster->node(kNodeA).client(), &problem);
  ASSERT_TRUE(nodes) << problem;
  for (const NodeView& node : *nodes) {
    EXPECT_EQ(node.running, kMaxConcurrentPerNode) << node.node_id;
    for (const std::string& job : node.running_jobs) {
      EXPECT_EQ(live[job], node.node_id) << job << " is listed on the wrong node";
    }
  }

  // Release whatever runs until every job has ended.
  std::size_t ended = 0;
  while (ended < names.size()) {
    std::map<std::string, std::string> now_live;
    ASSERT_TRUE(waitUntil([&] { return !(now_live = liveJobs(cluster->records())).empty(); }))
        << "nothing runs with " << names.size() - ended << " jobs left:"
        << describe(cluster->records());
    for (const auto& [job, node] : now_live) cluster->release(job);
    const std::size_t want = ended + now_live.size();
    ASSERT_TRUE(waitUntil([&] { return recordsOf(cluster->records(), "E").size() >= want; }))
        << describe(cluster->records());
    ended = recordsOf(cluster->records(), "E").size();
  }
  const HttpResponse batch = waitForBatchTerminal(cluster->node(kNodeC).client(), run.batch_id);
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.describe();
  const auto most = maxConcurrencyPerNode(cluster->records());
  for (const std::string& id : {kNodeA, kNodeB, kNodeC}) {
    const auto found = most.find(id);
    EXPECT_EQ(found == most.end() ? 0 : found->second, kMaxConcurrentPerNode)
        << id << ": most runs at once";
  }
}

TEST_F(Cluster, NodesSelectorsChooseWhereACollectorRunsWhicheverNodeIsTriggered) {
  auto cluster = threeNodes({{kNodeA, "site-x"}, {kNodeB, "site-a"}, {kNodeC, "site-x, gpu"}});
  cluster->addCollector("pinned", kRecordRun, {{"nodes", "tag:site-a"}});
  cluster->addCollector("onlyc", kRecordRun, {{"nodes", kNodeC}});
  cluster->addCollector("either", kRecordRun, {{"nodes", "tag:gpu, node-b"}});
  cluster->addCollector("nowhere", kRecordRun, {{"nodes", "tag:no-such-tag"}});
  cluster->startAll();

  const Triggered stranded = triggerOrThrow(cluster->node(kNodeA).client(), {"nowhere"});
  std::vector<Triggered> runs;
  for (const std::string& id : cluster->ids()) {
    for (int i = 0; i < kTagRunsPerNode; ++i) {
      runs.push_back(triggerOrThrow(cluster->node(id).client(), {"pinned", "onlyc", "either"}));
    }
  }
  const HttpClient a = cluster->node(kNodeA).client();
  for (const Triggered& run : runs) {
    const HttpResponse batch = waitForBatchTerminal(a, run.batch_id);
    ASSERT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.describe();
  }

  std::map<std::string, std::string> ran_on;
  for (const auto& [job, node] : recordsOf(cluster->records(), "R")) ran_on[job] = node;
  for (const Triggered& run : runs) {
    const std::string& pinned = run.job_ids[0];
    const std::string& onlyc = run.job_ids[1];
    const std::string& either = run.job_ids[2];
    EXPECT_EQ(ran_on[pinned], kNodeB) << "pinned (tag:site-a) job " << pinned;
    EXPECT_EQ(jobNodeId(a, pinned), kNodeB) << pinned;
    EXPECT_EQ(ran_on[onlyc], kNodeC) << "onlyc (node-c) job " << onlyc;
    EXPECT_EQ(jobNodeId(a, onlyc), kNodeC) << onlyc;
    EXPECT_TRUE(ran_on[either] == kNodeB || ran_on[either] == kNodeC)
        << "either (tag:gpu, node-b) job " << either << " ran on '" << ran_on[either] << "'";
  }

  // No node matches: after all those runs it still waits, on no node.
  const HttpResponse waiting = a.job(stranded.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(waiting, 200));
  EXPECT_EQ(jsonOf(*waiting.object(), "status"), jsonString("queued"));
  EXPECT_EQ(jsonOf(*waiting.object(), "node_id"), "null");
  const HttpResponse cancelled =
      cluster->node(kNodeB).client().post("/api/collectors/runs/job/" + stranded.job_ids[0] + "/cancel", "");
  ASSERT_TRUE(IsJsonResponse(cancelled, 200)) << cancelled.describe();
  EXPECT_EQ(jsonOf(*cancelled.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(ran_on.count(stranded.job_ids[0]), 0u);
}

TEST_F(Cluster, NodesListsEveryNodeWithItsStateTagsAndRunningJobs) {
  auto cluster = threeNodes({{kNodeA, "site-a"}, {kNodeB, "site-b, gpu"}});
  cluster->addCollector("hold", kRecordAndWait, {{"nodes", kNodeB}});
  cluster->startAll();
  const HttpClient a = cluster->node(kNodeA).client();
  const Triggered run = triggerOrThrow(a, {"hold"});
  const std::string job = run.job_ids[0];
  ASSERT_EQ(waitForJobStatus(a, job, "running").status, 200);

  const std::map<std::string, std::vector<std::string>> tags = {
      {kNodeA, {"site-a"}}, {kNodeB, {"site-b", "gpu"}}, {kNodeC, {}}};
  for (const std::string& asked : cluster->ids()) {
    std::string problem;
    const auto nodes = listNodes(cluster->node(asked).client(), &problem);
    ASSERT_TRUE(nodes) << "asking " << asked << ": " << problem;
    ASSERT_EQ(nodes->size(), 3u) << "asking " << asked;
    for (const NodeView& node : *nodes) {
      SCOPED_TRACE("asking " + asked + " about " + node.node_id);
      EXPECT_EQ(node.state, "alive");
      EXPECT_EQ(node.tags, tags.at(node.node_id));
      EXPECT_LE(parseTimestamp(node.started_at), parseTimestamp(node.heartbeat_at));
      if (node.node_id == kNodeB) {
        EXPECT_EQ(node.running_jobs, std::vector<std::string>{job});
      } else {
        EXPECT_EQ(node.running, 0);
      }
    }
  }
  // Heartbeats go on.
  const auto before = listNodes(a);
  ASSERT_TRUE(before && findNode(*before, kNodeC));
  const std::string first_beat = findNode(*before, kNodeC)->heartbeat_at;
  EXPECT_TRUE(waitUntil(
      [&] {
        const auto nodes = listNodes(a);
        const auto c = nodes ? findNode(*nodes, kNodeC) : std::nullopt;
        return c && c->heartbeat_at != first_beat;
      },
      3 * kHeartbeatInterval + 2s))
      << "node-c's heartbeat_at stayed " << first_beat;

  // kill -9: node-c becomes lost once its lease runs out.
  const auto killed_at = std::chrono::steady_clock::now();
  cluster->node(kNodeC).daemon().killHard();
  std::optional<NodeView> c;
  EXPECT_TRUE(waitUntil(
      [&] {
        const auto nodes = listNodes(a);
        return nodes && (c = findNode(*nodes, kNodeC)) && c->state == "lost";
      },
      kLostWithin + 5s))
      << "node-c is " << (c ? c->state : "missing");
  const auto lost_after = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LT(lost_after, kLostWithin);
  std::printf("[cluster] node lost after %.2f s\n",
              std::chrono::duration<double>(lost_after).count());

  // A clean stop: stopped, at once.
  cluster->release(job);
  ASSERT_EQ(jsonOf(*waitForJobTerminal(a, job).object(), "status"), jsonString("completed"));
  ASSERT_EQ(cluster->node(kNodeB).daemon().stop(), 0);
  std::string problem;
  const auto final_nodes = listNodes(a, &problem);
  ASSERT_TRUE(final_nodes) << problem;
  std::map<std::string, std::string> states;
  for (const NodeView& node : *final_nodes) states[node.node_id] = node.state;
  EXPECT_EQ(states, (std::map<std::string, std::string>{
                        {kNodeA, "alive"}, {kNodeB, "stopped"}, {kNodeC, "lost"}}));
  EXPECT_TRUE(NothingRunning(a));
}

TEST_F(Cluster, NodesIs404WhenClusterModeIsOff) {
  TempDir dir;
  DaemonConfig config(dir);
  Daemon daemon(config);
  const HttpResponse response = daemon.client().get("/api/nodes");
  ASSERT_TRUE(IsJsonResponse(response, 404)) << response.describe();
  EXPECT_NE(Poco::toLower(stringField(*response.object(), "error")).find("cluster mode is not enabled"),
            std::string::npos)
      << response.body;
}

TEST_F(Cluster, ConfigurationChecksClusterAndNodeKeys) {
  const auto check = [](const std::string& store, const std::string& ini) {
    TempDir dir;
    DaemonConfig config(dir);
    config.useStore(store);
    config.appendToMain(ini);
    return runCollectord({"--check-config", "--config=" + config.mainPath()});
  };
  const std::string postgres = freshDatabase();

  const RunResult on_sqlite = check("sqlite:collectord.db", "[cluster]\nenabled = true\n");
  EXPECT_EQ(on_sqlite.exit_code, 1) << on_sqlite.err;
  EXPECT_NE(on_sqlite.err.find(": cluster.enabled: "), std::string::npos) << on_sqlite.err;

  const RunResult short_lease = check(postgres, "[cluster]\nenabled = true\nlease_timeout = 500ms\n");
  EXPECT_EQ(short_lease.exit_code, 1) << short_lease.err;
  EXPECT_NE(short_lease.err.find(": cluster.lease_timeout: "), std::string::npos) << short_lease.err;

  const RunResult bad_id = check(postgres, "[node]\nid = node a!\n[cluster]\nenabled = true\n");
  EXPECT_EQ(bad_id.exit_code, 1) << bad_id.err;
  EXPECT_NE(bad_id.err.find(": node.id: "), std::string::npos) << bad_id.err;

  const RunResult good =
      check(postgres, "[node]\nid = node-a\ntags = site-a, gpu\n[cluster]\nenabled = true\n"
                      "lease_timeout = 2s\nheartbeat_interval = 500ms\npoll_interval = 200ms\n");
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
}

}  // namespace
}  // namespace collectord::test
