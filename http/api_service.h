#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth.h"
#include "cors.h"
#include "http_types.h"
#include "metrics.h"
#include "rate_limiter.h"
#include "router.h"

namespace collectord::http {

struct ApiPolicy {
  bool auth_required = true;
  // Peers whose X-Forwarded-For is believed when identifying anonymous clients.
  std::vector<std::string> trusted_proxies;
};

// Everything between a parsed request and its response, independent of sockets: CORS, routing,
// authentication and scopes, rate limits, the handler, the mapping of faults to statuses, and
// request metrics. Safe to call from many threads.
class ApiService {
 public:
  ApiService(const Router& router, ApiPolicy policy, std::shared_ptr<const Authenticator> auth,
             CorsPolicy cors, RateLimiter& limiter, Metrics& metrics);

  Response handle(Request& request) const;
  // Counts a request refused before it could be parsed (malformed, too large headers).
  void countUnparsed(int status) const { metrics_.httpRequest("unparsed", status); }
  // Replaces the credentials in effect (configuration reload); requests in flight finish with
  // the old ones.
  void setAuthenticator(std::shared_ptr<const Authenticator> auth);

 private:
  std::shared_ptr<const Authenticator> authenticator() const;
  std::string clientKey(const Request& request) const;
  Response route(Request& request, std::string& route_name) const;

  const Router& router_;
  ApiPolicy policy_;
  mutable std::mutex auth_mutex_;
  std::shared_ptr<const Authenticator> auth_;  // guarded by auth_mutex_
  CorsPolicy cors_;
  RateLimiter& limiter_;
  Metrics& metrics_;
};

// What the client is told when a handler throws; the details go to the log only.
Response faultResponse(const Request& request);

}  // namespace collectord::http
