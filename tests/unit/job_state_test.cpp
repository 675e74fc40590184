#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include "job_state.h"

namespace collectord {
namespace {

JobRecord queuedJob(const std::string& id = "ni_00000001") {
  JobRecord r;
  r.job_id = id;
  r.batch_id = "bc_00000001";
  r.collector = "ninja";
  r.job_name = "ninja-collector";
  r.started_at = r.updated_at = 1000;
  return r;
}

ProgressUpdate progress(int percent, std::string message) {
  ProgressUpdate u;
  u.has_progress = true;
  u.progress = percent;
  u.message = std::move(message);
  return u;
}

ProgressUpdate reported(ReportedStatus status, std::optional<std::string> error = std::nullopt) {
  ProgressUpdate u;
  u.status = status;
  u.error = std::move(error);
  return u;
}

constexpr JobStatus kAll[] = {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kCompleted,
                              JobStatus::kFailed, JobStatus::kCancelled};

TEST(JobTransitions, TableAllowsExactlyTheDocumentedEdges) {
  for (JobStatus from : kAll) {
    for (JobStatus to : kAll) {
      const bool expected =
          (from == JobStatus::kQueued &&
           (to == JobStatus::kRunning || to == JobStatus::kFailed || to == JobStatus::kCancelled)) ||
          (from == JobStatus::kRunning &&
           (to == JobStatus::kCompleted || to == JobStatus::kFailed || to == JobStatus::kCancelled ||
            to == JobStatus::kQueued));  // queued again for a retry
      EXPECT_EQ(isLegalTransition(from, to), expected) << toString(from) << " -> " << toString(to);
    }
  }
}

TEST(JobStateMachine, StartMovesQueuedToRunningWithPid) {
  JobStateMachine sm(queuedJob());
  EXPECT_TRUE(sm.start(42, 2000));
  EXPECT_EQ(sm.record().status, JobStatus::kRunning);
  EXPECT_EQ(sm.record().pid, 42);
  EXPECT_EQ(sm.record().updated_at, 2000);
  EXPECT_FALSE(sm.start(43, 2001)) << "a running job cannot start again";
}

TEST(JobStateMachine, ProgressBeforeStartIsIgnored) {
  JobStateMachine sm(queuedJob());
  EXPECT_FALSE(sm.report(progress(50, "early"), 1500));
  EXPECT_FALSE(sm.record().progress_percent.has_value());
}

TEST(JobStateMachine, ProgressUpdatesPercentAndMessage) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  EXPECT_TRUE(sm.report(progress(70, "Processing page 7/10"), 1200));
  EXPECT_EQ(sm.record().progress_percent, 70);
  EXPECT_EQ(sm.record().message, "Processing page 7/10");
  EXPECT_EQ(sm.record().updated_at, 1200);
}

TEST(JobStateMachine, ExplicitNullProgressClearsPercentButAbsentKeepsIt) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  sm.report(progress(30, "a"), 1200);
  ProgressUpdate message_only;
  message_only.message = "b";
  sm.report(message_only, 1300);
  EXPECT_EQ(sm.record().progress_percent, 30);
  ProgressUpdate null_progress;
  null_progress.has_progress = true;
  sm.report(null_progress, 1400);
  EXPECT_FALSE(sm.record().progress_percent.has_value());
}

TEST(JobStateMachine, CleanExitCompletesWithFullProgress) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  sm.report(progress(40, "Saving"), 1200);
  EXPECT_TRUE(sm.exited({false, 0}, 5000));
  EXPECT_EQ(sm.record().status, JobStatus::kCompleted);
  EXPECT_EQ(sm.record().progress_percent, 100);
  EXPECT_EQ(sm.record().message, "Saving");
  EXPECT_FALSE(sm.record().error.has_value());
  EXPECT_EQ(sm.record().ended_at, 5000);
  EXPECT_FALSE(sm.record().pid.has_value());
}

TEST(JobStateMachine, CleanExitWithoutMessageSaysCollectionCompleted) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  sm.exited({false, 0}, 5000);
  EXPECT_EQ(sm.record().message, "Collection completed");
}

TEST(JobStateMachine, NonZeroExitFailsWithExitCode) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  sm.report(progress(40, "Saving"), 1200);
  sm.exited({false, 2}, 5000);
  EXPECT_EQ(sm.record().status, JobStatus::kFailed);
  EXPECT_EQ(sm.record().error, "exit code 2");
  EXPECT_EQ(sm.record().progress_percent, 40) << "a failed job keeps its last progress";
}

TEST(JobStateMachine, SignalDeathFailsNamingTheSignal) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  sm.exited({true, SIGKILL}, 5000);
  EXPECT_EQ(sm.record().error, "killed by signal 9 (SIGKILL)");
}

TEST(JobStateMachine, ReportedCompletedThenNonZeroExitFails) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  sm.report(reported(ReportedStatus::kCompleted), 1200);
  EXPECT_EQ(sm.record().status, JobStatus::kRunning) << "the exit decides, not the report";
  sm.exited({false, 1}, 5000);
  EXPECT_EQ(sm.record().status, JobStatus::kFailed);
  EXPECT_EQ(sm.record().error, "exit code 1");
}

TEST(JobStateMachine, ReportedFailureWinsOverCleanExit) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  sm.report(reported(ReportedStatus::kFailed, "API returned 401"), 1200);
  sm.exited({false, 0}, 5000);
  EXPECT_EQ(sm.record().status, JobStatus::kFailed);
  EXPECT_EQ(sm.record().error, "API returned 401");
}

TEST(JobStateMachine, ReportedFailureWithoutErrorHasGenericError) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  sm.report(reported(ReportedStatus::kFailed), 1200);
  sm.exited({false, 3}, 5000);
  EXPECT_EQ(sm.record().error, "collector reported failure");
}

TEST(JobStateMachine, TerminalJobIgnoresLateProgressExitsAndCancels) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  sm.exited({false, 0}, 5000);
  const JobRecord before = sm.record();
  EXPECT_FALSE(sm.report(progress(10, "late"), 6000));
  EXPECT_FALSE(sm.exited({false, 1}, 6000));
  EXPECT_FALSE(sm.requestCancel("late", 6000));
  EXPECT_FALSE(sm.fail("late", 6000));
  EXPECT_FALSE(sm.start(9, 6000));
  EXPECT_EQ(sm.record().status, before.status);
  EXPECT_EQ(sm.record().progress_percent, before.progress_percent);
  EXPECT_EQ(sm.record().message, before.message);
  EXPECT_EQ(sm.record().updated_at, before.updated_at);
  EXPECT_EQ(sm.record().ended_at, before.ended_at);
}

TEST(JobStateMachine, CancelOfQueuedJobIsImmediate) {
  JobStateMachine sm(queuedJob());
  EXPECT_TRUE(sm.requestCancel("cancelled by user", 1500));
  EXPECT_EQ(sm.record().status, JobStatus::kCancelled);
  EXPECT_EQ(sm.record().error, "cancelled by user");
  EXPECT_EQ(sm.record().ended_at, 1500);
}

TEST(JobStateMachine, CancelOfRunningJobEndsCancelledAtExit) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1100);
  EXPECT_TRUE(sm.requestCancel("supervisor shutting down", 1500));
  EXPECT_EQ(sm.record().status, JobStatus::kRunning);
  EXPECT_TRUE(sm.cancelRequested());
  sm.exited({true, SIGTERM}, 1600);
  EXPECT_EQ(sm.record().status, JobStatus::kCancelled);
  EXPECT_EQ(sm.record().error, "supervisor shutting down");
}

TEST(JobStateMachine, FailEndsQueuedOrRunningJobs) {
  JobStateMachine queued(queuedJob());
  EXPECT_TRUE(queued.fail("failed to start: No such file or directory", 1500));
  EXPECT_EQ(queued.record().status, JobStatus::kFailed);
  JobStateMachine running(queuedJob());
  running.start(1, 1100);
  EXPECT_TRUE(running.fail("supervisor restarted while the job was running", 1500));
  EXPECT_EQ(running.record().error, "supervisor restarted while the job was running");
}

TEST(JobStateMachine, FailureWithAttemptsLeftQueuesARetryInsteadOfEnding) {
  JobRecord r = queuedJob();
  r.max_attempts = 2;
  JobStateMachine sm(r);
  sm.setRetryDelay(30'000'000);
  sm.start(1, 1'000);
  EXPECT_TRUE(sm.exited({false, 2}, 2'000));
  EXPECT_EQ(sm.record().status, JobStatus::kQueued);
  EXPECT_EQ(sm.record().attempt, 2);
  EXPECT_EQ(sm.record().next_attempt_at, 2'000 + 30'000'000);
  EXPECT_FALSE(sm.record().error.has_value());
  EXPECT_EQ(sm.record().message, "Retrying (attempt 2 of 2) after: exit code 2");
  const auto attempts = sm.takeNewAttempts();
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].attempt, 1);
  EXPECT_EQ(attempts[0].error, "exit code 2");
  EXPECT_EQ(attempts[0].started_at, 1'000);
  EXPECT_TRUE(sm.takeNewAttempts().empty()) << "taken once";

  sm.start(2, 40'000'000);
  EXPECT_TRUE(sm.exited({false, 3}, 41'000'000));
  EXPECT_EQ(sm.record().status, JobStatus::kFailed) << "the last attempt's failure is final";
  EXPECT_EQ(sm.record().error, "exit code 3");
}

TEST(JobStateMachine, CancellingAJobWaitingForItsRetryClearsTheRetryTime) {
  JobRecord r = queuedJob();
  r.max_attempts = 2;
  JobStateMachine sm(r);
  sm.setRetryDelay(30'000'000);
  sm.start(1, 1'000);
  sm.exited({false, 2}, 2'000);
  ASSERT_TRUE(sm.record().next_attempt_at.has_value());
  sm.requestCancel("cancelled by request", 3'000);
  EXPECT_EQ(sm.record().status, JobStatus::kCancelled);
  EXPECT_FALSE(sm.record().next_attempt_at.has_value());
}

TEST(JobStateMachine, WithoutARetryDelayFailureIsFinal) {
  JobRecord r = queuedJob();
  r.max_attempts = 3;
  JobStateMachine sm(r);
  sm.start(1, 1'000);
  sm.exited({false, 2}, 2'000);
  EXPECT_EQ(sm.record().status, JobStatus::kFailed);
}

TEST(JobStateMachine, CancelledJobsAreNeverRetried) {
  JobRecord r = queuedJob();
  r.max_attempts = 3;
  JobStateMachine sm(r);
  sm.setRetryDelay(1'000);
  sm.start(1, 1'000);
  sm.requestCancel("cancelled by request", 1'500);
  sm.exited({true, SIGTERM}, 2'000);
  EXPECT_EQ(sm.record().status, JobStatus::kCancelled);
}

TEST(JobStateMachine, KillReasonBecomesTheErrorWhateverSignalEndedTheChild) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1'000);
  EXPECT_TRUE(sm.requestKill("timed out after 30m"));
  EXPECT_FALSE(sm.requestKill("no progress for 5m")) << "the first reason stands";
  sm.exited({true, SIGKILL}, 2'000);
  EXPECT_EQ(sm.record().status, JobStatus::kFailed);
  EXPECT_EQ(sm.record().error, "timed out after 30m");
}

TEST(JobStateMachine, CancelOutranksATimeoutInProgress) {
  JobStateMachine sm(queuedJob());
  sm.start(1, 1'000);
  sm.requestKill("timed out after 1s");
  EXPECT_TRUE(sm.requestCancel("cancelled by request", 1'500));
  sm.exited({true, SIGTERM}, 2'000);
  EXPECT_EQ(sm.record().status, JobStatus::kCancelled);
  EXPECT_EQ(sm.record().error, "cancelled by request");
}

TEST(ExitStatus, DescribesExitCodesAndSignals) {
  EXPECT_EQ((ExitStatus{false, 0}).describe(), "exit code 0");
  EXPECT_EQ((ExitStatus{false, 255}).describe(), "exit code 255");
  EXPECT_EQ((ExitStatus{true, SIGTERM}).describe(), "killed by signal 15 (SIGTERM)");
  EXPECT_EQ((ExitStatus{true, SIGSEGV}).describe(), "killed by signal 11 (SIGSEGV)");
  EXPECT_EQ((ExitStatus{true, SIGABRT}).describe(), "killed by signal 6 (SIGABRT)");
}

TEST(ExitStatus, DecodesWaitStatusWords) {
  const ExitStatus exited = exitStatusFromWait(W_EXITCODE(2, 0));
  EXPECT_FALSE(exited.signaled);
  EXPECT_EQ(exited.code, 2);
  const ExitStatus killed = exitStatusFromWait(W_EXITCODE(0, SIGKILL));
  EXPECT_TRUE(killed.signaled);
  EXPECT_EQ(killed.code, SIGKILL);
}

// ---- batch roll-up -----------------------------------------------------------------------

struct RollUp : ::testing::Test {
  BatchRecord batch;
  std::vector<JobRecord> jobs;

  void SetUp() override {
    batch.batch_id = "bc_00000001";
    batch.started_at = batch.updated_at = 1'000'000;
    for (const char* name : {"ninja", "threatlocker"}) {
      JobRecord j = queuedJob(std::string(name).substr(0, 2) + "_00000001");
      j.collector = name;
      j.job_name = std::string(name) + "-collector";
      j.started_at = j.updated_at = 1'000'000;
      jobs.push_back(j);
    }
  }
  void roll() {
    std::vector<const JobRecord*> views;
    for (const JobRecord& j : jobs) views.push_back(&j);
    rollUpBatch(batch, views);
  }
  void end(JobRecord& j, JobStatus status, Micros at, std::optional<std::string> error = {}) {
    j.status = status;
    j.ended_at = j.updated_at = at;
    j.error = std::move(error);
  }
};

TEST_F(RollUp, AllQueuedIsQueued) {
  roll();
  EXPECT_EQ(batch.status, JobStatus::kQueued);
  EXPECT_EQ(batch.progress_percent, 0);
  EXPECT_EQ(batch.message, "Waiting for 2 collectors to start");
  EXPECT_FALSE(batch.error.has_value());
  EXPECT_FALSE(batch.ended_at.has_value());
  EXPECT_FALSE(batch.estimated_completion.has_value());
}

TEST_F(RollUp, AnyActiveJobMakesTheBatchRunning) {
  jobs[0].status = JobStatus::kRunning;
  roll();
  EXPECT_EQ(batch.status, JobStatus::kRunning);
  end(jobs[0], JobStatus::kCompleted, 2'000'000);
  roll();
  EXPECT_EQ(batch.status, JobStatus::kRunning) << "one job still queued";
  EXPECT_EQ(batch.message, "Processing collectors... 1 of 2 finished");
}

TEST_F(RollUp, ProgressIsTheMeanWithTerminalAs100AndUnknownAs0) {
  jobs[0].status = JobStatus::kRunning;
  jobs[0].progress_percent = 40;
  jobs[1].status = JobStatus::kRunning;
  roll();
  EXPECT_EQ(batch.progress_percent, 20);
  end(jobs[1], JobStatus::kFailed, 2'000'000, "exit code 2");
  roll();
  EXPECT_EQ(batch.progress_percent, 70);
}

TEST_F(RollUp, EstimatedCompletionExtrapolatesElapsedTime) {
  jobs[0].status = jobs[1].status = JobStatus::kRunning;
  jobs[0].progress_percent = jobs[1].progress_percent = 25;
  jobs[0].updated_at = 1'000'000 + 10'000'000;  // 10 s in, a quarter done
  roll();
  ASSERT_TRUE(batch.estimated_completion.has_value());
  EXPECT_EQ(*batch.estimated_completion, 1'000'000 + 40'000'000);
  EXPECT_EQ(batch.updated_at, 11'000'000);
}

TEST_F(RollUp, AQueuedBatchWithProgressHasAnEstimate) {
  // Both jobs failed part-way and wait for their retries: queued, yet 40 % along.
  for (JobRecord& j : jobs) j.progress_percent = 40;
  jobs[0].updated_at = 1'000'000 + 4'000'000;
  roll();
  EXPECT_EQ(batch.status, JobStatus::kQueued);
  EXPECT_EQ(batch.progress_percent, 40);
  ASSERT_TRUE(batch.estimated_completion.has_value());
  EXPECT_EQ(*batch.estimated_completion, 1'000'000 + 10'000'000);
}

TEST_F(RollUp, AllCompletedIsCompletedWithEndTimeOfTheLastJob) {
  end(jobs[0], JobStatus::kCompleted, 3'000'000);
  end(jobs[1], JobStatus::kCompleted, 2'000'000);
  roll();
  EXPECT_EQ(batch.status, JobStatus::kCompleted);
  EXPECT_EQ(batch.progress_percent, 100);
  EXPECT_EQ(batch.ended_at, 3'000'000);
  EXPECT_EQ(batch.message, "2 of 2 collectors completed");
  EXPECT_FALSE(batch.error.has_value());
  EXPECT_FALSE(batch.estimated_completion.has_value());
}

TEST_F(RollUp, AnyFailedJobFailsTheBatchAndNamesIt) {
  end(jobs[0], JobStatus::kCompleted, 3'000'000);
  end(jobs[1], JobStatus::kFailed, 2'000'000, "exit code 2");
  roll();
  EXPECT_EQ(batch.status, JobStatus::kFailed);
  EXPECT_EQ(batch.message, "1 of 2 collectors failed");
  EXPECT_EQ(batch.error, "threatlocker-collector: exit code 2");
}

TEST_F(RollUp, FailedBeatsCancelled) {
  end(jobs[0], JobStatus::kCancelled, 3'000'000, "cancelled");
  end(jobs[1], JobStatus::kFailed, 2'000'000, "exit code 2");
  roll();
  EXPECT_EQ(batch.status, JobStatus::kFailed);
}

TEST_F(RollUp, CancelledWithoutFailuresIsCancelled) {
  end(jobs[0], JobStatus::kCancelled, 3'000'000, "supervisor shutting down");
  end(jobs[1], JobStatus::kCompleted, 2'000'000);
  roll();
  EXPECT_EQ(batch.status, JobStatus::kCancelled);
  EXPECT_EQ(batch.message, "1 of 2 collectors cancelled");
  EXPECT_FALSE(batch.error.has_value());
}

TEST_F(RollUp, SingleJobBatchUsesSingular) {
  jobs.pop_back();
  end(jobs[0], JobStatus::kCompleted, 3'000'000);
  roll();
  EXPECT_EQ(batch.message, "1 of 1 collector completed");
}

}  // namespace
}  // namespace collectord
