#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace collectord {

// Microseconds since the Unix epoch, UTC. Every stored timestamp uses it.
using Micros = std::int64_t;

// The lifecycle of one collector run, exactly the seed's status values.
enum class JobStatus { kQueued, kRunning, kCompleted, kFailed, kCancelled };

// The wire name of a status ("queued", "running", ...).
std::string_view toString(JobStatus status);
// The status named `name`, or nullopt when the name is not one of the five.
std::optional<JobStatus> parseJobStatus(std::string_view name);
// True for completed, failed and cancelled: states a job never leaves.
bool isTerminal(JobStatus status);

// Scheduling priority of a triggered batch.
enum class Priority { kHigh, kNormal, kLow };
std::string_view toString(Priority priority);
std::optional<Priority> parsePriority(std::string_view name);

// One run of one collector, as stored in `job_runs` and shown by the API.
struct JobRecord {
  std::string job_id;
  std::string batch_id;
  std::string collector;  // the configured name, e.g. "ninja"
  std::string job_name;   // e.g. "ninja-collector"
  JobStatus status = JobStatus::kQueued;
  std::optional<int> progress_percent;
  std::optional<std::string> message;
  std::optional<std::string> error;
  Micros started_at = 0;  // when the run was triggered (queued), as in the seed
  Micros updated_at = 0;
  std::optional<Micros> ended_at;
  int attempt = 1;         // 1 for the first run, 2 for the first retry...
  int max_attempts = 1;    // 1 + the collector's retries
  std::optional<Micros> next_attempt_at;  // a retry is waiting for its backoff until then
  std::optional<int> pid;  // process group of the running child, when any
  // Set by a cluster's store only: the node that runs or ran the job, empty while it is queued.
  std::optional<std::string> node_id;
};

// One earlier, failed attempt of a job that was retried.
struct AttemptRecord {
  int attempt = 1;
  std::optional<Micros> started_at;  // when its process started
  Micros ended_at = 0;
  std::string error;
};

// A group of runs triggered together, as stored in `job_batches`.
struct BatchRecord {
  std::string batch_id;
  JobStatus status = JobStatus::kQueued;
  Priority priority = Priority::kNormal;
  int progress_percent = 0;
  std::optional<std::string> message;
  std::optional<std::string> error;
  Micros started_at = 0;
  Micros updated_at = 0;
  std::optional<Micros> ended_at;
  std::optional<Micros> estimated_completion;
};

// Seconds (millisecond precision) from start to end; nullopt while the run is not over.
// This is what `duration_seconds` reports.
std::optional<double> durationSeconds(Micros started_at, std::optional<Micros> ended_at);

}  // namespace collectord
