#pragma once

#include <string>
#include <vector>

#include "http_types.h"

namespace collectord::http {

// The CORS rules of the API reference: exact-match origins from the config, credentials
// allowed, a fixed list of methods and headers, preflights cached for a day.
class CorsPolicy {
 public:
  explicit CorsPolicy(std::vector<std::string> allowed_origins)
      : origins_(std::move(allowed_origins)) {}

  bool allows(const std::string& origin) const;
  // Adds Vary: Origin to every response, and the CORS headers when `origin` is allowed.
  void decorate(const std::string* origin, Response& response) const;
  // The answer to an OPTIONS request on an existing route: 204, with preflight headers only
  // for an allowed origin. `allow` lists the route's methods. Callers still decorate() it.
  Response preflight(const std::string* origin, const std::string& allow) const;

 private:
  std::vector<std::string> origins_;
};

}  // namespace collectord::http
