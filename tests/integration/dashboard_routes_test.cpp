// The built-in dashboard page as the real daemon serves it: redirects, content types, the
// security headers, ETag revalidation, and no credentials needed for the page itself while the
// API it calls still asks for them. (tests/e2e/dashboard drives the page in a browser.)

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

const std::string kKey = "dashboard-routes-key-0123456789";

// A daemon that requires credentials, as in production.
class DashboardRoutes : public ::testing::Test {
 protected:
  DashboardRoutes() {
    writeFile(dir_.file("api_keys"), kKey + " read,run\n", 0600);
    config_.addCollector("ninja", "exit 0\n");
    config_.appendToMain("[auth]\nrequired = true\napi_keys_file = api_keys\n");
    daemon_ = std::make_unique<Daemon>(config_);
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
  std::unique_ptr<Daemon> daemon_;
};

::testing::AssertionResult HasPageHeaders(const HttpResponse& response) {
  const auto csp = response.header("Content-Security-Policy");
  if (!csp) return ::testing::AssertionFailure() << "no Content-Security-Policy";
  for (const char* directive : {"default-src 'none'", "script-src 'self'", "style-src 'self'",
                                "connect-src 'self'", "frame-ancestors 'none'"}) {
    if (csp->find(directive) == std::string::npos) {
      return ::testing::AssertionFailure() << "CSP lacks " << directive << ": " << *csp;
    }
  }
  if (csp->find("unsafe-") != std::string::npos || csp->find('*') != std::string::npos) {
    return ::testing::AssertionFailure() << "CSP allows more than the origin: " << *csp;
  }
  if (response.header("X-Content-Type-Options") != "nosniff") {
    return ::testing::AssertionFailure() << "no X-Content-Type-Options: nosniff";
  }
  if (response.header("Cache-Control") != "no-cache") {
    return ::testing::AssertionFailure() << "Cache-Control is not no-cache";
  }
  return ::testing::AssertionSuccess();
}

TEST_F(DashboardRoutes, TheRootAndTheFolderWithoutSlashRedirectToThePage) {
  for (const char* path : {"/", "/dashboard"}) {
    const HttpResponse response = daemon_->client().get(path);
    EXPECT_EQ(response.status, 302) << path << ": " << response.describe();
    EXPECT_EQ(response.header("Location"), "dashboard/") << path;
    EXPECT_NE(response.body.find("href=\"dashboard/\""), std::string::npos) << response.body;
  }
}

TEST_F(DashboardRoutes, ThePageAndItsFilesAreServedWithoutCredentialsAndTheirTypes) {
  struct Case {
    std::string path;
    std::string content_type;
    std::string marker;  // something only that file holds
  };
  for (const Case& c : {Case{"/dashboard/", "text/html; charset=utf-8", "<script src=\"app.js\""},
                        Case{"/dashboard/app.js", "text/javascript; charset=utf-8", "X-API-Key"},
                        Case{"/dashboard/app.css", "text/css; charset=utf-8", ".bar"},
                        Case{"/dashboard/favicon.svg", "image/svg+xml", "<svg"}}) {
    const HttpResponse response = daemon_->client().get(c.path);
    ASSERT_EQ(response.status, 200) << c.path << ": " << response.describe();
    EXPECT_EQ(response.header("Content-Type"), c.content_type) << c.path;
    EXPECT_NE(response.body.find(c.marker), std::string::npos) << c.path;
    EXPECT_TRUE(HasPageHeaders(response)) << c.path;
  }
  // The page is public; what it reads is not.
  EXPECT_EQ(daemon_->client().get("/api/collectors").status, 401);
  EXPECT_EQ(daemon_->client().get("/api/collectors", apiKeyHeader(kKey)).status, 200);
}

TEST_F(DashboardRoutes, AnUnchangedFileIsAnsweredNotModifiedByItsETag) {
  const HttpResponse first = daemon_->client().get("/dashboard/app.js");
  const auto etag = first.header("ETag");
  ASSERT_TRUE(etag) << first.describe();
  EXPECT_EQ(etag->front(), '"');

  const HttpResponse again = daemon_->client().get("/dashboard/app.js", {{"If-None-Match", *etag}});
  EXPECT_EQ(again.status, 304) << again.describe();
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.header("ETag"), etag);

  const HttpResponse weak =
      daemon_->client().get("/dashboard/app.js", {{"If-None-Match", "\"other\", W/" + *etag}});
  EXPECT_EQ(weak.status, 304) << "a weak match in a list counts";

  const HttpResponse stale =
      daemon_->client().get("/dashboard/app.js", {{"If-None-Match", "\"0\""}});
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body, first.body);

  const HttpResponse page = daemon_->client().get("/dashboard/");
  EXPECT_NE(page.header("ETag"), etag) << "two files share a tag";
}

TEST_F(DashboardRoutes, OtherNamesAreNotFoundAndOtherMethodsNotAllowed) {
  for (const char* path :
       {"/dashboard/secret.txt", "/dashboard/index.html/x", "/dashboard/..%2Fapi"}) {
    const HttpResponse response = daemon_->client().get(path);
    EXPECT_EQ(response.status, 404) << path << ": " << response.describe();
    EXPECT_TRUE(response.object() && response.object()->has("error")) << path;
  }
  const HttpResponse post = daemon_->client().post("/dashboard/", "{}");
  EXPECT_EQ(post.status, 405) << post.describe();
  EXPECT_EQ(post.header("Allow"), "GET");
}

}  // namespace
}  // namespace collectord::test
