// What the fuzz targets of fuzz/ found, one test per defect, each failing before its fix. The
// inputs that found them are kept in fuzz/corpus/ (docs/fuzzing.md lists them).
#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "auth.h"
#include "config.h"

namespace collectord {
namespace {

namespace fs = std::filesystem;

bool hasProblem(const std::vector<ConfigProblem>& problems, const std::string& key) {
  return std::any_of(problems.begin(), problems.end(),
                     [&key](const ConfigProblem& p) { return p.key == key; });
}

std::string collectorFile() { return (fs::temp_directory_path() / "fuzzed.ini").string(); }

// fuzz_config: "env.A.B = 1" made Poco file B under A, which has no value of its own; reading
// A threw NotFoundException out of loadConfig, so the daemon failed to start (or to reload)
// with "Not found" instead of naming the key.
TEST(FuzzFindings, DottedEnvironmentNameIsAProblemNotAnException) {
  std::vector<ConfigProblem> problems;
  CollectorConfig c;
  ASSERT_NO_THROW(c = parseCollectorConfig("[collector]\ncommand = sh\nenv.A.B = 1\nenv.OK = 2\n",
                                           collectorFile(), problems));
  EXPECT_TRUE(hasProblem(problems, "collector.env.A.B"));
  ASSERT_EQ(c.env.size(), 1u);
  EXPECT_EQ(c.env[0], (std::pair<std::string, std::string>{"OK", "2"}));
}

// fuzz_config, against the first fix of the test above: "env. = x" names a child "" of env,
// and a walk that marked the root with an empty name looped for ever.
TEST(FuzzFindings, EmptyEnvironmentNameIsAProblem) {
  std::vector<ConfigProblem> problems;
  const CollectorConfig c = parseCollectorConfig(
      "[collector]\ncommand = sh\nenv. = x\nenv.A. = y\n", collectorFile(), problems);
  EXPECT_TRUE(hasProblem(problems, "collector.env."));
  EXPECT_TRUE(hasProblem(problems, "collector.env.A."));
  EXPECT_TRUE(c.env.empty());
}

// Found while writing fuzz_config: a key nested under a known one was silently ignored.
TEST(FuzzFindings, KeyNestedUnderAKnownKeyIsReportedAsUnknown) {
  std::vector<ConfigProblem> problems;
  parseCollectorConfig("[collector]\ncommand = sh\ntimeout.x = 5s\n", collectorFile(), problems);
  EXPECT_TRUE(hasProblem(problems, "collector.timeout.x"));
}

// Found while writing fuzz_config: 12 digits and a T suffix wrapped past 2^64, so
// "16777216T" became a memory limit of 0 bytes and larger values arbitrary small ones.
TEST(FuzzFindings, SizeThatWouldWrapPast64BitsIsRefused) {
  std::vector<ConfigProblem> problems;
  parseCollectorConfig("[collector]\ncommand = sh\nmemory_limit = 16777216T\n", collectorFile(),
                       problems);
  EXPECT_TRUE(hasProblem(problems, "collector.memory_limit"));

  problems.clear();
  const CollectorConfig largest = parseCollectorConfig(
      "[collector]\ncommand = sh\nmemory_limit = 16777215T\n", collectorFile(), problems);
  EXPECT_FALSE(hasProblem(problems, "collector.memory_limit"));
  EXPECT_EQ(largest.memory_limit, std::uint64_t{16777215} << 40);
}

class FuzzFindingsAuth : public ::testing::Test {
 protected:
  static constexpr std::int64_t kNow = 1'700'000'000;

  void SetUp() override {
    http::AuthSettings settings;
    settings.jwt_secret = "fuzz-findings-secret-0123456789";
    std::string error;
    auth_ = http::Authenticator::load(settings, error);
    ASSERT_TRUE(auth_) << error;
  }

  static Poco::JWT::Token claims() {
    Poco::JWT::Token token;
    token.setSubject("dashboard");
    token.payload().set("exp", 4102444800);
    return token;
  }

  http::Authenticator::Result bearer(Poco::JWT::Token token) {
    Poco::JWT::Signer signer("fuzz-findings-secret-0123456789");
    const std::string header = "Bearer " + signer.sign(token, Poco::JWT::Signer::ALGO_HS256);
    return auth_->authenticate(nullptr, &header, kNow);
  }

  std::unique_ptr<http::Authenticator> auth_;
};

// fuzz_auth_header: claims of the wrong kind in a validly signed token made Poco throw
// InvalidAccessException out of authenticate(), which the API answered with a 500.
TEST_F(FuzzFindingsAuth, NullInAScopeListIsARefusalNotAnException) {
  Poco::JWT::Token token = claims();
  Poco::JSON::Array::Ptr scopes = new Poco::JSON::Array;
  scopes->add(std::string("read"));
  scopes->add(Poco::Dynamic::Var());
  token.payload().set("scope", scopes);
  http::Authenticator::Result result;
  ASSERT_NO_THROW(result = bearer(token));
  EXPECT_FALSE(result.identity);
  EXPECT_EQ(result.reason, "token claims are malformed");
}

TEST_F(FuzzFindingsAuth, NullAudienceIsARefusalNotAnException) {
  http::AuthSettings settings;
  settings.jwt_secret = "fuzz-findings-secret-0123456789";
  settings.jwt_audience = "collectord";
  std::string error;
  auth_ = http::Authenticator::load(settings, error);
  ASSERT_TRUE(auth_) << error;
  Poco::JWT::Token token = claims();
  token.payload().set("aud", Poco::Dynamic::Var());
  http::Authenticator::Result result;
  ASSERT_NO_THROW(result = bearer(token));
  EXPECT_FALSE(result.identity);
  EXPECT_EQ(result.reason, "token claims are malformed");
}

// fuzz_auth_header: Poco reads exp with a conversion, so "exp": "4102444800" (a string; RFC 7519
// wants a number) was accepted as a valid expiry.
TEST_F(FuzzFindingsAuth, ExpiryWrittenAsAStringIsRefused) {
  Poco::JWT::Token token = claims();
  token.payload().set("exp", std::string("4102444800"));
  const auto result = bearer(token);
  EXPECT_FALSE(result.identity);
  EXPECT_EQ(result.reason, "token expiry (exp) is not a number");

  token = claims();
  token.payload().set("nbf", true);
  EXPECT_EQ(bearer(token).reason, "token start (nbf) is not a number");
}

// The checks above refuse only what is malformed: the same token with well-formed claims passes.
TEST_F(FuzzFindingsAuth, WellFormedTokenIsStillAccepted) {
  Poco::JWT::Token token = claims();
  token.payload().set("nbf", kNow);
  token.payload().set("scope", std::string("read"));
  const auto result = bearer(token);
  ASSERT_TRUE(result.identity) << result.reason;
  EXPECT_EQ(result.identity->subject, "jwt:dashboard");
  EXPECT_EQ(result.identity->scopes, http::kScopeRead);
}

}  // namespace
}  // namespace collectord
