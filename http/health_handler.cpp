#include "json_views.h"
#include "service_routes.h"

namespace collectord::http {

void addHealthRoutes(Router& router, ApiContext& context, Access access) {
  router.add("GET", "/healthz", {access, false}, [](const Request&) {
    return Response{200, R"({"status":"ok"})", "application/json", {}};
  });
  router.add("GET", "/readyz", {access, false}, [&context](const Request&) {
    const std::string reason = context.notReadyReason();
    if (!reason.empty()) return errorResponse(503, "Not ready: " + reason);
    return Response{200, R"({"status":"ready"})", "application/json", {}};
  });
}

void addMetricsRoutes(Router& router, const Metrics& metrics, Access access) {
  router.add("GET", "/metrics", {access, false}, [&metrics](const Request&) {
    return Response{200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8", {}};
  });
}

}  // namespace collectord::http
