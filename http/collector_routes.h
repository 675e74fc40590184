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
// POST .../job/{job_id}/cancel, POST .../batch/{batch_id}/cancel, and DELETE on the job and
// batch resources.
void addCancelRoutes(Router& router, ApiContext& context);
// PUT /api/collectors/runs/job/{job_id}: a progress update over HTTP, for a collector that
// cannot use the pipe. The body is one protocol line's JSON object.
void addProgressRoutes(Router& router, ApiContext& context);
// GET /api/collectors/runs/job/{job_id}/log?offset=N&limit=M or ?tail=N.
void addLogRoutes(Router& router, ApiContext& context);
// GET /api/collectors: every configured collector, its settings and runs.
void addCollectorListRoutes(Router& router, ApiContext& context);

class EventHub;
// The live event streams (Server-Sent Events, see event_hub.h): GET /api/events (every run),
// GET .../batch/{batch_id}/events and GET .../job/{job_id}/events. Without a hub they answer 503.
void addEventRoutes(Router& router, ApiContext& context, EventHub* events);

}  // namespace collectord::http
