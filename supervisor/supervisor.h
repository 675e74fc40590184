#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster_store.h"
#include "config.h"
#include "job.h"
#include "job_store.h"
#include "metrics.h"
#include "progress_update.h"
#include "webhook.h"

namespace collectord {

// The supervisor is stopping and takes no new work.
class ShuttingDownError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The supervisor did not answer in time (its thread is stuck on a slow store); nothing was done.
class BusyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a trigger did, collector by collector.
struct TriggerResult {
  bool created = false;  // false when every collector was skipped: `batch` is then the batch
                         // of the first skipped job
  BatchRecord batch;
  std::vector<JobRecord> jobs;  // in the order the collectors were named
  std::vector<bool> skipped;    // per job: an already active run returned (overlap = skip)
};

enum class ReportOutcome {
  kApplied,      // the update is the job's state now
  kNotRunning,   // the job is queued: it reports once it runs
  kTerminal,     // the job has ended; nothing changes it any more
  kElsewhere,    // in a cluster, the job runs on another node (`job` says which)
  kNotFound,
};

enum class CancelOutcome {
  kCancelled,        // it was queued: cancelled now
  kCancelling,       // it is running: signalled, ends cancelled when its processes are gone
  kAlreadyTerminal,  // nothing to cancel
  kNotFound,
};

// A collector's live state, for GET /api/collectors.
struct CollectorState {
  std::string name;
  int running = 0;
  int queued = 0;
  std::optional<std::string> active_job_id;  // the newest queued or running job
  std::optional<Micros> next_scheduled_at;   // when its schedule fires next, if it has one
};

// One write of job state, as it now stands in the store: a new batch with its jobs, or the jobs
// and batches a coalesced write changed.
struct StateChange {
  std::vector<JobRecord> jobs;
  std::vector<BatchRecord> batches;
};

struct SupervisorOptions {
  // Progress updates are written to the store at most this often per burst.
  std::chrono::milliseconds flush_interval{100};
  // Called on the supervision thread after each write of job state has reached the store, in
  // the order written (never for a write that failed: it is retried and reported then). Must
  // not block; hand the change to another thread. Registered by main (event streams, webhooks).
  std::vector<std::function<void(const StateChange&)>> on_saved;
  // Renders a webhook event's body. With it, each write that makes a batch or job terminal also
  // writes, in the same transaction, a webhook delivery per configured endpoint that wants the
  // event (config.webhooks); each terminal batch or job gives its event once. Set by main.
  WebhookPayloadRenderer webhook_payload;
  // Cluster mode (config.cluster.enabled): the store's coordination of several nodes, which the
  // supervisor joins at start and leaves at stop. Null: this collectord runs alone.
  ClusterStore* cluster = nullptr;
};

// Runs collectors and owns every active job's state on one thread of its own. Other threads
// talk to it only through its public methods, which post to that thread and wait for the
// answer (30 s at most, then BusyError); what they read comes from the store, which it keeps
// current (terminal states at once, progress coalesced to `flush_interval`).
class Supervisor {
 public:
  // `metrics` (optional) must outlive the supervisor.
  Supervisor(Config config, JobStore& store, SupervisorOptions options = {},
             Metrics* metrics = nullptr);
  ~Supervisor();

  // Resolves what a previous instance left active (running jobs fail, queued ones start),
  // then starts the supervision thread. Throws StoreError if the store is unreadable.
  void start();
  // Stops taking triggers, terminates running jobs (SIGTERM, SIGKILL after the configured
  // shutdown_grace), ends them cancelled, writes everything to the store and joins the
  // thread. Queued jobs stay queued for the next start. Idempotent.
  void stop();

  // Creates a batch with one queued job per named collector (names must be configured), or
  // returns a collector's active job where its overlap mode is skip; queued jobs start as the
  // limits allow, by priority then age. Thread-safe. Throws StoreError, or ShuttingDownError
  // once stop() has begun.
  TriggerResult trigger(const std::vector<std::string>& collectors, Priority priority);
  // Applies a progress update that arrived over HTTP instead of the pipe: the same state
  // machine and the same rules as a protocol line. Thread-safe.
  // `job` receives the job as it stands after the update when it was applied.
  ReportOutcome report(const std::string& job_id, const ProgressUpdate& update,
                       std::optional<JobRecord>& job);
  // Cancels one job, or every unfinished job of a batch. Thread-safe.
  CancelOutcome cancelJob(const std::string& job_id);
  CancelOutcome cancelBatch(const std::string& batch_id);
  // Applies a new configuration: collectors, limits, log settings. Running jobs keep the
  // settings they started with. Thread-safe.
  void reload(Config config);
  // The configuration in effect. Thread-safe.
  std::shared_ptr<const Config> config() const;
  // Every configured collector's live state, sorted by name. Thread-safe.
  std::vector<CollectorState> collectorStates();

  // False once stop() has begun (readiness).
  bool accepting() const;
  // Empty while the store takes every write; otherwise why the last write of job state failed.
  // While it fails, changes are kept in memory and written again every second, so the store
  // is behind the truth and must not be shown as current. Thread-safe.
  std::string storeFault() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace collectord
