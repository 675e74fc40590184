#include "collector_routes.h"
#include "ids.h"
#include "json_views.h"

namespace collectord::http {
namespace {

// 200 when the job (or every job of the batch) is cancelled now, 202 while running ones are
// still being stopped; the body is the resource as it stands after the request.
Response cancelJob(ApiContext& context, const Request& request) {
  const std::string& id = request.params.at("job_id");
  if (!isJobId(id)) return errorResponse(404, "Job not found");
  const CancelOutcome outcome = context.cancelJob(id);
  if (outcome == CancelOutcome::kNotFound) return errorResponse(404, "Job not found");
  const auto job = context.store().findJob(id);
  if (!job) return errorResponse(404, "Job not found");
  if (outcome == CancelOutcome::kAlreadyTerminal) {
    return errorResponse(409, "Job " + id + " is already " + std::string(toString(job->status)) +
                                  "; there is nothing to cancel");
  }
  const int status = outcome == CancelOutcome::kCancelled ? 200 : 202;
  return Response{status, toJson(jobStatusView(*job, context.store().findBatch(job->batch_id))),
                  "application/json", {}};
}

Response cancelBatch(ApiContext& context, const Request& request) {
  const std::string& id = request.params.at("batch_id");
  if (!isBatchId(id)) return errorResponse(404, "Batch not found");
  const CancelOutcome outcome = context.cancelBatch(id);
  if (outcome == CancelOutcome::kNotFound) return errorResponse(404, "Batch not found");
  const auto batch = context.store().batchWithJobs(id);  // one snapshot
  if (!batch) return errorResponse(404, "Batch not found");
  if (outcome == CancelOutcome::kAlreadyTerminal) {
    return errorResponse(409, "Batch " + id + " is already " +
                                  std::string(toString(batch->first.status)) +
                                  "; there is nothing to cancel");
  }
  const int status = outcome == CancelOutcome::kCancelled ? 200 : 202;
  return Response{status, batchJson(batch->first, batch->second), "application/json", {}};
}

}  // namespace

void addCancelRoutes(Router& router, ApiContext& context) {
  const RouteOptions run{Access::kRun, true};
  for (const char* method : {"POST", "DELETE"}) {
    const std::string suffix = std::string(method) == "POST" ? "/cancel" : "";
    router.add(method, "/api/collectors/runs/job/{job_id}" + suffix, run,
               [&context](const Request& r) { return cancelJob(context, r); });
    router.add(method, "/api/collectors/runs/batch/{batch_id}" + suffix, run,
               [&context](const Request& r) { return cancelBatch(context, r); });
  }
}

}  // namespace collectord::http
