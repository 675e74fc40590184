#pragma once

#include "api_context.h"
#include "config.h"
#include "router.h"

namespace collectord::http {

// ApiContext over the real parts: the store and the supervisor (which holds the configuration
// in effect, replaced on reload).
class DaemonContext final : public ApiContext {
 public:
  // `webhooks` (optional) is the webhook outbox, usually the same object as `store`.
  // `cluster` (optional) is the cluster's coordination in cluster mode.
  DaemonContext(JobStore& store, Supervisor& supervisor, WebhookStore* webhooks = nullptr,
                ClusterStore* cluster = nullptr)
      : store_(store), supervisor_(supervisor), webhooks_(webhooks), cluster_(cluster) {}

  // While job state cannot be written, the store is behind the truth: answering from it would
  // show a dashboard a stale state, so every read answers 503 until the writes catch up.
  JobStore& store() override {
    if (std::string fault = supervisor_.storeFault(); !fault.empty()) {
      throw StoreError("job state is not being saved: " + fault);
    }
    return store_;
  }
  TriggerResult trigger(const std::vector<std::string>& collectors, Priority priority) override {
    return supervisor_.trigger(collectors, priority);
  }
  std::vector<std::string> collectorNames() const override {
    std::vector<std::string> names;
    for (const CollectorConfig& c : supervisor_.config()->collectors) names.push_back(c.name);
    return names;  // config keeps collectors sorted by name
  }
  bool hasCollector(std::string_view name) const override {
    return supervisor_.config()->findCollector(name) != nullptr;
  }
  ReportOutcome report(const std::string& job_id, const ProgressUpdate& update,
                       std::optional<JobRecord>& job) override {
    return supervisor_.report(job_id, update, job);
  }
  CancelOutcome cancelJob(const std::string& job_id) override {
    return supervisor_.cancelJob(job_id);
  }
  CancelOutcome cancelBatch(const std::string& batch_id) override {
    return supervisor_.cancelBatch(batch_id);
  }
  std::shared_ptr<const Config> config() const override { return supervisor_.config(); }
  std::vector<CollectorState> collectorStates() override { return supervisor_.collectorStates(); }
  ClusterStore* clusterStore() override { return cluster_; }
  WebhookStore& webhookStore() override {
    return webhooks_ ? *webhooks_ : ApiContext::webhookStore();
  }
  std::string notReadyReason() override {
    if (!supervisor_.accepting()) return "collectord is shutting down";
    if (std::string fault = supervisor_.storeFault(); !fault.empty()) {
      return "the job store does not take writes: " + fault;
    }
    try {
      store_.ping();
    } catch (const StoreError& e) {
      return std::string("the job store is unavailable: ") + e.what();
    }
    return "";
  }

 private:
  JobStore& store_;
  Supervisor& supervisor_;
  WebhookStore* webhooks_;
  ClusterStore* cluster_;
};

// Which of the routes outside /api/collectors need no credentials.
struct PublicRoutes {
  bool docs = true;
  bool health = true;
  bool metrics = false;
};

class EventHub;

// Registers every route of the API on `router`. The event stream routes answer 503 without
// `events`.
void addApiRoutes(Router& router, ApiContext& context, const Metrics& metrics,
                  const std::string& docs_directory, PublicRoutes open,
                  EventHub* events = nullptr);

}  // namespace collectord::http
