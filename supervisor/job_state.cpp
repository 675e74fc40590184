#include "job_state.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>

namespace collectord {
namespace {

constexpr int kStatuses = 5;
// kLegal[from][to]: queued -> running | failed | cancelled; running -> completed | failed |
// cancelled, or queued again for a retry; terminal states go nowhere.
constexpr std::array<std::array<bool, kStatuses>, kStatuses> kLegal = {{
    //  queued running completed failed cancelled
    {false, true, false, true, true},    // queued
    {true, false, true, true, true},     // running
    {false, false, false, false, false}, // completed
    {false, false, false, false, false}, // failed
    {false, false, false, false, false}, // cancelled
}};

std::string signalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "unknown signal";
}

std::string plural(int n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

bool isLegalTransition(JobStatus from, JobStatus to) {
  return kLegal[static_cast<int>(from)][static_cast<int>(to)];
}

std::string ExitStatus::describe() const {
  if (signaled) return "killed by signal " + std::to_string(code) + " (" + signalName(code) + ")";
  return "exit code " + std::to_string(code);
}

ExitStatus exitStatusFromWait(int wait_status) {
  if (WIFSIGNALED(wait_status)) return {true, WTERMSIG(wait_status)};
  return {false, WEXITSTATUS(wait_status)};
}

bool JobStateMachine::transition(JobStatus to, Micros now) {
  if (!isLegalTransition(record_.status, to)) return false;
  record_.status = to;
  record_.updated_at = now;
  if (isTerminal(to)) {
    record_.ended_at = now;
    record_.pid.reset();
    record_.next_attempt_at.reset();  // a retry that was waiting will not happen
  }
  return true;
}

bool JobStateMachine::start(int pid, Micros now) {
  if (!transition(JobStatus::kRunning, now)) return false;
  record_.pid = pid;
  record_.next_attempt_at.reset();
  run_started_at_ = now;
  if (record_.attempt > 1) {  // replaces "Retrying ... after: ...", which is over now
    record_.message = "Attempt " + std::to_string(record_.attempt) + " of " +
                      std::to_string(record_.max_attempts) + " started";
  }
  return true;
}

bool JobStateMachine::failOrRetry(const std::string& error, Micros now) {
  if (retry_delay_ && record_.attempt < record_.max_attempts && !cancel_reason_) {
    new_attempts_.push_back(AttemptRecord{record_.attempt, run_started_at_, now, error});
    if (!transition(JobStatus::kQueued, now)) return false;
    ++record_.attempt;
    record_.pid.reset();
    record_.next_attempt_at = now + *retry_delay_;
    record_.message = "Retrying (attempt " + std::to_string(record_.attempt) + " of " +
                      std::to_string(record_.max_attempts) + ") after: " + error;
    record_.error.reset();
    reported_completed_ = false;
    reported_failure_.reset();
    kill_reason_.reset();
    run_started_at_.reset();
    return true;
  }
  record_.error = error;
  return transition(JobStatus::kFailed, now);
}

bool JobStateMachine::report(const ProgressUpdate& update, Micros now) {
  if (record_.status != JobStatus::kRunning) return false;
  if (update.has_progress) record_.progress_percent = update.progress;
  if (update.message) record_.message = update.message;
  if (update.status == ReportedStatus::kCompleted) {
    reported_completed_ = true;
    reported_failure_.reset();
  } else if (update.status == ReportedStatus::kFailed) {
    reported_failure_ = update.error.value_or("collector reported failure");
    reported_completed_ = false;
  } else if (update.error && reported_failure_) {
    reported_failure_ = update.error;
  }
  record_.updated_at = now;
  return true;
}

bool JobStateMachine::exited(const ExitStatus& status, Micros now) {
  if (record_.status != JobStatus::kRunning) return false;
  if (cancel_reason_) {
    record_.error = cancel_reason_;
    return transition(JobStatus::kCancelled, now);
  }
  if (kill_reason_) return failOrRetry(*kill_reason_, now);
  if (reported_failure_) return failOrRetry(*reported_failure_, now);
  if (status.signaled || status.code != 0) return failOrRetry(status.describe(), now);
  record_.progress_percent = 100;
  if (!record_.message) record_.message = "Collection completed";
  record_.error.reset();
  return transition(JobStatus::kCompleted, now);
}

bool JobStateMachine::requestCancel(const std::string& reason, Micros now) {
  if (record_.status == JobStatus::kQueued) {
    record_.error = reason;
    return transition(JobStatus::kCancelled, now);
  }
  if (record_.status != JobStatus::kRunning || cancel_reason_) return false;
  cancel_reason_ = reason;
  kill_reason_.reset();  // an operator's cancel outranks a timeout in progress
  return true;
}

bool JobStateMachine::requestKill(const std::string& reason) {
  if (record_.status != JobStatus::kRunning || stopRequested()) return false;
  kill_reason_ = reason;
  return true;
}

bool JobStateMachine::fail(const std::string& error, Micros now) {
  if (terminal()) return false;
  if (record_.status == JobStatus::kQueued) {
    record_.error = error;  // never started: nothing to retry
    return transition(JobStatus::kFailed, now);
  }
  return failOrRetry(error, now);
}

void rollUpBatch(BatchRecord& batch, const std::vector<const JobRecord*>& jobs) {
  BatchTally t;
  t.total = static_cast<int>(jobs.size());
  for (const JobRecord* job : jobs) {
    t.updated_at = std::max(t.updated_at, job->updated_at);
    switch (job->status) {
      case JobStatus::kQueued: ++t.queued; break;
      case JobStatus::kRunning: break;
      case JobStatus::kCompleted: ++t.completed; break;
      case JobStatus::kFailed:
        ++t.failed;
        if (!t.errors.empty()) t.errors += "; ";
        t.errors += job->job_name + ": " + job->error.value_or("failed");
        break;
      case JobStatus::kCancelled: ++t.cancelled; break;
    }
    if (isTerminal(job->status)) {
      ++t.terminal;
      t.progress_sum += 100;
      t.ended_at = std::max(t.ended_at, job->ended_at.value_or(job->updated_at));
    } else {
      t.progress_sum += std::clamp(job->progress_percent.value_or(0), 0, 100);
    }
  }
  rollUpBatch(batch, t);
}

void rollUpBatch(BatchRecord& batch, const BatchTally& t) {
  const int total = t.total, queued = t.queued, terminal = t.terminal, completed = t.completed,
            failed = t.failed, cancelled = t.cancelled;
  const Micros updated_at = std::max(batch.updated_at, t.updated_at);
  const Micros ended_at = t.ended_at;
  const std::string& errors = t.errors;
  const int progress_sum = t.progress_sum;
  batch.updated_at = updated_at;
  batch.progress_percent = total == 0 ? 0 : progress_sum / total;
  batch.error = errors.empty() ? std::nullopt : std::optional<std::string>(errors);
  batch.estimated_completion.reset();
  batch.ended_at.reset();

  if (total > 0 && terminal == total) {
    batch.ended_at = ended_at;
    if (failed > 0) {
      batch.status = JobStatus::kFailed;
      batch.message = std::to_string(failed) + " of " + plural(total, "collector") + " failed";
    } else if (cancelled > 0) {
      batch.status = JobStatus::kCancelled;
      batch.message = std::to_string(cancelled) + " of " + plural(total, "collector") + " cancelled";
    } else {
      batch.status = JobStatus::kCompleted;
      batch.message = std::to_string(completed) + " of " + plural(total, "collector") + " completed";
    }
    return;
  }
  if (queued == total) {
    batch.status = JobStatus::kQueued;
    batch.message = "Waiting for " + plural(total, "collector") + " to start";
  } else {
    batch.status = JobStatus::kRunning;
    batch.message = "Processing collectors... " + std::to_string(terminal) + " of " +
                    std::to_string(total) + " finished";
  }
  // Any unfinished batch with some progress has an estimate: a queued one too, when its jobs
  // wait for a retry after getting part of the way.
  if (batch.progress_percent > 0 && batch.progress_percent < 100) {
    const Micros elapsed = std::max<Micros>(0, updated_at - batch.started_at);
    batch.estimated_completion = batch.started_at + elapsed * 100 / batch.progress_percent;
  }
}

}  // namespace collectord
