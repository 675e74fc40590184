#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "job_store.h"
#include "unique_fd.h"
#include "webhook_store.h"

namespace Poco::Data {
class SessionPool;
}

namespace collectord {

class SqliteReader;

// JobStore on a SQLite file, in WAL mode so readers (HTTP threads) never wait for the writer
// (the supervisor thread). Writes and migrations go through Poco::Data; reads, the path of every
// status request, through SQLite's own API on kept connections with statements prepared once.
// It also holds the webhook outbox (sqlite_webhook_store.cpp).
class SqliteJobStore final : public JobStore, public WebhookStore {
 public:
  // Opens or creates the database at `path` and applies pending migrations. `owner` names
  // this daemon instance in the rows it writes. Holds an exclusive lock on PATH.lock for its
  // lifetime: a second collectord on the same file would resolve the first one's running jobs
  // as left over from a crash. Throws StoreError when the file is locked by another process
  // or cannot be opened or migrated.
  explicit SqliteJobStore(const std::string& path, std::string owner = "");
  ~SqliteJobStore() override;

  bool insertBatch(const BatchRecord& batch, const std::vector<JobRecord>& jobs) override;
  void save(const std::vector<JobRecord>& jobs, const std::vector<BatchRecord>& batches,
            const std::vector<std::pair<std::string, AttemptRecord>>& attempts = {},
            const std::vector<WebhookOutboxRow>& outbox = {}) override;
  std::vector<AttemptRecord> attemptsOf(const std::string& job_id) override;
  std::optional<BatchRecord> findBatch(const std::string& batch_id) override;
  std::vector<JobRecord> jobsOfBatch(const std::string& batch_id) override;
  std::optional<std::pair<BatchRecord, std::vector<JobRecord>>> batchWithJobs(
      const std::string& batch_id) override;
  std::optional<JobRecord> findJob(const std::string& job_id) override;
  std::optional<JobRecord> latestRun(const std::string& collector) override;
  std::optional<JobRecord> lastFinishedRun(const std::string& collector) override;
  std::vector<JobRecord> history(int limit) override;
  std::vector<JobRecord> activeJobs() override;
  void ping() override;
  std::optional<Micros> lastScheduledRun(const std::string& collector) override;
  void recordScheduledRun(const std::string& collector, Micros at) override;

  std::vector<WebhookDeliveryRecord> dueWebhookDeliveries(const std::string& endpoint,
                                                          Micros now, int limit) override;
  std::optional<Micros> nextWebhookDue(const std::string& endpoint) override;
  void recordWebhookAttempt(std::int64_t delivery_id, const WebhookAttemptRecord& attempt,
                            DeliveryState state, Micros next_attempt_at) override;
  std::vector<WebhookDeliveryRecord> webhookDeliveries(int limit,
                                                       std::optional<DeliveryState> state) override;
  std::vector<std::string> pendingWebhookEndpoints() override;
  int abandonWebhookDeliveries(const std::string& endpoint, const std::string& error,
                               Micros now) override;
  int pruneWebhookDeliveries(Micros before) override;

  // The highest applied migration version.
  int schemaVersion();

 private:
  // Readers kept for reuse; more than this many idle at once are closed.
  static constexpr std::size_t kMaxIdleReaders = 64;

  void migrate();
  // Runs `fn(SqliteReader&)` on an idle reader (a new one if none is idle), then keeps the
  // reader for the next call; failures become StoreError("what: ...").
  template <typename Fn>
  auto withReader(const char* what, Fn&& fn);

  std::string path_;
  std::string owner_;
  UniqueFd lock_;
  std::unique_ptr<Poco::Data::SessionPool> pool_;
  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<SqliteReader>> idle_readers_;  // guarded by readers_mutex_
};

}  // namespace collectord
