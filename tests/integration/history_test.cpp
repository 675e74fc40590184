// GET /api/collectors/history: runs newest first, running ones included, with durations.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

TEST(History, IsEmptyBeforeAnyRun) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);

  auto response = daemon.client().get("/api/collectors/history");

  EXPECT_EQ(listedJobIds(response, "collection_history", HasHistoryItemShape),
            std::vector<std::string>{});
  ASSERT_TRUE(response.object());
  EXPECT_EQ(jsonOf(*response.object(), "collection_history"), "[]");
  EXPECT_EQ(jsonOf(*response.object(), "total_runs"), "0");
}

TEST(History, ListsRunsNewestFirstWithEveryField) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", R"sh(
printf '{"progress": 60, "message": "Collection completed successfully"}\n' >&3
)sh");
  config.addCollector("sophos", "exit 2\n");
  config.addBlockingCollector("threatlocker", R"sh(
printf '{"progress": 30, "message": "Processing devices..."}\n' >&3
wait_for_release 1
)sh");
  Daemon daemon(config);
  auto client = daemon.client();
  auto ninja = triggerOrThrow(client, {"ninja"});
  waitForBatchTerminal(client, ninja.batch_id);
  auto sophos = triggerOrThrow(client, {"sophos"});
  waitForBatchTerminal(client, sophos.batch_id);
  auto threatlocker = triggerOrThrow(client, {"threatlocker"});
  waitForJob(client, threatlocker.job_ids[0],
             [](const Object& j) { return stringField(j, "message") == "Processing devices..."; });

  auto response = client.get("/api/collectors/history");

  EXPECT_EQ(
      listedJobIds(response, "collection_history", HasHistoryItemShape),
      (std::vector<std::string>{threatlocker.job_ids[0], sophos.job_ids[0], ninja.job_ids[0]}));
  ASSERT_TRUE(response.object());
  EXPECT_EQ(jsonOf(*response.object(), "total_runs"), "3");
  auto items = objectsOf(*response.object(), "collection_history");
  ASSERT_EQ(items.size(), 3u);

  const Object& running = *items[0];
  EXPECT_EQ(jsonOf(running, "batch_id"), jsonString(threatlocker.batch_id));
  EXPECT_EQ(jsonOf(running, "job_name"), jsonString("threatlocker-collector"));
  EXPECT_EQ(jsonOf(running, "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(running, "progress_percent"), "30");
  EXPECT_EQ(jsonOf(running, "message"), jsonString("Processing devices..."));
  EXPECT_EQ(jsonOf(running, "error"), "null");
  EXPECT_EQ(jsonOf(running, "ended_at"), "null");
  EXPECT_EQ(jsonOf(running, "duration"), "null");
  EXPECT_EQ(jsonOf(running, "duration_seconds"), "null");

  const Object& failed = *items[1];
  EXPECT_EQ(jsonOf(failed, "batch_id"), jsonString(sophos.batch_id));
  EXPECT_EQ(jsonOf(failed, "job_name"), jsonString("sophos-collector"));
  EXPECT_EQ(jsonOf(failed, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(failed, "error"), jsonString("exit code 2"));
  EXPECT_NE(jsonOf(failed, "ended_at"), "null");
  EXPECT_NE(jsonOf(failed, "duration"), "null");

  const Object& completed = *items[2];
  EXPECT_EQ(jsonOf(completed, "batch_id"), jsonString(ninja.batch_id));
  EXPECT_EQ(jsonOf(completed, "job_name"), jsonString("ninja-collector"));
  EXPECT_EQ(jsonOf(completed, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(completed, "progress_percent"), "100");
  EXPECT_EQ(jsonOf(completed, "message"), jsonString("Collection completed successfully"));
  EXPECT_EQ(jsonOf(completed, "error"), "null");
  // The runs take well under a minute, so their durations are whole seconds only.
  EXPECT_TRUE(parseDuration(stringField(completed, "duration")).value_or(60) < 60)
      << jsonOf(completed, "duration");

  // History items agree with the job-status view of the same run.
  for (const auto& item : items) {
    auto job = client.job(stringField(*item, "job_id"));
    ASSERT_TRUE(IsJsonResponse(job, 200));
    for (const char* key : {"job_id", "batch_id", "job_name", "status", "started_at", "ended_at",
                            "progress_percent", "message", "error"}) {
      EXPECT_EQ(jsonOf(*item, key), jsonOf(*job.object(), key)) << key;
    }
  }
  config.release("threatlocker");
}

TEST(History, ReturnsTheTenNewestRunsByDefaultAndHonoursLimit) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();
  std::vector<std::string> newest_first;
  for (int i = 0; i < 11; ++i) newest_first.insert(newest_first.begin(), runOnce(client, "ninja"));

  auto by_default = client.get("/api/collectors/history");
  auto limit_1 = client.get("/api/collectors/history?limit=1");
  auto limit_3 = client.get("/api/collectors/history?limit=3");
  auto limit_1000 = client.get("/api/collectors/history?limit=1000");

  EXPECT_EQ(listedJobIds(by_default, "collection_history", HasHistoryItemShape),
            std::vector<std::string>(newest_first.begin(), newest_first.begin() + 10));
  EXPECT_EQ(jsonOf(*by_default.object(), "total_runs"), "10");
  EXPECT_EQ(listedJobIds(limit_1, "collection_history", HasHistoryItemShape),
            std::vector<std::string>{newest_first[0]});
  EXPECT_EQ(jsonOf(*limit_1.object(), "total_runs"), "1");
  EXPECT_EQ(listedJobIds(limit_3, "collection_history", HasHistoryItemShape),
            std::vector<std::string>(newest_first.begin(), newest_first.begin() + 3));
  EXPECT_EQ(listedJobIds(limit_1000, "collection_history", HasHistoryItemShape), newest_first);
  EXPECT_EQ(jsonOf(*limit_1000.object(), "total_runs"), "11");
}

TEST(History, RejectsALimitThatIsNotAnIntegerFromOneToAThousand) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();

  for (const char* limit : {"0", "1001", "-5", "abc", "2.5", "", "10abc", "99999999999999999999"}) {
    EXPECT_TRUE(IsErrorResponse(client.get(std::string("/api/collectors/history?limit=") + limit),
                                400, "'limit' must be an integer from 1 to 1000"))
        << "limit=" << limit;
  }
}

}  // namespace
}  // namespace collectord::test
