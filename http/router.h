#pragma once

#include <functional>
#include <string>
#include <vector>

#include "http_types.h"

namespace collectord::http {

using Handler = std::function<Response(const Request&)>;

// Who may call a route.
enum class Access { kPublic, kRead, kRun, kAdmin };

struct RouteOptions {
  Access access = Access::kRead;
  bool rate_limited = false;  // counts against the per-client request limit
  // The body must be sent as application/json: anything else is refused with 415 before the
  // handler runs. Browsers send text/plain and form bodies across origins without asking (no
  // CORS preflight), so this keeps a web page from triggering runs on a daemon without auth.
  bool json_body = false;
};

// Maps method + path to a handler. Patterns are literal segments and {name} placeholders
// ("/api/collectors/runs/job/{id}"); a placeholder matches one non-empty segment.
class Router {
 public:
  void add(const std::string& method, const std::string& pattern, RouteOptions options,
           Handler handler);

  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    RouteOptions options;
    Handler handler;
  };

  // The route for request.method and request.path, with request.params filled in; else null
  // and `error` set: 404 JSON for an unknown path, 405 JSON with an Allow header when the path
  // exists for other methods. `allow` receives the path's methods either way.
  const Route* resolve(Request& request, Response& error, std::string& allow) const;
  // Resolves and calls the handler.
  Response dispatch(Request& request) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace collectord::http
