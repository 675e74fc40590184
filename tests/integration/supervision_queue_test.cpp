// Supervision: the queue. The node limit (collectors.max_concurrent), start order by priority
// then age, and what a trigger does while a collector already has an active run (overlap =
// queue | skip | parallel, with concurrency). Collectors append "S JOB_ID" when they start and
// "E JOB_ID" just before they end to one event file, and block until the test releases their
// job, so every state is observed, not timed.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

// Records its start, waits for the test to release this job, records its end.
constexpr const char* kRecordAndWait = R"sh(
echo "S $COLLECTOR_JOB_ID" >> "$EVENTS"
wait_for_release "$COLLECTOR_JOB_ID"
echo "E $COLLECTOR_JOB_ID" >> "$EVENTS"
)sh";

struct Counts {
  std::int64_t running = 0;
  std::int64_t queued = 0;
};

// GET /api/collectors: running and queued summed over `names`.
Counts countsOf(const HttpClient& client, const std::vector<std::string>& names) {
  Counts counts;
  for (const std::string& name : names) {
    auto item = collectorItem(client, name);
    if (!item) return {-1, -1};
    counts.running += intField(*item, "running").value_or(-1000);
    counts.queued += intField(*item, "queued").value_or(-1000);
  }
  return counts;
}

std::string describeEvents(const std::string& path) {
  std::string text;
  for (const std::string& line : readLines(path)) text += "\n  " + line;
  return text.empty() ? " (none)" : text;
}

// POST /api/collectors/run for one collector; returns its new job ID (empty on failure).
std::string triggerOne(const HttpClient& client, const std::string& name,
                       const std::optional<std::string>& priority = std::nullopt) {
  const HttpResponse response = client.trigger({name}, priority);
  EXPECT_TRUE(IsJsonResponse(response, 201)) << response.describe();
  auto body = response.object();
  if (!body || !body->isArray("collectors") || body->getArray("collectors")->size() != 1) return "";
  return stringField(*body->getArray("collectors")->getObject(0), "job_id");
}

TEST(SupervisionQueue, MaxConcurrentTwoNeverRunsMoreThanTwoOfFiveJobs) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 2\n");
  const std::string events = dir.file("events");
  const std::vector<std::string> names = {"c1", "c2", "c3", "c4", "c5"};
  for (const std::string& name : names) {
    config.addBlockingCollector(name, kRecordAndWait, {{"env.EVENTS", events}});
  }
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, names);

  // Release one running job at a time; each time exactly min(2, left) run and the rest wait.
  for (std::size_t ended = 0; ended < names.size(); ++ended) {
    const std::size_t want_running = std::min<std::size_t>(2, names.size() - ended);
    const std::size_t want_queued = names.size() - ended - want_running;
    ASSERT_TRUE(waitUntil([&] {
      const auto lines = readLines(events);
      return liveIds(lines).size() == want_running && eventIds(lines, "E").size() == ended;
    })) << "after " << ended << " ended, expected " << want_running
        << " running collectors; events:" << describeEvents(events);
    ASSERT_TRUE(waitUntil([&] {
      const Counts c = countsOf(client, names);
      return c.running == static_cast<std::int64_t>(want_running) &&
             c.queued == static_cast<std::int64_t>(want_queued);
    })) << "GET /api/collectors disagrees: running " << countsOf(client, names).running
        << ", queued " << countsOf(client, names).queued;
    // The daemon already dispatched the queue: no third process has started meanwhile.
    ASSERT_EQ(eventIds(readLines(events), "S").size(), ended + want_running)
        << describeEvents(events);
    // The oldest running job; its ID starts with its collector's name ("c3_12345678").
    const std::string oldest = liveIds(readLines(events)).front();
    releaseWord(config, oldest.substr(0, 2), oldest);
  }

  const HttpResponse batch = waitForBatchTerminal(client, run.batch_id);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_TRUE(HasBatchShape(*batch.object()));
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.describe();
  const auto lines = readLines(events);
  EXPECT_EQ(maxConcurrency(lines), 2) << describeEvents(events);
  // c1 and c2 start together (their scripts may note it in either order); the others one by
  // one, in trigger order, as slots free up.
  const auto started = eventIds(lines, "S");
  ASSERT_EQ(started.size(), 5u);
  EXPECT_EQ((std::set<std::string>{started[0], started[1]}),
            (std::set<std::string>{run.job_ids[0], run.job_ids[1]}));
  EXPECT_EQ(std::vector<std::string>(started.begin() + 2, started.end()),
            std::vector<std::string>(run.job_ids.begin() + 2, run.job_ids.end()))
      << "jobs of one batch start in trigger order";
  EXPECT_EQ(eventIds(lines, "E").size(), 5u);
}

TEST(SupervisionQueue, StartsQueuedJobsByPriorityThenOldestFirst) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  const std::string order = dir.file("order");
  config.addBlockingCollector("blocker", "wait_for_release 1\n");
  config.addCollector("rec", "echo \"$COLLECTOR_JOB_ID\" >> \"$ORDER\"\n", {{"env.ORDER", order}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();

  const std::string blocker = triggerOne(client, "blocker");
  ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, blocker, "running"), 200));
  ASSERT_EQ(jobStatus(client, blocker), "running");

  const std::string low1 = triggerOne(client, "rec", "low");
  const std::string normal1 = triggerOne(client, "rec", "normal");
  const std::string high1 = triggerOne(client, "rec", "high");
  const std::string low2 = triggerOne(client, "rec", "low");
  const std::string normal2 = triggerOne(client, "rec", "normal");
  const std::string high2 = triggerOne(client, "rec", "high");
  ASSERT_TRUE(waitUntil([&] {
    const Counts c = countsOf(client, {"rec"});
    return c.running == 0 && c.queued == 6;
  })) << "six queued runs of rec expected behind the blocker";
  EXPECT_FALSE(fileExists(order)) << "nothing may start while max_concurrent is used up";
  auto high_job = client.job(high1).object();
  ASSERT_TRUE(high_job);
  auto high_batch = client.batch(stringField(*high_job, "batch_id")).object();
  ASSERT_TRUE(high_batch);
  EXPECT_EQ(jsonOf(*high_batch, "priority"), jsonString("high"));

  config.release("blocker");
  ASSERT_TRUE(waitUntil([&] { return readLines(order).size() == 6; }, std::chrono::seconds(20)))
      << "started so far: " << describeEvents(order);
  EXPECT_EQ(readLines(order),
            (std::vector<std::string>{high1, high2, normal1, normal2, low1, low2}))
      << "expected high, normal, low; oldest first within a priority";
  for (const std::string& id : {high1, high2, normal1, normal2, low1, low2}) {
    EXPECT_EQ(jsonOf(*waitForJobTerminal(client, id).object(), "status"), jsonString("completed"));
  }
}

TEST(SupervisionQueue, ACollectorAtItsOwnLimitIsPassedOverForOthers) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 2\n");
  const std::string events = dir.file("events");
  config.addBlockingCollector("aa", kRecordAndWait, {{"env.EVENTS", events}});
  config.addCollector("bb", "echo \"S $COLLECTOR_JOB_ID\" >> \"$EVENTS\"\n", {{"env.EVENTS", events}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const std::string a1 = triggerOne(client, "aa");
  const std::string a2 = triggerOne(client, "aa");
  const std::string b1 = triggerOne(client, "bb");

  // aa's second run waits for aa's first (overlap = queue); bb, behind it, takes the free slot.
  EXPECT_EQ(jsonOf(*waitForJobTerminal(client, b1).object(), "status"), jsonString("completed"));
  EXPECT_EQ(jobStatus(client, a1), "running");
  EXPECT_EQ(jobStatus(client, a2), "queued");
  EXPECT_EQ(eventIds(readLines(events), "S"), (std::vector<std::string>{a1, b1}))
      << describeEvents(events);
  releaseWord(config, "aa", a1);
  ASSERT_TRUE(waitUntil([&] { return eventIds(readLines(events), "S").size() == 3; }))
      << describeEvents(events);
  releaseWord(config, "aa", a2);
  EXPECT_EQ(jsonOf(*waitForJobTerminal(client, a2).object(), "status"), jsonString("completed"));
  EXPECT_EQ(eventIds(readLines(events), "S"), (std::vector<std::string>{a1, b1, a2}));
}

TEST(SupervisionQueue, AJobBeingStoppedStillHoldsItsSlot) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  // Notes SIGTERM and goes on: only SIGKILL, kill_grace (1 s) later, ends it.
  config.addBlockingCollector("stubborn", R"sh(
trap 'touch "$RELEASE/term"' TERM
echo $$ > "$RELEASE/pid.tmp" && mv "$RELEASE/pid.tmp" "$RELEASE/pid"
wait_for_release never
)sh",
                              {{"kill_grace", "1s"}});
  config.addCollector("next", "date +%s%N > \"$STARTED\"\n", {{"env.STARTED", dir.file("next.started")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;
  const std::string stubborn = triggerOne(client, "stubborn");
  const pid_t pid = waitForPidFile(config.releaseDir("stubborn") + "/pid");
  reaper.addGroup(pid);
  const std::string next = triggerOne(client, "next");
  ASSERT_EQ(jobStatus(client, next), "queued");

  ASSERT_TRUE(IsJsonResponse(client.del("/api/collectors/runs/job/" + stubborn), 202));
  ASSERT_TRUE(waitUntil([&] { return fileExists(config.releaseDir("stubborn") + "/term"); }));
  ASSERT_TRUE(processAlive(pid));
  EXPECT_EQ(jobStatus(client, next), "queued") << "the slot is free only once the process is gone";
  EXPECT_FALSE(fileExists(dir.file("next.started")));

  const HttpResponse stopped = waitForJobTerminal(client, stubborn);
  EXPECT_EQ(jsonOf(*stopped.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*waitForJobTerminal(client, next).object(), "status"), jsonString("completed"));
  const auto started = readNanos(dir.file("next.started"));
  ASSERT_EQ(started.size(), 1u);
  const auto ended = parseTimestamp(stringField(*stopped.object(), "ended_at"));
  ASSERT_TRUE(ended.has_value());
  EXPECT_GE(started[0] / 1000, *ended - 5'000) << "next started before the stopped job had ended";
}

TEST(SupervisionOverlap, ParallelRunsUpToConcurrencyRunsOfOneCollector) {
  TempDir dir;
  DaemonConfig config(dir);
  const std::string events = dir.file("events");
  config.addBlockingCollector("par", kRecordAndWait,
                              {{"overlap", "parallel"}, {"concurrency", "2"}, {"env.EVENTS", events}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const std::string a = triggerOne(client, "par");
  const std::string b = triggerOne(client, "par");
  const std::string c = triggerOne(client, "par");

  ASSERT_TRUE(waitUntil([&] { return liveIds(readLines(events)).size() == 2; }))
      << describeEvents(events);
  ASSERT_TRUE(waitUntil([&] {
    const Counts n = countsOf(client, {"par"});
    return n.running == 2 && n.queued == 1;
  })) << "expected 2 running and 1 queued";
  EXPECT_EQ(eventIds(readLines(events), "S"), (std::vector<std::string>{a, b}))
      << "the third run must wait for a free slot of concurrency = 2";
  EXPECT_EQ(jobStatus(client, c), "queued");

  releaseWord(config, "par", a);
  ASSERT_TRUE(waitUntil([&] { return eventIds(readLines(events), "S").size() == 3; }))
      << "the queued run did not start when a slot became free:" << describeEvents(events);
  ASSERT_TRUE(waitUntil([&] {
    const Counts n = countsOf(client, {"par"});
    return n.running == 2 && n.queued == 0;
  }));
  releaseWord(config, "par", b);
  releaseWord(config, "par", c);
  for (const std::string& id : {a, b, c}) {
    EXPECT_EQ(jsonOf(*waitForJobTerminal(client, id).object(), "status"), jsonString("completed"));
  }
  const auto lines = readLines(events);
  EXPECT_EQ(maxConcurrency(lines), 2) << describeEvents(events);
  EXPECT_EQ(eventIds(lines, "S"), (std::vector<std::string>{a, b, c}));
}

TEST(SupervisionOverlap, QueueRunsTriggersOfOneCollectorOneAfterAnother) {
  TempDir dir;
  DaemonConfig config(dir);
  const std::string events = dir.file("events");
  config.addBlockingCollector("seq", kRecordAndWait, {{"env.EVENTS", events}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const std::vector<std::string> ids = {triggerOne(client, "seq"), triggerOne(client, "seq"),
                                        triggerOne(client, "seq")};
  ASSERT_TRUE(waitUntil([&] {
    const Counts n = countsOf(client, {"seq"});
    return n.running == 1 && n.queued == 2;
  })) << "overlap = queue: one run at a time, the others wait";

  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(waitUntil([&] {
      const auto lines = readLines(events);
      return eventIds(lines, "S").size() == i + 1 && eventIds(lines, "E").size() == i;
    })) << describeEvents(events);
    EXPECT_EQ(liveIds(readLines(events)), std::vector<std::string>{ids[i]});
    for (std::size_t j = i + 1; j < ids.size(); ++j) EXPECT_EQ(jobStatus(client, ids[j]), "queued");
    releaseWord(config, "seq", ids[i]);
  }
  for (const std::string& id : ids) {
    EXPECT_EQ(jsonOf(*waitForJobTerminal(client, id).object(), "status"), jsonString("completed"));
  }
  const auto lines = readLines(events);
  EXPECT_EQ(lines, (std::vector<std::string>{"S " + ids[0], "E " + ids[0], "S " + ids[1],
                                             "E " + ids[1], "S " + ids[2], "E " + ids[2]}));
}

TEST(SupervisionOverlap, SkipAnswersWithTheActiveRunAndCreatesNoJob) {
  TempDir dir;
  DaemonConfig config(dir);
  const std::string events = dir.file("events");
  config.addBlockingCollector("sk", kRecordAndWait, {{"overlap", "skip"}, {"env.EVENTS", events}});
  config.addCollector("other", "exit 0\n");
  Daemon daemon(config);
  const HttpClient client = daemon.client();

  const Triggered first = triggerOrThrow(client, {"sk"});
  const std::string active = first.job_ids[0];
  const HttpResponse running = waitForJobStatus(client, active, "running");
  ASSERT_EQ(jsonOf(*running.object(), "status"), jsonString("running")) << running.describe();

  // The only collector named is skipped: 200, nothing created, the active run returned.
  const HttpResponse skipped = client.trigger({"sk"});
  ASSERT_TRUE(IsJsonResponse(skipped, 200));
  const auto body = skipped.object();
  EXPECT_EQ(jsonOf(*body, "batch_id"), jsonString(first.batch_id));
  const auto items = objectsOf(*body, "collectors");
  ASSERT_EQ(items.size(), 1u) << skipped.describe();
  // getNames() is sorted.
  EXPECT_EQ(items[0]->getNames(), (std::vector<std::string>{"batch_id", "job_id", "job_name",
                                                            "skipped", "started_at", "status"}))
      << skipped.describe();
  EXPECT_EQ(jsonOf(*items[0], "job_id"), jsonString(active));
  EXPECT_EQ(jsonOf(*items[0], "job_name"), jsonString("sk-collector"));
  EXPECT_EQ(jsonOf(*items[0], "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(*items[0], "started_at"), jsonOf(*running.object(), "started_at"));
  EXPECT_EQ(jsonOf(*items[0], "skipped"), "true");
  EXPECT_EQ(jsonOf(*items[0], "batch_id"), jsonString(first.batch_id));

  // Named with another collector: a batch is created for the other one only.
  const HttpResponse mixed = client.trigger({"other", "sk"});
  ASSERT_TRUE(IsJsonResponse(mixed, 201));
  const std::string mixed_batch = stringField(*mixed.object(), "batch_id");
  EXPECT_NE(mixed_batch, first.batch_id);
  const auto mixed_items = objectsOf(*mixed.object(), "collectors");
  ASSERT_EQ(mixed_items.size(), 2u);
  EXPECT_FALSE(mixed_items[0]->has("skipped")) << mixed.describe();
  EXPECT_EQ(jsonOf(*mixed_items[0], "status"), jsonString("queued"));
  EXPECT_EQ(jsonOf(*mixed_items[1], "job_id"), jsonString(active));
  EXPECT_EQ(jsonOf(*mixed_items[1], "skipped"), "true");
  EXPECT_EQ(jsonOf(*mixed_items[1], "batch_id"), jsonString(first.batch_id));
  const HttpResponse other_batch = waitForBatchTerminal(client, mixed_batch);
  ASSERT_TRUE(IsJsonResponse(other_batch, 200));
  EXPECT_TRUE(HasBatchShape(*other_batch.object()));
  EXPECT_EQ(objectsOf(*other_batch.object(), "collectors").size(), 1u)
      << "the skipped collector is not part of the new batch: " << other_batch.describe();

  auto sk = collectorItem(client, "sk");
  ASSERT_TRUE(sk);
  EXPECT_EQ(jsonOf(*sk, "running"), "1");
  EXPECT_EQ(jsonOf(*sk, "queued"), "0");
  EXPECT_EQ(eventIds(readLines(events), "S"), std::vector<std::string>{active})
      << "no second process of sk";

  releaseWord(config, "sk", active);
  EXPECT_EQ(jsonOf(*waitForJobTerminal(client, active).object(), "status"), jsonString("completed"));
  const HttpResponse history = client.get("/api/collectors/history?limit=100");
  ASSERT_TRUE(IsJsonResponse(history, 200));
  int sk_runs = 0;
  for (const auto& item : objectsOf(*history.object(), "collection_history")) {
    sk_runs += stringField(*item, "collector") == "sk";
  }
  EXPECT_EQ(sk_runs, 1) << "skipped triggers must not leave jobs behind: " << history.describe();

  // With nothing active any more, a trigger creates a run again.
  const std::string next = triggerOne(client, "sk");
  EXPECT_NE(next, active);
  releaseWord(config, "sk", next);
  EXPECT_EQ(jsonOf(*waitForJobTerminal(client, next).object(), "status"), jsonString("completed"));
}

TEST(SupervisionOverlap, SkipAlsoAnswersWithARunThatIsStillQueued) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  config.addBlockingCollector("blocker", "wait_for_release 1\n");
  config.addCollector("sk", "echo \"$COLLECTOR_JOB_ID\" >> \"$RAN\"\n",
                      {{"overlap", "skip"}, {"env.RAN", dir.file("ran")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const std::string blocker = triggerOne(client, "blocker");
  ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, blocker, "running"), 200));
  const Triggered queued = triggerOrThrow(client, {"sk"});
  ASSERT_EQ(jobStatus(client, queued.job_ids[0]), "queued");

  const HttpResponse skipped = client.trigger({"sk"}, "high");
  ASSERT_TRUE(IsJsonResponse(skipped, 200));
  const auto items = objectsOf(*skipped.object(), "collectors");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(jsonOf(*items[0], "job_id"), jsonString(queued.job_ids[0]));
  EXPECT_EQ(jsonOf(*items[0], "status"), jsonString("queued"));
  EXPECT_EQ(jsonOf(*items[0], "skipped"), "true");
  EXPECT_EQ(jsonOf(*skipped.object(), "batch_id"), jsonString(queued.batch_id));

  config.release("blocker");
  EXPECT_EQ(jsonOf(*waitForJobTerminal(client, queued.job_ids[0]).object(), "status"),
            jsonString("completed"));
  EXPECT_EQ(readLines(dir.file("ran")), std::vector<std::string>{queued.job_ids[0]});
}

}  // namespace
}  // namespace collectord::test
