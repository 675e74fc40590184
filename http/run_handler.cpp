#include <Poco/JSON/Array.h>

#include "collector_routes.h"
#include "json_views.h"
#include "run_request.h"

namespace collectord::http {
namespace {

Response trigger(ApiContext& context, const Request& request) {
  const auto parsed = parseRunRequest(
      request.body, [&context](const std::string& name) { return context.hasCollector(name); });
  if (const auto* error = std::get_if<RunRequestError>(&parsed)) {
    return errorResponse(400, error->message);
  }
  const auto& [names, priority] = std::get<RunRequest>(parsed);

  const TriggerResult result = context.trigger(names, priority);
  auto out = orderedObject();
  out->set("batch_id", result.batch.batch_id);
  Poco::JSON::Array::Ptr jobs = new Poco::JSON::Array;
  for (std::size_t i = 0; i < result.jobs.size(); ++i) {
    auto view = triggeredJobView(result.jobs[i]);
    if (result.skipped[i]) {
      // overlap = skip: the collector's active run, which may belong to another batch.
      view->set("skipped", true);
      view->set("batch_id", result.jobs[i].batch_id);
    }
    jobs->add(view);
  }
  out->set("collectors", jobs);
  // 201 when a batch was created; 200 when every collector was skipped and nothing was.
  return Response{result.created ? 201 : 200, toJson(out), "application/json", {}};
}

}  // namespace

void addRunRoutes(Router& router, ApiContext& context) {
  router.add("POST", "/api/collectors/run", {Access::kRun, false, true},
             [&context](const Request& request) { return trigger(context, request); });
}

}  // namespace collectord::http
