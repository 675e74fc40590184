// Supervision: retries. A failed attempt with attempts left puts the job back to queued, with
// next_attempt_at and a "Retrying (attempt N of M) after: ERROR" message, for retry_backoff,
// doubled for each further retry and capped by retry_backoff_max. previous_attempts lists the
// failed attempts. Collectors note each start (`date +%s%N`) so the gaps can be measured.

#include <gtest/gtest.h>

#include <string>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

std::int64_t micros(const Object& object, const std::string& key) {
  return parseTimestamp(stringField(object, key)).value_or(-1);
}

// Polls the job until it is queued for attempt `attempt`; returns the last JSON seen.
HttpResponse waitForRetry(const HttpClient& client, const std::string& job_id, int attempt) {
  return waitForJob(client, job_id, [&](const Object& job) {
    return stringField(job, "status") == "queued" && intField(job, "attempt") == attempt;
  });
}

TEST(SupervisionRetry, FailsTwiceThenSucceedsOnTheThirdAttemptWithDoublingBackoff) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("flaky", R"sh(
date +%s%N >> "$STARTS"
n=$(cat "$COUNTER" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "$COUNTER"
echo "attempt $n (COLLECTOR_ATTEMPT=$COLLECTOR_ATTEMPT)"
printf '{"progress": %d}\n' $((n * 20)) >&3
if [ $n -lt 3 ]; then echo "attempt $n failing" >&2; exit 1; fi
printf '{"message": "done on attempt %s"}\n' "$n" >&3
)sh",
                      {{"retries", "2"},
                       {"retry_backoff", "1s"},
                       {"env.STARTS", dir.file("starts")},
                       {"env.COUNTER", dir.file("counter")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"flaky"});
  const std::string id = run.job_ids[0];

  // Between attempts: queued, with the next attempt's time and why.
  const HttpResponse second = waitForRetry(client, id, 2);
  ASSERT_TRUE(IsJsonResponse(second, 200));
  const auto waiting = second.object();
  EXPECT_TRUE(HasJobStatusShape(*waiting));
  EXPECT_EQ(jsonOf(*waiting, "status"), jsonString("queued")) << second.describe();
  EXPECT_EQ(jsonOf(*waiting, "message"),
            jsonString("Retrying (attempt 2 of 3) after: exit code 1"));
  EXPECT_EQ(jsonOf(*waiting, "error"), "null");
  EXPECT_EQ(jsonOf(*waiting, "max_attempts"), "3");
  EXPECT_TRUE(isMicroTimestamp(stringField(*waiting, "next_attempt_at"))) << second.describe();
  const std::int64_t next2 = micros(*waiting, "next_attempt_at");
  EXPECT_EQ(jsonOf(*waiting, "progress_percent"), "20") << "the last value reported is kept";
  ASSERT_EQ(objectsOf(*waiting, "previous_attempts").size(), 1u) << second.describe();

  const HttpResponse third = waitForRetry(client, id, 3);
  ASSERT_TRUE(IsJsonResponse(third, 200));
  EXPECT_EQ(jsonOf(*third.object(), "message"),
            jsonString("Retrying (attempt 3 of 3) after: exit code 1"));
  const std::int64_t next3 = micros(*third.object(), "next_attempt_at");

  const HttpResponse done = waitForJobTerminal(client, id);
  ASSERT_TRUE(IsJsonResponse(done, 200));
  const auto job = done.object();
  EXPECT_TRUE(HasJobStatusShape(*job));
  EXPECT_EQ(jsonOf(*job, "status"), jsonString("completed")) << done.describe();
  EXPECT_EQ(jsonOf(*job, "attempt"), "3");
  EXPECT_EQ(jsonOf(*job, "max_attempts"), "3");
  EXPECT_EQ(jsonOf(*job, "next_attempt_at"), "null");
  EXPECT_EQ(jsonOf(*job, "error"), "null");
  EXPECT_EQ(jsonOf(*job, "message"), jsonString("done on attempt 3"));
  const auto previous = objectsOf(*job, "previous_attempts");
  ASSERT_EQ(previous.size(), 2u) << done.describe();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(previous[i]->getNames(),
              (std::vector<std::string>{"attempt", "ended_at", "error", "started_at"}));  // sorted
    EXPECT_EQ(jsonOf(*previous[i], "attempt"), std::to_string(i + 1));
    EXPECT_EQ(jsonOf(*previous[i], "error"), jsonString("exit code 1"));
    EXPECT_TRUE(isMicroTimestamp(stringField(*previous[i], "started_at"))) << done.describe();
    EXPECT_TRUE(isMicroTimestamp(stringField(*previous[i], "ended_at"))) << done.describe();
  }
  // next_attempt_at is the failed attempt's end plus the backoff: 1 s, then 2 s.
  EXPECT_EQ(next2 - micros(*previous[0], "ended_at"), 1'000'000);
  EXPECT_EQ(next3 - micros(*previous[1], "ended_at"), 2'000'000);
  EXPECT_GE(micros(*previous[1], "started_at"), next2);

  // What the collector itself saw: its three starts, 1 s and then 2 s apart (plus run time).
  const auto starts = readNanos(dir.file("starts"));
  ASSERT_EQ(starts.size(), 3u);
  const double gap1 = static_cast<double>(starts[1] - starts[0]) / 1e9;
  const double gap2 = static_cast<double>(starts[2] - starts[1]) / 1e9;
  EXPECT_GE(gap1, 1.0);
  EXPECT_LT(gap1, 2.0);
  EXPECT_GE(gap2, 2.0) << "the backoff doubles for the second retry";
  EXPECT_LT(gap2, 3.5);

  const std::string log = readFile(config.jobLogPath(id)).value_or("");
  for (const char* expected :
       {"[collectord] attempt 1 of 3: started ", "attempt 1 (COLLECTOR_ATTEMPT=1)\n",
        "[collectord] exit code 1; job queued: Retrying (attempt 2 of 3) after: exit code 1\n",
        "[collectord] attempt 2 of 3: started ", "attempt 2 (COLLECTOR_ATTEMPT=2)\n",
        "[collectord] attempt 3 of 3: started ", "attempt 3 (COLLECTOR_ATTEMPT=3)\n",
        "[collectord] exit code 0; job completed\n"}) {
    EXPECT_NE(log.find(expected), std::string::npos) << "missing '" << expected << "' in\n" << log;
  }
  EXPECT_EQ(jsonOf(*client.batch(run.batch_id).object(), "status"), jsonString("completed"));
}

TEST(SupervisionRetry, AlwaysFailingEndsFailedAfterMaxAttemptsWithItsLastError) {
  TempDir dir;
  DaemonConfig config(dir);
  // retry_backoff_max = retry_backoff: the second wait is capped at 1 s instead of doubling.
  config.addCollector("broken", R"sh(
date +%s%N >> "$STARTS"
exit $((COLLECTOR_ATTEMPT + 10))
)sh",
                      {{"retries", "2"},
                       {"retry_backoff", "1s"},
                       {"retry_backoff_max", "1s"},
                       {"env.STARTS", dir.file("starts")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"broken"});

  const HttpResponse waiting = waitForRetry(client, run.job_ids[0], 3);
  EXPECT_EQ(jsonOf(*waiting.object(), "message"),
            jsonString("Retrying (attempt 3 of 3) after: exit code 12"))
      << waiting.describe();
  const HttpResponse done = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(done, 200));
  const auto job = done.object();
  EXPECT_TRUE(HasJobStatusShape(*job));
  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("exit code 13")) << "the last attempt's error";
  EXPECT_EQ(jsonOf(*job, "attempt"), "3");
  EXPECT_EQ(jsonOf(*job, "max_attempts"), "3");
  EXPECT_EQ(jsonOf(*job, "next_attempt_at"), "null");
  const auto previous = objectsOf(*job, "previous_attempts");
  ASSERT_EQ(previous.size(), 2u) << done.describe();
  EXPECT_EQ(jsonOf(*previous[0], "error"), jsonString("exit code 11"));
  EXPECT_EQ(jsonOf(*previous[1], "error"), jsonString("exit code 12"));
  const HttpResponse batch = client.batch(run.batch_id);
  EXPECT_TRUE(HasBatchShape(*batch.object()));
  EXPECT_EQ(jsonOf(*batch.object(), "error"), jsonString("broken-collector: exit code 13"));

  const auto starts = readNanos(dir.file("starts"));
  ASSERT_EQ(starts.size(), 3u) << "max_attempts = 1 + retries";
  const double gap1 = static_cast<double>(starts[1] - starts[0]) / 1e9;
  const double gap2 = static_cast<double>(starts[2] - starts[1]) / 1e9;
  EXPECT_GE(gap1, 1.0);
  EXPECT_GE(gap2, 1.0);
  EXPECT_LT(gap2, 1.9) << "retry_backoff_max = 1s caps the doubled wait";
}

TEST(SupervisionRetry, CancellingDuringTheBackoffEndsTheJobWithoutAnotherAttempt) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("retrier", "echo \"$COLLECTOR_JOB_ID $COLLECTOR_ATTEMPT\" >> \"$STARTS\"\nexit 1\n",
                      {{"retries", "1"}, {"retry_backoff", "1s"}, {"env.STARTS", dir.file("starts")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"retrier"});
  const HttpResponse waiting = waitForRetry(client, run.job_ids[0], 2);
  ASSERT_EQ(jsonOf(*waiting.object(), "status"), jsonString("queued")) << waiting.describe();
  const std::int64_t next_attempt = micros(*waiting.object(), "next_attempt_at");

  const HttpResponse cancelled = client.del("/api/collectors/runs/job/" + run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(cancelled, 200));
  EXPECT_TRUE(HasJobStatusShape(*cancelled.object()));
  EXPECT_EQ(jsonOf(*cancelled.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*cancelled.object(), "error"), jsonString("cancelled by request"));
  EXPECT_EQ(jsonOf(*cancelled.object(), "next_attempt_at"), "null")
      << "no attempt is waiting any more";

  // Past the time the retry was due, a new run goes through while the cancelled one stays put.
  ASSERT_TRUE(waitUntil([&] { return nowMicros() > next_attempt + 200'000; },
                        std::chrono::seconds(5)));
  const Triggered again = triggerOrThrow(client, {"retrier"});
  ASSERT_TRUE(IsJsonResponse(waitForRetry(client, again.job_ids[0], 2), 200));
  EXPECT_EQ(readLines(dir.file("starts")),
            (std::vector<std::string>{run.job_ids[0] + " 1", again.job_ids[0] + " 1"}));
  EXPECT_EQ(jobStatus(client, run.job_ids[0]), "cancelled");
  EXPECT_TRUE(IsJsonResponse(client.del("/api/collectors/runs/job/" + again.job_ids[0]), 200));
}

TEST(SupervisionRetry, ABatchWaitingForARetryIsQueuedAndKeepsTheBatchRules) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("halfway", "printf '{\"progress\": 40, \"message\": \"half\"}\\n' >&3\nexit 1\n",
                      {{"retries", "1"}, {"retry_backoff", "5s"}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"halfway"});
  const HttpResponse waiting = waitForRetry(client, run.job_ids[0], 2);
  ASSERT_TRUE(IsJsonResponse(waiting, 200));
  EXPECT_EQ(jsonOf(*waiting.object(), "progress_percent"), "40") << "the last value reported is kept";
  EXPECT_EQ(jsonOf(*waiting.object(), "batch_status"), jsonString("queued"));

  // Its only job is queued again, so the batch is queued again; with progress 40 it still gets
  // an estimate (API doc: set while the batch is not terminal and 0 < progress_percent < 100).
  const HttpResponse batch = client.batch(run.batch_id);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("queued"));
  EXPECT_EQ(jsonOf(*batch.object(), "message"), jsonString("Waiting for 1 collector to start"));
  EXPECT_EQ(jsonOf(*batch.object(), "progress_percent"), "40");
  EXPECT_TRUE(HasBatchShape(*batch.object()));
  EXPECT_TRUE(isSecondTimestamp(stringField(*batch.object(), "estimated_completion")))
      << batch.describe();
  EXPECT_TRUE(IsJsonResponse(client.del("/api/collectors/runs/job/" + run.job_ids[0]), 200));
}

}  // namespace
}  // namespace collectord::test
