// GET /api/collectors/runs/batch/{batch_id}: every field, and the roll-up of its jobs.
// HasBatchShape checks types, formats and every roll-up rule; the tests pin the exact values.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

constexpr const char* kHalfWayThenWait = R"sh(
printf '{"progress": 50, "message": "Processing page 5/10"}\n' >&3
wait_for_release 1
)sh";

TEST(BatchStatus, ReportsCompletedWithEveryFieldWhenAllCollectorsExitZero) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", R"sh(
printf '{"progress": 50, "message": "Processing devices..."}\n' >&3
printf '{"progress": 100, "message": "Saved 42 devices"}\n' >&3
)sh");
  config.addCollector("threatlocker", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja", "threatlocker"});

  auto response = waitForBatchTerminal(client, run.batch_id);

  ASSERT_TRUE(IsJsonResponse(response, 200));
  const Object& batch = *response.object();
  ASSERT_TRUE(HasBatchShape(batch));
  EXPECT_EQ(jsonOf(batch, "batch_id"), jsonString(run.batch_id));
  EXPECT_EQ(jsonOf(batch, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(batch, "progress_percent"), "100");
  EXPECT_EQ(jsonOf(batch, "estimated_completion"), "null");
  EXPECT_EQ(jsonOf(batch, "message"), jsonString("2 of 2 collectors completed"));
  EXPECT_EQ(jsonOf(batch, "error"), "null");
  EXPECT_NE(jsonOf(batch, "ended_at"), "null");
  EXPECT_NE(jsonOf(batch, "duration_seconds"), "null");

  auto jobs = objectsOf(batch, "collectors");
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jsonOf(*jobs[0], "job_id"), jsonString(run.job_ids[0]));
  EXPECT_EQ(jsonOf(*jobs[0], "job_name"), jsonString("ninja-collector"));
  EXPECT_EQ(jsonOf(*jobs[0], "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*jobs[0], "progress_percent"), "100");
  EXPECT_EQ(jsonOf(*jobs[0], "message"), jsonString("Saved 42 devices"));
  EXPECT_EQ(jsonOf(*jobs[0], "error"), "null");
  EXPECT_EQ(jsonOf(*jobs[1], "job_id"), jsonString(run.job_ids[1]));
  EXPECT_EQ(jsonOf(*jobs[1], "job_name"), jsonString("threatlocker-collector"));
  EXPECT_EQ(jsonOf(*jobs[1], "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*jobs[1], "progress_percent"), "100");
  EXPECT_EQ(jsonOf(*jobs[1], "message"), jsonString("Collection completed"));
  EXPECT_EQ(jsonOf(*jobs[1], "error"), "null");
}

TEST(BatchStatus, SaysCollectorInTheSingularWhenTheBatchHasOneJob) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n").addCollector("sophos", "exit 4\n");
  Daemon daemon(config);
  auto client = daemon.client();

  auto completed = waitForBatchTerminal(client, triggerOrThrow(client, {"ninja"}).batch_id);
  auto failed = waitForBatchTerminal(client, triggerOrThrow(client, {"sophos"}).batch_id);

  ASSERT_TRUE(IsJsonResponse(completed, 200));
  EXPECT_TRUE(HasBatchShape(*completed.object()));
  EXPECT_EQ(jsonOf(*completed.object(), "message"), jsonString("1 of 1 collector completed"));
  ASSERT_TRUE(IsJsonResponse(failed, 200));
  EXPECT_TRUE(HasBatchShape(*failed.object()));
  EXPECT_EQ(jsonOf(*failed.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*failed.object(), "message"), jsonString("1 of 1 collector failed"));
  EXPECT_EQ(jsonOf(*failed.object(), "error"), jsonString("sophos-collector: exit code 4"));
}

TEST(BatchStatus, ReportsFailedWhenOneCollectorExitsNonZero) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n").addCollector("threatlocker", "exit 2\n");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja", "threatlocker"});

  auto response = waitForBatchTerminal(client, run.batch_id);

  ASSERT_TRUE(IsJsonResponse(response, 200));
  const Object& batch = *response.object();
  ASSERT_TRUE(HasBatchShape(batch));
  EXPECT_EQ(jsonOf(batch, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(batch, "progress_percent"), "100");
  EXPECT_EQ(jsonOf(batch, "message"), jsonString("1 of 2 collectors failed"));
  EXPECT_EQ(jsonOf(batch, "error"), jsonString("threatlocker-collector: exit code 2"));
  EXPECT_EQ(jsonOf(batch, "estimated_completion"), "null");
  auto jobs = objectsOf(batch, "collectors");
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jsonOf(*jobs[0], "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*jobs[1], "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*jobs[1], "error"), jsonString("exit code 2"));
}

TEST(BatchStatus, JoinsTheErrorsOfEveryFailedJobInTriggerOrder) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("alpha", "exit 3\n")
      .addCollector("bravo", "exit 0\n")
      .addCollector("charlie", "kill -9 $$\n");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"charlie", "bravo", "alpha"});

  auto response = waitForBatchTerminal(client, run.batch_id);

  ASSERT_TRUE(IsJsonResponse(response, 200));
  const Object& batch = *response.object();
  ASSERT_TRUE(HasBatchShape(batch));
  EXPECT_EQ(jsonOf(batch, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(batch, "message"), jsonString("2 of 3 collectors failed"));
  EXPECT_EQ(
      jsonOf(batch, "error"),
      jsonString("charlie-collector: killed by signal 9 (SIGKILL); alpha-collector: exit code 3"));
}

TEST(BatchStatus, ReportsRunningWithProgressMessageAndEstimatedCompletion) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", kHalfWayThenWait);
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});
  auto job = waitForJob(client, run.job_ids[0],
                        [](const Object& j) { return hasMessage(j, "Processing page 5/10"); });
  ASSERT_EQ(stringField(*job.object(), "message"), "Processing page 5/10") << job.describe();

  auto response = client.batch(run.batch_id);

  ASSERT_TRUE(IsJsonResponse(response, 200));
  const Object& batch = *response.object();
  ASSERT_TRUE(HasBatchShape(batch));
  EXPECT_EQ(jsonOf(batch, "batch_id"), jsonString(run.batch_id));
  EXPECT_EQ(jsonOf(batch, "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(batch, "progress_percent"), "50");
  EXPECT_TRUE(isSecondTimestamp(stringField(batch, "estimated_completion"))) << response.body;
  EXPECT_EQ(jsonOf(batch, "ended_at"), "null");
  EXPECT_EQ(jsonOf(batch, "message"), jsonString("Processing collectors... 0 of 1 finished"));
  EXPECT_EQ(jsonOf(batch, "error"), "null");
  EXPECT_EQ(jsonOf(batch, "duration_seconds"), "null");
  auto jobs = objectsOf(batch, "collectors");
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jsonOf(*jobs[0], "job_id"), jsonString(run.job_ids[0]));
  EXPECT_EQ(jsonOf(*jobs[0], "job_name"), jsonString("ninja-collector"));
  EXPECT_EQ(jsonOf(*jobs[0], "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(*jobs[0], "progress_percent"), "50");
  EXPECT_EQ(jsonOf(*jobs[0], "message"), jsonString("Processing page 5/10"));
  EXPECT_EQ(jsonOf(*jobs[0], "error"), "null");
  EXPECT_EQ(jsonOf(*jobs[0], "ended_at"), "null");
  EXPECT_EQ(jsonOf(*jobs[0], "duration_seconds"), "null");

  config.release("ninja");
  auto final = waitForBatchTerminal(client, run.batch_id);
  ASSERT_TRUE(IsJsonResponse(final, 200));
  EXPECT_TRUE(HasBatchShape(*final.object()));
  EXPECT_EQ(jsonOf(*final.object(), "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*final.object(), "estimated_completion"), "null");
  auto final_jobs = objectsOf(*final.object(), "collectors");
  ASSERT_EQ(final_jobs.size(), 1u);
  EXPECT_EQ(jsonOf(*final_jobs[0], "message"), jsonString("Processing page 5/10"));
  EXPECT_EQ(jsonOf(*final_jobs[0], "progress_percent"), "100");
}

TEST(BatchStatus, CountsFinishedJobsAndAveragesProgressWhileRunning) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("alpha", "exit 0\n");
  config.addBlockingCollector("bravo", kHalfWayThenWait);
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"alpha", "bravo"});
  ASSERT_TRUE(waitUntil([&] {
    auto batch = client.batch(run.batch_id).object();
    if (!batch) return false;
    auto jobs = objectsOf(*batch, "collectors");
    return jobs.size() == 2 && stringField(*jobs[0], "status") == "completed" &&
           hasMessage(*jobs[1], "Processing page 5/10");
  })) << client.batch(run.batch_id).describe();

  auto response = client.batch(run.batch_id);

  ASSERT_TRUE(IsJsonResponse(response, 200));
  const Object& batch = *response.object();
  ASSERT_TRUE(HasBatchShape(batch));
  EXPECT_EQ(jsonOf(batch, "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(batch, "progress_percent"), "75");
  EXPECT_EQ(jsonOf(batch, "message"), jsonString("Processing collectors... 1 of 2 finished"));
  EXPECT_TRUE(isSecondTimestamp(stringField(batch, "estimated_completion"))) << response.body;
  EXPECT_EQ(jsonOf(batch, "ended_at"), "null");
  EXPECT_EQ(jsonOf(batch, "error"), "null");
  config.release("bravo");
}

TEST(BatchStatus, CountsAJobWithoutProgressAsZero) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("alpha", R"sh(
printf '{"progress": 60}\n' >&3
wait_for_release 1
)sh");
  config.addBlockingCollector("bravo", R"sh(
printf '{"message": "Starting API connection..."}\n' >&3
wait_for_release 1
)sh");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"alpha", "bravo"});
  ASSERT_TRUE(waitUntil([&] {
    auto alpha = client.job(run.job_ids[0]).object();
    auto bravo = client.job(run.job_ids[1]).object();
    return alpha && bravo && jsonOf(*alpha, "progress_percent") == "60" &&
           hasMessage(*bravo, "Starting API connection...");
  }));

  auto response = client.batch(run.batch_id);

  ASSERT_TRUE(IsJsonResponse(response, 200));
  const Object& batch = *response.object();
  ASSERT_TRUE(HasBatchShape(batch));
  EXPECT_EQ(jsonOf(batch, "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(batch, "progress_percent"), "30");
  auto jobs = objectsOf(batch, "collectors");
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jsonOf(*jobs[0], "progress_percent"), "60");
  EXPECT_EQ(jsonOf(*jobs[0], "message"), "null");
  EXPECT_EQ(jsonOf(*jobs[1], "progress_percent"), "null");
  EXPECT_EQ(jsonOf(*jobs[1], "message"), jsonString("Starting API connection..."));
  config.release("alpha");
  config.release("bravo");
}

TEST(BatchStatus, HasNoEstimatedCompletionWhileProgressIsZero) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", R"sh(
printf '{"progress": 0, "message": "Starting API connection..."}\n' >&3
wait_for_release 1
)sh");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});
  auto job = waitForJob(client, run.job_ids[0], [](const Object& j) {
    return hasMessage(j, "Starting API connection...");
  });
  ASSERT_EQ(stringField(*job.object(), "message"), "Starting API connection...");

  auto response = client.batch(run.batch_id);

  ASSERT_TRUE(IsJsonResponse(response, 200));
  ASSERT_TRUE(HasBatchShape(*response.object()));
  EXPECT_EQ(jsonOf(*response.object(), "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(*response.object(), "progress_percent"), "0");
  EXPECT_EQ(jsonOf(*response.object(), "estimated_completion"), "null");
  config.release("ninja");
}

TEST(BatchStatus, StaysRunningWithTheErrorOfAFailedJobUntilEveryJobEnds) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("alpha", "exit 7\n");
  config.addBlockingCollector("bravo", kHalfWayThenWait);
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"alpha", "bravo"});
  ASSERT_TRUE(waitUntil([&] {
    auto alpha = client.job(run.job_ids[0]).object();
    auto bravo = client.job(run.job_ids[1]).object();
    return alpha && bravo && stringField(*alpha, "status") == "failed" &&
           hasMessage(*bravo, "Processing page 5/10");
  }));

  auto running = client.batch(run.batch_id);

  ASSERT_TRUE(IsJsonResponse(running, 200));
  ASSERT_TRUE(HasBatchShape(*running.object()));
  EXPECT_EQ(jsonOf(*running.object(), "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(*running.object(), "message"),
            jsonString("Processing collectors... 1 of 2 finished"));
  EXPECT_EQ(jsonOf(*running.object(), "error"), jsonString("alpha-collector: exit code 7"));
  EXPECT_EQ(jsonOf(*running.object(), "ended_at"), "null");

  config.release("bravo");
  auto final = waitForBatchTerminal(client, run.batch_id);
  ASSERT_TRUE(IsJsonResponse(final, 200));
  ASSERT_TRUE(HasBatchShape(*final.object()));
  EXPECT_EQ(jsonOf(*final.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*final.object(), "message"), jsonString("1 of 2 collectors failed"));
  EXPECT_EQ(jsonOf(*final.object(), "error"), jsonString("alpha-collector: exit code 7"));
}

TEST(BatchStatus, AnswersNotFoundForUnknownAndMalformedBatchIds) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});
  waitForBatchTerminal(client, run.batch_id);

  const std::vector<std::string> ids = {otherId(run.batch_id), "bc_1234567", "bc_123456789",
                                        "BC_12345678",         "nope",       run.job_ids[0]};
  for (const auto& id : ids) {
    EXPECT_TRUE(IsErrorResponse(client.batch(id), 404, "Batch not found")) << "id " << id;
  }
}

// The moment a job starts, its batch starts with it: no answer shows a running job in a batch
// that still reads queued (the start is written before the process exists, and the batch's
// summary goes in the same write).
TEST(BatchStatus, NeverReadsQueuedWhileOneOfItsJobsRuns) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("alpha", "wait_for_release 1\n");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"alpha"});
  int answers_with_a_running_job = 0;
  ASSERT_TRUE(waitUntil(
      [&] {
        auto batch = client.batch(run.batch_id).object();
        if (!batch) return false;
        auto jobs = objectsOf(*batch, "collectors");
        if (jobs.size() != 1 || stringField(*jobs[0], "status") != "running") return false;
        ++answers_with_a_running_job;
        EXPECT_EQ(stringField(*batch, "status"), "running") << "answer " << answers_with_a_running_job;
        return answers_with_a_running_job >= 20;
      },
      std::chrono::seconds(15), std::chrono::milliseconds(1)));
  config.release("alpha");
}

}  // namespace
}  // namespace collectord::test
