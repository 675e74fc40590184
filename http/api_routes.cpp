#include "collector_routes.h"
#include "daemon_context.h"

namespace collectord::http {

void addApiRoutes(Router& router, ApiContext& context) {
  addRunRoutes(router, context);
  addBatchRoutes(router, context);
  addJobRoutes(router, context);
  addLatestRoutes(router, context);
  addHistoryRoutes(router, context);
}

}  // namespace collectord::http
