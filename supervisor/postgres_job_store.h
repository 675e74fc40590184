#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster_store.h"
#include "job_store.h"
#include "webhook_store.h"

namespace Poco::Data {
class SessionPool;
}

namespace collectord {

namespace postgres {
class ConnectionSettings;
class PgConnection;
}  // namespace postgres

// JobStore on a PostgreSQL database, which several collectord instances may share. Writes and
// migrations go through Poco::Data's PostgreSQL connector on a session pool; reads, the path of
// every status request, through libpq on kept connections with statements prepared once (see
// postgres_support.h for why). A connection that the server closed (it restarted) is dropped
// when next taken, so the store works again as soon as the server does. It also holds the
// webhook outbox (postgres_webhook_store.cpp).
class PostgresJobStore final : public JobStore, public WebhookStore, public ClusterStore {
 public:
  // Connects to `url` (postgresql://user:password@host:port/database, or a libpq key=value
  // string) and applies pending migrations, under an advisory lock so that instances starting
  // together apply each one once. `owner` names this daemon instance in the rows it writes.
  // Throws StoreError, naming the server but never the password, when the URL is malformed or
  // the database cannot be reached (within connect_timeout, 10 s unless the URL sets it) or
  // migrated.
  explicit PostgresJobStore(const std::string& url, std::string owner = "");
  ~PostgresJobStore() override;

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

  std::vector<WebhookDeliveryRecord> dueWebhookDeliveries(const std::string& endpoint, Micros now,
                                                          int limit) override;
  std::optional<Micros> nextWebhookDue(const std::string& endpoint) override;
  void recordWebhookAttempt(std::int64_t delivery_id, const WebhookAttemptRecord& attempt,
                            DeliveryState state, Micros next_attempt_at) override;
  std::vector<WebhookDeliveryRecord> webhookDeliveries(int limit,
                                                       std::optional<DeliveryState> state) override;
  std::vector<std::string> pendingWebhookEndpoints() override;
  int abandonWebhookDeliveries(const std::string& endpoint, const std::string& error,
                               Micros now) override;
  int pruneWebhookDeliveries(Micros before) override;

  // Cluster mode (postgres_cluster.cpp).
  void joinCluster(const std::string& node_id, const std::vector<std::string>& tags,
                   std::chrono::milliseconds lease, ClusterHooks hooks) override;
  std::vector<std::string> heartbeat(const std::vector<std::string>& running) override;
  std::vector<std::string> cancelRequests() override;
  void leaveCluster() override;
  std::vector<JobRecord> claim(const ClaimRequest& request, Micros now) override;
  int expireLeases(Micros now) override;
  RemoteCancel cancelElsewhere(const std::string& job_id, const std::string& reason,
                               Micros now) override;
  std::vector<NodeRecord> nodes() override;
  bool claimScheduledRun(const std::string& collector, Micros at, Micros not_since) override;

  void listen(const std::function<void(const std::vector<std::string>& job_ids, bool work)>& changed,
              const std::atomic<bool>& stop) override;

  // The highest applied migration version.
  int schemaVersion();

  // Takes this database for this instance alone, for the store's lifetime (a session advisory
  // lock on a connection of its own), or, `as_cluster_node`, for this node and other cluster
  // nodes (the same lock, shared). A lone collectord beside others would resolve their running
  // jobs as left over from a crash and run their queued jobs a second time. Throws StoreError
  // when another instance of the other kind (or, alone, any other) holds the database. The lock
  // goes with its connection: should the server restart, it is not taken again.
  void holdExclusiveUse(bool as_cluster_node = false);

 private:
  // Read connections kept for reuse; more than this many idle at once are closed (each is a
  // server process).
  static constexpr std::size_t kMaxIdleReaders = 16;
  // Pooled write sessions: the supervisor thread, the webhook senders and migrations.
  static constexpr int kMaxWriteSessions = 16;

  void migrate();
  struct Cluster;
  // Runs `fn` in a transaction on the cluster's connection, or on the heartbeats' one
  // (reconnecting when it broke); failures become StoreError naming `what`.
  void clusterTransaction(const char* what, const std::function<void(postgres::PgConnection&)>& fn,
                          bool for_heartbeat = false);
  // Summarises these batches (locked in this order) from all their jobs, in the transaction on
  // `c`, with the webhook deliveries of batches that turn terminal and of `ended` jobs.
  void rollUpBatches(postgres::PgConnection& c, const std::vector<std::string>& batch_ids,
                     const std::vector<JobRecord>& ended);
  // Cluster mode's save(): only jobs this node runs are written.
  void saveAsNode(const std::vector<JobRecord>& jobs,
                  const std::vector<std::pair<std::string, AttemptRecord>>& attempts,
                  const std::vector<WebhookOutboxRow>& outbox);
  // Runs `fn` on an idle read connection (a new one if none is usable), then keeps the
  // connection for the next call. When a kept connection turns out broken, `fn` runs again on
  // a new one, so it must assign its results rather than append to them. Failures become
  // StoreError("what (PostgreSQL where): ...").
  void withReader(const char* what, const std::function<void(postgres::PgConnection&)>& fn);

  std::unique_ptr<postgres::ConnectionSettings> settings_;
  std::string owner_;
  std::unique_ptr<Poco::Data::SessionPool> pool_;
  std::unique_ptr<postgres::PgConnection> exclusive_use_;  // holds holdExclusiveUse()'s lock
  std::unique_ptr<Cluster> cluster_;  // set by joinCluster
  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<postgres::PgConnection>> idle_readers_;  // guarded by readers_mutex_
};

}  // namespace collectord
