#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "job.h"
#include "job_store.h"
#include "supervisor.h"
#include "webhook_store.h"

namespace collectord::http {

// The narrow view of the daemon that request handlers get: read the store, ask the
// supervisor for a run, know which collectors exist. Nothing else.
class ApiContext {
 public:
  virtual ~ApiContext() = default;

  virtual JobStore& store() = 0;
  // Throws StoreError or ShuttingDownError (see Supervisor::trigger).
  virtual TriggerResult trigger(const std::vector<std::string>& collectors, Priority priority) = 0;
  // Configured collector names, sorted.
  virtual std::vector<std::string> collectorNames() const = 0;
  virtual bool hasCollector(std::string_view name) const = 0;
  // Empty when the daemon can serve requests; otherwise why not (store down, shutting down).
  virtual std::string notReadyReason() = 0;
  // See Supervisor::report.
  virtual ReportOutcome report(const std::string& job_id, const ProgressUpdate& update,
                               std::optional<JobRecord>& job) = 0;
  // See Supervisor::cancelJob / cancelBatch.
  virtual CancelOutcome cancelJob(const std::string& job_id) = 0;
  virtual CancelOutcome cancelBatch(const std::string& batch_id) = 0;
  // The configuration in effect (replaced on reload).
  virtual std::shared_ptr<const Config> config() const = 0;
  // Every configured collector's live state, sorted by name.
  virtual std::vector<CollectorState> collectorStates() = 0;
  // The webhook outbox (GET /api/webhooks/deliveries). Throws StoreError when there is none.
  virtual WebhookStore& webhookStore() { throw StoreError("this daemon keeps no webhook outbox"); }
  // The cluster's coordination (GET /api/nodes); null when cluster mode is off.
  virtual ClusterStore* clusterStore() { return nullptr; }
};

}  // namespace collectord::http
