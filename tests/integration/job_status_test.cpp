// GET /api/collectors/runs/job/{job_id}: the job's fields plus the summary of its batch, and how
// they follow the collector's progress lines.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

TEST(JobStatus, ReportsACompletedJobWithEveryFieldAndItsBatch) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});
  waitForBatchTerminal(client, run.batch_id);

  auto response = client.job(run.job_ids[0]);

  ASSERT_TRUE(IsJsonResponse(response, 200));
  const Object& job = *response.object();
  ASSERT_TRUE(HasJobStatusShape(job));
  EXPECT_EQ(jsonOf(job, "job_id"), jsonString(run.job_ids[0]));
  EXPECT_EQ(jsonOf(job, "batch_id"), jsonString(run.batch_id));
  EXPECT_EQ(jsonOf(job, "job_name"), jsonString("ninja-collector"));
  EXPECT_EQ(jsonOf(job, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(job, "progress_percent"), "100");
  EXPECT_EQ(jsonOf(job, "message"), jsonString("Collection completed"));
  EXPECT_EQ(jsonOf(job, "error"), "null");
  EXPECT_NE(jsonOf(job, "ended_at"), "null");
  EXPECT_NE(jsonOf(job, "duration_seconds"), "null");
  EXPECT_EQ(jsonOf(job, "batch_status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(job, "batch_progress_percent"), "100");
  EXPECT_EQ(jsonOf(job, "estimated_completion"), "null");
  EXPECT_EQ(jsonOf(job, "batch_message"), jsonString("1 of 1 collector completed"));
}

TEST(JobStatus, ReportsARunningJobWithItsProgressMessageAndBatchEstimate) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", R"sh(
printf '{"progress": 50, "message": "Processing page 5/10"}\n' >&3
wait_for_release 1
)sh");
  config.addCollector("threatlocker", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja", "threatlocker"});
  waitForJob(client, run.job_ids[1],
             [](const Object& j) { return stringField(j, "status") == "completed"; });

  auto response = waitForJob(client, run.job_ids[0],
                             [](const Object& j) { return hasMessage(j, "Processing page 5/10"); });

  ASSERT_TRUE(IsJsonResponse(response, 200));
  const Object& job = *response.object();
  ASSERT_TRUE(HasJobStatusShape(job));
  EXPECT_EQ(jsonOf(job, "job_id"), jsonString(run.job_ids[0]));
  EXPECT_EQ(jsonOf(job, "batch_id"), jsonString(run.batch_id));
  EXPECT_EQ(jsonOf(job, "job_name"), jsonString("ninja-collector"));
  EXPECT_EQ(jsonOf(job, "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(job, "progress_percent"), "50");
  EXPECT_EQ(jsonOf(job, "message"), jsonString("Processing page 5/10"));
  EXPECT_EQ(jsonOf(job, "error"), "null");
  EXPECT_EQ(jsonOf(job, "ended_at"), "null");
  EXPECT_EQ(jsonOf(job, "duration_seconds"), "null");
  EXPECT_EQ(jsonOf(job, "batch_status"), jsonString("running"));
  EXPECT_EQ(jsonOf(job, "batch_progress_percent"), "75");
  EXPECT_TRUE(isSecondTimestamp(stringField(job, "estimated_completion"))) << response.body;
  EXPECT_EQ(jsonOf(job, "batch_message"), jsonString("Processing collectors... 1 of 2 finished"));

  // The job's copy of the batch summary is the batch's own.
  auto batch = client.batch(run.batch_id);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_EQ(jsonOf(*batch.object(), "estimated_completion"), jsonOf(job, "estimated_completion"));
  config.release("ninja");
}

TEST(JobStatus, FollowsProgressLinesInOrderUntilTheCollectorExits) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", R"sh(
printf '{"progress": 10, "message": "Starting API connection..."}\n' >&3
wait_for_release 1
printf '{"status": "running", "progress": 70, "message": "Processing page 7/10"}\n' >&3
wait_for_release 2
printf '{"progress": 100, "message": "Collection completed successfully"}\n' >&3
)sh");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});

  auto first = waitForJob(client, run.job_ids[0], [](const Object& j) {
    return hasMessage(j, "Starting API connection...");
  });
  ASSERT_TRUE(IsJsonResponse(first, 200));
  ASSERT_TRUE(HasJobStatusShape(*first.object()));
  EXPECT_EQ(jsonOf(*first.object(), "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(*first.object(), "progress_percent"), "10");
  EXPECT_EQ(jsonOf(*first.object(), "batch_progress_percent"), "10");

  config.release("ninja", 1);
  auto second = waitForJob(client, run.job_ids[0],
                           [](const Object& j) { return hasMessage(j, "Processing page 7/10"); });
  ASSERT_TRUE(IsJsonResponse(second, 200));
  ASSERT_TRUE(HasJobStatusShape(*second.object()));
  EXPECT_EQ(jsonOf(*second.object(), "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(*second.object(), "progress_percent"), "70");
  EXPECT_EQ(jsonOf(*second.object(), "batch_progress_percent"), "70");
  EXPECT_GT(parseTimestamp(stringField(*second.object(), "updated_at")),
            parseTimestamp(stringField(*first.object(), "updated_at")));
  EXPECT_EQ(jsonOf(*second.object(), "started_at"), jsonOf(*first.object(), "started_at"));

  config.release("ninja", 2);
  waitForBatchTerminal(client, run.batch_id);
  auto done = client.job(run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(done, 200));
  ASSERT_TRUE(HasJobStatusShape(*done.object()));
  EXPECT_EQ(jsonOf(*done.object(), "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*done.object(), "progress_percent"), "100");
  EXPECT_EQ(jsonOf(*done.object(), "message"), jsonString("Collection completed successfully"));
  EXPECT_EQ(jsonOf(*done.object(), "error"), "null");
}

TEST(JobStatus, RoundsDecimalProgressDown) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", R"sh(
printf '{"progress": 42.9, "message": "decimal"}\n' >&3
wait_for_release 1
)sh");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});

  auto response =
      waitForJob(client, run.job_ids[0], [](const Object& j) { return hasMessage(j, "decimal"); });

  ASSERT_TRUE(IsJsonResponse(response, 200));
  ASSERT_TRUE(HasJobStatusShape(*response.object()));
  EXPECT_EQ(jsonOf(*response.object(), "progress_percent"), "42");
  config.release("ninja");
}

TEST(JobStatus, StaysRunningAfterTheCollectorReportsCompletedUntilItExits) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", R"sh(
printf '{"status": "completed", "progress": 100, "message": "Collection completed"}\n' >&3
wait_for_release 1
)sh");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});

  auto response = waitForJob(client, run.job_ids[0], [](const Object& j) {
    return jsonOf(j, "progress_percent") == "100";
  });

  ASSERT_TRUE(IsJsonResponse(response, 200));
  ASSERT_TRUE(HasJobStatusShape(*response.object()));
  EXPECT_EQ(jsonOf(*response.object(), "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(*response.object(), "ended_at"), "null");
  EXPECT_EQ(jsonOf(*response.object(), "batch_status"), jsonString("running"));

  config.release("ninja");
  auto batch = waitForBatchTerminal(client, run.batch_id);
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.describe();
}

TEST(JobStatus, NeverChangesOnceTerminal) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});
  waitForBatchTerminal(client, run.batch_id);
  auto before = client.job(run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(before, 200));

  // Other runs of the same collector come and go; this one stays as it ended.
  waitForBatchTerminal(client, triggerOrThrow(client, {"ninja"}).batch_id);
  auto after = client.job(run.job_ids[0]);

  ASSERT_TRUE(IsJsonResponse(after, 200));
  for (const char* key :
       {"job_id", "batch_id", "job_name", "status", "started_at", "updated_at", "ended_at",
        "progress_percent", "message", "error", "duration_seconds", "batch_status",
        "batch_progress_percent", "estimated_completion", "batch_message"}) {
    EXPECT_EQ(jsonOf(*after.object(), key), jsonOf(*before.object(), key)) << key;
  }
}

TEST(JobStatus, AnswersNotFoundForUnknownAndMalformedJobIds) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});
  waitForBatchTerminal(client, run.batch_id);

  const std::vector<std::string> ids = {otherId(run.job_ids[0]), "ni_1234567", "NI_12345678",
                                        "nope", run.batch_id};
  for (const auto& id : ids) {
    EXPECT_TRUE(IsErrorResponse(client.job(id), 404, "Job not found")) << "id " << id;
  }
}

}  // namespace
}  // namespace collectord::test
