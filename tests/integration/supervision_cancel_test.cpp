// Supervision: cancelling jobs and batches over the API. A queued job ends cancelled at once
// (200), a running one is signalled (202) and ends cancelled when its processes are gone, a
// finished one is a 409 and an unknown one a 404; nothing of a cancelled job keeps running.

#include <gtest/gtest.h>

#include <string>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

constexpr const char* kRecordPidThenWait = R"sh(
echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
printf '{"progress": 20, "message": "busy"}\n' >&3
wait_for_release 1
)sh";

std::string jobPath(const std::string& id) { return "/api/collectors/runs/job/" + id; }
std::string batchPath(const std::string& id) { return "/api/collectors/runs/batch/" + id; }

TEST(SupervisionCancel, AQueuedJobIsCancelledAtOnceAndNeverStarts) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  config.addBlockingCollector("blocker", kRecordPidThenWait, {{"env.PIDFILE", dir.file("b.pid")}});
  config.addCollector("waiting", "echo \"$COLLECTOR_JOB_ID\" >> \"$RAN\"\n",
                      {{"env.RAN", dir.file("ran")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered blocker = triggerOrThrow(client, {"blocker"});
  ASSERT_GT(waitForPidFile(dir.file("b.pid")), 0);
  const Triggered queued = triggerOrThrow(client, {"waiting"});
  ASSERT_EQ(jobStatus(client, queued.job_ids[0]), "queued");

  const HttpResponse cancelled = client.post(jobPath(queued.job_ids[0]) + "/cancel", "");
  ASSERT_TRUE(IsJsonResponse(cancelled, 200));
  EXPECT_TRUE(HasJobStatusShape(*cancelled.object()));
  EXPECT_EQ(jsonOf(*cancelled.object(), "job_id"), jsonString(queued.job_ids[0]));
  EXPECT_EQ(jsonOf(*cancelled.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*cancelled.object(), "error"), jsonString("cancelled by request"));
  EXPECT_EQ(jsonOf(*cancelled.object(), "batch_status"), jsonString("cancelled"));
  const HttpResponse batch = client.batch(queued.batch_id);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_TRUE(HasBatchShape(*batch.object()));
  EXPECT_EQ(jsonOf(*batch.object(), "message"), jsonString("1 of 1 collector cancelled"));

  config.release("blocker");
  EXPECT_EQ(jsonOf(*waitForJobTerminal(client, blocker.job_ids[0]).object(), "status"),
            jsonString("completed"));
  // The queue moves on to the next run, never to the cancelled one.
  const Triggered next = triggerOrThrow(client, {"waiting"});
  EXPECT_EQ(jsonOf(*waitForJobTerminal(client, next.job_ids[0]).object(), "status"),
            jsonString("completed"));
  EXPECT_EQ(readLines(dir.file("ran")), std::vector<std::string>{next.job_ids[0]});
  EXPECT_EQ(jobStatus(client, queued.job_ids[0]), "cancelled");
}

TEST(SupervisionCancel, ARunningJobAnswers202ThenEndsCancelledByRequest) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("busy", kRecordPidThenWait, {{"env.PIDFILE", dir.file("busy.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;
  const Triggered run = triggerOrThrow(client, {"busy"});
  const pid_t pid = waitForPidFile(dir.file("busy.pid"));
  reaper.addGroup(pid);
  ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, run.job_ids[0], "running"), 200));

  const HttpResponse accepted = client.del(jobPath(run.job_ids[0]));
  ASSERT_TRUE(IsJsonResponse(accepted, 202));
  EXPECT_TRUE(HasJobStatusShape(*accepted.object()));
  EXPECT_EQ(jsonOf(*accepted.object(), "job_id"), jsonString(run.job_ids[0]));

  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("cancelled by request"));
  EXPECT_EQ(jsonOf(*client.batch(run.batch_id).object(), "status"), jsonString("cancelled"));
  EXPECT_TRUE(waitUntilGone(pid));
  const std::string log = readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  EXPECT_NE(log.find("[collectord] cancelled by request: sending SIGTERM to the process group\n"),
            std::string::npos)
      << log;

  // Cancelling it again: it is finished now.
  EXPECT_TRUE(IsErrorResponse(client.post(jobPath(run.job_ids[0]) + "/cancel", ""), 409,
                              "Job " + run.job_ids[0] +
                                  " is already cancelled; there is nothing to cancel"));
}

TEST(SupervisionCancel, FinishedJobsAre409AndUnknownOnes404) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("quick", "exit 0\n");
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"quick"});
  ASSERT_EQ(jsonOf(*waitForBatchTerminal(client, run.batch_id).object(), "status"),
            jsonString("completed"));

  const std::string done = "Job " + run.job_ids[0] + " is already completed; there is nothing to cancel";
  EXPECT_TRUE(IsErrorResponse(client.post(jobPath(run.job_ids[0]) + "/cancel", ""), 409, done));
  EXPECT_TRUE(IsErrorResponse(client.del(jobPath(run.job_ids[0])), 409, done));
  const std::string batch_done =
      "Batch " + run.batch_id + " is already completed; there is nothing to cancel";
  EXPECT_TRUE(IsErrorResponse(client.post(batchPath(run.batch_id) + "/cancel", ""), 409, batch_done));
  EXPECT_TRUE(IsErrorResponse(client.del(batchPath(run.batch_id)), 409, batch_done));

  EXPECT_TRUE(IsErrorResponse(client.post(jobPath("qu_00000000") + "/cancel", ""), 404, "Job not found"));
  EXPECT_TRUE(IsErrorResponse(client.del(jobPath("qu_00000000")), 404, "Job not found"));
  EXPECT_TRUE(IsErrorResponse(client.del(jobPath("not-a-job-id")), 404, "Job not found"));
  EXPECT_TRUE(IsErrorResponse(client.post(batchPath("bc_00000000") + "/cancel", ""), 404,
                              "Batch not found"));
  EXPECT_TRUE(IsErrorResponse(client.del(batchPath("bc_00000000")), 404, "Batch not found"));
  EXPECT_TRUE(IsErrorResponse(client.del(batchPath("nonsense")), 404, "Batch not found"));
  EXPECT_EQ(jobStatus(client, run.job_ids[0]), "completed") << "a refused cancel changes nothing";
}

TEST(SupervisionCancel, BatchCancelByPostAndByDelete) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  config.addBlockingCollector("one", kRecordPidThenWait, {{"env.PIDFILE", dir.file("one.pid")}});
  config.addCollector("two", "exit 0\n");
  config.addCollector("three", "exit 0\n");
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;
  // Batch A: `one` running, `two` queued behind it. Batch B: `three`, queued behind both.
  const Triggered a = triggerOrThrow(client, {"one", "two"});
  const pid_t pid = waitForPidFile(dir.file("one.pid"));
  reaper.addGroup(pid);
  const Triggered b = triggerOrThrow(client, {"three"});
  ASSERT_EQ(jobStatus(client, b.job_ids[0]), "queued");

  // Only queued jobs: cancelled at once, 200.
  const HttpResponse deleted = client.del(batchPath(b.batch_id));
  ASSERT_TRUE(IsJsonResponse(deleted, 200));
  EXPECT_TRUE(HasBatchShape(*deleted.object()));
  EXPECT_EQ(jsonOf(*deleted.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*deleted.object(), "message"), jsonString("1 of 1 collector cancelled"));

  // A running job among them: 202, and the batch ends cancelled once it is gone.
  const HttpResponse posted = client.post(batchPath(a.batch_id) + "/cancel", "");
  ASSERT_TRUE(IsJsonResponse(posted, 202));
  EXPECT_TRUE(HasBatchShape(*posted.object()));
  const HttpResponse batch = waitForBatchTerminal(client, a.batch_id);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_TRUE(HasBatchShape(*batch.object()));
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*batch.object(), "message"), jsonString("2 of 2 collectors cancelled"));
  for (const auto& job : objectsOf(*batch.object(), "collectors")) {
    EXPECT_EQ(jsonOf(*job, "status"), jsonString("cancelled"));
    EXPECT_EQ(jsonOf(*job, "error"), jsonString("cancelled by request"));
  }
  EXPECT_TRUE(waitUntilGone(pid));
  EXPECT_FALSE(fileExists(config.jobLogPath(a.job_ids[1]))) << "the queued job never started";
  EXPECT_FALSE(fileExists(config.jobLogPath(b.job_ids[0]))) << "the queued job never started";
}

TEST(SupervisionCancel, NoProcessOfACancelledJobSurvivesNotEvenAGrandchildIgnoringSigterm) {
  TempDir dir;
  DaemonConfig config(dir);
  // The grandchild ignores SIGTERM (an ignored signal stays ignored across exec) and holds the
  // output pipe; the collector itself dies on SIGTERM.
  config.addBlockingCollector("spawner", R"sh(
sh -c 'trap "" TERM; echo $$ > "$GRANDCHILD.tmp" && mv "$GRANDCHILD.tmp" "$GRANDCHILD"; exec sleep 60' &
echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
wait_for_release 1
)sh",
                              {{"kill_grace", "1s"},
                               {"env.PIDFILE", dir.file("spawner.pid")},
                               {"env.GRANDCHILD", dir.file("grandchild.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;
  const Triggered run = triggerOrThrow(client, {"spawner"});
  const pid_t pid = waitForPidFile(dir.file("spawner.pid"));
  const pid_t grandchild = waitForPidFile(dir.file("grandchild.pid"));
  reaper.addGroup(pid);
  reaper.add(grandchild);
  ASSERT_GT(grandchild, 0);
  ASSERT_TRUE(processAlive(grandchild));
  ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, run.job_ids[0], "running"), 200));

  EXPECT_TRUE(IsJsonResponse(client.post(jobPath(run.job_ids[0]) + "/cancel", ""), 202));
  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0]);
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("cancelled")) << job.describe();
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("cancelled by request"));
  EXPECT_TRUE(waitUntilGone(pid)) << "the collector survived";
  EXPECT_TRUE(waitUntilGone(grandchild)) << "the grandchild that ignores SIGTERM survived";
  EXPECT_TRUE(waitUntil([&] { return processesOfJob(run.job_ids[0]).empty(); }))
      << "processes of the job still alive";
}

TEST(SupervisionCancel, ACancelDuringATimeoutsGracePeriodEndsTheJobCancelled) {
  TempDir dir;
  DaemonConfig config(dir);
  // Ignores the first SIGTERM (the timeout's), exits 0 on the second (the cancel's).
  config.addBlockingCollector("slowpoke", R"sh(
n=0
trap 'n=$((n + 1)); date +%s%N >> "$TERMS"; if [ $n -ge 2 ]; then exit 0; fi' TERM
echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
wait_for_release never
)sh",
                              {{"timeout", "1s"},
                               {"kill_grace", "5s"},
                               {"env.TERMS", dir.file("terms")},
                               {"env.PIDFILE", dir.file("slowpoke.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;
  const Triggered run = triggerOrThrow(client, {"slowpoke"});
  reaper.addGroup(waitForPidFile(dir.file("slowpoke.pid")));
  ASSERT_TRUE(waitUntil([&] { return readLines(dir.file("terms")).size() == 1; }))
      << "the timeout never sent SIGTERM";

  EXPECT_TRUE(IsJsonResponse(client.post(jobPath(run.job_ids[0]) + "/cancel", ""), 202));
  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("cancelled")) << job.describe();
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("cancelled by request"))
      << "a cancel outranks a timeout in progress";
  EXPECT_EQ(readLines(dir.file("terms")).size(), 2u) << "the cancel sends SIGTERM again";
}

}  // namespace
}  // namespace collectord::test
