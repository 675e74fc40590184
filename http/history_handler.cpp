#include <Poco/JSON/Array.h>

#include "collector_routes.h"
#include "json_views.h"
#include "time_format.h"

namespace collectord::http {
namespace {

constexpr int kDefaultLimit = 10;
Response history(ApiContext& context, const Request& request) {
  const std::optional<int> limit = request.limitParam(kDefaultLimit);
  if (!limit) return errorResponse(400, kBadLimit);
  Poco::JSON::Array::Ptr items = new Poco::JSON::Array;
  for (const JobRecord& job : context.store().history(*limit)) items->add(historyItemView(job));
  return Response{
      200, listingJson("collection_history", items, "total_runs"), "application/json", {}};
}

}  // namespace

void addHistoryRoutes(Router& router, ApiContext& context) {
  router.add("GET", "/api/collectors/history", {Access::kRead, true},
             [&context](const Request& request) { return history(context, request); });
}

}  // namespace collectord::http
