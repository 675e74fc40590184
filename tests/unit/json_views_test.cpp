// The batch status is rendered by a direct writer (batchJson) for speed; the tree rendering
// (toJson(batchView)) is the reference. They must give the same bytes for every kind of value.
#include <gtest/gtest.h>

#include "json_views.h"

namespace collectord::http {
namespace {

JobRecord job(std::string id, JobStatus status) {
  JobRecord j;
  j.job_id = std::move(id);
  j.batch_id = "bc_12345678";
  j.collector = "ninja";
  j.job_name = "ninja-collector";
  j.status = status;
  j.started_at = 1'759'763'770'552'780;
  j.updated_at = j.started_at + 1'500'000;
  return j;
}

BatchRecord batch() {
  BatchRecord b;
  b.batch_id = "bc_12345678";
  b.status = JobStatus::kRunning;
  b.priority = Priority::kHigh;
  b.progress_percent = 42;
  b.started_at = 1'759'763'770'552'780;
  b.updated_at = b.started_at + 2'000'000;
  return b;
}

TEST(BatchJson, MatchesTheTreeRenderingOfARunningBatchWithNulls) {
  const BatchRecord b = batch();
  const std::vector<JobRecord> jobs = {job("ni_00000001", JobStatus::kQueued),
                                       job("ni_00000002", JobStatus::kRunning)};
  EXPECT_EQ(batchJson(b, jobs), toJson(batchView(b, jobs)));
}

TEST(BatchJson, MatchesTheTreeRenderingOfAFinishedBatchWithEveryField) {
  BatchRecord b = batch();
  b.status = JobStatus::kFailed;
  b.ended_at = b.started_at + 100'000'123'456;  // 100000.123 s: no exponent notation
  b.estimated_completion = b.started_at + 60'000'000;
  b.message = "1 of 2 collectors failed";
  b.error = "ninja: exit code 2";
  JobRecord done = job("ni_00000001", JobStatus::kCompleted);
  done.ended_at = done.started_at + 77'000;  // 0.077 s
  done.progress_percent = 100;
  done.message = "Collection completed";
  JobRecord failed = job("ni_00000002", JobStatus::kFailed);
  failed.ended_at = failed.started_at + 5'000'000;  // a whole number of seconds
  failed.progress_percent = 0;
  failed.error = "exit code 2";
  EXPECT_EQ(batchJson(b, {done, failed}), toJson(batchView(b, {done, failed})));
}

TEST(BatchJson, EscapesStringsExactlyAsTheTreeRenderingDoes) {
  BatchRecord b = batch();
  JobRecord j = job("ni_00000001", JobStatus::kRunning);
  j.message = std::string("quote \" backslash \\ slash / tab \t newline \n cr \r bs \b ff \f ") +
              "ctl \x01\x1f del \x7f UTF-8 é 日本 😀";
  j.error = std::string("nul \0 inside", 13);
  b.message = j.message;
  EXPECT_EQ(batchJson(b, {j}), toJson(batchView(b, {j})));
}

TEST(BatchJson, RendersABatchWithoutJobsAsAnEmptyList) {
  const BatchRecord b = batch();
  const std::string json = batchJson(b, {});
  EXPECT_NE(json.find("\"collectors\":[]"), std::string::npos) << json;
  EXPECT_EQ(json, toJson(batchView(b, {})));
}

}  // namespace
}  // namespace collectord::http
