#include "collector_routes.h"
#include "daemon_context.h"
#include "service_routes.h"

namespace collectord::http {

void addApiRoutes(Router& router, ApiContext& context, const Metrics& metrics,
                  const std::string& docs_directory, PublicRoutes open, EventHub* events) {
  addRunRoutes(router, context);
  addBatchRoutes(router, context);
  addJobRoutes(router, context);
  addLatestRoutes(router, context);
  addHistoryRoutes(router, context);
  addCancelRoutes(router, context);
  addProgressRoutes(router, context);
  addLogRoutes(router, context);
  addCollectorListRoutes(router, context);
  addEventRoutes(router, context, events);
  const Access docs = open.docs ? Access::kPublic : Access::kRead;
  addDocsRoutes(router, docs_directory, docs);
  addOpenApiRoutes(router, docs);
  addHealthRoutes(router, context, open.health ? Access::kPublic : Access::kRead);
  addMetricsRoutes(router, metrics, open.metrics ? Access::kPublic : Access::kRead);
  addWebhookRoutes(router, context);
  addNodeRoutes(router, context);
  addDashboardRoutes(router);
}

}  // namespace collectord::http
