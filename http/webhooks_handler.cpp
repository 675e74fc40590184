#include <Poco/JSON/Array.h>

#include "json_views.h"
#include "service_routes.h"
#include "webhook_views.h"

namespace collectord::http {
namespace {

constexpr int kDefaultLimit = 50;
Response deliveries(ApiContext& context, const Request& request) {
  const std::optional<int> limit = request.limitParam(kDefaultLimit);
  if (!limit) return errorResponse(400, kBadLimit);
  std::optional<DeliveryState> state;
  if (const std::string* param = request.queryParam("state")) {
    state = parseDeliveryState(*param);
    if (!state) return errorResponse(400, "'state' must be pending, delivered or failed");
  }
  Poco::JSON::Array::Ptr items = new Poco::JSON::Array;
  for (const WebhookDeliveryRecord& d : context.webhookStore().webhookDeliveries(*limit, state)) {
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
