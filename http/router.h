#pragma once

#include <functional>
#include <string>
#include <vector>

#include "http_types.h"

namespace collectord::http {

using Handler = std::function<Response(const Request&)>;

// Maps method + path to a handler. Patterns are literal segments and {name} placeholders
// ("/api/collectors/runs/job/{id}"); a placeholder matches one non-empty segment.
class Router {
 public:
  void add(const std::string& method, const std::string& pattern, Handler handler);

  // Fills request.params and calls the handler; 404 JSON for an unknown path, 405 JSON with
  // an Allow header when the path exists for other methods.
  Response dispatch(Request& request) const;

  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace collectord::http
