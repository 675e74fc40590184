// Supervision: recovery after a crash. The daemon is killed with SIGKILL while jobs run and
// wait; the next daemon on the same folder fails the jobs that were running (or queues their
// next attempt when retries remain), starts the ones that were queued, and kills whatever was
// left of the old runs: the collectors (parent-death signal) and their children (found by
// process group and job ID).

#include <gtest/gtest.h>

#include <string>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

// Starts a background child that outlives a killed collector, records both pids, waits.
constexpr const char* kWithChildThenWait = R"sh(
sleep 30 &
echo $! > "$PIDDIR/$COLLECTOR_NAME.child.tmp" && mv "$PIDDIR/$COLLECTOR_NAME.child.tmp" "$PIDDIR/$COLLECTOR_NAME.child"
echo $$ > "$PIDDIR/$COLLECTOR_NAME.tmp" && mv "$PIDDIR/$COLLECTOR_NAME.tmp" "$PIDDIR/$COLLECTOR_NAME"
printf '{"progress": 30, "message": "collecting"}\n' >&3
wait_for_release 1
)sh";

constexpr const char* kRestarted = "supervisor restarted while the job was running";

TEST(SupervisionRecovery, AfterKill9RunningJobsFailQueuedOnesRunAndNoProcessIsLeft) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 3\n");
  const std::string piddir = dir.file("pids");
  writeFile(piddir + "/.keep", "");
  for (const char* name : {"r1", "r2", "r3"}) {
    config.addBlockingCollector(name, kWithChildThenWait, {{"env.PIDDIR", piddir}});
  }
  config.addCollector("q1", "echo \"$COLLECTOR_JOB_ID\" >> \"$RAN\"\n", {{"env.RAN", dir.file("ran")}});
  ProcessReaper reaper;
  Triggered running, queued;
  std::vector<pid_t> pids;
  {
    Daemon daemon(config);
    const HttpClient client = daemon.client();
    running = triggerOrThrow(client, {"r1", "r2", "r3"});
    queued = triggerOrThrow(client, {"q1"});
    for (const char* name : {"r1", "r2", "r3"}) {
      const pid_t collector = waitForPidFile(piddir + "/" + name);
      const pid_t child = waitForPidFile(piddir + "/" + name + ".child");
      ASSERT_GT(collector, 0);
      ASSERT_GT(child, 0);
      reaper.addGroup(collector);
      reaper.add(child);
      pids.push_back(collector);
      pids.push_back(child);
    }
    for (const std::string& id : running.job_ids) {
      ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, id, "running"), 200));
    }
    ASSERT_EQ(jobStatus(client, queued.job_ids[0]), "queued");
    daemon.killHard();
  }
  EXPECT_FALSE(fileExists(dir.file("ran")));

  Daemon restarted(config);
  const HttpClient client = restarted.client();
  const HttpResponse batch = waitForBatchTerminal(client, running.batch_id);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_TRUE(HasBatchShape(*batch.object()));
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*batch.object(), "message"), jsonString("3 of 3 collectors failed"));
  for (const std::string& id : running.job_ids) {
    const HttpResponse job = client.job(id);
    ASSERT_TRUE(IsJsonResponse(job, 200));
    EXPECT_TRUE(HasJobStatusShape(*job.object()));
    EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed"));
    EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString(kRestarted));
  }
  const HttpResponse q = waitForJobTerminal(client, queued.job_ids[0]);
  EXPECT_EQ(jsonOf(*q.object(), "status"), jsonString("completed")) << q.describe();
  EXPECT_EQ(readLines(dir.file("ran")), std::vector<std::string>{queued.job_ids[0]});

  for (pid_t pid : pids) EXPECT_TRUE(waitUntilGone(pid)) << "process " << pid << " survived";
  for (const std::string& id : running.job_ids) {
    EXPECT_TRUE(waitUntil([&] { return processesOfJob(id).empty(); })) << id;
  }
  EXPECT_TRUE(waitForDaemonLog(restarted, "leftover processes of job " + running.job_ids[0]))
      << restarted.logText();
}

TEST(SupervisionRecovery, AfterKill9ARunningJobWithRetriesLeftIsRetried) {
  TempDir dir;
  DaemonConfig config(dir);
  // Attempt 1 hangs (and is lost with the daemon); attempt 2 succeeds.
  config.addBlockingCollector("again", R"sh(
if [ "$COLLECTOR_ATTEMPT" = 1 ]; then
  echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
  wait_for_release 1
fi
printf '{"message": "attempt %s done"}\n' "$COLLECTOR_ATTEMPT" >&3
)sh",
                              {{"retries", "1"},
                               {"retry_backoff", "1s"},
                               {"env.PIDFILE", dir.file("again.pid")}});
  ProcessReaper reaper;
  Triggered run;
  pid_t pid = 0;
  {
    Daemon daemon(config);
    const HttpClient client = daemon.client();
    run = triggerOrThrow(client, {"again"});
    pid = waitForPidFile(dir.file("again.pid"));
    reaper.addGroup(pid);
    ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, run.job_ids[0], "running"), 200));
    daemon.killHard();
  }

  Daemon restarted(config);
  const HttpClient client = restarted.client();
  const HttpResponse waiting = waitForJob(client, run.job_ids[0], [](const Object& job) {
    return intField(job, "attempt") == 2;
  });
  ASSERT_TRUE(IsJsonResponse(waiting, 200));
  if (stringField(*waiting.object(), "status") == "queued") {
    EXPECT_EQ(jsonOf(*waiting.object(), "message"),
              jsonString(std::string("Retrying (attempt 2 of 2) after: ") + kRestarted));
    EXPECT_TRUE(isMicroTimestamp(stringField(*waiting.object(), "next_attempt_at")));
  }
  const HttpResponse done = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(done, 200));
  EXPECT_TRUE(HasJobStatusShape(*done.object()));
  EXPECT_EQ(jsonOf(*done.object(), "status"), jsonString("completed")) << done.describe();
  EXPECT_EQ(jsonOf(*done.object(), "attempt"), "2");
  EXPECT_EQ(jsonOf(*done.object(), "message"), jsonString("attempt 2 done"));
  const auto previous = objectsOf(*done.object(), "previous_attempts");
  ASSERT_EQ(previous.size(), 1u) << done.describe();
  EXPECT_EQ(jsonOf(*previous[0], "attempt"), "1");
  EXPECT_EQ(jsonOf(*previous[0], "error"), jsonString(kRestarted));
  EXPECT_TRUE(waitUntilGone(pid)) << "the first attempt's collector survived";
}

TEST(SupervisionRecovery, AQueuedJobOfACollectorRemovedBeforeTheRestartFails) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  config.addBlockingCollector("blocker", "wait_for_release 1\n");
  config.addCollector("gone", "echo ran >> \"$RAN\"\n", {{"env.RAN", dir.file("ran")}});
  Triggered queued;
  {
    Daemon daemon(config);
    const HttpClient client = daemon.client();
    const Triggered blocker = triggerOrThrow(client, {"blocker"});
    ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, blocker.job_ids[0], "running"), 200));
    queued = triggerOrThrow(client, {"gone"});
    ASSERT_EQ(jobStatus(client, queued.job_ids[0]), "queued");
    ASSERT_EQ(daemon.stop(), 0);
  }
  ASSERT_EQ(::unlink(config.collectorIni("gone").c_str()), 0);

  Daemon restarted(config);
  const HttpClient client = restarted.client();
  const HttpResponse job = waitForJobTerminal(client, queued.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("collector 'gone' is no longer configured"));
  EXPECT_FALSE(fileExists(dir.file("ran")));
}

TEST(SupervisionRecovery, AJobWaitingForARetryWhenTheDaemonStopsIsRetriedAfterTheRestart) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("later", R"sh(
date +%s%N >> "$STARTS"
[ "$COLLECTOR_ATTEMPT" -ge 2 ]
)sh",
                      {{"retries", "1"}, {"retry_backoff", "2s"}, {"env.STARTS", dir.file("starts")}});
  Triggered run;
  std::int64_t next_attempt = 0;
  {
    Daemon daemon(config);
    const HttpClient client = daemon.client();
    run = triggerOrThrow(client, {"later"});
    const HttpResponse waiting = waitForJob(client, run.job_ids[0], [](const Object& job) {
      return stringField(job, "status") == "queued" && intField(job, "attempt") == 2;
    });
    ASSERT_TRUE(IsJsonResponse(waiting, 200));
    next_attempt = parseTimestamp(stringField(*waiting.object(), "next_attempt_at")).value_or(0);
    ASSERT_GT(next_attempt, 0) << waiting.describe();
    ASSERT_EQ(daemon.stop(), 0);
  }
  ASSERT_EQ(readNanos(dir.file("starts")).size(), 1u);

  Daemon restarted(config);
  const HttpClient client = restarted.client();
  const HttpResponse before = client.job(run.job_ids[0]);
  EXPECT_EQ(jsonOf(*before.object(), "status"), jsonString("queued")) << before.describe();
  const HttpResponse done = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(done, 200));
  EXPECT_EQ(jsonOf(*done.object(), "status"), jsonString("completed")) << done.describe();
  EXPECT_EQ(jsonOf(*done.object(), "attempt"), "2");
  const auto previous = objectsOf(*done.object(), "previous_attempts");
  ASSERT_EQ(previous.size(), 1u);
  EXPECT_EQ(jsonOf(*previous[0], "error"), jsonString("exit code 1"));
  const auto starts = readNanos(dir.file("starts"));
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_GE(starts[1] / 1000, next_attempt) << "the restart must not cut the backoff short";
  EXPECT_LT(starts[1] / 1000, next_attempt + 2'000'000);
}

}  // namespace
}  // namespace collectord::test
