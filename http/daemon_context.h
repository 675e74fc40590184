#pragma once

#include "api_context.h"
#include "config.h"
#include "router.h"

namespace collectord::http {

// ApiContext over the real parts: the configuration, the store, the supervisor.
class DaemonContext final : public ApiContext {
 public:
  DaemonContext(const Config& config, JobStore& store, Supervisor& supervisor)
      : config_(config), store_(store), supervisor_(supervisor) {}

  JobStore& store() override { return store_; }
  TriggerResult trigger(const std::vector<std::string>& collectors, Priority priority) override {
    return supervisor_.trigger(collectors, priority);
  }
  std::vector<std::string> collectorNames() const override {
    std::vector<std::string> names;
    for (const CollectorConfig& c : config_.collectors) names.push_back(c.name);
    return names;  // config keeps collectors sorted by name
  }
  bool hasCollector(std::string_view name) const override {
    return config_.findCollector(name) != nullptr;
  }
  std::string notReadyReason() override {
    if (!supervisor_.accepting()) return "collectord is shutting down";
    try {
      store_.ping();
    } catch (const StoreError& e) {
      return std::string("the job store is unavailable: ") + e.what();
    }
    return "";
  }

 private:
  const Config& config_;
  JobStore& store_;
  Supervisor& supervisor_;
};

// Which of the routes outside /api/collectors need no credentials.
struct PublicRoutes {
  bool docs = true;
  bool health = true;
  bool metrics = false;
};

// Registers every route of the API on `router`.
void addApiRoutes(Router& router, ApiContext& context, const Metrics& metrics,
                  const std::string& docs_directory, PublicRoutes open);

}  // namespace collectord::http
