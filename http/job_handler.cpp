#include "collector_routes.h"
#include "ids.h"
#include "json_views.h"

namespace collectord::http {

void addJobRoutes(Router& router, ApiContext& context) {
  router.add("GET", "/api/collectors/runs/job/{job_id}", {Access::kRead, true}, [&context](const Request& request) {
    const std::string& id = request.params.at("job_id");
    if (!isJobId(id)) return errorResponse(404, "Job not found");
    const auto job = context.store().findJob(id);
    if (!job) return errorResponse(404, "Job not found");
    const auto batch = context.store().findBatch(job->batch_id);
    return Response{200, jobJson(*job, batch, context.store().attemptsOf(id)), "application/json",
                    {}};
  });
}

}  // namespace collectord::http
