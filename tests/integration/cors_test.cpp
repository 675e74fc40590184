// CORS on the real daemon: preflights from allowed and other origins, simple requests, error
// responses that a browser must still be able to read, and no reflection of look-alike origins.

#include <Poco/String.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

const std::string kKey = "cors-test-key-0123456789abcdef";
const std::string kReaderKey = "cors-reader-key-0123456789ab";
const std::vector<std::string> kAllowed = {"https://dashboards.enersystems.com",
                                           "http://localhost:3000", "http://localhost:8080"};
const std::string kMethods = "GET, POST, PUT, DELETE, OPTIONS";
const std::string kHeaders =
    "Content-Type, Authorization, X-Requested-With, X-API-Key, Cache-Control, Pragma, "
    "Last-Event-ID";
const std::string kExposed =
    "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After";

std::vector<std::string> valuesOf(const HttpResponse& response, const std::string& name) {
  std::vector<std::string> values;
  for (const auto& [key, value] : response.headers) {
    if (Poco::icompare(key, name) == 0) values.push_back(value);
  }
  return values;
}

// Header `name` occurs exactly once, with `value`.
::testing::AssertionResult HasHeaderOnce(const HttpResponse& response, const std::string& name,
                                         const std::string& value) {
  const auto values = valuesOf(response, name);
  if (values.size() == 1 && values[0] == value) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  failure << name << " should occur once as '" << value << "'; it occurs " << values.size()
          << " times:";
  for (const auto& v : values) failure << " '" << v << "'";
  return failure;
}

// What every response to an allowed origin carries (Vary included: caches must not mix origins).
::testing::AssertionResult HasCorsFor(const HttpResponse& response, const std::string& origin) {
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"Access-Control-Allow-Origin", origin},
                                                        {"Access-Control-Allow-Credentials", "true"},
                                                        {"Access-Control-Expose-Headers", kExposed},
                                                        {"Vary", "Origin"}}) {
    auto once = HasHeaderOnce(response, name, value);
    if (!once) return once << " (HTTP " << response.status << ")";
  }
  return ::testing::AssertionSuccess();
}

// No Access-Control-* header at all, and still Vary: Origin.
::testing::AssertionResult HasNoCors(const HttpResponse& response) {
  for (const auto& [name, value] : response.headers) {
    if (Poco::icompare(name.substr(0, 15), "Access-Control-") == 0) {
      return ::testing::AssertionFailure() << "unexpected " << name << ": " << value;
    }
  }
  return HasHeaderOnce(response, "Vary", "Origin");
}

// A daemon with the reference's three origins, requiring credentials.
class CorsHeaders : public ::testing::Test {
 protected:
  CorsHeaders() {
    writeFile(dir_.file("api_keys"), kKey + " read,run\n" + kReaderKey + " read\n", 0600);
    config_.addCollector("ninja", "exit 0\n");
    config_.appendToMain(
        "[auth]\nrequired = true\napi_keys_file = api_keys\n"
        "[cors]\nallowed_origins = https://dashboards.enersystems.com, http://localhost:3000 ,"
        "http://localhost:8080\n");
  }
  Daemon& daemon() {
    if (!daemon_) daemon_ = std::make_unique<Daemon>(config_);
    return *daemon_;
  }
  HttpResponse preflight(const std::string& path, const std::string& origin,
                         const std::string& method) {
    return daemon().client().options(path, {{"Origin", origin},
                                            {"Access-Control-Request-Method", method},
                                            {"Access-Control-Request-Headers",
                                             "x-api-key, content-type"}});
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
  std::unique_ptr<Daemon> daemon_;
};

struct PreflightCase {
  const char* path;
  const char* method;
  const char* allow;
};
const std::vector<PreflightCase> kPreflights = {
    {"/api/collectors/run", "POST", "POST, OPTIONS"},
    {"/api/collectors/runs/batch/bc_12345678", "GET", "GET, DELETE, OPTIONS"},
    {"/api/collectors/runs/job/ni_12345678", "DELETE", "GET, DELETE, PUT, OPTIONS"},
    {"/api/collectors/runs/job/ni_12345678/cancel", "POST", "POST, OPTIONS"},
    {"/api/collectors/runs/latest", "GET", "GET, OPTIONS"},
    {"/api/collectors/history", "GET", "GET, OPTIONS"},
};

TEST_F(CorsHeaders, PreflightFromAnAllowedOriginIs204WithEveryHeaderOnceAndNeedsNoCredentials) {
  for (const std::string& origin : kAllowed) {
    for (const PreflightCase& c : kPreflights) {
      SCOPED_TRACE(origin + " " + c.path);
      auto response = preflight(c.path, origin, c.method);
      EXPECT_EQ(response.status, 204);
      EXPECT_EQ(response.body, "");
      EXPECT_TRUE(HasHeaderOnce(response, "Access-Control-Allow-Origin", origin));
      EXPECT_TRUE(HasHeaderOnce(response, "Access-Control-Allow-Credentials", "true"));
      EXPECT_TRUE(HasHeaderOnce(response, "Access-Control-Allow-Methods", kMethods));
      EXPECT_TRUE(HasHeaderOnce(response, "Access-Control-Allow-Headers", kHeaders));
      EXPECT_TRUE(HasHeaderOnce(response, "Access-Control-Max-Age", "86400"));
      EXPECT_TRUE(HasHeaderOnce(response, "Vary", "Origin"));
      EXPECT_TRUE(HasHeaderOnce(response, "Allow", c.allow));
      EXPECT_FALSE(response.header("WWW-Authenticate")) << "a preflight needs no credentials";
      EXPECT_FALSE(response.header("X-RateLimit-Limit")) << "a preflight is not rate limited";
    }
  }
}

TEST_F(CorsHeaders, PreflightFromAnotherOriginIs204WithoutCorsHeaders) {
  for (const PreflightCase& c : kPreflights) {
    auto response = preflight(c.path, "https://evil.example", c.method);
    EXPECT_EQ(response.status, 204) << c.path;
    EXPECT_EQ(response.body, "") << c.path;
    EXPECT_TRUE(HasNoCors(response)) << c.path;
    EXPECT_TRUE(HasHeaderOnce(response, "Allow", c.allow)) << c.path;
  }
  // And without any Origin at all.
  auto bare = daemon().client().options("/api/collectors/run");
  EXPECT_EQ(bare.status, 204);
  EXPECT_TRUE(HasNoCors(bare));
}

TEST_F(CorsHeaders, PreflightOnAnUnknownPathIs404) {
  auto response = preflight("/api/nothing/here", "http://localhost:3000", "GET");
  EXPECT_TRUE(IsErrorResponse(response, 404, "Not found: /api/nothing/here"));
  EXPECT_TRUE(HasCorsFor(response, "http://localhost:3000"));
}

TEST_F(CorsHeaders, SimpleRequestsFromAnAllowedOriginCarryCorsHeaders) {
  for (const std::string& origin : kAllowed) {
    const HttpClient client = daemon().client().withHeaders({{"Origin", origin}, {"X-API-Key", kKey}});
    auto latest = client.get("/api/collectors/runs/latest");
    EXPECT_TRUE(IsJsonResponse(latest, 200)) << origin;
    EXPECT_TRUE(HasCorsFor(latest, origin));
    auto triggered = client.trigger({"ninja"});
    EXPECT_TRUE(IsJsonResponse(triggered, 201)) << origin;
    EXPECT_TRUE(HasCorsFor(triggered, origin));
    auto health = client.get("/healthz");
    EXPECT_EQ(health.status, 200);
    EXPECT_TRUE(HasCorsFor(health, origin));
  }
}

TEST_F(CorsHeaders, SimpleRequestsFromAnotherOriginCarryNoCorsHeaders) {
  const HttpClient client =
      daemon().client().withHeaders({{"Origin", "https://evil.example"}, {"X-API-Key", kKey}});
  auto latest = client.get("/api/collectors/runs/latest");
  EXPECT_TRUE(IsJsonResponse(latest, 200));
  EXPECT_TRUE(HasNoCors(latest));
  auto triggered = client.trigger({"ninja"});
  EXPECT_TRUE(IsJsonResponse(triggered, 201));
  EXPECT_TRUE(HasNoCors(triggered));
  // Same-origin or non-browser clients send no Origin: no CORS headers either.
  auto plain = daemon().client().get("/api/collectors/runs/latest", {{"X-API-Key", kKey}});
  EXPECT_TRUE(IsJsonResponse(plain, 200));
  EXPECT_TRUE(HasNoCors(plain));
}

TEST_F(CorsHeaders, ErrorResponsesCarryCorsHeadersSoTheBrowserCanReadThem) {
  const std::string origin = "http://localhost:3000";
  const HttpClient anonymous = daemon().client().withHeaders({{"Origin", origin}});
  const HttpClient authorised = anonymous.withHeaders({{"X-API-Key", kKey}});

  auto unauthorised = anonymous.get("/api/collectors/runs/latest");
  EXPECT_TRUE(IsErrorResponse(unauthorised, 401,
                              "Authentication required: send an X-API-Key header or "
                              "Authorization: Bearer <token>"));
  EXPECT_TRUE(HasCorsFor(unauthorised, origin));

  auto bad_key = anonymous.get("/api/collectors/runs/latest", {{"X-API-Key", "not-a-key-0123456789"}});
  EXPECT_TRUE(IsErrorResponse(bad_key, 401, "Invalid credentials: invalid API key"));
  EXPECT_TRUE(HasCorsFor(bad_key, origin));

  auto forbidden = anonymous.post("/api/collectors/run", R"({"collectors": ["ninja"]})",
                                  {{"X-API-Key", kReaderKey}});
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_TRUE(HasCorsFor(forbidden, origin));

  auto unknown_path = anonymous.get("/api/unknown");
  EXPECT_TRUE(IsErrorResponse(unknown_path, 404, "Not found: /api/unknown"));
  EXPECT_TRUE(HasCorsFor(unknown_path, origin));

  auto unknown_batch = authorised.get("/api/collectors/runs/batch/bc_00000000");
  EXPECT_TRUE(IsErrorResponse(unknown_batch, 404, "Batch not found"));
  EXPECT_TRUE(HasCorsFor(unknown_batch, origin));

  auto wrong_method = authorised.del("/api/collectors/run");
  EXPECT_TRUE(IsErrorResponse(wrong_method, 405,
                              "Method DELETE is not allowed on /api/collectors/run"));
  EXPECT_TRUE(HasCorsFor(wrong_method, origin));

  auto bad_body = authorised.post("/api/collectors/run", "{}");
  EXPECT_TRUE(IsErrorResponse(bad_body, 400, "'collectors' is required: a list of collector names"));
  EXPECT_TRUE(HasCorsFor(bad_body, origin));
}

TEST_F(CorsHeaders, LookAlikeOriginsAreNeverReflected) {
  const std::vector<std::string> origins = {
      "http://localhost:3000.evil.com",
      "https://dashboards.enersystems.com.evil.com",
      "https://evil-dashboards.enersystems.com",
      "https://sub.dashboards.enersystems.com",
      "http://dashboards.enersystems.com",  // the scheme is part of the origin
      "https://localhost:3000",
      "http://localhost:30000",
      "http://localhost:300",
      "http://localhost",
      "http://localhost:3000/",
      "http://localhost:3000/path",
      "http://user@localhost:3000",
      "http://localhost:3000, http://evil.com",
      "null",
      "*",
      "",
  };
  for (const std::string& origin : origins) {
    SCOPED_TRACE("Origin: '" + origin + "'");
    auto simple = daemon().client().get("/api/collectors/runs/latest",
                                        {{"Origin", origin}, {"X-API-Key", kKey}});
    EXPECT_EQ(simple.status, 200);
    EXPECT_TRUE(HasNoCors(simple));
    auto refused = daemon().client().get("/api/collectors/runs/latest", {{"Origin", origin}});
    EXPECT_EQ(refused.status, 401);
    EXPECT_TRUE(HasNoCors(refused));
    auto pre = preflight("/api/collectors/run", origin, "POST");
    EXPECT_EQ(pre.status, 204);
    EXPECT_TRUE(HasNoCors(pre));
  }
}

TEST(CorsDefaults, WithoutAllowedOriginsNoOriginIsAllowed) {
  TempDir dir;
  DaemonConfig config(dir);
  Daemon daemon(config);
  for (const std::string& origin : kAllowed) {
    auto simple = daemon.client().get("/api/collectors/runs/latest", {{"Origin", origin}});
    EXPECT_EQ(simple.status, 200);
    EXPECT_TRUE(HasNoCors(simple)) << origin;
    auto pre = daemon.client().options("/api/collectors/run",
                                       {{"Origin", origin}, {"Access-Control-Request-Method", "POST"}});
    EXPECT_EQ(pre.status, 204);
    EXPECT_TRUE(HasNoCors(pre)) << origin;
  }
}

}  // namespace
}  // namespace collectord::test
