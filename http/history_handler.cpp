#include <Poco/JSON/Array.h>

#include "collector_routes.h"
#include "json_views.h"
#include "time_format.h"

namespace collectord::http {
namespace {

constexpr int kDefaultLimit = 10;
constexpr int kMaxLimit = 1000;

// A whole number from 1 to kMaxLimit written in plain digits, or nullopt.
std::optional<int> parseLimit(const std::string& text) {
  if (text.empty() || text.size() > 4) return std::nullopt;
  int n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n < 1 || n > kMaxLimit) return std::nullopt;
  return n;
}

Response history(ApiContext& context, const Request& request) {
  int limit = kDefaultLimit;
  if (const std::string* param = request.queryParam("limit")) {
    const auto parsed = parseLimit(*param);
    if (!parsed) return errorResponse(400, "'limit' must be an integer from 1 to 1000");
    limit = *parsed;
  }
  Poco::JSON::Array::Ptr items = new Poco::JSON::Array;
  for (const JobRecord& job : context.store().history(limit)) items->add(historyItemView(job));
  return Response{200, listingJson("collection_history", items, "total_runs"), "application/json", {}};
}

}  // namespace

void addHistoryRoutes(Router& router, ApiContext& context) {
  router.add("GET", "/api/collectors/history", {Access::kRead, true},
             [&context](const Request& request) { return history(context, request); });
}

}  // namespace collectord::http
