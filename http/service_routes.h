#pragma once

#include <string>

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

}  // namespace collectord::http
