#include <charconv>
#include <optional>

#include "collector_routes.h"
#include "event_hub.h"
#include "ids.h"

namespace collectord::http {
namespace {

// The Last-Event-ID a reconnecting client sends: one of our IDs, or nothing usable (then the
// stream starts from the current state, which loses nothing).
std::optional<std::uint64_t> lastEventId(const Request& request) {
  const std::string* text = request.header("Last-Event-ID");
  if (!text || text->empty()) return std::nullopt;
  std::uint64_t id = 0;
  const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), id);
  if (error != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return id;
}

Response openStream(EventHub* hub, const Request& request, Topic topic) {
  if (!hub) return errorResponse(503, "Event streams are not available on this server");
  const std::optional<std::uint64_t> last = lastEventId(request);
  // 204 tells an EventSource that reconnects after the end to stop reconnecting.
  if (last && topic.kind != Topic::Kind::kAll && hub->endedBy(topic, *last)) {
    return Response{204, "", "", {}};
  }
  std::shared_ptr<void> slot = hub->reserveStream();
  if (!slot) {
    Response busy = errorResponse(503, "Too many event streams are open (events.max_streams = " +
                                           std::to_string(hub->maxStreams()) +
                                           "); try again later, or poll the status");
    busy.headers.emplace_back("Retry-After", "5");
    return busy;
  }
  Response response{
      200, "", "text/event-stream", {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}}};
  response.take_over = [hub, topic = std::move(topic), last, slot = std::move(slot)](
                           std::unique_ptr<StreamConnection> connection, std::string head) {
    hub->stream(std::move(connection), std::move(head), topic, last, slot);
  };
  return response;
}

}  // namespace

void addEventRoutes(Router& router, ApiContext& context, EventHub* events) {
  router.add("GET", "/api/events", {Access::kRead, true}, [events](const Request& request) {
    return openStream(events, request, Topic{Topic::Kind::kAll, ""});
  });
  router.add("GET", "/api/collectors/runs/batch/{batch_id}/events", {Access::kRead, true},
             [&context, events](const Request& request) {
               const std::string& id = request.params.at("batch_id");
               if (!isBatchId(id) || !context.store().findBatch(id)) {
                 return errorResponse(404, "Batch not found");
               }
               return openStream(events, request, Topic{Topic::Kind::kBatch, id});
             });
  router.add("GET", "/api/collectors/runs/job/{job_id}/events", {Access::kRead, true},
             [&context, events](const Request& request) {
               const std::string& id = request.params.at("job_id");
               if (!isJobId(id) || !context.store().findJob(id)) {
                 return errorResponse(404, "Job not found");
               }
               return openStream(events, request, Topic{Topic::Kind::kJob, id});
             });
}

}  // namespace collectord::http
