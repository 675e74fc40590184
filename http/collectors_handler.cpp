#include <Poco/JSON/Array.h>

#include "collector_routes.h"
#include "json_views.h"
#include "time_format.h"

namespace collectord::http {
namespace {

using Poco::Dynamic::Var;

Var durationOrNull(const std::optional<std::chrono::milliseconds>& d) {
  return d ? Var(formatDurationSpec(*d)) : Var();
}

Poco::JSON::Object::Ptr collectorView(ApiContext& context, const CollectorConfig& c,
                                      const CollectorState& state) {
  auto o = orderedObject();
  o->set("name", c.name);
  o->set("job_name", c.job_name);
  o->set("type", std::string(c.type == CollectorConfig::Type::kExec ? "exec" : "plugin"));
  o->set("schedule", c.schedule ? Var(c.schedule->describe()) : Var());
  o->set("next_scheduled_at",
         state.next_scheduled_at ? Var(formatTimestamp(*state.next_scheduled_at)) : Var());
  auto limits = orderedObject();
  limits->set("overlap", std::string(toString(c.overlap)));
  limits->set("concurrency", c.effectiveConcurrency());
  limits->set("timeout", durationOrNull(c.timeout));
  limits->set("stall_timeout", durationOrNull(c.stall_timeout));
  limits->set("kill_grace", formatDurationSpec(c.kill_grace));
  limits->set("retries", c.retries);
  limits->set("retry_backoff", formatDurationSpec(c.retry_backoff));
  o->set("limits", limits);
  o->set("running", state.running);
  o->set("queued", state.queued);
  Var active;
  if (state.active_job_id) {
    if (auto job = context.store().findJob(*state.active_job_id)) {
      active = jobStatusView(*job, context.store().findBatch(job->batch_id));
    }
  }
  o->set("active_run", active);
  Var last;
  if (auto job = context.store().lastFinishedRun(c.name)) {
    last = jobStatusView(*job, context.store().findBatch(job->batch_id));
  }
  o->set("last_run", last);
  return o;
}

Response listCollectors(ApiContext& context) {
  const auto config = context.config();
  const std::vector<CollectorState> states = context.collectorStates();
  Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
  for (const CollectorConfig& c : config->collectors) {
    CollectorState state;
    for (const CollectorState& s : states) {
      if (s.name == c.name) state = s;
    }
    list->add(collectorView(context, c, state));
  }
  return Response{200, listingJson("collectors", list, "total"), "application/json", {}};
}

}  // namespace

void addCollectorListRoutes(Router& router, ApiContext& context) {
  router.add("GET", "/api/collectors", {Access::kRead, false},
             [&context](const Request&) { return listCollectors(context); });
}

}  // namespace collectord::http
