#pragma once

#include <algorithm>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "job.h"
#include "progress_update.h"

namespace collectord {

// True when the table of legal transitions allows `from` -> `to`.
bool isLegalTransition(JobStatus from, JobStatus to);

// How a child process ended.
struct ExitStatus {
  bool signaled = false;
  int code = 0;  // the exit code, or the signal number when `signaled`
  // "exit code 2", "killed by signal 9 (SIGKILL)".
  std::string describe() const;
};

// Builds an ExitStatus from a waitpid() status word.
ExitStatus exitStatusFromWait(int wait_status);

// The life of one job as pure code: no I/O, no clock (callers pass `now`).
// Every method returns true when it changed the record, false when the event was ignored
// (for instance anything that arrives after the job is terminal).
class JobStateMachine {
 public:
  explicit JobStateMachine(JobRecord record) : record_(std::move(record)) {}

  const JobRecord& record() const { return record_; }
  bool terminal() const { return isTerminal(record_.status); }

  // queued -> running, once the child exists.
  bool start(int pid, Micros now);
  // Whether a failure may be retried instead of ending the job: set by the supervisor from the
  // collector's policy before exited() or fail(), so the decision is made before any terminal
  // state, which never changes afterwards.
  void setRetryDelay(std::optional<Micros> delay) { retry_delay_ = delay; }
  // The collector's retries may change (reload) before the job ends; never below the
  // attempt already under way.
  void setMaxAttempts(int max_attempts) {
    record_.max_attempts = std::max(max_attempts, record_.attempt);
  }
  // A protocol line: progress, message, and the collector's own verdict, which takes effect
  // at exit (a collector that says "completed" and then exits 1 has failed).
  bool report(const ProgressUpdate& update, Micros now);
  // The child is gone; decides completed, failed (or queued again for a retry) or cancelled.
  bool exited(const ExitStatus& status, Micros now);
  // queued -> cancelled at once; running -> cancelled when the child exits.
  bool requestCancel(const std::string& reason, Micros now);
  // The supervisor is killing a running child for `reason` ("timed out after 30m"); the job
  // fails with that reason when the child is gone, whatever signal ended it.
  bool requestKill(const std::string& reason);
  // Ends the job failed now (spawn error, supervisor restart...), or queues a retry.
  bool fail(const std::string& error, Micros now);

  bool cancelRequested() const { return cancel_reason_.has_value(); }
  bool stopRequested() const { return cancel_reason_ || kill_reason_; }
  // Earlier attempts that failed and were retried, oldest first, not yet written to the store.
  std::vector<AttemptRecord> takeNewAttempts() { return std::exchange(new_attempts_, {}); }

 private:
  bool transition(JobStatus to, Micros now);
  // Fails the job with `error`, or queues the next attempt when a retry is allowed.
  bool failOrRetry(const std::string& error, Micros now);

  JobRecord record_;
  bool reported_completed_ = false;
  std::optional<std::string> reported_failure_;
  std::optional<std::string> cancel_reason_;
  std::optional<std::string> kill_reason_;
  std::optional<Micros> retry_delay_;
  std::optional<Micros> run_started_at_;
  std::vector<AttemptRecord> new_attempts_;
};

// What a batch's summary is made of, counted over its jobs (the PostgreSQL store counts it in
// SQL, without reading the jobs).
struct BatchTally {
  int total = 0, queued = 0, terminal = 0, completed = 0, failed = 0, cancelled = 0;
  int progress_sum = 0;    // 100 per terminal job, its clamped progress (0 when none) otherwise
  Micros updated_at = 0;   // the newest job's
  Micros ended_at = 0;     // the last terminal job's ended_at (else updated_at)
  std::string errors;      // "JOB_NAME: ERROR" of each failed job, in trigger order, "; "-joined
};

// Recomputes a batch's status, progress, message, error, ended_at and estimated_completion from
// its jobs. The one place that owns the roll-up rules.
void rollUpBatch(BatchRecord& batch, const std::vector<const JobRecord*>& jobs);
// The same from a tally of its jobs.
void rollUpBatch(BatchRecord& batch, const BatchTally& tally);

}  // namespace collectord
