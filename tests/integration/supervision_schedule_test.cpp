// Supervision: schedules. `schedule = every 2s` fires runs on its own, a cron line is accepted and
// shown with its next firing time, and runs missed while collectord was down are made up for
// with one run at start, not one per missed slot. Time is the feature here, so these tests
// wait on the clock (bounded), never for longer than the schedule needs.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;
using namespace std::chrono_literals;

// Every history item of `collector`, newest first.
std::vector<Object::Ptr> runsOf(const HttpClient& client, const std::string& collector) {
  std::vector<Object::Ptr> runs;
  const HttpResponse history = client.get("/api/collectors/history?limit=1000");
  if (history.status != 200 || !history.object()) return runs;
  for (const auto& item : objectsOf(*history.object(), "collection_history")) {
    if (stringField(*item, "collector") == collector) runs.push_back(item);
  }
  return runs;
}

std::int64_t micros(const Object& object, const std::string& key) {
  return parseTimestamp(stringField(object, key)).value_or(-1);
}

TEST(SupervisionSchedule, EveryTwoSecondsFiresRunsByItself) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("tick", "date +%s%N >> \"$TICKS\"\n",
                      {{"schedule", "every 2s"}, {"env.TICKS", dir.file("ticks")}});
  const std::int64_t started = nowMicros();
  Daemon daemon(config);
  const HttpClient client = daemon.client();

  auto item = collectorItem(client, "tick");
  ASSERT_TRUE(item);
  EXPECT_EQ(jsonOf(*item, "schedule"), jsonString("every 2s"));
  const std::int64_t next = micros(*item, "next_scheduled_at");
  EXPECT_TRUE(isMicroTimestamp(stringField(*item, "next_scheduled_at"))) << jsonOf(*item, "next_scheduled_at");
  EXPECT_GT(next, started + 1'500'000) << "the first run is one interval after start";
  EXPECT_LE(next, nowMicros() + 2'000'000);

  ASSERT_TRUE(waitUntil([&] { return runsOf(client, "tick").size() >= 2; }, 7s))
      << "fewer than 2 scheduled runs within 7 s";
  EXPECT_LE(nowMicros() - started, 6'500'000) << "two runs of `every 2s` took too long";
  const auto runs = runsOf(client, "tick");
  const std::int64_t gap = micros(*runs[0], "started_at") - micros(*runs[1], "started_at");
  EXPECT_GE(gap, 1'900'000) << "scheduled runs came closer than the interval";
  EXPECT_LE(gap, 3'000'000);
  for (const auto& run : runs) {
    EXPECT_EQ(jsonOf(*waitForJobTerminal(client, stringField(*run, "job_id")).object(), "status"),
              jsonString("completed"));
  }
  item = collectorItem(client, "tick");
  ASSERT_TRUE(item);
  EXPECT_GT(micros(*item, "next_scheduled_at"), micros(*runs[0], "started_at"))
      << "next_scheduled_at moves on after each run";
}

TEST(SupervisionSchedule, ACronLineIsAcceptedAndShownWithItsNextTime) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("every5", "exit 0\n", {{"cron", "*/5 * * * *"}});
  config.addCollector("weekdays", "exit 0\n",
                      {{"cron", "30 6 * * MON-FRI"}, {"timezone", "Europe/Paris"}});
  ASSERT_EQ(runCollectord({"--check-config", "--config=" + config.mainPath()}).exit_code, 0);
  const std::int64_t now = nowMicros();
  Daemon daemon(config);
  const HttpClient client = daemon.client();

  auto five = collectorItem(client, "every5");
  ASSERT_TRUE(five);
  EXPECT_EQ(jsonOf(*five, "schedule"), jsonString("cron */5 * * * * (UTC)"));
  const std::int64_t next = micros(*five, "next_scheduled_at");
  EXPECT_GT(next, now);
  EXPECT_LE(next, now + 5LL * 60 * 1'000'000);
  EXPECT_EQ(next % (5LL * 60 * 1'000'000), 0) << "*/5 fires on whole multiples of 5 minutes";

  auto weekdays = collectorItem(client, "weekdays");
  ASSERT_TRUE(weekdays);
  EXPECT_EQ(jsonOf(*weekdays, "schedule"), jsonString("cron 30 6 * * MON-FRI (Europe/Paris)"));
  const std::int64_t at = micros(*weekdays, "next_scheduled_at");
  EXPECT_GT(at, now);
  EXPECT_LE(at, now + 4LL * 24 * 3600 * 1'000'000) << "at most a weekend away";
  EXPECT_EQ(at % (30LL * 60 * 1'000'000), 0) << "06:30 Paris is a whole half hour in UTC";
  EXPECT_TRUE(runsOf(client, "every5").empty());

  // A malformed cron line is refused with its reason.
  config.addCollector("bad", "exit 0\n", {{"cron", "61 * * * *"}});
  const RunResult check = runCollectord({"--check-config", "--config=" + config.mainPath()});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_NE(check.err.find("bad.ini: collector.cron: the minute field allows 0-59: '61'"),
            std::string::npos)
      << check.err;
}

TEST(SupervisionSchedule, RunsMissedWhileDownAreMadeUpWithOneRunAtStart) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("tick", "exit 0\n", {{"schedule", "every 2s"}});
  std::int64_t fired_at = 0;
  {
    Daemon daemon(config);
    const HttpClient client = daemon.client();
    ASSERT_TRUE(waitUntil([&] { return runsOf(client, "tick").size() == 1; }, 5s));
    const std::string id = stringField(*runsOf(client, "tick")[0], "job_id");
    ASSERT_EQ(jsonOf(*waitForJobTerminal(client, id).object(), "status"), jsonString("completed"));
    fired_at = micros(*runsOf(client, "tick")[0], "started_at");
    ASSERT_EQ(daemon.stop(), 0);
  }
  // Down for more than three intervals.
  ASSERT_TRUE(waitUntil([&] { return nowMicros() > fired_at + 6'500'000; }, 10s));

  const std::int64_t restarted_at = nowMicros();
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ASSERT_TRUE(waitUntil([&] { return runsOf(client, "tick").size() >= 2; }, 5s))
      << "no catch-up run after the restart";
  const auto after = runsOf(client, "tick");
  const std::int64_t catch_up = micros(*after[0], "started_at");
  EXPECT_LT(catch_up - restarted_at, 1'500'000) << "the missed run is made up right away";
  EXPECT_TRUE(waitForDaemonLog(daemon, "schedule of tick missed a run while collectord was down"));
  // Not one per missed slot: nothing more until the next regular slot, an interval later.
  ASSERT_TRUE(waitUntil([&] { return nowMicros() > catch_up + 1'500'000; }, 5s));
  const auto later = runsOf(client, "tick");
  std::size_t since_restart = 0;
  for (const auto& run : later) since_restart += micros(*run, "started_at") >= restarted_at;
  EXPECT_EQ(since_restart, 1u) << "expected exactly one catch-up run";
  auto item = collectorItem(client, "tick");
  ASSERT_TRUE(item);
  const std::int64_t next = micros(*item, "next_scheduled_at");
  EXPECT_GE(next - catch_up, 1'900'000) << "the next run is an interval after the catch-up";
  EXPECT_LE(next - catch_up, 2'100'000);
}

}  // namespace
}  // namespace collectord::test
