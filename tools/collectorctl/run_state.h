#pragma once

// What `run --wait` and `status --wait` know about the runs they follow: the followed jobs and
// the batches they belong to, updated from the server's batch and job JSON (whether polled or
// streamed). Pure data: no I/O.

#include <Poco/JSON/Object.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace collectorctl {

// True for completed, failed and cancelled: statuses that never change again.
bool isTerminalStatus(std::string_view status);

struct JobProgress {
  std::string job_id;
  std::string job_name;
  std::string batch_id;
  std::string status;
  std::optional<int> progress;  // null until the collector reports one
  std::string message;
  std::string error;
  std::optional<std::int64_t> started_at_us;  // when the run was triggered
  std::optional<double> duration_seconds;     // set once ended
  std::int64_t updated_at_us = 0;             // of the newest document applied
  bool skipped = false;  // overlap = skip: an already active job, not one this run started
};

struct BatchProgress {
  std::string batch_id;
  std::string status;
  int progress = 0;
  std::string message;
  std::string error;
  std::string estimated_completion;  // "" when null
  std::optional<std::int64_t> started_at_us;
  std::optional<double> duration_seconds;
  std::int64_t updated_at_us = 0;  // of the newest document applied
  std::size_t job_count = 0;       // jobs in the batch (followed or not); 0 until known
  std::string json;                // the last batch JSON received, as the server wrote it
};

class RunState {
 public:
  // Follows a job of batch `job.batch_id`, shown in the order added.
  void addJob(JobProgress job);
  // Follows batch `batch_id` (added by addJob for each job's batch).
  void addBatch(const std::string& batch_id);

  // Applies a batch status document (GET .../batch/{id}): the batch's fields and those of each
  // followed job it lists. Returns whether anything shown changed. Ignores batches not followed,
  // and documents older (by updated_at) than one already applied: an event stream may replay
  // history that a poll has already shown.
  bool applyBatch(const Poco::JSON::Object& batch, const std::string& json);
  // Applies a job status document (GET .../job/{id}, or a stream's job event). Returns whether
  // anything shown changed. Ignores jobs not followed, and documents older than one applied.
  bool applyJob(const Poco::JSON::Object& job);

  // Every followed job has ended, and so has each batch whose every job is followed.
  bool finished() const;
  // Every followed job completed.
  bool allCompleted() const;

  const std::vector<JobProgress>& jobs() const { return jobs_; }
  const std::vector<BatchProgress>& batches() const { return batches_; }

 private:
  std::vector<JobProgress> jobs_;
  std::vector<BatchProgress> batches_;
};

// A server timestamp ("2025-10-06T15:16:10.552780Z", or to the second) as microseconds since
// the epoch; nullopt when malformed.
std::optional<std::int64_t> parseTimestamp(std::string_view text);

// The string field `key`, or "" when it is missing, null or not a string.
std::string stringField(const Poco::JSON::Object& object, const std::string& key);
// The integer field `key`, or nullopt when it is missing, null or not a number.
std::optional<std::int64_t> intField(const Poco::JSON::Object& object, const std::string& key);
// The number field `key`, or nullopt when it is missing, null or not a number.
std::optional<double> numberField(const Poco::JSON::Object& object, const std::string& key);

}  // namespace collectorctl
