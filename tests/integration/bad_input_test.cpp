// Every refused request: exact status and {"error": ...} body, and no run created or changed.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

// Two known collectors, and a daemon that has run nothing yet.
class BadInput : public ::testing::Test {
 protected:
  BadInput() {
    config_.addCollector("alpha", "exit 0\n").addCollector("ninja", "exit 0\n");
    daemon_ = std::make_unique<Daemon>(config_);
  }

  HttpResponse postRun(const std::string& body) const {
    return daemon_->client().post("/api/collectors/run", body);
  }

  // The refused requests created nothing.
  void expectNoRuns() const {
    auto history = daemon_->client().get("/api/collectors/history?limit=1000");
    ASSERT_TRUE(IsJsonResponse(history, 200));
    EXPECT_EQ(jsonOf(*history.object(), "total_runs"), "0") << history.body;
    EXPECT_EQ(jsonOf(*history.object(), "collection_history"), "[]");
    auto latest = daemon_->client().get("/api/collectors/runs/latest");
    ASSERT_TRUE(IsJsonResponse(latest, 200));
    EXPECT_EQ(jsonOf(*latest.object(), "latest_runs"), "[]") << latest.body;
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(BadInput, RejectsABodyThatIsNotJson) {
  for (const char* body : {"", "{", "collectors=alpha", "{\"collectors\": [\"alpha\"]", "{'a': 1}",
                           "{\"collectors\": [\"alpha\"]} trailing"}) {
    EXPECT_TRUE(IsErrorResponseStartingWith(postRun(body), 400, "Request body is not valid JSON: "))
        << "body: " << body;
  }
  expectNoRuns();
}

TEST_F(BadInput, RejectsAnArrayBodyAsNotAnObject) {
  for (const char* body : {"[\"alpha\"]", "[]", "[{\"collectors\": [\"alpha\"]}]"}) {
    EXPECT_TRUE(IsErrorResponse(postRun(body), 400, "Request body must be a JSON object"))
        << "body: " << body;
  }
  expectNoRuns();
}

// Top-level scalars are valid JSON (RFC 8259), so they are "not an object", not "not JSON".
// Poco 1.11's JSON::Parser throws on them: a daemon relying on it alone fails this test.
TEST_F(BadInput, RejectsAScalarBodyAsNotAnObject) {
  for (const char* body : {"\"alpha\"", "42", "null", "true"}) {
    EXPECT_TRUE(IsErrorResponse(postRun(body), 400, "Request body must be a JSON object"))
        << "body: " << body;
  }
  expectNoRuns();
}

TEST_F(BadInput, RejectsABodyWithoutCollectors) {
  for (const char* body : {"{}", "{\"priority\": \"high\"}", "{\"collector\": [\"alpha\"]}"}) {
    EXPECT_TRUE(
        IsErrorResponse(postRun(body), 400, "'collectors' is required: a list of collector names"))
        << "body: " << body;
  }
  expectNoRuns();
}

TEST_F(BadInput, RejectsCollectorsThatAreNotAListOfStrings) {
  for (const char* body :
       {"{\"collectors\": \"alpha\"}", "{\"collectors\": 1}", "{\"collectors\": {\"alpha\": true}}",
        "{\"collectors\": [\"alpha\", 2]}", "{\"collectors\": [[\"alpha\"]]}",
        "{\"collectors\": [\"alpha\", null]}"}) {
    EXPECT_TRUE(IsErrorResponse(postRun(body), 400, "'collectors' must be a list of strings"))
        << "body: " << body;
  }
  expectNoRuns();
}

TEST_F(BadInput, RejectsAnEmptyCollectorsList) {
  EXPECT_TRUE(IsErrorResponse(postRun("{\"collectors\": []}"), 400,
                              "'collectors' must name at least one collector"));
  EXPECT_TRUE(IsErrorResponse(postRun("{\"collectors\": [], \"priority\": \"high\"}"), 400,
                              "'collectors' must name at least one collector"));
  expectNoRuns();
}

TEST_F(BadInput, RejectsUnknownCollectorsNamingThemInRequestOrder) {
  EXPECT_TRUE(IsErrorResponse(postRun("{\"collectors\": [\"zulu\", \"alpha\", \"yankee\"]}"), 400,
                              "Unknown collectors: zulu, yankee"));
  EXPECT_TRUE(
      IsErrorResponse(postRun("{\"collectors\": [\"Alpha\"]}"), 400, "Unknown collectors: Alpha"));
  expectNoRuns();
}

TEST_F(BadInput, RejectsDuplicateCollectors) {
  EXPECT_TRUE(IsErrorResponse(postRun("{\"collectors\": [\"ninja\", \"alpha\", \"ninja\"]}"), 400,
                              "Duplicate collectors: ninja"));
  expectNoRuns();
}

TEST_F(BadInput, RejectsAPriorityOtherThanHighNormalOrLow) {
  for (const char* priority : {"\"urgent\"", "\"HIGH\"", "\"\"", "1", "true", "[\"high\"]"}) {
    std::string body = std::string("{\"collectors\": [\"alpha\"], \"priority\": ") + priority + "}";
    EXPECT_TRUE(IsErrorResponse(postRun(body), 400, "'priority' must be one of: high, normal, low"))
        << "body: " << body;
  }
  expectNoRuns();
}

TEST_F(BadInput, AnswersAnUnknownRouteWithNotFoundNamingThePath) {
  auto client = daemon_->client();

  for (const char* path : {"/index.html", "/api", "/api/collectors/", "/api/collectors/runs",
                           "/api/collectors/runs/unknown/x", "/api/collectors/running"}) {
    EXPECT_TRUE(IsErrorResponse(client.get(path), 404, std::string("Not found: ") + path))
        << "GET " << path;
  }
  EXPECT_TRUE(IsErrorResponse(client.post("/api/collectors/runs", "{\"collectors\": [\"alpha\"]}"),
                              404, "Not found: /api/collectors/runs"));
  expectNoRuns();
}

TEST_F(BadInput, AnswersAWrongMethodWithMethodNotAllowedAndTheAllowHeader) {
  auto client = daemon_->client();
  struct Case {
    std::string method;
    std::string path;
    std::string allow;
  };
  const std::vector<Case> cases = {
      {"DELETE", "/api/collectors/history", "GET"},
      {"POST", "/api/collectors/history", "GET"},
      {"GET", "/api/collectors/run", "POST"},
      {"PUT", "/api/collectors/run", "POST"},
      {"DELETE", "/api/collectors/run", "POST"},
      {"POST", "/api/collectors/runs/latest", "GET"},
      {"PUT", "/api/collectors/runs/batch/bc_12345678", "GET, DELETE"},
      {"POST", "/api/collectors/runs/job/ni_12345678", "GET, DELETE, PUT"},
      {"GET", "/api/collectors/runs/job/ni_12345678/cancel", "POST"},
      {"DELETE", "/api/collectors/runs/job/ni_12345678/log", "GET"},
      {"POST", "/api/collectors", "GET"},
  };
  for (const auto& c : cases) {
    // A valid trigger body, so that a method mix-up cannot start a run unnoticed.
    std::optional<std::string> body;
    if (c.method == "POST" || c.method == "PUT") body = "{\"collectors\": [\"alpha\"]}";
    auto response = client.request(c.method, c.path, body);
    EXPECT_TRUE(
        IsErrorResponse(response, 405, "Method " + c.method + " is not allowed on " + c.path))
        << c.method << " " << c.path;
    EXPECT_EQ(response.header("Allow"), c.allow) << c.method << " " << c.path;
  }
  expectNoRuns();
}

}  // namespace
}  // namespace collectord::test
