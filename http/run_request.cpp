#include "run_request.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/JSONException.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <set>

#include "utf8.h"

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

// Poco's words for a parse failure, in ours where its own mislead: a number too large for 64
// bits or a double is valid JSON, and "Maximum depth exceeded" does not say which maximum.
std::string describeParseError(const std::string& poco) {
  if (poco.find("Maximum depth exceeded") != std::string::npos) {
    return "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  }
  const std::size_t colon = poco.find(": ");
  if (poco.rfind("Not a valid ", 0) == 0 && colon != std::string::npos) {
    return "number out of range: " + poco.substr(colon + 2);
  }
  return poco;
}

RunRequestError refused(std::string message) { return RunRequestError{std::move(message)}; }

}  // namespace

std::variant<RunRequest, RunRequestError> parseRunRequest(
    std::string_view body_text, const std::function<bool(const std::string&)>& is_known) {
  const std::string text(body_text);
  // Checked before Poco sees the text, which calls nothing at all "unexpected end of text" and
  // a byte that is not UTF-8 an "unterminated string literal".
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return refused("Request body is not valid JSON: the body is empty");
  }
  if (const std::size_t valid = validUtf8Prefix(text); valid < text.size()) {
    return refused("Request body is not valid JSON: invalid UTF-8 at byte " +
                   std::to_string(valid + 1));
  }
  Poco::Dynamic::Var parsed;
  try {
    Poco::JSON::Parser parser;
    parser.setDepth(kMaxJsonDepth);
    parsed = parser.parse(text);
  } catch (const Poco::Exception& e) {
    // Poco's parser refuses top-level scalars; a body that is valid JSON inside an array is
    // one, and deserves the more useful message.
    if (isJsonScalar(text)) return refused("Request body must be a JSON object");
    return refused("Request body is not valid JSON: " + describeParseError(e.message()));
  }
  if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) {
    return refused("Request body must be a JSON object");
  }
  const auto body = parsed.extract<Poco::JSON::Object::Ptr>();

  if (!body->has("collectors") || body->isNull("collectors")) {
    return refused("'collectors' is required: a list of collector names");
  }
  const auto list = body->getArray("collectors");
  if (!list) return refused("'collectors' must be a list of strings");
  RunRequest request;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const Poco::Dynamic::Var item = list->get(static_cast<unsigned>(i));
    if (!item.isString()) return refused("'collectors' must be a list of strings");
    request.collectors.push_back(item.extract<std::string>());
    // "Unknown collectors: " followed by nothing would tell a person nothing.
    if (request.collectors.back().empty()) {
      return refused("'collectors' must not contain an empty name");
    }
  }
  if (request.collectors.empty()) return refused("'collectors' must name at least one collector");

  std::vector<std::string> unknown, duplicates;
  std::set<std::string> seen;
  for (const std::string& name : request.collectors) {
    if (!is_known(name)) {
      unknown.push_back(name);
    } else if (!seen.insert(name).second) {
      duplicates.push_back(name);
    }
  }
  if (!unknown.empty()) return refused("Unknown collectors: " + joined(unknown));
  if (!duplicates.empty()) return refused("Duplicate collectors: " + joined(duplicates));

  if (body->has("priority")) {
    const Poco::Dynamic::Var value = body->get("priority");
    const auto priority =
        value.isString() ? parsePriority(value.extract<std::string>()) : std::nullopt;
    if (!priority) return refused("'priority' must be one of: high, normal, low");
    request.priority = *priority;
  }
  return request;
}

}  // namespace collectord::http
