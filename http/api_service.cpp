#include "api_service.h"

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/String.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <sstream>

#include "job_store.h"
#include "supervisor.h"

namespace collectord::http {
namespace {

unsigned scopeFor(Access access) {
  switch (access) {
    case Access::kRead: return kScopeRead;
    case Access::kRun: return kScopeRun;
    case Access::kAdmin: return kScopeAdmin;
    case Access::kPublic: break;
  }
  return 0;
}

std::int64_t steadyMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

std::int64_t unixSeconds() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

// The store retries its writes every second; a client need not come back sooner.
Response retryLater(Response response) {
  response.headers.emplace_back("Retry-After", "1");
  return response;
}

// Why a body sent to a json_body route cannot be read as JSON, or nullopt when it can: its
// media type (RFC 9110 8.3.1: case-insensitive, parameters allowed) and its coding.
std::optional<Response> unsupportedBody(const Request& request) {
  const std::string* type = request.header("Content-Type");
  if (!type ||
      Poco::icompare(Poco::trim(type->substr(0, type->find(';'))), "application/json") != 0) {
    return errorResponse(415, "Request body must be sent with Content-Type: application/json");
  }
  const std::string* coding = request.header("Content-Encoding");
  if (coding && Poco::icompare(Poco::trim(*coding), "identity") != 0) {
    return errorResponse(
        415, "Content-Encoding '" + *coding + "' is not supported: send the body uncompressed");
  }
  return std::nullopt;
}

}  // namespace

Response faultResponse(const Request& request) {
  Poco::Logger& log = Poco::Logger::get("collectord.http");
  try {
    throw;
  } catch (const ShuttingDownError&) {
    return errorResponse(503, "collectord is shutting down; try again later");
  } catch (const BusyError& e) {
    log.error("%s %s: %s", request.method, request.path, std::string(e.what()));
    return retryLater(errorResponse(503, "collectord is busy; try again shortly"));
  } catch (const StoreError& e) {
    log.error("%s %s: store unavailable: %s", request.method, request.path, std::string(e.what()));
    return retryLater(errorResponse(503, "The job store is unavailable; try again shortly"));
  } catch (const Poco::Exception& e) {
    log.error("%s %s: %s", request.method, request.path, e.displayText());
  } catch (const std::exception& e) {
    log.error("%s %s: %s", request.method, request.path, std::string(e.what()));
  }
  return errorResponse(500, "Internal server error");
}

ApiService::ApiService(const Router& router, ApiPolicy policy,
                       std::shared_ptr<const Authenticator> auth, CorsPolicy cors,
                       RateLimiter& limiter, Metrics& metrics)
    : router_(router),
      policy_(std::move(policy)),
      auth_(std::move(auth)),
      cors_(std::move(cors)),
      limiter_(limiter),
      metrics_(metrics) {}

void ApiService::setAuthenticator(std::shared_ptr<const Authenticator> auth) {
  std::lock_guard lock(auth_mutex_);
  auth_ = std::move(auth);
}

std::shared_ptr<const Authenticator> ApiService::authenticator() const {
  std::lock_guard lock(auth_mutex_);
  return auth_;
}

std::string ApiService::clientKey(const Request& request) const {
  if (!request.identity.empty()) return request.identity;
  std::string client = request.client;
  const auto trusted = [this](const std::string& address) {
    return std::find(policy_.trusted_proxies.begin(), policy_.trusted_proxies.end(), address) !=
           policy_.trusted_proxies.end();
  };
  const std::string* forwarded = request.header("X-Forwarded-For");
  if (forwarded && trusted(client)) {
    // Walk from the nearest hop outwards; the first address not ours is the client.
    std::vector<std::string> hops;
    std::istringstream list(*forwarded);
    std::string hop;
    while (std::getline(list, hop, ',')) hops.push_back(Poco::trim(hop));
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
      if (it->empty()) break;
      client = *it;
      if (!trusted(*it)) break;
    }
  }
  return "ip:" + client;
}

Response ApiService::handle(Request& request) const {
  std::string route_name = "unmatched";
  Response response;
  try {
    response = route(request, route_name);
  } catch (...) {
    response = faultResponse(request);
  }
  cors_.decorate(request.header("Origin"), response);
  metrics_.httpRequest(route_name, response.status);
  return response;
}

Response ApiService::route(Request& request, std::string& route_name) const {
  if (request.transport_error) return *request.transport_error;
  Response error;
  std::string allow;
  if (request.method == "OPTIONS") {
    Request probe = request;
    probe.method = "\x01";  // matches no route: resolve only collects the allowed methods
    router_.resolve(probe, error, allow);
    if (allow.empty()) return error;
    route_name = "preflight";
    return cors_.preflight(request.header("Origin"), allow);
  }
  const Router::Route* route = router_.resolve(request, error, allow);
  if (!route) return error;
  route_name = route->pattern;

  const RouteOptions& options = route->options;
  if (options.access != Access::kPublic && policy_.auth_required) {
    if (request.headerCount("X-API-Key") > 1 || request.headerCount("Authorization") > 1) {
      ++metrics_.auth_failed;
      Response r = errorResponse(401, "Invalid credentials: send one X-API-Key or one Authorization header");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"collectord\", error=\"invalid_request\"");
      return r;
    }
    const auto auth = authenticator();
    const Authenticator::Result result =
        auth->authenticate(request.header("X-API-Key"), request.header("Authorization"), unixSeconds());
    if (!result.identity) {
      ++metrics_.auth_failed;
      Response r = result.presented
                       ? errorResponse(401, "Invalid credentials: " + result.reason)
                       : errorResponse(401,
                                       "Authentication required: send an X-API-Key header or "
                                       "Authorization: Bearer <token>");
      r.headers.emplace_back("WWW-Authenticate",
                             result.presented ? "Bearer realm=\"collectord\", error=\"invalid_token\""
                                              : "Bearer realm=\"collectord\"");
      return r;
    }
    request.identity = result.identity->subject;
    const unsigned needed = scopeFor(options.access);
    if (!result.identity->has(needed)) {
      return errorResponse(403, "Forbidden: this request needs the '" + describeScopes(needed) +
                                    "' scope; these credentials have '" +
                                    describeScopes(result.identity->scopes) + "'");
    }
  }

  std::vector<std::pair<std::string, std::string>> limit_headers;
  if (options.rate_limited) {
    const RateLimiter::Decision d = limiter_.check(clientKey(request), steadyMillis());
    limit_headers = {{"X-RateLimit-Limit", std::to_string(d.limit)},
                     {"X-RateLimit-Remaining", std::to_string(d.remaining)},
                     {"X-RateLimit-Reset", std::to_string(d.reset_seconds)}};
    if (!d.allowed) {
      ++metrics_.rate_limited;
      Response r = errorResponse(429, "Rate limit exceeded: " + std::to_string(d.limit) +
                                          " requests per minute; retry in " +
                                          std::to_string(d.reset_seconds) + " s");
      r.headers = limit_headers;
      r.headers.emplace_back("Retry-After", std::to_string(std::max(1, d.reset_seconds)));
      return r;
    }
  }
  if (options.json_body) {
    if (std::optional<Response> refusal = unsupportedBody(request)) {
      refusal->headers.insert(refusal->headers.end(), limit_headers.begin(), limit_headers.end());
      return *refusal;
    }
  }
  Response response = route->handler(request);
  response.headers.insert(response.headers.end(), limit_headers.begin(), limit_headers.end());
  return response;
}

}  // namespace collectord::http
