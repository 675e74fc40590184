#include <Poco/JSON/Array.h>

#include "json_views.h"
#include "service_routes.h"
#include "webhook_views.h"

namespace collectord::http {
namespace {

constexpr int kDefaultLimit = 50;
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

Response deliveries(ApiContext& context, const Request& request) {
  int limit = kDefaultLimit;
  if (const std::string* param = request.queryParam("limit")) {
    const auto parsed = parseLimit(*param);
    if (!parsed) return errorResponse(400, "'limit' must be an integer from 1 to 1000");
    limit = *parsed;
  }
  std::optional<DeliveryState> state;
  if (const std::string* param = request.queryParam("state")) {
    state = parseDeliveryState(*param);
    if (!state) return errorResponse(400, "'state' must be pending, delivered or failed");
  }
  Poco::JSON::Array::Ptr items = new Poco::JSON::Array;
  for (const WebhookDeliveryRecord& d : context.webhookStore().webhookDeliveries(limit, state)) {
    items->add(webhookDeliveryView(d));
  }
  return Response{
      200, listingJson("deliveries", items, "total_deliveries"), "application/json", {}};
}

}  // namespace

void addWebhookRoutes(Router& router, ApiContext& context) {
  router.add("GET", "/api/webhooks/deliveries", {Access::kAdmin, false},
             [&context](const Request& request) { return deliveries(context, request); });
}

}  // namespace collectord::http
