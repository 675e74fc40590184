// The embedded OpenAPI document against the router that serves the API: the same routes, the
// same access rules and rate limits, and every error described with the one Error schema.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "api_service.h"
#include "daemon_context.h"
#include "service_routes.h"

#ifndef COLLECTORD_PROJECT_VERSION
#error "tests/CMakeLists.txt passes the project version to this file"
#endif

namespace collectord::http {
namespace {

namespace fs = std::filesystem;
using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

// A daemon with no collectors, ready to serve, whose store is out of reach: these tests read no
// runs, and leaving JobStore unimplemented keeps them independent of that interface.
class EmptyContext final : public ApiContext {
 public:
  JobStore& store() override { throw StoreError("this test has no job store"); }
  TriggerResult trigger(const std::vector<std::string>&, Priority) override { return {}; }
  std::vector<std::string> collectorNames() const override { return {}; }
  bool hasCollector(std::string_view) const override { return false; }
  std::string notReadyReason() override { return ""; }
  ReportOutcome report(const std::string&, const ProgressUpdate&,
                       std::optional<JobRecord>&) override {
    return ReportOutcome::kNotFound;
  }
  CancelOutcome cancelJob(const std::string&) override { return CancelOutcome::kNotFound; }
  CancelOutcome cancelBatch(const std::string&) override { return CancelOutcome::kNotFound; }
  std::shared_ptr<const Config> config() const override { return std::make_shared<Config>(); }
  std::vector<CollectorState> collectorStates() override { return {}; }
};

// "/api/docs/{name}" -> "/api/docs/{}": the two sides name their placeholders independently.
std::string normalisedPath(const std::string& pattern) {
  static const std::regex placeholder("\\{[^}/]*\\}");
  return std::regex_replace(pattern, placeholder, "{}");
}

std::vector<std::string> placeholders(const std::string& pattern) {
  static const std::regex placeholder("\\{([^}/]*)\\}");
  std::vector<std::string> names;
  for (auto it = std::sregex_iterator(pattern.begin(), pattern.end(), placeholder);
       it != std::sregex_iterator(); ++it) {
    names.push_back((*it)[1]);
  }
  return names;
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string scopeName(Access access) {
  switch (access) {
    case Access::kRead:
      return "read";
    case Access::kRun:
      return "run";
    case Access::kAdmin:
      return "admin";
    case Access::kPublic:
      break;
  }
  return "";
}

std::string describe(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += "\n  " + item;
  return out.empty() ? " (none)" : out;
}

std::string stringify(const Var& value) {
  std::ostringstream out;
  Poco::JSON::Stringifier::stringify(value, out);
  return out.str();
}

class OpenApiDocument : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/collectord-openapi-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    docs_ = pattern;
    std::ofstream(docs_ / "GUIDE.md") << "# A guide\n";
    Poco::JSON::Parser parser;
    doc_ = parser.parse(std::string(openApiDocument())).extract<Object::Ptr>();
    paths_ = doc_->getObject("paths");
    ASSERT_TRUE(paths_) << "the document has no paths";
  }
  void TearDown() override { fs::remove_all(docs_); }

  // A router as the daemon builds it, with these routes public.
  Router routerWith(PublicRoutes open) {
    Router router;
    addApiRoutes(router, context_, metrics_, docs_.string(), open);
    return router;
  }

  // The value `ref` ("#/components/...") points at, or empty when it points nowhere.
  Var pointer(const std::string& ref) const {
    if (ref.rfind("#/", 0) != 0) return {};
    Var node = doc_;
    std::istringstream tokens(ref.substr(2));
    std::string token;
    while (std::getline(tokens, token, '/')) {
      for (std::size_t at; (at = token.find("~1")) != std::string::npos;) token.replace(at, 2, "/");
      for (std::size_t at; (at = token.find("~0")) != std::string::npos;) token.replace(at, 2, "~");
      if (node.type() == typeid(Object::Ptr)) {
        const auto object = node.extract<Object::Ptr>();
        if (!object->has(token)) return {};
        node = object->get(token);
      } else if (node.type() == typeid(Array::Ptr)) {
        const auto array = node.extract<Array::Ptr>();
        const auto index = static_cast<unsigned>(std::stoul(token));
        if (index >= array->size()) return {};
        node = array->get(index);
      } else {
        return {};
      }
    }
    return node;
  }

  // `node` itself, or the object its "$ref" points at (one level, as OpenAPI components are).
  Object::Ptr resolved(const Object::Ptr& node) const {
    if (!node || !node->has("$ref")) return node;
    const Var target = pointer(node->getValue<std::string>("$ref"));
    return target.type() == typeid(Object::Ptr) ? target.extract<Object::Ptr>() : nullptr;
  }

  Object::Ptr operation(const std::string& method, const std::string& path) const {
    const auto item = paths_->getObject(path);
    return item ? item->getObject(lower(method)) : nullptr;
  }

  // The documented response of `op` for `status`, references resolved.
  Object::Ptr response(const Object::Ptr& op, int status) const {
    const auto responses = op ? op->getObject("responses") : nullptr;
    return responses ? resolved(responses->getObject(std::to_string(status))) : nullptr;
  }

  // Every operation: "GET /healthz" -> its object.
  std::map<std::string, Object::Ptr> operations() const {
    static const std::set<std::string> kMethods = {"get",     "put",  "post",  "delete",
                                                   "options", "head", "patch", "trace"};
    std::map<std::string, Object::Ptr> ops;
    for (const auto& [path, item] : *paths_) {
      const auto methods = item.extract<Object::Ptr>();
      for (const auto& [method, op] : *methods) {
        if (kMethods.count(method)) ops[upper(method) + " " + path] = op.extract<Object::Ptr>();
      }
    }
    return ops;
  }

  fs::path docs_;
  EmptyContext context_;
  Metrics metrics_;
  Object::Ptr doc_;
  Object::Ptr paths_;
};

TEST_F(OpenApiDocument, IsOpenApi31WithTheProjectsNameAndVersion) {
  EXPECT_EQ(doc_->getValue<std::string>("openapi"), "3.1.0");
  const auto info = doc_->getObject("info");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->getValue<std::string>("title"), "collectord");
  EXPECT_EQ(info->getValue<std::string>("version"), COLLECTORD_PROJECT_VERSION)
      << "http/openapi.json and project(VERSION) in CMakeLists.txt disagree";
}

TEST_F(OpenApiDocument, DescribesExactlyTheRoutesTheRouterRegisters) {
  const Router router = routerWith(PublicRoutes{});
  std::set<std::string> registered, documented;
  for (const Router::Route& route : router.routes()) {
    EXPECT_TRUE(registered.insert(route.method + " " + normalisedPath(route.pattern)).second)
        << route.method << " " << route.pattern << " is registered twice";
  }
  for (const auto& [name, op] : operations()) {
    const auto space = name.find(' ');
    documented.insert(name.substr(0, space + 1) + normalisedPath(name.substr(space + 1)));
  }
  std::set<std::string> undocumented, unserved;
  std::set_difference(registered.begin(), registered.end(), documented.begin(), documented.end(),
                      std::inserter(undocumented, undocumented.end()));
  std::set_difference(documented.begin(), documented.end(), registered.begin(), registered.end(),
                      std::inserter(unserved, unserved.end()));
  EXPECT_TRUE(undocumented.empty()) << "served but not documented:" << describe(undocumented);
  EXPECT_TRUE(unserved.empty()) << "documented but not served:" << describe(unserved);
  EXPECT_GE(registered.size(), 11u) << "the router lost routes";
}

TEST_F(OpenApiDocument, PathParametersAreExactlyThePlaceholdersOfTheRoute) {
  const Router router = routerWith(PublicRoutes{});
  for (const Router::Route& route : router.routes()) {
    const auto op = operation(route.method, route.pattern);
    if (!op) continue;  // reported by DescribesExactlyTheRoutesTheRouterRegisters
    std::set<std::string> declared;
    if (const auto parameters = op->getArray("parameters")) {
      for (std::size_t i = 0; i < parameters->size(); ++i) {
        const auto parameter = resolved(parameters->getObject(static_cast<unsigned>(i)));
        ASSERT_TRUE(parameter) << route.pattern << ": parameter " << i << " does not resolve";
        if (parameter->getValue<std::string>("in") != "path") continue;
        EXPECT_TRUE(parameter->optValue("required", false))
            << route.pattern << ": path parameter " << parameter->getValue<std::string>("name")
            << " must be required";
        declared.insert(parameter->getValue<std::string>("name"));
      }
    }
    const auto names = placeholders(route.pattern);
    EXPECT_EQ(declared, std::set<std::string>(names.begin(), names.end())) << route.pattern;
  }
}

TEST_F(OpenApiDocument, EveryErrorResponseIsTheErrorSchema) {
  const Var error = pointer("#/components/schemas/Error");
  ASSERT_EQ(error.type(), typeid(Object::Ptr)) << "components/schemas/Error is missing";
  EXPECT_EQ(stringify(error.extract<Object::Ptr>()->get("required")), R"(["error"])");
  EXPECT_FALSE(error.extract<Object::Ptr>()->optValue("additionalProperties", true));

  for (const auto& [name, op] : operations()) {
    const auto responses = op->getObject("responses");
    ASSERT_TRUE(responses) << name << " documents no responses";
    bool any_success = false;
    for (const auto& [status, raw] : *responses) {
      const int code = std::stoi(status);
      // A redirect is the whole answer of some routes (GET / to the dashboard page).
      any_success = any_success || (code >= 200 && code < 400);
      if (code < 400) continue;
      const auto resolved_response = resolved(raw.extract<Object::Ptr>());
      ASSERT_TRUE(resolved_response) << name << " " << status << " does not resolve";
      const auto content = resolved_response->getObject("content");
      ASSERT_TRUE(content && content->size() == 1 && content->has("application/json"))
          << name << " " << status << ": errors are application/json and nothing else";
      const auto schema = content->getObject("application/json")->getObject("schema");
      ASSERT_TRUE(schema) << name << " " << status << " has no schema";
      EXPECT_EQ(schema->optValue<std::string>("$ref", ""), "#/components/schemas/Error")
          << name << " " << status;
    }
    EXPECT_TRUE(any_success) << name << " documents no success response";
    // What the server can answer on any route, before or around the handler.
    for (int status : {400, 405, 408, 413, 414, 431, 500}) {
      EXPECT_TRUE(responses->has(std::to_string(status)))
          << name << " does not document " << status;
    }
  }
}

TEST_F(OpenApiDocument, EveryReferenceResolves) {
  std::vector<std::string> broken;
  std::function<void(const Var&)> walk = [&](const Var& node) {
    if (node.type() == typeid(Object::Ptr)) {
      const auto object = node.extract<Object::Ptr>();
      for (const auto& [key, value] : *object) {
        if (key == "$ref" && value.isString() && pointer(value.toString()).isEmpty()) {
          broken.push_back(value.toString());
        }
        walk(value);
      }
    } else if (node.type() == typeid(Array::Ptr)) {
      for (const Var& item : *node.extract<Array::Ptr>()) walk(item);
    }
  };
  walk(doc_);
  EXPECT_TRUE(broken.empty()) << "unresolved: "
                              << describe(std::set<std::string>(broken.begin(), broken.end()));
}

TEST_F(OpenApiDocument, SecurityMatchesEachRoutesAccessAndWhatConfiguresIt) {
  const Router defaults = routerWith(PublicRoutes{});
  const Router open = routerWith(PublicRoutes{true, true, true});
  const Router closed = routerWith(PublicRoutes{false, false, false});
  // Which setting makes which routes public: flip one flag at a time.
  const std::vector<std::pair<std::string, PublicRoutes>> flips = {
      {"auth.public_docs", {!PublicRoutes{}.docs, PublicRoutes{}.health, PublicRoutes{}.metrics}},
      {"auth.public_health", {PublicRoutes{}.docs, !PublicRoutes{}.health, PublicRoutes{}.metrics}},
      {"auth.public_metrics",
       {PublicRoutes{}.docs, PublicRoutes{}.health, !PublicRoutes{}.metrics}}};
  ASSERT_EQ(defaults.routes().size(), open.routes().size());
  ASSERT_EQ(defaults.routes().size(), closed.routes().size());

  for (std::size_t i = 0; i < defaults.routes().size(); ++i) {
    const Router::Route& route = defaults.routes()[i];
    const std::string name = route.method + " " + route.pattern;
    const auto op = operation(route.method, route.pattern);
    if (!op) continue;  // reported by DescribesExactlyTheRoutesTheRouterRegisters
    const Access when_open = open.routes()[i].options.access;
    const Access when_closed = closed.routes()[i].options.access;
    const bool configurable = when_open != when_closed;
    const bool public_by_default = route.options.access == Access::kPublic;
    const Access protected_access = configurable ? when_closed : route.options.access;

    const auto security = op->getArray("security");
    ASSERT_TRUE(security) << name << " must state its security requirements";
    bool anonymous = false;
    std::set<std::string> requirements;
    for (std::size_t r = 0; r < security->size(); ++r) {
      const auto requirement = security->getObject(static_cast<unsigned>(r));
      if (requirement->size() == 0) anonymous = true;
      for (const auto& [scheme, scopes] : *requirement) {
        requirements.insert(scheme + ":" + stringify(scopes));
      }
    }
    EXPECT_EQ(anonymous, public_by_default) << name << ": an empty requirement means public";
    if (protected_access != Access::kPublic) {
      const std::string scope = "[\"" + scopeName(protected_access) + "\"]";
      EXPECT_EQ(requirements, (std::set<std::string>{"ApiKeyAuth:" + scope, "BearerAuth:" + scope}))
          << name;
    } else {
      EXPECT_TRUE(requirements.empty()) << name << " is always public";
    }

    const auto flag = op->getObject("x-collectord-public");
    EXPECT_EQ(static_cast<bool>(flag), configurable)
        << name << ": x-collectord-public documents a route whose access is configurable";
    if (flag && configurable) {
      EXPECT_EQ(flag->optValue("default", !public_by_default), public_by_default) << name;
      std::string setting;
      for (const auto& [key, flipped] : flips) {
        if (routerWith(flipped).routes()[i].options.access != route.options.access) setting = key;
      }
      EXPECT_EQ(flag->optValue<std::string>("setting", ""), setting) << name;
    }

    const bool can_refuse = protected_access != Access::kPublic;
    EXPECT_EQ(static_cast<bool>(response(op, 401)), can_refuse) << name << " and 401";
    EXPECT_EQ(static_cast<bool>(response(op, 403)), can_refuse) << name << " and 403";
    if (const auto unauthorized = response(op, 401)) {
      const auto headers = unauthorized->getObject("headers");
      EXPECT_TRUE(headers && headers->has("WWW-Authenticate")) << name << " 401";
    }
  }
}

TEST_F(OpenApiDocument, RateLimitedRoutesDocument429AndTheLimitHeaders) {
  const Router router = routerWith(PublicRoutes{});
  const std::vector<std::string> limit_headers = {"X-RateLimit-Limit", "X-RateLimit-Remaining",
                                                  "X-RateLimit-Reset"};
  for (const Router::Route& route : router.routes()) {
    const std::string name = route.method + " " + route.pattern;
    const auto op = operation(route.method, route.pattern);
    if (!op) continue;
    const auto too_many = response(op, 429);
    EXPECT_EQ(static_cast<bool>(too_many), route.options.rate_limited) << name << " and 429";
    // Every success (200, 201, 202..., or a redirect) carries the headers when the route counts,
    // none when not.
    int successes = 0;
    for (int status = 200; status < 400; ++status) {
      const auto success = response(op, status);
      if (!success) continue;
      ++successes;
      const auto success_headers = success->getObject("headers");
      for (const std::string& header : limit_headers) {
        const bool documented = success_headers && success_headers->has(header);
        EXPECT_EQ(documented, route.options.rate_limited)
            << name << " " << status << " and " << header;
      }
    }
    EXPECT_GT(successes, 0) << name << " documents no success";
    if (!too_many) continue;
    const auto headers = too_many->getObject("headers");
    ASSERT_TRUE(headers) << name << " 429 documents no headers";
    for (const std::string& header : limit_headers) EXPECT_TRUE(headers->has(header)) << header;
    EXPECT_TRUE(headers->has("Retry-After")) << name << " 429";
  }
}

// Each route called with the empty daemon answers a status its operation documents, with a
// content type documented for that status.
TEST_F(OpenApiDocument, WhatEachRouteAnswersIsDocumented) {
  const Router router = routerWith(PublicRoutes{});
  const std::map<std::string, std::string> samples = {
      {"batch_id", "bc_00000000"}, {"job_id", "ni_00000000"}, {"name", "GUIDE.md"}};
  for (const Router::Route& route : router.routes()) {
    const std::string name = route.method + " " + route.pattern;
    const auto op = operation(route.method, route.pattern);
    if (!op) continue;
    Request request;
    request.method = route.method;
    request.path = route.pattern;
    for (const auto& [param, value] : samples) {
      const std::string placeholder = "{" + param + "}";
      if (const auto at = request.path.find(placeholder); at != std::string::npos) {
        request.path.replace(at, placeholder.size(), value);
      }
    }
    if (route.method == "POST") request.body = R"({"collectors": ["nobody"]})";
    Response answer;
    try {
      answer = router.dispatch(request);
    } catch (...) {
      answer = faultResponse(request);  // what ApiService answers for a handler that throws
    }
    const auto documented = response(op, answer.status);
    ASSERT_TRUE(documented) << name << " answered " << answer.status << " " << answer.body;
    const std::string media_type = answer.content_type.substr(0, answer.content_type.find(';'));
    const auto content = documented->getObject("content");
    EXPECT_TRUE(content && content->has(media_type))
        << name << " " << answer.status << " is " << answer.content_type;
    if (media_type == "application/json") {
      EXPECT_NO_THROW(Poco::JSON::Parser().parse(answer.body)) << name << ": " << answer.body;
    }
  }
}

TEST_F(OpenApiDocument, IsServedAsJsonWithTheDocsAccess) {
  for (const bool docs_public : {true, false}) {
    const Router router = routerWith(PublicRoutes{docs_public, true, false});
    Request request;
    request.method = "GET";
    request.path = "/api/openapi.json";
    Response error;
    std::string allow;
    const Router::Route* route = router.resolve(request, error, allow);
    ASSERT_NE(route, nullptr) << error.body;
    request.path = "/api/docs";
    const Router::Route* docs = router.resolve(request, error, allow);
    ASSERT_NE(docs, nullptr);
    EXPECT_EQ(route->options.access, docs->options.access);
    EXPECT_FALSE(route->options.rate_limited);
    request.path = "/api/openapi.json";
    const Response served = route->handler(request);
    EXPECT_EQ(served.status, 200);
    EXPECT_EQ(served.content_type, "application/json");
    EXPECT_EQ(served.body, openApiDocument());
  }
}

}  // namespace
}  // namespace collectord::http
