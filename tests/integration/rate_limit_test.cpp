// Rate limits on the real daemon, at 5 requests a minute: the 429 and its headers, the
// X-RateLimit-* headers of every limited response, one budget per client, which routes are not
// limited, and X-Forwarded-For believed only from a trusted proxy. The window is a minute long
// and every test finishes well within its first one, so no test waits for a window to end.

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

constexpr int kLimit = 5;
const std::string kAlphaKey = "alpha-key-0123456789abcdef";
const std::string kBetaKey = "beta-key-0123456789abcdef0";

std::optional<int> intHeader(const HttpResponse& response, const std::string& name) {
  auto value = response.header(name);
  if (!value || value->empty() || value->find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoi(*value);
}

// The limited routes: the seed's /api/collectors/runs/* and /api/collectors/history.
const std::vector<std::string> kLimitedPaths = {
    "/api/collectors/runs/latest",
    "/api/collectors/history",
    "/api/collectors/runs/latest",
    "/api/collectors/history?limit=5",
    "/api/collectors/runs/latest",
};

// Spends a whole budget through `client` and checks each answer: 200, Limit 5, Remaining
// counting down 4..0, Reset within the minute and never growing.
void spendBudget(const HttpClient& client, const std::string& who) {
  std::optional<int> last_reset;
  for (int i = 0; i < kLimit; ++i) {
    SCOPED_TRACE(who + ", request " + std::to_string(i + 1));
    auto response = client.get(kLimitedPaths[static_cast<std::size_t>(i)]);
    ASSERT_TRUE(IsJsonResponse(response, 200));
    EXPECT_EQ(intHeader(response, "X-RateLimit-Limit"), kLimit);
    EXPECT_EQ(intHeader(response, "X-RateLimit-Remaining"), kLimit - 1 - i);
    auto reset = intHeader(response, "X-RateLimit-Reset");
    ASSERT_TRUE(reset) << "X-RateLimit-Reset: " << response.header("X-RateLimit-Reset").value_or("<missing>");
    EXPECT_GE(*reset, 1);
    EXPECT_LE(*reset, 60);
    if (last_reset) {
      EXPECT_LE(*reset, *last_reset) << "the window's end moved";
    }
    last_reset = reset;
    EXPECT_FALSE(response.header("Retry-After"));
  }
}

// The answer to one request too many: 429 JSON naming the limit and the wait, with
// Retry-After and the X-RateLimit-* headers agreeing.
::testing::AssertionResult IsRateLimited(const HttpResponse& response) {
  auto limit = intHeader(response, "X-RateLimit-Limit");
  auto remaining = intHeader(response, "X-RateLimit-Remaining");
  auto reset = intHeader(response, "X-RateLimit-Reset");
  auto retry = intHeader(response, "Retry-After");
  if (!reset || !retry || limit != kLimit || remaining != 0) {
    return ::testing::AssertionFailure()
           << "headers: Limit " << response.header("X-RateLimit-Limit").value_or("<missing>")
           << ", Remaining " << response.header("X-RateLimit-Remaining").value_or("<missing>")
           << ", Reset " << response.header("X-RateLimit-Reset").value_or("<missing>")
           << ", Retry-After " << response.header("Retry-After").value_or("<missing>") << "; "
           << response.describe();
  }
  if (*reset < 1 || *reset > 60 || *retry != *reset) {
    return ::testing::AssertionFailure() << "Reset " << *reset << ", Retry-After " << *retry;
  }
  return IsErrorResponse(response, 429,
                         "Rate limit exceeded: 5 requests per minute; retry in " +
                             std::to_string(*reset) + " s");
}

class RateLimit : public ::testing::Test {
 protected:
  RateLimit() {
    config_.addCollector("ninja", "exit 0\n");
    config_.appendToMain("[ratelimit]\nrequests_per_minute = 5\n");
  }
  Daemon& daemon() {
    if (!daemon_) daemon_ = std::make_unique<Daemon>(config_);
    return *daemon_;
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(RateLimit, TheSixthRequestInAMinuteIs429WithRetryAfter) {
  const HttpClient client = daemon().client();
  spendBudget(client, "anonymous");
  for (const std::string& path :
       {std::string("/api/collectors/runs/batch/bc_12345678"),
        std::string("/api/collectors/runs/job/ni_12345678"), std::string("/api/collectors/runs/latest"),
        std::string("/api/collectors/history")}) {
    EXPECT_TRUE(IsRateLimited(client.get(path))) << path;
  }
}

TEST_F(RateLimit, NotFoundAnswersOfLimitedRoutesCountToo) {
  const HttpClient client = daemon().client();
  for (int i = 0; i < kLimit; ++i) {
    auto response = client.get("/api/collectors/runs/batch/bc_0000000" + std::to_string(i));
    EXPECT_TRUE(IsErrorResponse(response, 404, "Batch not found"));
    EXPECT_EQ(intHeader(response, "X-RateLimit-Remaining"), kLimit - 1 - i);
  }
  EXPECT_TRUE(IsRateLimited(client.get("/api/collectors/runs/job/ni_00000001")));
}

TEST_F(RateLimit, TriggeringHealthDocsAndMetricsAreNotLimited) {
  config_.appendToMain("[auth]\npublic_metrics = true\n");
  const HttpClient client = daemon().client();
  // Twice the budget of each first: none of it counts...
  for (int i = 0; i < 2 * kLimit; ++i) {
    auto triggered = client.trigger({"ninja"});
    ASSERT_TRUE(IsJsonResponse(triggered, 201)) << i;
    EXPECT_FALSE(triggered.header("X-RateLimit-Limit"));
    for (const std::string path : {"/healthz", "/readyz", "/metrics", "/api/docs"}) {
      auto response = client.get(path);
      EXPECT_EQ(response.status, 200) << path << " " << response.describe();
      EXPECT_FALSE(response.header("X-RateLimit-Limit")) << path;
    }
  }
  // ...so the limited routes still have all of theirs...
  spendBudget(client, "after unlimited requests");
  EXPECT_TRUE(IsRateLimited(client.get("/api/collectors/runs/latest")));
  // ...and the others go on once it is spent.
  EXPECT_TRUE(IsJsonResponse(client.trigger({"ninja"}), 201));
  EXPECT_EQ(client.get("/healthz").status, 200);
}

TEST_F(RateLimit, EachApiKeyHasItsOwnBudget) {
  writeFile(dir_.file("api_keys"), kAlphaKey + " read,run alpha\n" + kBetaKey + " read,run beta\n",
            0600);
  config_.appendToMain("[auth]\nrequired = true\napi_keys_file = api_keys\n");
  const HttpClient alpha = daemon().client().withHeaders(apiKeyHeader(kAlphaKey));
  const HttpClient beta = daemon().client().withHeaders(apiKeyHeader(kBetaKey));

  spendBudget(alpha, "alpha");
  EXPECT_TRUE(IsRateLimited(alpha.get("/api/collectors/runs/latest")));
  spendBudget(beta, "beta");  // untouched by alpha's
  EXPECT_TRUE(IsRateLimited(beta.get("/api/collectors/runs/latest")));
  EXPECT_TRUE(IsRateLimited(alpha.get("/api/collectors/history")));
}

TEST_F(RateLimit, RefusedRequestsCarryCorsHeadersForAllowedOrigins) {
  config_.appendToMain("[cors]\nallowed_origins = http://localhost:3000\n");
  const HttpClient client = daemon().client().withHeaders({{"Origin", "http://localhost:3000"}});
  spendBudget(client, "browser");
  auto refused = client.get("/api/collectors/runs/latest");
  EXPECT_TRUE(IsRateLimited(refused));
  EXPECT_EQ(refused.header("Access-Control-Allow-Origin"), "http://localhost:3000");
  // Without this a browser script cannot read Retry-After.
  EXPECT_EQ(refused.header("Access-Control-Expose-Headers"),
            "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After");
}

TEST_F(RateLimit, ForwardedForFromATrustedProxyNamesTheClient) {
  config_.appendToMain("[ratelimit]\ntrusted_proxies = 10.0.0.1, 127.0.0.1\n");
  const HttpClient client = daemon().client();
  const HttpClient first = client.withHeaders({{"X-Forwarded-For", "203.0.113.7"}});
  const HttpClient second = client.withHeaders({{"X-Forwarded-For", "198.51.100.9"}});

  spendBudget(first, "203.0.113.7");
  EXPECT_TRUE(IsRateLimited(first.get("/api/collectors/runs/latest")));
  spendBudget(second, "198.51.100.9");
  EXPECT_TRUE(IsRateLimited(second.get("/api/collectors/runs/latest")));
  // The proxy itself (no X-Forwarded-For) is a third client.
  spendBudget(client, "the proxy");

  // The nearest untrusted hop is the client: addresses it made up further left do not help,
  // and trusted proxies on the way are skipped.
  EXPECT_TRUE(IsRateLimited(client.get("/api/collectors/runs/latest",
                                       {{"X-Forwarded-For", "192.0.2.1, 203.0.113.7"}})));
  EXPECT_TRUE(IsRateLimited(client.get("/api/collectors/runs/latest",
                                       {{"X-Forwarded-For", "203.0.113.7, 10.0.0.1"}})));
  auto fresh = client.get("/api/collectors/runs/latest",
                          {{"X-Forwarded-For", "203.0.113.7, 192.0.2.55"}});
  EXPECT_TRUE(IsJsonResponse(fresh, 200));
  EXPECT_EQ(intHeader(fresh, "X-RateLimit-Remaining"), kLimit - 1);
}

TEST_F(RateLimit, ForwardedForFromAnUntrustedPeerIsIgnored) {
  // 127.0.0.1 is not configured as a proxy: whatever X-Forwarded-For says, it is one client.
  const HttpClient client = daemon().client();
  const HttpClient first = client.withHeaders({{"X-Forwarded-For", "203.0.113.7"}});
  const HttpClient second = client.withHeaders({{"X-Forwarded-For", "198.51.100.9"}});
  for (int i = 0; i < kLimit; ++i) {
    auto response = (i % 2 == 0 ? first : second).get("/api/collectors/runs/latest");
    ASSERT_TRUE(IsJsonResponse(response, 200)) << i;
    EXPECT_EQ(intHeader(response, "X-RateLimit-Remaining"), kLimit - 1 - i);
  }
  EXPECT_TRUE(IsRateLimited(first.get("/api/collectors/runs/latest")));
  EXPECT_TRUE(IsRateLimited(second.get("/api/collectors/runs/latest")));
  EXPECT_TRUE(IsRateLimited(client.get("/api/collectors/runs/latest",
                                       {{"X-Forwarded-For", "192.0.2.77"}})));
  EXPECT_TRUE(IsRateLimited(client.get("/api/collectors/runs/latest")));
}

}  // namespace
}  // namespace collectord::test
