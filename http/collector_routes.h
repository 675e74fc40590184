#pragma once

#include "api_context.h"
#include "router.h"

namespace collectord::http {

// The five endpoints of the collector run tracking API, one handler per resource:
// POST /api/collectors/run, GET /api/collectors/runs/batch/{batch_id},
// GET /api/collectors/runs/job/{job_id}, GET /api/collectors/runs/latest,
// GET /api/collectors/history.
void addRunRoutes(Router& router, ApiContext& context);
void addBatchRoutes(Router& router, ApiContext& context);
void addJobRoutes(Router& router, ApiContext& context);
void addLatestRoutes(Router& router, ApiContext& context);
void addHistoryRoutes(Router& router, ApiContext& context);

}  // namespace collectord::http
