#include "router.h"

#include <Poco/JSON/Object.h>
#include <Poco/String.h>

#include <sstream>

#include "utf8.h"

namespace collectord::http {
namespace {

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> segments;
  std::size_t start = 1;  // paths start with '/'
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

bool match(const Router::Route& route, const std::vector<std::string>& segments,
           std::map<std::string, std::string>* params) {
  if (route.segments.size() != segments.size()) return false;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::string& want = route.segments[i];
    if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
      if (segments[i].empty()) return false;
      if (params) (*params)[want.substr(1, want.size() - 2)] = segments[i];
    } else if (want != segments[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

const std::string* Request::header(const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (Poco::icompare(key, name) == 0) return &value;
  }
  return nullptr;
}

int Request::headerCount(const std::string& name) const {
  int n = 0;
  for (const auto& entry : headers) n += Poco::icompare(entry.first, name) == 0 ? 1 : 0;
  return n;
}

const std::string* Request::queryParam(const std::string& name) const {
  const std::string* found = nullptr;
  for (const auto& [key, value] : query) {
    if (key == name) found = &value;
  }
  return found;
}

std::optional<int> Request::limitParam(int fallback) const {
  const std::string* text = queryParam("limit");
  if (!text) return fallback;
  if (text->empty() || text->size() > 4) return std::nullopt;
  int n = 0;
  for (char c : *text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n < 1 || n > 1000) return std::nullopt;
  return n;
}

Response errorResponse(int status, const std::string& message) {
  Poco::JSON::Object body;
  // Messages quote what the client sent (a path, a name); Poco would copy stray bytes through.
  body.set("error", escapeInvalidUtf8(message));
  std::ostringstream out;
  body.stringify(out);
  return Response{status, out.str(), "application/json", {}};
}

void Router::add(const std::string& method, const std::string& pattern, RouteOptions options,
                 Handler handler) {
  routes_.push_back(Route{method, pattern, splitPath(pattern), options, std::move(handler)});
}

const Router::Route* Router::resolve(Request& request, Response& error, std::string& allow) const {
  const std::vector<std::string> segments = splitPath(request.path);
  const Route* found = nullptr;
  allow.clear();
  for (const Route& route : routes_) {
    if (!match(route, segments, nullptr)) continue;
    if (route.method == request.method && !found) found = &route;
    if (allow.find(route.method) == std::string::npos) {
      allow += (allow.empty() ? "" : ", ") + route.method;
    }
  }
  if (found) {
    match(*found, segments, &request.params);
    return found;
  }
  if (allow.empty()) {
    error = errorResponse(404, "Not found: " + request.path);
  } else {
    error = errorResponse(405, "Method " + request.method + " is not allowed on " + request.path);
    error.headers.emplace_back("Allow", allow);
  }
  return nullptr;
}

Response Router::dispatch(Request& request) const {
  Response error;
  std::string allow;
  const Route* route = resolve(request, error, allow);
  return route ? route->handler(request) : error;
}

}  // namespace collectord::http
