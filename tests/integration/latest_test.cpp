// GET /api/collectors/runs/latest: one item per collector (active run, else most recent run),
// in the requested order or by name, with collectors that never ran left out.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

class LatestRuns : public ::testing::Test {
 protected:
  LatestRuns() {
    config_.addCollector("charlie", "exit 0\n")
        .addCollector("alpha", "printf '{\"message\": \"run done\"}\\n' >&3\n")
        .addCollector("bravo", "exit 0\n")
        .addCollector("delta", "exit 6\n");
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
};

TEST_F(LatestRuns, IsEmptyWhenNothingHasRun) {
  Daemon daemon(config_);

  auto response = daemon.client().get("/api/collectors/runs/latest");

  EXPECT_EQ(listedJobIds(response, "latest_runs", HasJobStatusShape), std::vector<std::string>{});
  ASSERT_TRUE(response.object());
  EXPECT_EQ(jsonOf(*response.object(), "total_runs"), "0");
  EXPECT_EQ(jsonOf(*response.object(), "latest_runs"), "[]");
}

TEST_F(LatestRuns, ListsTheMostRecentRunOfEachCollectorByNameWithoutAFilter) {
  Daemon daemon(config_);
  auto client = daemon.client();
  runOnce(client, "charlie");
  runOnce(client, "alpha");
  std::string alpha_latest = runOnce(client, "alpha");
  std::string delta = runOnce(client, "delta");
  std::string charlie_latest = runOnce(client, "charlie");

  auto response = client.get("/api/collectors/runs/latest");

  EXPECT_EQ(listedJobIds(response, "latest_runs", HasJobStatusShape),
            (std::vector<std::string>{alpha_latest, charlie_latest, delta}));
  ASSERT_TRUE(response.object());
  EXPECT_EQ(jsonOf(*response.object(), "total_runs"), "3");
  auto items = objectsOf(*response.object(), "latest_runs");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(jsonOf(*items[0], "job_name"), jsonString("alpha-collector"));
  EXPECT_EQ(jsonOf(*items[0], "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*items[0], "message"), jsonString("run done"));
  EXPECT_EQ(jsonOf(*items[0], "progress_percent"), "100");
  EXPECT_EQ(jsonOf(*items[0], "error"), "null");
  EXPECT_EQ(jsonOf(*items[0], "batch_status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*items[0], "batch_progress_percent"), "100");
  EXPECT_EQ(jsonOf(*items[0], "estimated_completion"), "null");
  EXPECT_EQ(jsonOf(*items[0], "batch_message"), jsonString("1 of 1 collector completed"));
  EXPECT_EQ(jsonOf(*items[2], "job_name"), jsonString("delta-collector"));
  EXPECT_EQ(jsonOf(*items[2], "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*items[2], "error"), jsonString("exit code 6"));
  EXPECT_EQ(jsonOf(*items[2], "batch_status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*items[2], "batch_message"), jsonString("1 of 1 collector failed"));

  // Each item is the job-status view of that run.
  for (const auto& item : items) {
    auto job = client.job(stringField(*item, "job_id"));
    ASSERT_TRUE(IsJsonResponse(job, 200));
    for (const char* key :
         {"job_id", "batch_id", "job_name", "status", "started_at", "updated_at", "ended_at",
          "progress_percent", "message", "error", "duration_seconds", "batch_status",
          "batch_progress_percent", "estimated_completion", "batch_message"}) {
      EXPECT_EQ(jsonOf(*item, key), jsonOf(*job.object(), key)) << key;
    }
  }
}

TEST_F(LatestRuns, ListsRequestedCollectorsInTheRequestedOrderLeavingOutThoseThatNeverRan) {
  Daemon daemon(config_);
  auto client = daemon.client();
  std::string alpha = runOnce(client, "alpha");
  std::string charlie = runOnce(client, "charlie");

  auto response = client.get("/api/collectors/runs/latest?collectors=charlie,bravo,alpha");

  EXPECT_EQ(listedJobIds(response, "latest_runs", HasJobStatusShape),
            (std::vector<std::string>{charlie, alpha}));
  ASSERT_TRUE(response.object());
  EXPECT_EQ(jsonOf(*response.object(), "total_runs"), "2");

  auto only_bravo = client.get("/api/collectors/runs/latest?collectors=bravo");
  EXPECT_EQ(listedJobIds(only_bravo, "latest_runs", HasJobStatusShape), std::vector<std::string>{});
}

TEST_F(LatestRuns, ShowsTheActiveRunWithItsProgressAndBatchEstimate) {
  config_.addBlockingCollector("echo", R"sh(
printf '{"progress": 50, "message": "Processing page 5/10"}\n' >&3
wait_for_release 1
)sh");
  Daemon daemon(config_);
  auto client = daemon.client();
  std::string alpha = runOnce(client, "alpha");
  auto run = triggerOrThrow(client, {"echo"});
  waitForJob(client, run.job_ids[0],
             [](const Object& j) { return stringField(j, "message") == "Processing page 5/10"; });

  auto response = client.get("/api/collectors/runs/latest?collectors=echo,alpha");

  EXPECT_EQ(listedJobIds(response, "latest_runs", HasJobStatusShape),
            (std::vector<std::string>{run.job_ids[0], alpha}));
  auto items = objectsOf(*response.object(), "latest_runs");
  ASSERT_EQ(items.size(), 2u);
  const Object& active = *items[0];
  EXPECT_EQ(jsonOf(active, "batch_id"), jsonString(run.batch_id));
  EXPECT_EQ(jsonOf(active, "job_name"), jsonString("echo-collector"));
  EXPECT_EQ(jsonOf(active, "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(active, "ended_at"), "null");
  EXPECT_EQ(jsonOf(active, "progress_percent"), "50");
  EXPECT_EQ(jsonOf(active, "message"), jsonString("Processing page 5/10"));
  EXPECT_EQ(jsonOf(active, "error"), "null");
  EXPECT_EQ(jsonOf(active, "duration_seconds"), "null");
  EXPECT_EQ(jsonOf(active, "batch_status"), jsonString("running"));
  EXPECT_EQ(jsonOf(active, "batch_progress_percent"), "50");
  EXPECT_TRUE(isSecondTimestamp(stringField(active, "estimated_completion"))) << response.body;
  EXPECT_EQ(jsonOf(active, "batch_message"),
            jsonString("Processing collectors... 0 of 1 finished"));
  config_.release("echo");
}

TEST_F(LatestRuns, RejectsAnEmptyCollectorsParameter) {
  Daemon daemon(config_);

  EXPECT_TRUE(IsErrorResponse(daemon.client().get("/api/collectors/runs/latest?collectors="), 400,
                              "'collectors' must name at least one collector"));
}

TEST_F(LatestRuns, RejectsUnknownCollectorsNamingThemInRequestOrder) {
  Daemon daemon(config_);
  auto client = daemon.client();

  EXPECT_TRUE(
      IsErrorResponse(client.get("/api/collectors/runs/latest?collectors=zulu,alpha,yankee"), 400,
                      "Unknown collectors: zulu, yankee"));
  EXPECT_TRUE(IsErrorResponse(client.get("/api/collectors/runs/latest?collectors=nope"), 400,
                              "Unknown collectors: nope"));
}

}  // namespace
}  // namespace collectord::test
