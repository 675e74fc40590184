#pragma once

#include <Poco/JSON/Object.h>

#include <string>

#include "webhook.h"
#include "webhook_store.h"

namespace collectord::http {

// A webhook's body: {"event", "event_id", then the fields of the status endpoint's answer for
// the batch (GET /api/collectors/runs/batch/{id}, its "collectors" included) or the job (GET
// /api/collectors/runs/job/{id}), then "timestamp": when it ended}. The seed's payload (batch_id,
// status, collectors, timestamp) with the same shapes dashboards already parse.
std::string webhookPayloadJson(const WebhookEvent& event);

// One element of GET /api/webhooks/deliveries' "deliveries", attempts included.
Poco::JSON::Object::Ptr webhookDeliveryView(const WebhookDeliveryRecord& delivery);

}  // namespace collectord::http
