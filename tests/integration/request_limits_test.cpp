// The HTTP layer's limits on the real daemon, over real sockets: bodies over http.max_body_bytes
// (with Content-Length or chunked), over-long URIs and headers, garbage on the wire, clients that
// stall, and JSON nested deeper than any parser should recurse. Each refusal is the API's JSON,
// and the daemon goes on serving.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;

const std::string kTooLarge = "Request body is larger than 2048 bytes";

// A trigger body of exactly `size` bytes, valid JSON naming a real collector.
std::string triggerBodyOfSize(std::size_t size) {
  const std::string head = R"({"collectors": ["alpha"], "padding": ")";
  const std::string tail = "\"}";
  return head + std::string(size - head.size() - tail.size(), 'x') + tail;
}

// `body` in chunks of `chunk` bytes, ended by the last chunk.
std::string chunked(const std::string& body, std::size_t chunk) {
  std::string out;
  char size[32];
  for (std::size_t at = 0; at < body.size(); at += chunk) {
    const std::string piece = body.substr(at, chunk);
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    out += size + piece + "\r\n";
  }
  return out + "0\r\n\r\n";
}

std::string rawRequest(const std::string& method, const std::string& target,
                       const std::string& extra_headers = "", const std::string& body = "") {
  std::string text = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  text += extra_headers;
  if (!body.empty()) text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return text + "\r\n" + body;
}

// A daemon with a 2 KiB body limit and a 1 s slow-client timeout.
class RequestLimits : public ::testing::Test {
 protected:
  RequestLimits() {
    config_.addCollector("alpha", "exit 0\n");
    config_.appendToMain("[http]\nmax_body_bytes = 2048\ntimeout = 1s\n");
  }
  Daemon& daemon() {
    if (!daemon_) daemon_ = std::make_unique<Daemon>(config_);
    return *daemon_;
  }
  void expectNoRuns() {
    auto history = daemon().client().get("/api/collectors/history?limit=1000");
    ASSERT_TRUE(IsJsonResponse(history, 200));
    EXPECT_EQ(jsonOf(*history.object(), "total_runs"), "0") << history.body;
  }
  void expectHealthy() {
    auto health = daemon().client().get("/healthz");
    EXPECT_EQ(health.status, 200) << health.describe();
    EXPECT_EQ(health.body, R"({"status":"ok"})");
    EXPECT_TRUE(processAlive(daemon().pid()));
  }
  // Sends `bytes` raw and expects one whole JSON error answer.
  HttpResponse exchange(const std::string& bytes) {
    RawExchange raw = daemon().client().raw(bytes);
    EXPECT_TRUE(raw.response) << "no HTTP response; got '" << raw.received << "'";
    return raw.response.value_or(HttpResponse{});
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(RequestLimits, ABodyAtTheLimitIsRead) {
  auto response = daemon().client().post("/api/collectors/run", triggerBodyOfSize(2048));
  ASSERT_TRUE(IsJsonResponse(response, 201));
  EXPECT_TRUE(HasTriggerShape(*response.object(), {"alpha"}, {"alpha-collector"}));
}

TEST_F(RequestLimits, ABodyOverTheLimitIs413AndCreatesNothing) {
  for (std::size_t size : {2049u, 4096u, 64u * 1024u}) {
    auto response = exchange(rawRequest("POST", "/api/collectors/run",
                                        "Content-Type: application/json\r\n",
                                        triggerBodyOfSize(size)));
    EXPECT_TRUE(IsErrorResponse(response, 413, kTooLarge)) << size;
  }
  // The same through a well-behaved client.
  EXPECT_TRUE(IsErrorResponse(daemon().client().post("/api/collectors/run", triggerBodyOfSize(3000)),
                              413, kTooLarge));
  expectNoRuns();
  expectHealthy();
}

TEST_F(RequestLimits, AChunkedBodyOverTheLimitIs413AndCreatesNothing) {
  for (std::size_t chunk : {100u, 1000u, 4096u}) {
    auto response = exchange(rawRequest("POST", "/api/collectors/run",
                                        "Content-Type: application/json\r\n"
                                        "Transfer-Encoding: chunked\r\n") +
                             chunked(triggerBodyOfSize(5000), chunk));
    EXPECT_TRUE(IsErrorResponse(response, 413, kTooLarge)) << "chunks of " << chunk;
  }
  // A chunked body within the limit is fine.
  auto accepted = exchange(rawRequest("POST", "/api/collectors/run",
                                      "Content-Type: application/json\r\n"
                                      "Transfer-Encoding: chunked\r\n") +
                           chunked(R"({"collectors": ["alpha"]})", 7));
  EXPECT_TRUE(IsJsonResponse(accepted, 201));
  auto history = daemon().client().get("/api/collectors/history?limit=1000");
  ASSERT_TRUE(IsJsonResponse(history, 200));
  EXPECT_EQ(jsonOf(*history.object(), "total_runs"), "1") << history.body;
}

TEST_F(RequestLimits, AUriOver16KiBIs414) {
  const std::string path = "/api/collectors/runs/batch/" + std::string(17 * 1024, 'a');
  auto response = daemon().client().get(path);
  EXPECT_TRUE(IsErrorResponse(response, 414, "Request URI is too long"));
  auto long_query = daemon().client().get("/api/collectors/history?limit=5&pad=" +
                                          std::string(20 * 1024, 'q'));
  EXPECT_TRUE(IsErrorResponse(long_query, 414, "Request URI is too long"));
  expectHealthy();
}

TEST_F(RequestLimits, HeadersOver8KiBOrTooManyAre431) {
  const std::string message = "Request header fields are too large or too many";
  EXPECT_TRUE(IsErrorResponse(
      daemon().client().get("/healthz", {{"X-Big", std::string(9 * 1024, 'h')}}), 431, message));
  EXPECT_TRUE(IsErrorResponse(exchange(rawRequest("GET", "/healthz",
                                                  "Cookie: " + std::string(16 * 1024, 'c') + "\r\n")),
                              431, message));
  EXPECT_TRUE(IsErrorResponse(
      exchange(rawRequest("GET", "/healthz", std::string(300, 'N') + ": v\r\n")), 431, message));
  std::string many;
  for (int i = 0; i < 150; ++i) many += "X-Header-" + std::to_string(i) + ": v\r\n";
  EXPECT_TRUE(IsErrorResponse(exchange(rawRequest("GET", "/healthz", many)), 431, message));
  expectHealthy();
}

TEST_F(RequestLimits, GarbageOnTheWireIs400) {
  struct Row {
    const char* what;
    std::string bytes;
    const char* message;  // the whole error, or its start when it ends with ": "
  };
  const std::vector<Row> rows = {
      {"a method longer than any", "THISISNOTANHTTPMETHODATALLBUTGARBAGE / HTTP/1.1\r\n\r\n",
       "Malformed HTTP request: "},
      {"a version that is not one", "GET / HTTP/1.1.1.1.1.1\r\n\r\n", "Malformed HTTP request: "},
      {"a target that is not a path", rawRequest("GET", "healthz"), "Malformed request URI"},
      {"an unterminated IPv6 host", rawRequest("GET", "http://[::1/healthz"),
       "Malformed request URI: "},
      {"a bad percent escape", rawRequest("GET", "/api/docs/%zz.md"), "Malformed request URI: "},
  };
  for (const Row& row : rows) {
    auto response = exchange(row.bytes);
    const std::string message = row.message;
    if (message.size() >= 2 && message.compare(message.size() - 2, 2, ": ") == 0) {
      EXPECT_TRUE(IsErrorResponseStartingWith(response, 400, message)) << row.what;
    } else {
      EXPECT_TRUE(IsErrorResponse(response, 400, message)) << row.what;
    }
  }
  // The same through Poco's stream socket, one garbage line and nothing else.
  Poco::Net::StreamSocket socket = daemon().client().connect();
  const std::string garbage = "\x7f\x45\x4c\x46 GARBAGE-GARBAGE-GARBAGE-GARBAGE-GARBAGE\r\n\r\n";
  socket.sendBytes(garbage.data(), static_cast<int>(garbage.size()));
  RawExchange raw = readRawResponse(socket, 10s);
  ASSERT_TRUE(raw.response) << raw.received;
  EXPECT_TRUE(IsErrorResponseStartingWith(*raw.response, 400, "Malformed HTTP request: "));
  expectHealthy();
}

TEST_F(RequestLimits, AClientThatStallsIsTimedOutWhileOthersAreServed) {
  // Four clients send half a request each and then nothing.
  std::vector<Poco::Net::StreamSocket> stalled;
  const std::string half = "POST /api/collectors/run HTTP/1.1\r\nHost: localhost\r\nContent-Le";
  for (int i = 0; i < 4; ++i) {
    stalled.push_back(daemon().client().connect());
    stalled.back().sendBytes(half.data(), static_cast<int>(half.size()));
  }
  const auto stalled_at = std::chrono::steady_clock::now();
  // Meanwhile everybody else is answered at once.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(daemon().client().get("/healthz").status, 200);
    EXPECT_TRUE(IsJsonResponse(daemon().client().get("/api/collectors/runs/latest"), 200));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - stalled_at, 900ms)
      << "serving others waited for the stalled clients";
  for (auto& socket : stalled) {
    RawExchange raw = readRawResponse(socket, 10s);
    EXPECT_FALSE(raw.timed_out) << "still waiting for the stalled client after 10 s";
    const auto waited = std::chrono::steady_clock::now() - stalled_at;
    EXPECT_GE(waited, 900ms) << "answered before http.timeout";
    EXPECT_LT(waited, 8s);
    if (raw.response) {
      EXPECT_TRUE(IsErrorResponse(*raw.response, 408,
                                  "Request timed out: the client sent nothing for 1 s"));
    } else {
      EXPECT_TRUE(raw.closed) << "neither 408 nor closed: '" << raw.received << "'";
    }
  }
  expectNoRuns();
  expectHealthy();
}

// A body that stops short of its Content-Length is half a request too: after http.timeout it is
// answered 408 (or the connection closed), never handled as if the part that came were all of it
// (a prefix that happens to be valid JSON would otherwise trigger a run).
TEST_F(RequestLimits, ABodyShorterThanItsContentLengthIsTimedOutNotHandled) {
  const std::vector<std::string> partial_bodies = {R"({"collectors": ["alpha"]})",
                                                   R"({"collectors": [)"};
  std::vector<Poco::Net::StreamSocket> sockets;
  for (const std::string& partial : partial_bodies) {
    const std::string request =
        "POST /api/collectors/run HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + partial;
    sockets.push_back(daemon().client().connect());
    sockets.back().sendBytes(request.data(), static_cast<int>(request.size()));
  }
  const auto sent_at = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    SCOPED_TRACE("body so far: " + partial_bodies[i]);
    RawExchange raw = readRawResponse(sockets[i], 10s);
    EXPECT_FALSE(raw.timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - sent_at, 900ms) << "answered before http.timeout";
    if (raw.response) {
      EXPECT_TRUE(IsErrorResponse(*raw.response, 408,
                                  "Request timed out: the client sent nothing for 1 s"));
    } else {
      EXPECT_TRUE(raw.closed) << "neither 408 nor closed: '" << raw.received << "'";
    }
  }
  expectNoRuns();
  expectHealthy();
}

TEST_F(RequestLimits, DeeplyNestedJsonIs400AndTheDaemonStaysUp) {
  config_.appendToMain("[http]\nmax_body_bytes = 1048576\n");
  for (const std::string& body :
       {std::string(10000, '['), std::string(10000, '[') + std::string(10000, ']'),
        [] {
          std::string nested;
          for (int i = 0; i < 10000; ++i) nested += "{\"a\":";
          return nested + "1" + std::string(10000, '}');
        }(),
        "{\"collectors\": " + std::string(10000, '[') + "\"alpha\"" + std::string(10000, ']') +
            "}"}) {
    auto response = daemon().client().post("/api/collectors/run", body);
    EXPECT_TRUE(IsErrorResponseStartingWith(response, 400, "Request body is not valid JSON: "))
        << body.substr(0, 40);
    expectHealthy();
  }
  expectNoRuns();
}

// RFC 9110 15: the status line's reason phrase describes the code; Poco's default "OK" on a 404
// misleads anyone reading raw traffic or logs.
TEST_F(RequestLimits, StatusLinesCarryTheReasonPhraseOfTheirCode) {
  struct Row {
    int status;
    const char* reason;
    std::string bytes;
  };
  const std::vector<Row> rows = {
      {200, "OK", rawRequest("GET", "/healthz")},
      {201, "Created",
       rawRequest("POST", "/api/collectors/run", "Content-Type: application/json\r\n",
                  R"({"collectors": ["alpha"]})")},
      {400, "Bad Request",
       rawRequest("POST", "/api/collectors/run", "Content-Type: application/json\r\n", "{")},
      {404, "Not Found", rawRequest("GET", "/nowhere")},
      {405, "Method Not Allowed", rawRequest("DELETE", "/api/collectors/run")},
      {413, "Request Entity Too Large",
       rawRequest("POST", "/api/collectors/run", "", triggerBodyOfSize(4096))},
      {414, "Request-URI Too Large", rawRequest("GET", "/" + std::string(17 * 1024, 'u'))},
      {431, "Request Header Fields Too Large",
       rawRequest("GET", "/healthz", "X-Big: " + std::string(9 * 1024, 'h') + "\r\n")},
  };
  for (const Row& row : rows) {
    RawExchange raw = daemon().client().raw(row.bytes);
    ASSERT_TRUE(raw.response) << row.status << ": " << raw.received;
    EXPECT_EQ(raw.response->status, row.status);
    // Poco's own wording for 413 and 414 predates RFC 9110's "Content Too Large"/"URI Too Long";
    // either is fine, "OK" is not.
    const std::string reason = raw.response->reason;
    if (row.status == 413) {
      EXPECT_TRUE(reason == "Request Entity Too Large" || reason == "Content Too Large" ||
                  reason == "Payload Too Large")
          << row.status << " " << reason;
    } else if (row.status == 414) {
      EXPECT_TRUE(reason == "Request-URI Too Large" || reason == "URI Too Long" ||
                  reason == "Request-URI Too Long")
          << row.status << " " << reason;
    } else {
      EXPECT_EQ(reason, row.reason) << row.status;
    }
  }
}

// RFC 9110 6.6.1: an origin server with a clock sends Date in every 2xx-4xx response, including
// the ones it writes before a request could be parsed.
TEST_F(RequestLimits, FramingErrorsCarryADateHeader) {
  for (const std::string& bytes :
       {rawRequest("GET", "/" + std::string(17 * 1024, 'u')),
        rawRequest("GET", "/healthz", "X-Big: " + std::string(9 * 1024, 'h') + "\r\n"),
        std::string("THISISNOTANHTTPMETHODATALLBUTGARBAGE / HTTP/1.1\r\n\r\n")}) {
    RawExchange raw = daemon().client().raw(bytes);
    ASSERT_TRUE(raw.response) << raw.received;
    EXPECT_TRUE(raw.response->header("Date")) << raw.response->status << " has no Date header";
  }
  RawExchange normal = daemon().client().raw(rawRequest("GET", "/healthz"));
  ASSERT_TRUE(normal.response);
  EXPECT_TRUE(normal.response->header("Date"));
}

}  // namespace
}  // namespace collectord::test
