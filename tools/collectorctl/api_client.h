#pragma once

// collectorctl's HTTP client for collectord's REST API: one kept-alive connection (http or
// https), the API key on every request, bounded timeouts, and every failure to get an answer
// turned into a message a person can act on.

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Object.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "settings.h"

namespace collectorctl {

// One exchange with the server, or why there was none.
struct ApiResponse {
  int status = 0;               // the HTTP status; 0 when no answer came
  std::string transport_error;  // with status 0: why (connection refused, timeout, TLS...)
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  Poco::Dynamic::Var json;  // the parsed body when it is JSON; empty otherwise

  bool answered() const { return status != 0; }
  bool ok() const { return status >= 200 && status < 300; }
  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // The body as a JSON object, or null when it is not one.
  Poco::JSON::Object::Ptr object() const;
  // What went wrong, for a person: the server's `error` message and the status
  // ("Job not found (404)"), "HTTP 502 Bad Gateway" for an answer without one, or the
  // transport error.
  std::string problem() const;
  // Worth trying again later: no answer at all, 408, 502, 503 or 504.
  bool transient() const;
};

class ApiClient {
 public:
  // Builds the client for `settings` (the URL is known to be valid). Call
  // Poco::Net::initializeSSL() first when the URL is https.
  explicit ApiClient(const Settings& settings);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // GET, POST (with a JSON body) and DELETE on `path` ("/api/...", with its query), below the
  // URL's own path. GETs are retried once on a fresh connection when a kept-alive one fails.
  ApiResponse get(const std::string& path);
  ApiResponse post(const std::string& path, const std::string& json_body);
  ApiResponse del(const std::string& path);

  // A new connection of its own and a GET request for `path` with the client's headers, for
  // a caller that reads the response as a stream (server-sent events).
  std::unique_ptr<Poco::Net::HTTPClientSession> newSession(
      std::chrono::seconds receive_timeout) const;
  Poco::Net::HTTPRequest newRequest(const std::string& method, const std::string& path) const;
  // What a Poco or system exception means for this server, for a person.
  std::string describeFailure(const std::exception& error) const;

  // The server's URL as configured.
  const std::string& url() const { return url_; }

 private:
  ApiResponse exchange(const std::string& method, const std::string& path,
                       const std::optional<std::string>& body, bool may_retry);

  std::string url_;
  std::string scheme_;
  std::string host_;
  unsigned short port_ = 0;
  std::string base_path_;  // the URL's path without a trailing slash ("" for the root)
  std::string api_key_;
  Poco::Net::Context::Ptr tls_context_;  // set for https
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
  bool session_used_ = false;  // the kept-alive connection has carried a request
};

// `text` percent-encoded for use as one path segment or one query value.
std::string encodeComponent(std::string_view text);

}  // namespace collectorctl
