// Supervision: runs stopped by collectord. `timeout` (a run going on too long), `stall_timeout`
// (no progress line for too long, counted from the last one) and `kill_grace` (SIGTERM, then
// SIGKILL for a collector that ignores it).

#include <gtest/gtest.h>

#include <string>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

// Writes its pid, reports once, then hangs (until a release that never comes).
constexpr const char* kReportOnceThenHang = R"sh(
echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
date +%s%N > "$REPORTED"
printf '{"progress": 10, "message": "working"}\n' >&3
wait_for_release never
)sh";

double numberField(const Object& object, const std::string& key) {
  if (!object.has(key) || !object.get(key).isNumeric()) return -1;
  return object.get(key).convert<double>();
}

std::int64_t timestampField(const Object& object, const std::string& key) {
  return parseTimestamp(stringField(object, key)).value_or(-1);
}

TEST(SupervisionTimeout, TimeoutFailsTheRunWithTimedOutAfter1s) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("slow", kReportOnceThenHang,
                              {{"timeout", "1s"},
                               {"kill_grace", "1s"},
                               {"env.PIDFILE", dir.file("slow.pid")},
                               {"env.REPORTED", dir.file("reported")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;
  const Triggered run = triggerOrThrow(client, {"slow"});
  const pid_t pid = waitForPidFile(dir.file("slow.pid"));
  reaper.addGroup(pid);

  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("timed out after 1s"));
  const double seconds = numberField(*job.object(), "duration_seconds");
  EXPECT_GE(seconds, 1.0) << "stopped before the timeout";
  EXPECT_LT(seconds, 4.0) << "the collector dies on SIGTERM: no need to wait for kill_grace";
  const HttpResponse batch = client.batch(run.batch_id);
  EXPECT_EQ(jsonOf(*batch.object(), "error"), jsonString("slow-collector: timed out after 1s"));

  const std::string log = readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  EXPECT_NE(log.find("[collectord] timed out after 1s: sending SIGTERM to the process group\n"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("SIGKILL"), std::string::npos) << log;
  EXPECT_TRUE(waitUntilGone(pid));
  EXPECT_TRUE(waitUntil([&] { return processesOfJob(run.job_ids[0]).empty(); }));
}

TEST(SupervisionTimeout, StallTimeoutFailsARunThatReportsOnceThenHangs) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("stuck", kReportOnceThenHang,
                              {{"stall_timeout", "1s"},
                               {"kill_grace", "1s"},
                               {"env.PIDFILE", dir.file("stuck.pid")},
                               {"env.REPORTED", dir.file("reported")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;
  const Triggered run = triggerOrThrow(client, {"stuck"});
  const pid_t pid = waitForPidFile(dir.file("stuck.pid"));
  reaper.addGroup(pid);

  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("no progress for 1s"));
  // Counted from the progress line (written after `reported`), not from the start.
  const auto reported = readNanos(dir.file("reported"));
  ASSERT_EQ(reported.size(), 1u);
  const std::int64_t ended = timestampField(*job.object(), "ended_at");
  EXPECT_GE(ended - reported[0] / 1000, 990'000) << "stopped less than 1 s after the last line";
  EXPECT_LT(ended - reported[0] / 1000, 4'000'000);
  const std::string log = readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  EXPECT_NE(log.find("[collectord] no progress for 1s: sending SIGTERM to the process group\n"),
            std::string::npos)
      << log;
  EXPECT_TRUE(waitUntilGone(pid));
}

TEST(SupervisionTimeout, EveryProgressLinePushesTheStallDeadlineBack) {
  TempDir dir;
  DaemonConfig config(dir);
  // Six lines 0.3 s apart: 1.8 s in all, never 1 s without a line.
  config.addCollector("chatty", R"sh(
for i in 1 2 3 4 5 6; do
  printf '{"progress": %d, "message": "step %d"}\n' $((i * 15)) $i >&3
  sleep 0.3
done
)sh",
                      {{"stall_timeout", "1s"}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"chatty"});
  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("completed")) << job.describe();
  EXPECT_GE(numberField(*job.object(), "duration_seconds"), 1.5);
  EXPECT_EQ(jsonOf(*job.object(), "message"), jsonString("step 6"));
}

TEST(SupervisionTimeout, ACollectorIgnoringSigtermIsKilledAfterKillGrace) {
  TempDir dir;
  DaemonConfig config(dir);
  // The trap keeps the shell going on SIGTERM (its `sleep` children die, the loop goes on) and
  // notes when it came.
  config.addBlockingCollector(
      "stubborn", std::string("trap 'date +%s%N >> \"$TERMS\"' TERM\n") + kReportOnceThenHang,
      {{"timeout", "1s"},
       {"kill_grace", "1s"},
       {"env.PIDFILE", dir.file("stubborn.pid")},
       {"env.REPORTED", dir.file("reported")},
       {"env.TERMS", dir.file("terms")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;
  const Triggered run = triggerOrThrow(client, {"stubborn"});
  const pid_t pid = waitForPidFile(dir.file("stubborn.pid"));
  reaper.addGroup(pid);

  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("timed out after 1s"));

  const auto terms = readNanos(dir.file("terms"));
  ASSERT_FALSE(terms.empty()) << "the collector never saw SIGTERM";
  const std::int64_t after_term = timestampField(*job.object(), "ended_at") - terms.front() / 1000;
  EXPECT_GE(after_term, 900'000) << "SIGKILL came before kill_grace (1s) was over";
  EXPECT_LT(after_term, 3'000'000) << "SIGKILL came long after kill_grace (1s)";
  EXPECT_GE(numberField(*job.object(), "duration_seconds"), 2.0) << "timeout + kill_grace";

  const std::string log = readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  EXPECT_NE(log.find("[collectord] timed out after 1s: sending SIGTERM to the process group\n"
                     ),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("[collectord] still running after the grace period: sending SIGKILL\n"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("killed by signal 9 (SIGKILL); job failed: timed out after 1s"),
            std::string::npos)
      << log;
  EXPECT_TRUE(waitUntilGone(pid)) << "the collector survived SIGKILL";
  EXPECT_TRUE(waitUntil([&] { return processesOfJob(run.job_ids[0]).empty(); }));
}

TEST(SupervisionTimeout, OutputAndInvalidLinesAreNoProgress) {
  TempDir dir;
  DaemonConfig config(dir);
  // Busy on stdout, stderr and with invalid protocol lines for 2 s, never a valid line.
  config.addCollector("noisy", R"sh(
for i in 1 2 3 4 5 6 7 8 9 10; do
  echo "stdout $i"
  echo "stderr $i" >&2
  echo "not a progress line" >&3
  sleep 0.2
done
)sh",
                      {{"stall_timeout", "1s"}, {"kill_grace", "1s"}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"noisy"});
  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("no progress for 1s"));
  const double seconds = numberField(*job.object(), "duration_seconds");
  EXPECT_GE(seconds, 1.0);
  EXPECT_LT(seconds, 1.9) << "stall_timeout counts from the start when no valid line comes";
  const std::string log = readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  EXPECT_NE(log.find("protocol warning: line 1: "), std::string::npos) << log;
}

TEST(SupervisionTimeout, ATimedOutAttemptIsRetried) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("hangs-once", R"sh(
if [ "$COLLECTOR_ATTEMPT" = 1 ]; then wait_for_release never; fi
echo "attempt $COLLECTOR_ATTEMPT finished"
)sh",
                              {{"timeout", "1s"}, {"retries", "1"}, {"retry_backoff", "1s"}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"hangs-once"});
  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("completed")) << job.describe();
  EXPECT_EQ(jsonOf(*job.object(), "attempt"), "2");
  const auto previous = objectsOf(*job.object(), "previous_attempts");
  ASSERT_EQ(previous.size(), 1u) << job.describe();
  EXPECT_EQ(jsonOf(*previous[0], "error"), jsonString("timed out after 1s"));
  EXPECT_GE(numberField(*job.object(), "duration_seconds"), 2.0) << "timeout + backoff";
}

}  // namespace
}  // namespace collectord::test
