#include "collector_routes.h"
#include "ids.h"
#include "json_views.h"
#include "progress_update.h"

namespace collectord::http {
namespace {

// The body is validated by the protocol's own parser, so HTTP and the pipe accept exactly the
// same objects and reject the rest with the same reasons.
Response reportProgress(ApiContext& context, const Request& request) {
  const std::string& id = request.params.at("job_id");
  if (!isJobId(id)) return errorResponse(404, "Job not found");
  if (request.body.size() > kMaxProtocolLine) {
    return errorResponse(400, "Progress update is longer than " + std::to_string(kMaxProtocolLine) +
                                  " bytes");
  }
  const ParsedLine parsed = parseProgressLine(request.body);
  if (const auto* error = std::get_if<ProtocolError>(&parsed)) {
    return errorResponse(400, "Invalid progress update: " + error->reason);
  }
  std::optional<JobRecord> job;
  const ReportOutcome outcome = context.report(id, std::get<ProgressUpdate>(parsed), job);
  if (outcome == ReportOutcome::kTerminal) job = context.store().findJob(id);
  switch (outcome) {
    case ReportOutcome::kNotFound: return errorResponse(404, "Job not found");
    case ReportOutcome::kNotRunning:
      return errorResponse(409, "Job " + id + " is queued; it can report progress once it runs");
    case ReportOutcome::kTerminal:
      return errorResponse(409, "Job " + id + " is already " +
                                    std::string(job ? toString(job->status) : "finished") +
                                    "; it takes no more updates");
    case ReportOutcome::kElsewhere:
      return errorResponse(409, "Job " + id + " runs on node " +
                                    (job && job->node_id ? *job->node_id : "another node") +
                                    "; send its progress to that node");
    case ReportOutcome::kApplied: break;
  }
  if (!job) return errorResponse(404, "Job not found");
  return Response{200, toJson(jobStatusView(*job, context.store().findBatch(job->batch_id))),
                  "application/json", {}};
}

}  // namespace

void addProgressRoutes(Router& router, ApiContext& context) {
  router.add("PUT", "/api/collectors/runs/job/{job_id}", {Access::kRun, true, true},
             [&context](const Request& r) { return reportProgress(context, r); });
}

}  // namespace collectord::http
