#pragma once

#include <optional>
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
  // A protocol line: progress, message, and the collector's own verdict, which takes effect
  // at exit (a collector that says "completed" and then exits 1 has failed).
  bool report(const ProgressUpdate& update, Micros now);
  // The child is gone; decides completed, failed or cancelled.
  bool exited(const ExitStatus& status, Micros now);
  // queued -> cancelled at once; running -> cancelled when the child exits.
  bool requestCancel(const std::string& reason, Micros now);
  // Ends the job failed now (spawn error, supervisor restart...).
  bool fail(const std::string& error, Micros now);

  bool cancelRequested() const { return cancel_reason_.has_value(); }

 private:
  bool transition(JobStatus to, Micros now);

  JobRecord record_;
  bool reported_completed_ = false;
  std::optional<std::string> reported_failure_;
  std::optional<std::string> cancel_reason_;
};

// Recomputes a batch's status, progress, message, error, ended_at and estimated_completion from
// its jobs. The one place that owns the roll-up rules.
void rollUpBatch(BatchRecord& batch, const std::vector<const JobRecord*>& jobs);

}  // namespace collectord
