#include "collector_routes.h"
#include "ids.h"
#include "json_views.h"

namespace collectord::http {

void addBatchRoutes(Router& router, ApiContext& context) {
  router.add("GET", "/api/collectors/runs/batch/{batch_id}", {Access::kRead, true}, [&context](const Request& request) {
    const std::string& id = request.params.at("batch_id");
    if (!isBatchId(id)) return errorResponse(404, "Batch not found");
    // One snapshot: a job that has started is never shown in a batch still `queued`.
    const auto batch = context.store().batchWithJobs(id);
    if (!batch) return errorResponse(404, "Batch not found");
    return Response{200, batchJson(batch->first, batch->second), "application/json", {}};
  });
}

}  // namespace collectord::http
