#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "api_service.h"
#include "job_store.h"
#include "rate_limiter.h"

namespace collectord::http {
namespace {

namespace fs = std::filesystem;

TEST(RateLimiter, AllowsTheLimitPerWindowThenRefusesUntilItEnds) {
  RateLimiter limiter(3);
  for (int i = 0; i < 3; ++i) {
    const auto d = limiter.check("a", 1000);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 2 - i);
  }
  auto refused = limiter.check("a", 1500);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.reset_seconds, 60);
  EXPECT_EQ(limiter.check("a", 60'999).reset_seconds, 1);
  EXPECT_TRUE(limiter.check("a", 61'000).allowed) << "a new window";
}

TEST(RateLimiter, ClientsAreIsolated) {
  RateLimiter limiter(1);
  EXPECT_TRUE(limiter.check("a", 0).allowed);
  EXPECT_FALSE(limiter.check("a", 0).allowed);
  EXPECT_TRUE(limiter.check("b", 0).allowed);
}

TEST(RateLimiter, MemoryIsBoundedByExpiryAndTheClientCap) {
  RateLimiter limiter(10, 160);
  for (int i = 0; i < 10'000; ++i) limiter.check("client-" + std::to_string(i), i);
  EXPECT_LE(limiter.trackedClients(), 160u);
  limiter.check("late", 1'000'000);
  EXPECT_LE(limiter.trackedClients(), 160u);
}

TEST(Cors, AllowedOriginGetsCredentialsAndOthersGetNothing) {
  CorsPolicy cors({"https://dash.example", "http://localhost:3000"});
  Response r;
  const std::string good = "http://localhost:3000";
  cors.decorate(&good, r);
  auto has = [&r](const std::string& name, const std::string& value) {
    for (const auto& h : r.headers)
      if (h.first == name && h.second == value) return true;
    return false;
  };
  EXPECT_TRUE(has("Access-Control-Allow-Origin", "http://localhost:3000"));
  EXPECT_TRUE(has("Access-Control-Allow-Credentials", "true"));
  EXPECT_TRUE(has("Vary", "Origin"));
  r = Response{};
  const std::string evil = "http://localhost:3000.evil.example";
  cors.decorate(&evil, r);
  EXPECT_EQ(r.headers.size(), 1u) << "only Vary";
  r = cors.preflight(&good, "GET");
  EXPECT_EQ(r.status, 204);
  EXPECT_FALSE(has("Access-Control-Allow-Origin", "http://localhost:3000"))
      << "decorate() adds it, once; a doubled header makes browsers refuse the response";
  EXPECT_TRUE(has("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"));
  EXPECT_TRUE(has("Access-Control-Allow-Headers",
                  "Content-Type, Authorization, X-Requested-With, X-API-Key, Cache-Control, "
                  "Pragma, Last-Event-ID"));
  EXPECT_TRUE(has("Access-Control-Max-Age", "86400"));
}

// The pipeline without sockets: a router with a public, a read and a run route.
class Pipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/collectord-pipeline-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    std::ofstream(dir_ / "keys") << "reader-key-0123456789 read\nrunner-key-0123456789 read,run\n";
    AuthSettings settings;
    settings.api_keys_file = (dir_ / "keys").string();
    std::string error;
    auth_ = Authenticator::load(settings, error);
    router_.add("GET", "/open", {Access::kPublic, false}, [](const Request&) { return Response{}; });
    router_.add("GET", "/api/thing/{id}", {Access::kRead, true}, [](const Request& r) {
      return Response{200, r.params.at("id"), "text/plain", {}};
    });
    router_.add("POST", "/api/thing/{id}", {Access::kRun, false}, [](const Request&) {
      return Response{201, "", "text/plain", {}};
    });
    router_.add("GET", "/boom", {Access::kPublic, false}, [](const Request&) -> Response {
      throw StoreError("disk on fire");
    });
    service_ = std::make_unique<ApiService>(router_, ApiPolicy{true, {"10.0.0.1"}}, auth_,
                                            CorsPolicy({"http://localhost:3000"}), limiter_,
                                            metrics_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Response call(const std::string& method, const std::string& path,
                std::vector<std::pair<std::string, std::string>> headers = {},
                const std::string& client = "127.0.0.1") {
    Request r;
    r.method = method;
    r.path = path;
    r.headers = std::move(headers);
    r.client = client;
    return service_->handle(r);
  }
  static std::string header(const Response& r, const std::string& name) {
    for (const auto& h : r.headers)
      if (h.first == name) return h.second;
    return "";
  }

  fs::path dir_;
  Router router_;
  std::shared_ptr<const Authenticator> auth_;
  RateLimiter limiter_{2};
  Metrics metrics_;
  std::unique_ptr<ApiService> service_;
};

TEST_F(Pipeline, PublicRoutesNeedNoCredentials) { EXPECT_EQ(call("GET", "/open").status, 200); }

TEST_F(Pipeline, MissingCredentialsAre401WithAChallenge) {
  const Response r = call("GET", "/api/thing/1");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(header(r, "WWW-Authenticate"), "Bearer realm=\"collectord\"");
  EXPECT_NE(r.body.find("Authentication required"), std::string::npos);
  EXPECT_EQ(metrics_.auth_failed.load(), 1u);
}

TEST_F(Pipeline, MissingScopeIs403) {
  const Response r = call("POST", "/api/thing/1", {{"X-API-Key", "reader-key-0123456789"}});
  EXPECT_EQ(call("GET", "/api/thing/1", {{"X-API-Key", "reader-key-0123456789"}}).status, 200);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, R"({"error":"Forbidden: this request needs the 'run' scope; these credentials have 'read'"})");
  EXPECT_EQ(call("POST", "/api/thing/1", {{"x-api-key", "runner-key-0123456789"}}).status, 201);
}

TEST_F(Pipeline, DuplicateCredentialHeadersAreRefused) {
  const Response r = call("GET", "/api/thing/1", {{"X-API-Key", "reader-key-0123456789"},
                                                  {"X-API-Key", "runner-key-0123456789"}});
  EXPECT_EQ(r.status, 401);
}

TEST_F(Pipeline, RateLimitedRoutesCarryHeadersAndRefuseWith429) {
  const std::vector<std::pair<std::string, std::string>> key = {{"X-API-Key", "reader-key-0123456789"}};
  Response r = call("GET", "/api/thing/1", key);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "X-RateLimit-Limit"), "2");
  EXPECT_EQ(header(r, "X-RateLimit-Remaining"), "1");
  EXPECT_EQ(call("GET", "/api/thing/1", key).status, 200);
  r = call("GET", "/api/thing/1", key);
  EXPECT_EQ(r.status, 429);
  EXPECT_FALSE(header(r, "Retry-After").empty());
  EXPECT_EQ(header(r, "X-RateLimit-Remaining"), "0");
  EXPECT_EQ(metrics_.rate_limited.load(), 1u);
  EXPECT_EQ(call("GET", "/api/thing/1", {{"X-API-Key", "runner-key-0123456789"}}).status, 200)
      << "another client has its own budget";
}

TEST_F(Pipeline, ForwardedForIsBelievedOnlyFromTrustedProxies) {
  service_ = std::make_unique<ApiService>(router_, ApiPolicy{false, {"10.0.0.1"}}, auth_,
                                          CorsPolicy({}), limiter_, metrics_);
  for (int i = 0; i < 2; ++i) call("GET", "/api/thing/1", {{"X-Forwarded-For", "1.1.1.1"}}, "10.0.0.1");
  EXPECT_EQ(call("GET", "/api/thing/1", {{"X-Forwarded-For", "1.1.1.1"}}, "10.0.0.1").status, 429);
  EXPECT_EQ(call("GET", "/api/thing/1", {{"X-Forwarded-For", "2.2.2.2"}}, "10.0.0.1").status, 200);
  // An untrusted peer cannot pick its identity by sending the header.
  for (int i = 0; i < 2; ++i) call("GET", "/api/thing/1", {{"X-Forwarded-For", "3.3.3." + std::to_string(i)}}, "9.9.9.9");
  EXPECT_EQ(call("GET", "/api/thing/1", {{"X-Forwarded-For", "4.4.4.4"}}, "9.9.9.9").status, 429);
}

TEST_F(Pipeline, PreflightIs204WithoutCredentials) {
  const Response r = call("OPTIONS", "/api/thing/1", {{"Origin", "http://localhost:3000"},
                                                       {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(header(r, "Access-Control-Allow-Origin"), "http://localhost:3000");
  EXPECT_EQ(header(r, "Allow"), "GET, POST, OPTIONS");
  int origins = 0;
  for (const auto& h : r.headers) origins += h.first == "Access-Control-Allow-Origin" ? 1 : 0;
  EXPECT_EQ(origins, 1);
  EXPECT_EQ(call("OPTIONS", "/nowhere").status, 404);
}

TEST_F(Pipeline, ErrorsCarryCorsHeadersSoBrowsersCanReadThem) {
  const Response r = call("GET", "/api/thing/1", {{"Origin", "http://localhost:3000"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(header(r, "Access-Control-Allow-Origin"), "http://localhost:3000");
}

TEST_F(Pipeline, StoreFaultIs503AndUnknownPathsAre404) {
  const Response r = call("GET", "/boom");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"error":"The job store is unavailable; try again shortly"})");
  EXPECT_EQ(call("GET", "/nope").status, 404);
  const Response wrong = call("DELETE", "/open");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(header(wrong, "Allow"), "GET");
}

TEST_F(Pipeline, MetricsCountRequestsByRouteAndStatus) {
  call("GET", "/open");
  call("GET", "/nope");
  const std::string text = metrics_.render();
  EXPECT_NE(text.find("collectord_http_requests_total{route=\"/open\",code=\"200\"} 1"),
            std::string::npos) << text;
  EXPECT_NE(text.find("collectord_http_requests_total{route=\"unmatched\",code=\"404\"} 1"),
            std::string::npos) << text;
}

}  // namespace
}  // namespace collectord::http
