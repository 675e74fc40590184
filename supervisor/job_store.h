#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "job.h"
#include "webhook.h"

namespace collectord {

// The store could not do what was asked (database unreachable, disk full, corrupt file).
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Persistence of batches and runs. Implementations are safe to call from several threads;
// every method throws StoreError when the database fails, and nothing else.
class JobStore {
 public:
  virtual ~JobStore() = default;

  // Inserts a batch and its jobs (in trigger order) atomically. Returns false, writing
  // nothing, when an ID is already taken.
  virtual bool insertBatch(const BatchRecord& batch, const std::vector<JobRecord>& jobs) = 0;
  // Writes the current state of these jobs and batches, the earlier attempts of retried jobs,
  // and the webhook deliveries their new states cause, in one transaction. A delivery whose
  // event ID and endpoint are already in the outbox is not written again (a retried write).
  virtual void save(const std::vector<JobRecord>& jobs, const std::vector<BatchRecord>& batches,
                    const std::vector<std::pair<std::string, AttemptRecord>>& attempts = {},
                    const std::vector<WebhookOutboxRow>& outbox = {}) = 0;
  // The earlier attempts of a job, oldest first.
  virtual std::vector<AttemptRecord> attemptsOf(const std::string& job_id) = 0;

  virtual std::optional<BatchRecord> findBatch(const std::string& batch_id) = 0;
  // The batch's jobs in trigger order.
  virtual std::vector<JobRecord> jobsOfBatch(const std::string& batch_id) = 0;
  // The batch and its jobs in trigger order, as one moment saw them (one snapshot: never a job
  // `running` in a batch still `queued`); nullopt when there is no such batch. This default reads
  // them one after the other; the stores override it.
  virtual std::optional<std::pair<BatchRecord, std::vector<JobRecord>>> batchWithJobs(
      const std::string& batch_id) {
    auto batch = findBatch(batch_id);
    if (!batch) return std::nullopt;
    return std::make_pair(std::move(*batch), jobsOfBatch(batch_id));
  }
  virtual std::optional<JobRecord> findJob(const std::string& job_id) = 0;
  // The collector's queued or running job if it has one, else its most recent job.
  virtual std::optional<JobRecord> latestRun(const std::string& collector) = 0;
  // The collector's most recent completed, failed or cancelled job.
  virtual std::optional<JobRecord> lastFinishedRun(const std::string& collector) = 0;
  // The most recent jobs, newest first.
  virtual std::vector<JobRecord> history(int limit) = 0;
  // Every queued or running job, oldest first (for restart recovery).
  virtual std::vector<JobRecord> activeJobs() = 0;
  // When a collector's schedule last fired; nullopt if it never did.
  virtual std::optional<Micros> lastScheduledRun(const std::string& collector) = 0;
  virtual void recordScheduledRun(const std::string& collector, Micros at) = 0;
  // Throws StoreError unless the database answers a trivial query (readiness).
  virtual void ping() = 0;
};

}  // namespace collectord
