// Supervision: signals to the daemon. SIGHUP reloads the configuration (collectors added or
// changed; running jobs keep the settings they started with; an invalid configuration is
// rejected whole and the old one stays), SIGTERM stops it: running jobs end cancelled with
// "supervisor shutting down", triggers meanwhile get 503, and it exits 0.

#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;
using namespace std::chrono_literals;

constexpr const char* kRecordPidThenWait = R"sh(
echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
printf '{"progress": 40, "message": "busy"}\n' >&3
wait_for_release 1
)sh";

TEST(SupervisionReload, SighupAddsACollectorWhileARunningJobGoesOnUnaffected) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("old", kRecordPidThenWait, {{"env.PIDFILE", dir.file("old.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;
  const Triggered running = triggerOrThrow(client, {"old"});
  const pid_t pid = waitForPidFile(dir.file("old.pid"));
  reaper.addGroup(pid);
  ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, running.job_ids[0], "running"), 200));
  EXPECT_TRUE(IsErrorResponse(client.trigger({"fresh"}), 400, "Unknown collectors: fresh"));

  // A new collector, and `old` now with a 1 s timeout, which its running job must not get.
  config.addCollector("fresh", "echo fresh\n");
  // Only the .ini changes: rewriting the script a shell is reading would confuse the shell.
  config.addCollectorFile("old.ini", "[collector]\ncommand = ./old.sh\nenv.PIDFILE = " +
                                         dir.file("old.pid") + "\nenv.RELEASE = " +
                                         config.releaseDir("old") + "\ntimeout = 1s\n");
  const std::int64_t reloaded_at = nowMicros();
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_TRUE(waitForDaemonLog(daemon, "reloaded: 2 collectors")) << daemon.logText();

  const HttpResponse fresh = client.trigger({"fresh"});
  ASSERT_TRUE(IsJsonResponse(fresh, 201)) << fresh.describe();
  const std::string fresh_batch = stringField(*fresh.object(), "batch_id");
  EXPECT_EQ(jsonOf(*waitForBatchTerminal(client, fresh_batch).object(), "status"),
            jsonString("completed"));
  auto listed = collectorItem(client, "old");
  ASSERT_TRUE(listed);
  EXPECT_EQ(jsonOf(*objectsOf(*client.get("/api/collectors").object(), "collectors")[0], "name"),
            jsonString("fresh"));
  EXPECT_EQ(jsonOf(*listed->getObject("limits"), "timeout"), jsonString("1s"))
      << "the new settings are in effect for new runs";

  // The running job: same process, still running well past the new 1 s timeout.
  ASSERT_TRUE(waitUntil([&] { return nowMicros() > reloaded_at + 1'500'000; }, 5s));
  EXPECT_EQ(jobStatus(client, running.job_ids[0]), "running");
  EXPECT_TRUE(processAlive(pid));
  config.release("old");
  const HttpResponse done = waitForJobTerminal(client, running.job_ids[0]);
  EXPECT_EQ(jsonOf(*done.object(), "status"), jsonString("completed")) << done.describe();
  EXPECT_EQ(jsonOf(*done.object(), "message"), jsonString("busy"));
  EXPECT_TRUE(daemon.running());
  EXPECT_TRUE(processAlive(daemon.pid()));
}

TEST(SupervisionReload, SighupWithAnInvalidConfigurationIsRejectedAndTheOldOneStays) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("good", "echo good\n");
  Daemon daemon(config);
  const HttpClient client = daemon.client();

  config.addCollector("broken", "exit 0\n", {{"timeout", "soon"}});
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_TRUE(waitForDaemonLog(daemon, "reload rejected: " + config.collectorIni("broken") +
                                           ": collector.timeout: invalid duration 'soon'"))
      << daemon.logText();
  EXPECT_EQ(daemon.logText().find("reloaded:"), std::string::npos);

  EXPECT_TRUE(processAlive(daemon.pid())) << "a bad reload must not stop the daemon";
  EXPECT_TRUE(IsErrorResponse(client.trigger({"broken"}), 400, "Unknown collectors: broken"));
  const Triggered run = triggerOrThrow(client, {"good"});
  EXPECT_EQ(jsonOf(*waitForBatchTerminal(client, run.batch_id).object(), "status"),
            jsonString("completed"));
  const HttpResponse list = client.get("/api/collectors");
  ASSERT_TRUE(IsJsonResponse(list, 200));
  EXPECT_EQ(jsonOf(*list.object(), "total"), "1");
}

TEST(SupervisionReload, RaisingMaxConcurrentStartsQueuedJobsAtOnce) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  config.addBlockingCollector("first", kRecordPidThenWait, {{"env.PIDFILE", dir.file("first.pid")}});
  config.addBlockingCollector("second", kRecordPidThenWait, {{"env.PIDFILE", dir.file("second.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;
  const Triggered run = triggerOrThrow(client, {"first", "second"});
  reaper.addGroup(waitForPidFile(dir.file("first.pid")));
  ASSERT_EQ(jobStatus(client, run.job_ids[1]), "queued");

  config.appendToMain("[collectors]\nmax_concurrent = 2\n");
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_TRUE(waitForDaemonLog(daemon, "reloaded: 2 collectors")) << daemon.logText();
  const pid_t second = waitForPidFile(dir.file("second.pid"));
  reaper.addGroup(second);
  ASSERT_GT(second, 0) << "the queued job did not start when max_concurrent was raised";
  EXPECT_TRUE(IsJsonResponse(waitForJobStatus(client, run.job_ids[1], "running"), 200));
  EXPECT_EQ(jobStatus(client, run.job_ids[0]), "running");
  config.release("first");
  config.release("second");
  EXPECT_EQ(jsonOf(*waitForBatchTerminal(client, run.batch_id).object(), "status"),
            jsonString("completed"));
}

TEST(SupervisionShutdown, SigtermCancelsRunningJobsKeepsQueuedOnesAndExitsZero) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 2\n");
  config.addBlockingCollector("one", kRecordPidThenWait, {{"env.PIDFILE", dir.file("one.pid")}});
  config.addBlockingCollector("two", kRecordPidThenWait, {{"env.PIDFILE", dir.file("two.pid")}});
  config.addCollector("three", "echo \"$COLLECTOR_JOB_ID\" >> \"$RAN\"\n", {{"env.RAN", dir.file("ran")}});
  ProcessReaper reaper;
  Triggered run;
  pid_t one = 0, two = 0;
  {
    Daemon daemon(config);
    const HttpClient client = daemon.client();
    run = triggerOrThrow(client, {"one", "two", "three"});
    one = waitForPidFile(dir.file("one.pid"));
    two = waitForPidFile(dir.file("two.pid"));
    reaper.addGroup(one);
    reaper.addGroup(two);
    ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, run.job_ids[0], "running"), 200));
    ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, run.job_ids[1], "running"), 200));
    ASSERT_EQ(jobStatus(client, run.job_ids[2]), "queued");
    EXPECT_EQ(daemon.stop(), 0) << daemon.logText();
  }
  EXPECT_TRUE(waitUntilGone(one));
  EXPECT_TRUE(waitUntilGone(two));
  EXPECT_FALSE(fileExists(dir.file("ran"))) << "a queued job must not start while stopping";

  Daemon restarted(config);
  const HttpClient client = restarted.client();
  for (int i = 0; i < 2; ++i) {
    const HttpResponse job = client.job(run.job_ids[i]);
    ASSERT_TRUE(IsJsonResponse(job, 200));
    EXPECT_TRUE(HasJobStatusShape(*job.object()));
    EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("cancelled"));
    EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("supervisor shutting down"));
  }
  // The queued job stayed queued and runs at the next start.
  const HttpResponse third = waitForJobTerminal(client, run.job_ids[2]);
  EXPECT_EQ(jsonOf(*third.object(), "status"), jsonString("completed")) << third.describe();
  EXPECT_EQ(readLines(dir.file("ran")), std::vector<std::string>{run.job_ids[2]});
  const HttpResponse batch = client.batch(run.batch_id);
  EXPECT_TRUE(HasBatchShape(*batch.object()));
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*batch.object(), "message"), jsonString("2 of 3 collectors cancelled"));
}

TEST(SupervisionShutdown, TriggersDuringShutdownGet503) {
  TempDir dir;
  DaemonConfig config(dir);
  // Holds the daemon inside its shutdown: it notes SIGTERM, then waits for release 2.
  config.addBlockingCollector("holder", R"sh(
trap 'touch "$RELEASE/term"; wait_for_release 2; exit 0' TERM
touch "$RELEASE/started"
wait_for_release 1
)sh");
  config.addCollector("other", "exit 0\n");
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"holder"});
  ASSERT_TRUE(waitUntil([&] { return fileExists(config.releaseDir("holder") + "/started"); }));

  ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);
  ASSERT_TRUE(waitUntil([&] { return fileExists(config.releaseDir("holder") + "/term"); }))
      << "the job never got SIGTERM";
  EXPECT_TRUE(IsErrorResponse(client.trigger({"other"}), 503,
                              "collectord is shutting down; try again later"));
  EXPECT_TRUE(IsErrorResponse(client.trigger({"holder"}), 503,
                              "collectord is shutting down; try again later"));
  const HttpResponse job = client.job(run.job_ids[0]);
  EXPECT_TRUE(IsJsonResponse(job, 200)) << "reads keep working while stopping";
  EXPECT_TRUE(IsErrorResponse(client.del("/api/collectors/runs/job/" + run.job_ids[0]), 503,
                              "collectord is shutting down; try again later"));
  EXPECT_TRUE(IsErrorResponse(client.get("/api/collectors"), 503,
                              "collectord is shutting down; try again later"));

  config.release("holder", 2);
  EXPECT_TRUE(waitUntil([&] { return !processAlive(daemon.pid()); }, 20s));
  EXPECT_EQ(daemon.stop(), 0);
  Daemon restarted(config);
  const HttpResponse ended = restarted.client().job(run.job_ids[0]);
  EXPECT_EQ(jsonOf(*ended.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*ended.object(), "error"), jsonString("supervisor shutting down"));
}

// A job not started yet runs with the settings in effect when it starts (commit 4414796): a
// collector removed by a reload fails its queued jobs.
TEST(SupervisionReload, ACollectorRemovedByAReloadFailsItsQueuedJobs) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  config.addBlockingCollector("blocker", "wait_for_release 1\n");
  config.addCollector("leaving", "echo \"$COLLECTOR_JOB_ID\" >> \"$RAN\"\n", {{"env.RAN", dir.file("ran")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered blocker = triggerOrThrow(client, {"blocker"});
  ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, blocker.job_ids[0], "running"), 200));
  const Triggered queued = triggerOrThrow(client, {"leaving"});
  ASSERT_EQ(jobStatus(client, queued.job_ids[0]), "queued");

  ASSERT_EQ(::unlink(config.collectorIni("leaving").c_str()), 0);
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_TRUE(waitForDaemonLog(daemon, "reloaded: 1 collectors")) << daemon.logText();
  EXPECT_TRUE(IsErrorResponse(client.trigger({"leaving"}), 400, "Unknown collectors: leaving"));

  config.release("blocker");
  const HttpResponse job = waitForJobTerminal(client, queued.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed")) << job.describe();
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("collector 'leaving' is no longer configured"));
  EXPECT_FALSE(fileExists(dir.file("ran")));
  EXPECT_EQ(jsonOf(*waitForJobTerminal(client, blocker.job_ids[0]).object(), "status"),
            jsonString("completed")) << "the running job is not affected";
}

TEST(SupervisionReload, AQueuedJobRunsWithTheSettingsInEffectWhenItStarts) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  config.addBlockingCollector("blocker", "echo \"blocker=$GREETING\"\nwait_for_release 1\n",
                              {{"env.GREETING", "v1"}});
  config.addCollector("greeter", "echo \"greeting=$GREETING\"\n", {{"env.GREETING", "v1"}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered blocker = triggerOrThrow(client, {"blocker"});
  ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, blocker.job_ids[0], "running"), 200));
  const Triggered queued = triggerOrThrow(client, {"greeter"});
  ASSERT_EQ(jobStatus(client, queued.job_ids[0]), "queued");

  config.addCollectorFile("greeter.ini", "[collector]\ncommand = ./greeter.sh\nenv.GREETING = v2\n");
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_TRUE(waitForDaemonLog(daemon, "reloaded: 2 collectors")) << daemon.logText();

  config.release("blocker");
  EXPECT_EQ(jsonOf(*waitForJobTerminal(client, queued.job_ids[0]).object(), "status"),
            jsonString("completed"));
  const std::string log = readFile(config.jobLogPath(queued.job_ids[0])).value_or("");
  EXPECT_NE(log.find("\ngreeting=v2\n"), std::string::npos) << log;
  EXPECT_NE(readFile(config.jobLogPath(blocker.job_ids[0])).value_or("").find("\nblocker=v1\n"),
            std::string::npos);
}

// Whatever a reload does to `retries` while a job waits, the job must not end failed with
// attempts left (operations.md: "the job ends failed only when the last attempt fails").
TEST(SupervisionReload, RetriesLoweredWhileAJobIsQueuedLeaveNoAttemptsUnaccountedFor) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  config.addBlockingCollector("blocker", "wait_for_release 1\n");
  config.addCollector("failing", "exit 1\n",
                      {{"retries", "2"}, {"retry_backoff", "1s"}, {"retry_backoff_max", "1s"}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered blocker = triggerOrThrow(client, {"blocker"});
  ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, blocker.job_ids[0], "running"), 200));
  const Triggered queued = triggerOrThrow(client, {"failing"});
  const HttpResponse before = client.job(queued.job_ids[0]);
  ASSERT_EQ(jsonOf(*before.object(), "max_attempts"), "3");

  config.addCollectorFile("failing.ini", "[collector]\ncommand = ./failing.sh\n");  // retries = 0
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_TRUE(waitForDaemonLog(daemon, "reloaded: 2 collectors")) << daemon.logText();
  config.release("blocker");

  const HttpResponse job = waitForJobTerminal(client, queued.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job.object(), "attempt"), jsonOf(*job.object(), "max_attempts"))
      << "ended failed with attempts left: " << job.describe();
  EXPECT_EQ(objectsOf(*job.object(), "previous_attempts").size(),
            static_cast<std::size_t>(intField(*job.object(), "attempt").value_or(1) - 1));
}

TEST(SupervisionShutdown, ASecondSigtermDuringTheStopIsAbsorbed) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("holder", R"sh(
trap 'touch "$RELEASE/term"; wait_for_release 2; exit 0' TERM
touch "$RELEASE/started"
wait_for_release 1
)sh");
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"holder"});
  ASSERT_TRUE(waitUntil([&] { return fileExists(config.releaseDir("holder") + "/started"); }));
  ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);
  ASSERT_TRUE(waitUntil([&] { return fileExists(config.releaseDir("holder") + "/term"); }));

  ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);
  // Still there and still stopping gracefully: it answers, and refuses new runs.
  EXPECT_TRUE(IsErrorResponse(client.trigger({"holder"}), 503,
                              "collectord is shutting down; try again later"));
  EXPECT_TRUE(processAlive(daemon.pid()));
  config.release("holder", 2);
  EXPECT_TRUE(waitUntil([&] { return !processAlive(daemon.pid()); }, 20s));
  EXPECT_EQ(daemon.stop(), 0) << "the graceful stop finished: exit 0, not killed by SIGTERM";
  Daemon restarted(config);
  EXPECT_EQ(jsonOf(*restarted.client().job(run.job_ids[0]).object(), "error"),
            jsonString("supervisor shutting down"));
}

}  // namespace
}  // namespace collectord::test
