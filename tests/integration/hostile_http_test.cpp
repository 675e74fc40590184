// One table of hostile HTTP requests against the real daemon (auth required, API keys and HS256
// tokens, a documentation folder, one completed run to aim at). Each row is the exact bytes put
// on the wire and the exact answer: status and the whole {"error": ...} text. After the table
// the daemon must still be healthy, serve a normal run, and hold no trace of any row.
//
// Neighbouring suites cover other hostile input and are not repeated here: bad_input_test.cpp
// (each run-body validation rule once), request_limits_test.cpp (body, URI and header limits,
// garbage request lines, slow clients, 10,000-deep JSON), auth_test.cpp (every credential rule
// with well-formed requests), docs_endpoint_test.cpp (document names and symlinks).
//
// Decisions this table pins (documented in docs/COLLECTOR_RUN_TRACKING_API.md):
// - unknown fields of a run body are ignored (forward compatibility); when a key repeats, the
//   last occurrence counts;
// - bodies of POST /api/collectors/run and PUT .../job/{id} must be application/json (415
//   otherwise), so that a web page cannot post a text/plain or form body across origins;
// - paths are percent-decoded once, then routed without resolving dot segments: "%2e%2e" is a
//   name, "%2F" separates segments, nothing leaves the documentation folder;
// - framing a proxy could read differently (two lengths, a length with chunking, an unknown
//   transfer coding, a bad version, a malformed header name or value) is refused, and the
//   connection closed, before any body is read.

#include <Poco/Base64Encoder.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

const std::string kRunKey = "hostile-runner-key-5d1c9a7e3b";   // read,run
const std::string kReadKey = "hostile-reader-key-8e2f6b4a0c";  // read
const std::string kJwtSecret = "hostile-jwt-secret-0f1e2d3c4b5a";

const std::string kKey = "X-API-Key: " + kRunKey;
const std::string kReader = "X-API-Key: " + kReadKey;
const std::string kJson = "Content-Type: application/json";

const std::string kMissingCredentials =
    "Authentication required: send an X-API-Key header or Authorization: Bearer <token>";
const std::string kBadLimit = "'limit' must be an integer from 1 to 1000";
const std::string kNotAList = "'collectors' must be a list of strings";
const std::string kBadPriority = "'priority' must be one of: high, normal, low";
const std::string kTooDeep = "Request body is not valid JSON: nested deeper than 32 levels";
const std::string kNotJsonType = "Request body must be sent with Content-Type: application/json";
const std::string kInvalidLength = "Malformed HTTP request: invalid Content-Length";

// One request as bytes: request line, Host, Connection: close unless `keep_alive`, `headers`
// (each "Name: value"), a Content-Length when there is a body, then the body.
std::string http(const std::string& method, const std::string& target,
                 const std::vector<std::string>& headers = {},
                 const std::optional<std::string>& body = std::nullopt, bool keep_alive = false) {
  std::string text = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n";
  if (!keep_alive) text += "Connection: close\r\n";
  for (const std::string& header : headers) text += header + "\r\n";
  if (body) text += "Content-Length: " + std::to_string(body->size()) + "\r\n";
  return text + "\r\n" + body.value_or("");
}
std::string get(const std::string& target) { return http("GET", target, {kKey}); }
std::string postRun(const std::string& body) {
  return http("POST", "/api/collectors/run", {kKey, kJson}, body);
}
std::string put(const std::string& job_id, const std::string& body) {
  return http("PUT", "/api/collectors/runs/job/" + job_id, {kKey, kJson}, body);
}

// A valid trigger that rides behind a request whose framing is in doubt. Were it ever read as a
// request of its own, it would answer a second time and leave a run in the history.
const std::string kSmuggledRun = http("POST", "/api/collectors/run", {kKey, kJson},
                                      std::string(R"({"collectors":["alpha"]})"), true);

// A request head with `framing` headers (no Connection: close), then `rest` and the smuggled
// trigger: everything a desynchronised server would take for a second request.
std::string framed(const std::string& framing, const std::string& rest) {
  return "POST /api/collectors/run HTTP/1.1\r\nHost: localhost\r\n" + kKey + "\r\n" + kJson +
         "\r\n" + framing + "\r\n" + rest + kSmuggledRun;
}

std::string base64Url(const std::string& bytes) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
  encoder << bytes;
  encoder.close();
  return out.str();
}

std::int64_t unixNow() { return static_cast<std::int64_t>(std::time(nullptr)); }

// An HS256 token signed with the daemon's secret, expiring at `exp`, with scopes read and run.
std::string signedToken(std::int64_t exp) {
  Poco::JWT::Token token;
  token.setType("JWT");
  token.payload().set("exp", static_cast<Poco::Int64>(exp));
  token.payload().set("sub", std::string("hostile"));
  token.payload().set("scope", std::string("read run"));
  Poco::JWT::Signer signer(kJwtSecret);
  return signer.sign(token, Poco::JWT::Signer::ALGO_HS256);
}

// A token whose header names `alg` and whose signature is empty.
std::string unsignedToken(const std::string& alg) {
  return base64Url(R"({"alg":")" + alg + R"(","typ":"JWT"})") + "." +
         base64Url(R"({"exp":)" + std::to_string(unixNow() + 600) +
                   R"(,"sub":"hostile","scope":"read run admin"})") +
         ".";
}

struct Row {
  std::string what;
  std::string bytes;  // sent exactly as they are
  int status;
  std::string error;  // the whole "error" text
  std::string allow;  // the Allow header a 405 must carry
};

// The table. `job` is a completed job, `batch` its batch.
std::vector<Row> hostileRequests(const std::string& job, const std::string& batch) {
  const std::string deep(100000, '[');
  const std::string job_path = "/api/collectors/runs/job/" + job;
  return {
      // Run bodies that are not JSON, or JSON collectord cannot take.
      {"a trailing comma", postRun(R"({"collectors": ["alpha"],})"), 400,
       "Request body is not valid JSON: unexpected byte '}' in value"},
      {"single-quoted strings", postRun(R"({"collectors": ['alpha']})"), 400,
       "Request body is not valid JSON: unexpected byte ''' in value"},
      {"a missing comma", postRun(R"({"collectors": ["alpha"] "priority": "high"})"), 400,
       "Request body is not valid JSON: expected ',' or '}' after member value"},
      {"a raw NUL inside a string", postRun("{\"collectors\": [\"al\0pha\"]}"s), 400,
       "Request body is not valid JSON: unescaped control character in string"},
      {"a byte that is not UTF-8", postRun("{\"collectors\": [\"\xff\"]}"), 400,
       "Request body is not valid JSON: invalid UTF-8 at byte 18"},
      {"an overlong UTF-8 slash", postRun("{\"collectors\": [\"a\xc0\xaf\"]}"), 400,
       "Request body is not valid JSON: invalid UTF-8 at byte 19"},
      {"a byte order mark", postRun("\xef\xbb\xbf{\"collectors\": [\"alpha\"]}"), 400,
       "Request body is not valid JSON: unexpected byte '\\xEF' in value"},
      {"a lone UTF-16 surrogate", postRun(R"({"collectors": ["\ud800"]})"), 400,
       "Request body is not valid JSON: invalid continuation for surrogate pair '\"', "
       "expected '\\'"},
      {"NaN", postRun(R"({"collectors": NaN})"), 400,
       "Request body is not valid JSON: unexpected byte 'N' in value"},
      {"a second document after the first",
       postRun(R"({"collectors": ["nope"]} {"collectors": ["alpha"]})"), 400,
       "Request body is not valid JSON: Excess characters found after JSON end."},
      {"a NUL after the document", postRun("{\"collectors\": [\"alpha\"]}\0"s), 400,
       "Request body is not valid JSON: Excess characters found after JSON end."},
      {"an empty body with a length of 0", postRun(""), 400,
       "Request body is not valid JSON: the body is empty"},
      {"a body of white space", postRun(" \r\n\t "), 400,
       "Request body is not valid JSON: the body is empty"},
      {"a POST with neither length nor chunks", http("POST", "/api/collectors/run", {kKey, kJson}),
       400, "Request body is not valid JSON: the body is empty"},
      {"100,000 open brackets", postRun(deep), 400, kTooDeep},
      {"100,000 open brackets as the priority",
       postRun(R"({"collectors": ["alpha"], "priority": )" + deep), 400, kTooDeep},
      {"33 nested objects in an unknown field",
       [] {
         std::string nested;
         for (int i = 0; i < 33; ++i) nested += R"({"a":)";
         return postRun(R"({"collectors": ["alpha"], "x": )" + nested + "1" + std::string(33, '}') +
                        "}");
       }(),
       400, kTooDeep},
      {"a number beyond double", postRun(R"({"collectors": [1e999999]})"), 400,
       "Request body is not valid JSON: number out of range: 1e999999"},
      {"a 30-digit integer in an unknown field",
       postRun(R"({"collectors": ["alpha"], "x": 123456789012345678901234567890})"), 400,
       "Request body is not valid JSON: number out of range: 123456789012345678901234567890"},
      {"a negative number beyond double as the priority",
       postRun(R"({"collectors": ["alpha"], "priority": -1e400})"), 400,
       "Request body is not valid JSON: number out of range: -1e400"},

      // Run bodies with every field of the wrong kind.
      {"collectors true", postRun(R"({"collectors": true})"), 400, kNotAList},
      {"collectors an object per name", postRun(R"({"collectors": [{"name": "alpha"}]})"), 400,
       kNotAList},
      {"collectors holding a boolean", postRun(R"({"collectors": ["alpha", false]})"), 400,
       kNotAList},
      {"an empty collector name", postRun(R"({"collectors": ["alpha", ""]})"), 400,
       "'collectors' must not contain an empty name"},
      {"collectors null", postRun(R"({"collectors": null, "priority": "high"})"), 400,
       "'collectors' is required: a list of collector names"},
      {"a priority of null", postRun(R"({"collectors": ["alpha"], "priority": null})"), 400,
       kBadPriority},
      {"a priority with a trailing space",
       postRun(R"({"collectors": ["alpha"], "priority": "high "})"), 400, kBadPriority},
      {"a priority with an escaped NUL",
       postRun(R"({"collectors": ["alpha"], "priority": "h\u0000igh"})"), 400, kBadPriority},
      {"a priority object", postRun(R"({"collectors": ["alpha"], "priority": {"level": "high"}})"),
       400, kBadPriority},
      {"unknown fields are ignored, so the unknown name is what is refused",
       postRun(R"({"collectors": ["nope"], "dry_run": true, "callback": "http://x"})"), 400,
       "Unknown collectors: nope"},
      {"the last of two 'collectors' keys counts",
       postRun(R"({"collectors": ["alpha"], "collectors": ["nope"]})"), 400,
       "Unknown collectors: nope"},
      {"SQL in a collector name", postRun(R"({"collectors": ["alpha'); DROP TABLE jobs;--"]})"),
       400, "Unknown collectors: alpha'); DROP TABLE jobs;--"},
      {"an escaped non-ASCII collector name", postRun(R"({"collectors": ["\u00e9\u2603"]})"), 400,
       "Unknown collectors: \xc3\xa9\xe2\x98\x83"},

      // Bodies sent as something other than JSON.
      {"JSON sent as text/plain",
       http("POST", "/api/collectors/run", {kKey, "Content-Type: text/plain"},
            std::string(R"({"collectors": ["alpha"]})")),
       415, kNotJsonType},
      {"a form body",
       http("POST", "/api/collectors/run",
            {kKey, "Content-Type: application/x-www-form-urlencoded"},
            std::string("collectors=alpha")),
       415, kNotJsonType},
      {"a multipart body",
       http("POST", "/api/collectors/run", {kKey, "Content-Type: multipart/form-data; boundary=b"},
            std::string("--b\r\nContent-Disposition: form-data; name=\"collectors\"\r\n\r\n"
                        "alpha\r\n--b--\r\n")),
       415, kNotJsonType},
      {"a JSON body without Content-Type",
       http("POST", "/api/collectors/run", {kKey}, std::string(R"({"collectors": ["alpha"]})")),
       415, kNotJsonType},
      {"a JSON look-alike media type",
       http("POST", "/api/collectors/run", {kKey, "Content-Type: application/json-patch+json"},
            std::string(R"({"collectors": ["alpha"]})")),
       415, kNotJsonType},
      {"a gzip-encoded body",
       http("POST", "/api/collectors/run", {kKey, kJson, "Content-Encoding: gzip"},
            std::string("\x1f\x8b\x08\x00", 4)),
       415, "Content-Encoding 'gzip' is not supported: send the body uncompressed"},
      {"a progress update sent as text/plain",
       http("PUT", job_path, {kKey, "Content-Type: text/plain"}, std::string(R"({"progress": 5})")),
       415, kNotJsonType},

      // Progress updates with bad values.
      {"progress over 100", put(job, R"({"progress": 101})"), 400,
       "Invalid progress update: \"progress\" is out of range (0-100) at byte 17"},
      {"progress as a string", put(job, R"({"progress": "50"})"), 400,
       "Invalid progress update: \"progress\" must be a number from 0 to 100 or null at byte 14"},
      {"progress beyond double", put(job, R"({"progress": 1e999})"), 400,
       "Invalid progress update: \"progress\" is out of range (0-100) at byte 19"},
      {"an unknown status", put(job, R"({"status": "done"})"), 400,
       "Invalid progress update: \"status\" must be running, completed or failed, not \"done\" "
       "at byte 18"},
      {"a numeric message", put(job, R"({"message": 5})"), 400,
       "Invalid progress update: \"message\" must be a string at byte 13"},
      {"an array update", put(job, "[]"), 400,
       "Invalid progress update: not a JSON object at byte 1"},
      {"an empty update", put(job, ""), 400,
       "Invalid progress update: not a JSON object at byte 1"},
      {"a message that is not UTF-8", put(job, "{\"message\": \"\xfe\"}"), 400,
       "Invalid progress update: invalid UTF-8 at byte 14"},
      {"30,000 unclosed brackets in an unknown field", put(job, "{\"x\": " + deep.substr(0, 30000)),
       400, "Invalid progress update: invalid JSON value at byte 30007"},
      {"an update over 64 KiB", put(job, R"({"message": ")" + std::string(65536, 'm') + "\"}"), 400,
       "Progress update is longer than 65536 bytes"},
      {"a valid update to a completed job", put(job, R"({"progress": 50})"), 409,
       "Job " + job + " is already completed; it takes no more updates"},
      {"a valid update to a job that does not exist", put("zz_00000000", R"({"progress": 50})"),
       404, "Job not found"},

      // Paths: encodings, traversal, NUL, odd IDs.
      {"an encoded traversal out of the docs", get("/api/docs/%2e%2e%2fcollectord.ini"), 404,
       "Not found: /api/docs/../collectord.ini"},
      {"an encoded '..' as a document name", get("/api/docs/%2e%2e"), 404,
       "Document not found: .."},
      {"a traversal to /etc/passwd", get("/api/docs/..%2F..%2F..%2Fetc%2Fpasswd"), 404,
       "Not found: /api/docs/../../../etc/passwd"},
      {"a NUL before a second extension", get("/api/docs/guide.md%00.txt"), 404,
       "Document not found: guide.md\0.txt"s},
      {"a double-encoded traversal", get("/api/docs/%252e%252e%252fcollectord.ini"), 404,
       "Document not found: %2e%2e%2fcollectord.ini"},
      {"a document name that is not UTF-8", get("/api/docs/%ff.md"), 404,
       "Document not found: \\xFF.md"},
      {"dot segments are not resolved", get("/api/collectors/%2e%2e/collectors/history"), 404,
       "Not found: /api/collectors/../collectors/history"},
      {"a NUL after a route", get("/api/collectors/history%00"), 404,
       "Not found: /api/collectors/history\0"s},
      {"an encoded slash separates segments",
       get("/api/collectors/runs/batch/" + batch + "%2Fcancel"), 405,
       "Method GET is not allowed on /api/collectors/runs/batch/" + batch + "/cancel", "POST"},
      {"a job ID of '..'", get("/api/collectors/runs/job/%2e%2e"), 404, "Job not found"},
      {"SQL as a job ID", get("/api/collectors/runs/job/'%20OR%201=1%20--"), 404, "Job not found"},
      {"SQL as a batch ID", get("/api/collectors/runs/batch/bc_1'%20OR%20'1'='1"), 404,
       "Batch not found"},
      {"SQL in a cancel",
       http("DELETE", "/api/collectors/runs/batch/bc_0;DROP%20TABLE%20jobs", {kKey}), 404,
       "Batch not found"},
      {"a job ID with an accented letter", get("/api/collectors/runs/job/%C3%A9t_12345678"), 404,
       "Job not found"},
      {"a job ID ending in a full-width digit", get("/api/collectors/runs/job/ni_1234567%EF%BC%91"),
       404, "Job not found"},
      {"an 8,000-character job ID", get("/api/collectors/runs/job/" + std::string(8000, 'a')), 404,
       "Job not found"},
      {"an 8,000-character job ID in a progress update",
       put(std::string(8000, 'n'), R"({"progress": 1})"), 404, "Job not found"},
      {"SQL in a latest filter", get("/api/collectors/runs/latest?collectors=alpha'%20OR%201=1--"),
       400, "Unknown collectors: alpha' OR 1=1--"},
      {"non-ASCII names in a latest filter",
       get("/api/collectors/runs/latest?collectors=%C3%A9%E2%98%83"), 400,
       "Unknown collectors: \xc3\xa9\xe2\x98\x83"},
      {"an overlong UTF-8 name in a latest filter",
       get("/api/collectors/runs/latest?collectors=%C0%AF"), 400, "Unknown collectors: \\xC0\\xAF"},
      {"a latest filter of commas only", get("/api/collectors/runs/latest?collectors=,%20,,"), 400,
       "'collectors' must name at least one collector"},

      // Query parameters.
      {"history limit=-1", get("/api/collectors/history?limit=-1"), 400, kBadLimit},
      {"history limit=0", get("/api/collectors/history?limit=0"), 400, kBadLimit},
      {"history limit=abc", get("/api/collectors/history?limit=abc"), 400, kBadLimit},
      {"history limit=1e9", get("/api/collectors/history?limit=1e9"), 400, kBadLimit},
      {"history limit=+5", get("/api/collectors/history?limit=%2B5"), 400, kBadLimit},
      {"history limit=5 and a NUL", get("/api/collectors/history?limit=5%00"), 400, kBadLimit},
      {"the last of two limits counts", get("/api/collectors/history?limit=5&limit="), 400,
       kBadLimit},
      {"history limit with no value", get("/api/collectors/history?limit"), 400, kBadLimit},
      {"a query name that is a bad escape", get("/api/collectors/history?%zz=1"), 400,
       "Malformed request URI: URI encoding: not a hex digit"},
      {"log tail=-1", get(job_path + "/log?tail=-1"), 400,
       "'tail' must be an integer from 0 to 10000"},
      {"log tail=10001", get(job_path + "/log?tail=10001"), 400,
       "'tail' must be an integer from 0 to 10000"},
      {"log offset=-1", get(job_path + "/log?offset=-1"), 400,
       "'offset' must be a non-negative integer"},
      {"log offset beyond 64 bits", get(job_path + "/log?offset=99999999999999999999"), 400,
       "'offset' must be a non-negative integer"},
      {"log limit=0", get(job_path + "/log?limit=0"), 400,
       "'limit' must be an integer from 1 to 1048576"},
      {"log limit=1e6", get(job_path + "/log?limit=1e6"), 400,
       "'limit' must be an integer from 1 to 1048576"},
      {"log tail with an offset", get(job_path + "/log?offset=0&tail=5"), 400,
       "Use either 'tail' or 'offset'/'limit', not both"},

      // Methods.
      {"DELETE on a GET route", http("DELETE", "/healthz"), 405,
       "Method DELETE is not allowed on /healthz", "GET"},
      {"TRACE", http("TRACE", "/api/collectors/history", {kKey}), 405,
       "Method TRACE is not allowed on /api/collectors/history", "GET"},
      {"an unknown method", http("BREW", "/api/collectors/run", {kKey}), 405,
       "Method BREW is not allowed on /api/collectors/run", "POST"},
      {"a lower-case method", http("get", "/api/collectors/history", {kKey}), 405,
       "Method get is not allowed on /api/collectors/history", "GET"},
      {"PATCH on a job", http("PATCH", job_path, {kKey, kJson}, std::string("{}")), 405,
       "Method PATCH is not allowed on " + job_path, "GET, DELETE, PUT"},
      {"TRACE on no route", http("TRACE", "/index.html"), 404, "Not found: /index.html"},
      {"CONNECT", "CONNECT localhost:80 HTTP/1.1\r\nHost: localhost:80\r\n\r\n", 400,
       "Malformed request URI"},

      // Credentials.
      {"no credentials on a progress update",
       http("PUT", job_path, {kJson}, std::string(R"({"progress": 1})")), 401, kMissingCredentials},
      {"an API key in the query string", http("GET", "/api/collectors/history?api_key=" + kRunKey),
       401, kMissingCredentials},
      {"an empty X-API-Key", http("GET", "/api/collectors/history", {"X-API-Key:"}), 401,
       "Invalid credentials: invalid API key"},
      {"a key with a space inside",
       http("GET", "/api/collectors/history", {"X-API-Key: hostile-runner-key 5d1c9a7e3b"}), 401,
       "Invalid credentials: invalid API key"},
      {"the key header twice in different case",
       http("GET", "/api/collectors/history", {"x-api-key: " + kRunKey, "X-API-KEY: " + kRunKey}),
       401, "Invalid credentials: send one X-API-Key or one Authorization header"},
      {"a wrong key beside a valid token",
       http("GET", "/api/collectors/history",
            {"X-API-Key: wrong", "Authorization: Bearer " + signedToken(unixNow() + 600)}),
       401, "Invalid credentials: invalid API key"},
      {"'Bearer ' and no token", http("GET", "/api/collectors/history", {"Authorization: Bearer "}),
       401, "Invalid credentials: the bearer token is empty"},
      {"a token of two parts",
       http("GET", "/api/collectors/history", {"Authorization: Bearer a.b"}), 401,
       "Invalid credentials: malformed bearer token"},
      {"a token with alg None claiming admin",
       http("PUT", job_path, {"Authorization: Bearer " + unsignedToken("None"), kJson},
            std::string(R"({"progress": 1})")),
       401, "Invalid credentials: token algorithm 'None' is not accepted"},
      {"an HS256 token with its signature cut off",
       http("POST", "/api/collectors/run",
            {"Authorization: Bearer " + unsignedToken("HS256"), kJson},
            std::string(R"({"collectors": ["alpha"]})")),
       401, "Invalid credentials: token signature is invalid"},
      {"an expired token on a cancel",
       http("DELETE", "/api/collectors/runs/batch/" + batch,
            {"Authorization: Bearer " + signedToken(unixNow() - 3600)}),
       401, "Invalid credentials: token has expired"},
      {"a read-only key cancelling", http("POST", job_path + "/cancel", {kReader}), 403,
       "Forbidden: this request needs the 'run' scope; these credentials have 'read'"},
      {"a read-only key reporting progress",
       http("PUT", job_path, {kReader, kJson}, std::string(R"({"progress": 1})")), 403,
       "Forbidden: this request needs the 'run' scope; these credentials have 'read'"},

      // Framing and headers. No Connection: close here: each row is followed on the same
      // connection by a valid trigger, which must never be read as a request of its own.
      {"two Content-Length headers that differ",
       framed("Content-Length: 24\r\nContent-Length: 5\r\n", R"({"collectors":["alpha"]})"), 400,
       "Malformed HTTP request: conflicting Content-Length headers"},
      {"Content-Length with chunked Transfer-Encoding",
       framed("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
              "18\r\n{\"collectors\":[\"alpha\"]}\r\n0\r\n\r\n"),
       400, "Malformed HTTP request: Content-Length and Transfer-Encoding together"},
      {"a transfer coding other than chunked",
       framed("Transfer-Encoding: gzip, chunked\r\n",
              "18\r\n{\"collectors\":[\"alpha\"]}\r\n0\r\n\r\n"),
       501,
       "Transfer-Encoding 'gzip, chunked' is not supported: send the body with Content-Length or "
       "Transfer-Encoding: chunked"},
      {"chunked twice",
       framed("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
              "18\r\n{\"collectors\":[\"alpha\"]}\r\n0\r\n\r\n"),
       501,
       "Transfer-Encoding 'chunked, chunked' is not supported: send the body with Content-Length "
       "or Transfer-Encoding: chunked"},
      {"a negative Content-Length", framed("Content-Length: -5\r\n", ""), 400, kInvalidLength},
      {"a signed Content-Length", framed("Content-Length: +24\r\n", R"({"collectors":["alpha"]})"),
       400, kInvalidLength},
      {"a Content-Length that is not a number", framed("Content-Length: abc\r\n", ""), 400,
       kInvalidLength},
      {"a Content-Length beyond 64 bits", framed("Content-Length: 99999999999999999999999\r\n", ""),
       400, kInvalidLength},
      {"a Content-Length list", framed("Content-Length: 24, 24\r\n", R"({"collectors":["alpha"]})"),
       400, kInvalidLength},
      {"a Content-Length over the body limit, body never sent",
       framed("Content-Length: 1048577\r\n", ""), 413, "Request body is larger than 1048576 bytes"},
      {"100-continue asked for a body over the limit",
       framed("Expect: 100-continue\r\nContent-Length: 1048577\r\n", ""), 413,
       "Request body is larger than 1048576 bytes"},
      {"a malformed chunk size", framed("Transfer-Encoding: chunked\r\n", "zz\r\n"), 400,
       "Request body is not valid JSON: the body is empty"},
      {"a space between a header name and its colon",
       "GET /api/collectors/history HTTP/1.1\r\nHost: localhost\r\nX-API-Key : " + kRunKey +
           "\r\n\r\n" + kSmuggledRun,
       400, "Malformed HTTP request: invalid header name 'X-API-Key '"},
      {"a NUL inside a header value",
       "GET /api/collectors/history HTTP/1.1\r\nHost: localhost\r\nX-API-Key: " + kRunKey +
           "\0\r\n\r\n"s + kSmuggledRun,
       400, "Malformed HTTP request: control character in header 'X-API-Key'"},
      {"an HTTP version that is not one",
       "GET /api/collectors/history 5\r\nHost: localhost\r\n" + kKey + "\r\n\r\n" + kSmuggledRun,
       400, "Malformed HTTP request: invalid HTTP version '5'"},
      {"HTTP/2.0 in an HTTP/1 request line",
       "GET /api/collectors/history HTTP/2.0\r\nHost: localhost\r\n" + kKey + "\r\n\r\n" +
           kSmuggledRun,
       505, "HTTP version HTTP/2.0 is not supported: use HTTP/1.1"},
  };
}

// A daemon that requires credentials, with one collector and a documentation folder; a file
// beside that folder stands for what traversal would be after.
class HostileHttp : public ::testing::Test {
 protected:
  HostileHttp() {
    writeFile(dir_.file("api_keys"), kRunKey + " read,run runner\n" + kReadKey + " read reader\n",
              0600);
    writeFile(dir_.file("docs/guide.md"), "# Guide\n");
    config_.addCollector("alpha", "echo collecting\nexit 0\n");
    config_.appendToMain("[auth]\nrequired = true\napi_keys_file = api_keys\njwt_secret = " +
                         kJwtSecret + "\n[docs]\ndirectory = docs\n");
    daemon_ = std::make_unique<Daemon>(config_);
  }

  HttpClient client() const { return daemon_->client().withHeaders({{"X-API-Key", kRunKey}}); }

  // The history as its items' JSON, generated_at left out: what must not change.
  std::string history() const {
    auto response = client().get("/api/collectors/history?limit=1000");
    if (!IsJsonResponse(response, 200)) return "history: " + response.describe();
    return jsonOf(*response.object(), "collection_history");
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(HostileHttp, EveryHostileRequestGetsItsExactErrorAndChangesNothing) {
  // One completed run to aim updates, cancels and log reads at.
  const std::string job = runOnce(client(), "alpha");
  const auto baseline_job = client().job(job);
  ASSERT_TRUE(IsJsonResponse(baseline_job, 200));
  const std::string batch = stringField(*baseline_job.object(), "batch_id");
  const std::string history_before = history();
  ASSERT_NE(history_before.find(job), std::string::npos) << history_before;

  const std::vector<Row> rows = hostileRequests(job, batch);
  ASSERT_GE(rows.size(), 60u);
  RecordProperty("rows", static_cast<int>(rows.size()));
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    Poco::Net::StreamSocket socket = daemon_->client().connect();
    std::size_t sent = 0;
    while (sent < row.bytes.size()) {
      const int n = socket.sendBytes(
          row.bytes.data() + sent,
          static_cast<int>(std::min<std::size_t>(row.bytes.size() - sent, 64 * 1024)));
      ASSERT_GT(n, 0);
      sent += static_cast<std::size_t>(n);
    }
    RawExchange first = readRawResponse(socket, 10s);
    ASSERT_TRUE(first.response) << "no answer; received '" << first.received << "'";
    EXPECT_TRUE(IsErrorResponse(*first.response, row.status, row.error));
    if (!row.allow.empty()) {
      EXPECT_EQ(first.response->header("Allow"), row.allow);
    }
    // One answer, then the connection ends: nothing sent after it, read as a second request.
    const std::size_t head_end = first.received.find("\r\n\r\n");
    ASSERT_NE(head_end, std::string::npos);
    EXPECT_EQ(first.received.size(), head_end + 4 + first.response->body.size())
        << "more than one answer: '" << first.received << "'";
    RawExchange rest = readRawResponse(socket, 5s);
    EXPECT_TRUE(rest.closed && rest.received.empty())
        << "the connection stayed open or answered again: '" << rest.received << "'";
  }

  // Still healthy, nothing created or changed by any row.
  auto health = daemon_->client().get("/healthz");
  EXPECT_EQ(health.status, 200) << health.describe();
  EXPECT_EQ(health.body, R"({"status":"ok"})");
  EXPECT_TRUE(processAlive(daemon_->pid()));
  EXPECT_EQ(history(), history_before);
  auto job_after = client().job(job);
  ASSERT_TRUE(IsJsonResponse(job_after, 200));
  EXPECT_EQ(jsonOf(*job_after.object(), "updated_at"),
            jsonOf(*baseline_job.object(), "updated_at"));
  EXPECT_EQ(jsonOf(*job_after.object(), "progress_percent"), "100");

  // And a normal run works, sent with a media type in other case, a charset and a field this
  // version does not know.
  auto triggered = client().post("/api/collectors/run",
                                 R"({"collectors": ["alpha"], "requested_by": "hostile test"})",
                                 {{"Content-Type", "Application/JSON; charset=UTF-8"}});
  ASSERT_TRUE(IsJsonResponse(triggered, 201)) << triggered.describe();
  EXPECT_TRUE(HasTriggerShape(*triggered.object(), {"alpha"}, {"alpha-collector"}));
  auto done = waitForBatchTerminal(client(), stringField(*triggered.object(), "batch_id"));
  ASSERT_TRUE(IsJsonResponse(done, 200));
  EXPECT_EQ(jsonOf(*done.object(), "status"), "\"completed\"") << done.body;
  auto listed = client().get("/api/collectors/history?limit=1000");
  ASSERT_TRUE(IsJsonResponse(listed, 200));
  EXPECT_EQ(jsonOf(*listed.object(), "total_runs"), "2") << listed.body;
}

}  // namespace
}  // namespace collectord::test
