#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "stream_connection.h"

namespace collectord::http {

// What a handler returns; the server writes it.
struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // Set by a handler that streams its body (Server-Sent Events): the server sends the status
  // and headers with no length and Connection: close, and hands the connection to this instead
  // of writing `body`, so the stream holds none of the server's worker threads.
  StreamTakeOver take_over;
};

// What a handler sees of a request: already routed, body read and bounded.
struct Request {
  std::string method;
  std::string path;                                     // decoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::map<std::string, std::string> params;            // from the route pattern, e.g. {"id"}
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string body;
  std::string client;  // peer address
  std::string identity;  // who was authenticated, for the access log ("" when nobody)
  // Set by the transport when the request could not be read whole; the pipeline answers it
  // (with CORS headers and metrics like any other response).
  std::optional<Response> transport_error;

  // The first value of header `name` (case-insensitive), or nullptr when absent.
  const std::string* header(const std::string& name) const;
  // How many times header `name` occurs.
  int headerCount(const std::string& name) const;

  // The last value of query parameter `name`, or nullptr when absent.
  const std::string* queryParam(const std::string& name) const;
  // The `limit` query parameter of list endpoints: `fallback` when absent, nullopt when it is not
  // a whole number from 1 to 1000 in plain digits (answer kBadLimit then).
  std::optional<int> limitParam(int fallback) const;
};

// What list endpoints answer, with 400, to a `limit` that limitParam refuses.
inline constexpr const char* kBadLimit = "'limit' must be an integer from 1 to 1000";

// {"error": message} with `status`: the one shape of every error the API returns. Bytes of
// `message` that are not well-formed UTF-8 are written as "\xHH", so the body is always UTF-8.
Response errorResponse(int status, const std::string& message);

}  // namespace collectord::http
