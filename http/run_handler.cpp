#include <Poco/JSON/Array.h>
#include <Poco/JSON/JSONException.h>
#include <Poco/JSON/Parser.h>

#include <set>

#include "collector_routes.h"
#include "json_views.h"

namespace collectord::http {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Nesting beyond this is refused, not recursed into.
constexpr std::size_t kMaxJsonDepth = 32;

bool isJsonScalar(const std::string& body) {
  try {
    Poco::JSON::Parser parser;
    parser.setDepth(kMaxJsonDepth);
    return parser.parse("[" + body + "]").extract<Poco::JSON::Array::Ptr>()->size() == 1;
  } catch (const Poco::Exception&) {
    return false;
  }
}

Response trigger(ApiContext& context, const Request& request) {
  Poco::Dynamic::Var parsed;
  try {
    Poco::JSON::Parser parser;
    parser.setDepth(kMaxJsonDepth);
    parsed = parser.parse(request.body);
  } catch (const Poco::Exception& e) {
    // Poco's parser refuses top-level scalars; a body that is valid JSON inside an array is
    // one, and deserves the more useful message.
    if (isJsonScalar(request.body)) return errorResponse(400, "Request body must be a JSON object");
    return errorResponse(400, "Request body is not valid JSON: " + e.message());
  }
  if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) {
    return errorResponse(400, "Request body must be a JSON object");
  }
  const auto body = parsed.extract<Poco::JSON::Object::Ptr>();

  if (!body->has("collectors") || body->isNull("collectors")) {
    return errorResponse(400, "'collectors' is required: a list of collector names");
  }
  const auto list = body->getArray("collectors");
  if (!list) return errorResponse(400, "'collectors' must be a list of strings");
  std::vector<std::string> names;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const Poco::Dynamic::Var item = list->get(static_cast<unsigned>(i));
    if (!item.isString()) return errorResponse(400, "'collectors' must be a list of strings");
    names.push_back(item.extract<std::string>());
  }
  if (names.empty()) return errorResponse(400, "'collectors' must name at least one collector");

  std::vector<std::string> unknown, duplicates;
  std::set<std::string> seen;
  for (const std::string& name : names) {
    if (!context.hasCollector(name)) {
      unknown.push_back(name);
    } else if (!seen.insert(name).second) {
      duplicates.push_back(name);
    }
  }
  if (!unknown.empty()) return errorResponse(400, "Unknown collectors: " + joined(unknown));
  if (!duplicates.empty()) return errorResponse(400, "Duplicate collectors: " + joined(duplicates));

  Priority priority = Priority::kNormal;
  if (body->has("priority")) {
    const Poco::Dynamic::Var value = body->get("priority");
    const auto parsed_priority =
        value.isString() ? parsePriority(value.extract<std::string>()) : std::nullopt;
    if (!parsed_priority) {
      return errorResponse(400, "'priority' must be one of: high, normal, low");
    }
    priority = *parsed_priority;
  }

  const TriggerResult result = context.trigger(names, priority);
  auto out = orderedObject();
  out->set("batch_id", result.batch.batch_id);
  Poco::JSON::Array::Ptr jobs = new Poco::JSON::Array;
  for (std::size_t i = 0; i < result.jobs.size(); ++i) {
    auto view = triggeredJobView(result.jobs[i]);
    if (result.skipped[i]) {
      // overlap = skip: the collector's active run, which may belong to another batch.
      view->set("skipped", true);
      view->set("batch_id", result.jobs[i].batch_id);
    }
    jobs->add(view);
  }
  out->set("collectors", jobs);
  // 201 when a batch was created; 200 when every collector was skipped and nothing was.
  return Response{result.created ? 201 : 200, toJson(out), "application/json", {}};
}

}  // namespace

void addRunRoutes(Router& router, ApiContext& context) {
  router.add("POST", "/api/collectors/run", {Access::kRun, false, true},
             [&context](const Request& request) { return trigger(context, request); });
}

}  // namespace collectord::http
