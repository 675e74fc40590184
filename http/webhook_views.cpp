#include "webhook_views.h"

#include <Poco/JSON/Array.h>

#include "json_views.h"
#include "time_format.h"

namespace collectord::http {
namespace {

// The members of the JSON object `object` ("{...}"), without its braces.
std::string_view membersOf(const std::string& object) {
  return std::string_view(object).substr(1, object.size() - 2);
}

}  // namespace

std::string webhookPayloadJson(const WebhookEvent& event) {
  const bool batch = event.type < WebhookEventType::kJobCompleted;
  const std::string status = batch ? batchJson(event.batch, event.jobs)
                                   : toJson(jobStatusView(event.jobs.front(), event.batch));
  auto head = orderedObject();
  head->set("event", std::string(toString(event.type)));
  head->set("event_id", event.id);
  auto tail = orderedObject();
  tail->set("timestamp", formatTimestamp(event.at));
  std::string body = toJson(head);
  body.pop_back();
  body += ',';
  body += membersOf(status);
  body += ',';
  body += membersOf(toJson(tail));
  body += '}';
  return body;
}

Poco::JSON::Object::Ptr webhookDeliveryView(const WebhookDeliveryRecord& d) {
  using Poco::Dynamic::Var;
  auto o = orderedObject();
  o->set("delivery_id", static_cast<Poco::Int64>(d.delivery_id));
  o->set("event_id", d.event_id);
  o->set("event", d.event_type);
  o->set("endpoint", d.endpoint);
  o->set("state", std::string(toString(d.state)));
  o->set("attempt_count", d.attempts);
  o->set("created_at", formatTimestamp(d.created_at));
  o->set("next_attempt_at",
         d.state == DeliveryState::kPending ? Var(formatTimestamp(d.next_attempt_at)) : Var());
  o->set("finished_at", d.finished_at ? Var(formatTimestamp(*d.finished_at)) : Var());
  o->set("last_status", d.last_status ? Var(*d.last_status) : Var());
  o->set("last_error", d.last_error ? Var(*d.last_error) : Var());
  Poco::JSON::Array::Ptr attempts = new Poco::JSON::Array;
  for (const WebhookAttemptRecord& a : d.attempt_log) {
    auto item = orderedObject();
    item->set("attempt", a.attempt);
    item->set("started_at", formatTimestamp(a.started_at));
    item->set("duration_ms", static_cast<Poco::Int64>(a.duration_ms));
    item->set("http_status", a.http_status ? Var(*a.http_status) : Var());
    item->set("error", a.error ? Var(*a.error) : Var());
    attempts->add(item);
  }
  o->set("attempts", attempts);
  return o;
}

}  // namespace collectord::http
