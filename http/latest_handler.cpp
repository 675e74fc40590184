#include <Poco/JSON/Array.h>
#include <Poco/String.h>

#include <set>
#include <sstream>

#include "collector_routes.h"
#include "json_views.h"
#include "time_format.h"

namespace collectord::http {
namespace {

Response latest(ApiContext& context, const Request& request) {
  std::vector<std::string> names;
  if (const std::string* param = request.queryParam("collectors")) {
    std::istringstream list(*param);
    std::string name;
    std::set<std::string> seen;
    std::string unknown;
    while (std::getline(list, name, ',')) {
      name = Poco::trim(name);
      if (name.empty() || !seen.insert(name).second) continue;
      if (!context.hasCollector(name)) unknown += (unknown.empty() ? "" : ", ") + name;
      names.push_back(name);
    }
    if (names.empty()) return errorResponse(400, "'collectors' must name at least one collector");
    if (!unknown.empty()) return errorResponse(400, "Unknown collectors: " + unknown);
  } else {
    names = context.collectorNames();
  }

  Poco::JSON::Array::Ptr runs = new Poco::JSON::Array;
  for (const std::string& name : names) {
    const auto job = context.store().latestRun(name);
    if (!job) continue;
    runs->add(jobStatusView(*job, context.store().findBatch(job->batch_id)));
  }
  return Response{200, listingJson("latest_runs", runs, "total_runs"), "application/json", {}};
}

}  // namespace

void addLatestRoutes(Router& router, ApiContext& context) {
  router.add("GET", "/api/collectors/runs/latest", {Access::kRead, true},
             [&context](const Request& request) { return latest(context, request); });
}

}  // namespace collectord::http
