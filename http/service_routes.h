#pragma once

#include <string>
#include <string_view>

#include "api_context.h"
#include "metrics.h"
#include "router.h"

namespace collectord::http {

// GET /api/docs (a JSON index) and GET /api/docs/{name}.md (the Markdown files of `directory`;
// nothing outside it, whatever the encoding or symlinks).
void addDocsRoutes(Router& router, const std::string& directory, Access access);
// GET /healthz (the process answers) and GET /readyz (store reachable, not shutting down).
void addHealthRoutes(Router& router, ApiContext& context, Access access);
// GET /metrics in the Prometheus text format.
void addMetricsRoutes(Router& router, const Metrics& metrics, Access access);
// GET /api/openapi.json: openApiDocument() as application/json.
void addOpenApiRoutes(Router& router, Access access);
// GET /api/webhooks/deliveries?limit=N&state=S (admin): the webhook outbox, newest first, each
// delivery with its attempts.
void addWebhookRoutes(Router& router, ApiContext& context);
// GET /api/nodes (cluster mode; 404 JSON otherwise).
void addNodeRoutes(Router& router, ApiContext& context);
// The built-in dashboard page, always public (it holds no data; the API calls it makes carry
// the operator's key): GET / and GET /dashboard redirect to GET /dashboard/, which serves
// web/index.html; GET /dashboard/{asset} serves app.js, app.css and favicon.svg. Each with its
// content type, an ETag (304 on If-None-Match), Cache-Control: no-cache and a
// Content-Security-Policy that allows only the page's own origin.
void addDashboardRoutes(Router& router);

// The OpenAPI 3.1 document of every route above and in collector_routes.h (http/openapi.json,
// embedded at build time). Valid JSON; lives as long as the program.
std::string_view openApiDocument();

}  // namespace collectord::http
