// Authentication and scopes on the real daemon: API keys (plain and sha256:HEX), HS256 and RS256
// bearer tokens made here with Poco::JWT, every way credentials are refused with its exact body
// and challenge, secrets kept out of the log and out of collectors' environments, the refusal to
// serve without credentials on a reachable address, and which routes are public.

#include <Poco/Crypto/RSAKey.h>
#include <Poco/DigestEngine.h>
#include <Poco/JSON/Array.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>
#include <Poco/SHA2Engine.h>
#include <gtest/gtest.h>

#include <cstdint>
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

// Credentials the daemon knows (all at least 16 characters, as the key file requires).
const std::string kOpsKey = "ops-key-7f3a9c1e5b2d4086";         // read,run, written in plain
const std::string kHashedKey = "hashed-key-0d9e8c7b6a5f4e3d";   // read,run, written as sha256:HEX
const std::string kReaderKey = "reader-key-1a2b3c4d5e6f7a8b";   // read
const std::string kRunnerKey = "runner-key-9f8e7d6c5b4a3f2e";   // run
const std::string kAdminKey = "admin-key-5e4d3c2b1a0f9e8d7c";   // admin
const std::string kDefaultKey = "default-key-6c5b4a39281706f5";  // no scopes listed: read,run
const std::string kJwtSecret = "jwt-secret-for-tests-3b7e0c5d9a1f";
const std::string kIssuer = "https://idp.example.test";
const std::string kAudience = "collectord-api";

const std::string kChallenge = "Bearer realm=\"collectord\"";
const std::string kInvalidTokenChallenge = "Bearer realm=\"collectord\", error=\"invalid_token\"";
const std::string kMissingCredentials =
    "Authentication required: send an X-API-Key header or Authorization: Bearer <token>";

std::string hexSha256(const std::string& text) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(text);
  return Poco::DigestEngine::digestToHex(engine.digest());
}

std::string base64Url(const std::string& bytes) {
  static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += digits[(n >> shift) & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned n = static_cast<unsigned char>(bytes[i]) << 16;
    out += digits[(n >> 18) & 63];
    out += digits[(n >> 12) & 63];
  } else if (i + 2 == bytes.size()) {
    const unsigned n =
        (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += digits[(n >> 18) & 63];
    out += digits[(n >> 12) & 63];
    out += digits[(n >> 6) & 63];
  }
  return out;
}

std::int64_t unixNow() { return static_cast<std::int64_t>(std::time(nullptr)); }

// The claims of a token; every optional left empty is simply absent.
struct Claims {
  std::optional<std::int64_t> exp = unixNow() + 600;
  std::optional<std::int64_t> nbf;
  std::optional<std::string> iss = kIssuer;
  Poco::Dynamic::Var aud = kAudience;  // a string, an Array::Ptr, or empty for none
  std::optional<std::string> sub = std::string("dashboard");
  Poco::Dynamic::Var scope = std::string("read run");  // a string, an Array::Ptr, or empty
};

Poco::JWT::Token tokenOf(const Claims& claims) {
  Poco::JWT::Token token;
  token.setType("JWT");
  auto& payload = token.payload();
  if (claims.exp) payload.set("exp", static_cast<Poco::Int64>(*claims.exp));
  if (claims.nbf) payload.set("nbf", static_cast<Poco::Int64>(*claims.nbf));
  if (claims.iss) payload.set("iss", *claims.iss);
  if (!claims.aud.isEmpty()) payload.set("aud", claims.aud);
  if (claims.sub) payload.set("sub", *claims.sub);
  if (!claims.scope.isEmpty()) payload.set("scope", claims.scope);
  payload.set("iat", static_cast<Poco::Int64>(unixNow()));
  return token;
}

std::string hs256(const Claims& claims, const std::string& secret = kJwtSecret,
                  const std::string& algorithm = Poco::JWT::Signer::ALGO_HS256) {
  Poco::JWT::Token token = tokenOf(claims);
  Poco::JWT::Signer signer(secret);
  signer.addAlgorithm(algorithm);
  return signer.sign(token, algorithm);
}

std::string rs256(const Claims& claims, const Poco::SharedPtr<Poco::Crypto::RSAKey>& key) {
  Poco::JWT::Token token = tokenOf(claims);
  Poco::JWT::Signer signer(key);
  signer.addAlgorithm(Poco::JWT::Signer::ALGO_RS256);
  return signer.sign(token, Poco::JWT::Signer::ALGO_RS256);
}

// header.payload.signature of a compact JWT.
std::vector<std::string> partsOf(const std::string& jwt) {
  std::vector<std::string> parts;
  std::istringstream in(jwt);
  std::string part;
  while (std::getline(in, part, '.')) parts.push_back(part);
  if (!jwt.empty() && jwt.back() == '.') parts.emplace_back();
  return parts;
}

std::string payloadJson(const Claims& claims) {
  std::ostringstream out;
  tokenOf(claims).payload().stringify(out);
  return out.str();
}

Poco::JSON::Array::Ptr arrayOf(const std::vector<std::string>& items) {
  Poco::JSON::Array::Ptr array = new Poco::JSON::Array;
  for (const auto& item : items) array->add(item);
  return array;
}

::testing::AssertionResult IsRefusal(const HttpResponse& response, const std::string& message,
                                     const std::string& challenge = kInvalidTokenChallenge) {
  auto body = IsErrorResponse(response, 401, message);
  if (!body) return body;
  auto header = response.header("WWW-Authenticate");
  if (header != challenge) {
    return ::testing::AssertionFailure()
           << "WWW-Authenticate is '" << header.value_or("<missing>") << "', expected '"
           << challenge << "'";
  }
  return ::testing::AssertionSuccess();
}

// A daemon that requires credentials: the key file, an HS256 secret, an RS256 public key (its
// pair made here), an issuer and an audience; one collector to trigger.
class Auth : public ::testing::Test {
 protected:
  Auth()
      : rsa_(new Poco::Crypto::RSAKey(Poco::Crypto::RSAKey::KL_2048,
                                      Poco::Crypto::RSAKey::EXP_LARGE)) {
    writeFile(dir_.file("api_keys"),
              "# key [scopes] [label]\n" +
                  kOpsKey + " read,run ops\n"
                  "sha256:" + hexSha256(kHashedKey) + " read,run hashed   # stored hashed\n" +
                  kReaderKey + " read reader\n" +
                  kRunnerKey + " run runner\n" +
                  kAdminKey + " admin admin\n" +
                  kDefaultKey + "\n",
              0600);
    rsa_->save(dir_.file("jwt_public.pem"));
    config_.addCollector("ninja", "exit 0\n");
    config_.appendToMain("[auth]\n"
                         "required = true\n"
                         "api_keys_file = api_keys\n"
                         "jwt_secret = " + kJwtSecret + "\n"
                         "jwt_public_key_file = jwt_public.pem\n"
                         "jwt_issuer = " + kIssuer + "\n"
                         "jwt_audience = " + kAudience + "\n");
  }

  Daemon& daemon() {
    if (!daemon_) daemon_ = std::make_unique<Daemon>(config_);
    return *daemon_;
  }
  HttpResponse latest(const Keys& headers) {
    return daemon().client().get("/api/collectors/runs/latest", headers);
  }
  HttpResponse run(const Keys& headers) {
    return daemon().client().post("/api/collectors/run", R"({"collectors": ["ninja"]})", headers);
  }
  // How many runs exist, asked with the admin key.
  std::string totalRuns() {
    auto history = daemon().client().get("/api/collectors/history?limit=1000",
                                         apiKeyHeader(kAdminKey));
    if (!IsJsonResponse(history, 200)) return "history: " + history.describe();
    return jsonOf(*history.object(), "total_runs");
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
  Poco::SharedPtr<Poco::Crypto::RSAKey> rsa_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(Auth, ApiKeysInPlainAndHashedFormAreAccepted) {
  for (const std::string& key : {kOpsKey, kHashedKey, kDefaultKey}) {
    auto read = latest(apiKeyHeader(key));
    ASSERT_TRUE(IsJsonResponse(read, 200)) << key;
    EXPECT_TRUE(HasListEnvelope(*read.object(), "latest_runs")) << key;
    auto triggered = run(apiKeyHeader(key));
    ASSERT_TRUE(IsJsonResponse(triggered, 201)) << key;
    EXPECT_TRUE(HasTriggerShape(*triggered.object(), {"ninja"}, {"ninja-collector"})) << key;
  }
  EXPECT_EQ(totalRuns(), "3");
}

TEST_F(Auth, MissingCredentialsAre401WithAChallenge) {
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"GET", "/api/collectors/runs/latest"},
      {"GET", "/api/collectors/runs/batch/bc_00000001"},
      {"GET", "/api/collectors/runs/job/ni_00000001"},
      {"GET", "/api/collectors/history"},
      {"POST", "/api/collectors/run"},
  };
  for (const auto& [method, path] : requests) {
    auto response = daemon().client().request(
        method, path,
        method == "POST" ? std::optional<std::string>(R"({"collectors": ["ninja"]})")
                         : std::nullopt);
    EXPECT_TRUE(IsRefusal(response, kMissingCredentials, kChallenge)) << method << " " << path;
  }
  EXPECT_EQ(totalRuns(), "0");
}

TEST_F(Auth, WrongApiKeysAre401) {
  const std::vector<std::string> wrong = {
      "wrong-key-00000000000000000",
      kOpsKey + "x",
      kOpsKey.substr(0, kOpsKey.size() - 1),
      " " + kOpsKey + "-",
      "OPS-KEY-7F3A9C1E5B2D4086",               // keys are case-sensitive
      hexSha256(kHashedKey),                    // the stored hash is not itself a key
      "sha256:" + hexSha256(kHashedKey),        // nor is the key file's line
      "",                                       // present but empty
      kJwtSecret,                               // the HS256 secret is not an API key
  };
  for (const std::string& key : wrong) {
    EXPECT_TRUE(IsRefusal(latest(apiKeyHeader(key)), "Invalid credentials: invalid API key"))
        << "key '" << key << "'";
    EXPECT_TRUE(IsRefusal(run(apiKeyHeader(key)), "Invalid credentials: invalid API key"))
        << "key '" << key << "'";
  }
  EXPECT_EQ(totalRuns(), "0");
}

TEST_F(Auth, TwoCredentialHeadersAreRefused) {
  for (const std::string& extra :
       {"X-API-Key: " + kOpsKey + "\r\nX-API-Key: " + kReaderKey + "\r\n",
        "Authorization: Bearer " + hs256({}) + "\r\nAuthorization: Bearer " + hs256({}) + "\r\n"}) {
    auto exchange = daemon().client().raw("GET /api/collectors/runs/latest HTTP/1.1\r\n"
                                          "Host: localhost\r\nConnection: close\r\n" +
                                          extra + "\r\n");
    ASSERT_TRUE(exchange.response) << exchange.received;
    EXPECT_TRUE(IsRefusal(*exchange.response,
                          "Invalid credentials: send one X-API-Key or one Authorization header",
                          "Bearer realm=\"collectord\", error=\"invalid_request\""))
        << extra;
  }
}

TEST_F(Auth, AuthorizationThatIsNotABearerTokenIs401) {
  EXPECT_TRUE(IsRefusal(latest({{"Authorization", "Basic b3BzOnNlY3JldA=="}}),
                        "Invalid credentials: Authorization must be 'Bearer <token>'"));
  EXPECT_TRUE(IsRefusal(latest({{"Authorization", kOpsKey}}),
                        "Invalid credentials: Authorization must be 'Bearer <token>'"));
  for (const std::string& token : {std::string("not-a-jwt"), std::string("a.b.c"),
                                   std::string("...")}) {
    EXPECT_TRUE(IsRefusal(latest(bearerHeader(token)), "Invalid credentials: malformed bearer token"))
        << token;
  }
}

TEST_F(Auth, Hs256AndRs256TokensAreAccepted) {
  for (const std::string& token : {hs256({}), rs256({}, rsa_)}) {
    auto read = latest(bearerHeader(token));
    ASSERT_TRUE(IsJsonResponse(read, 200)) << token;
    EXPECT_TRUE(HasListEnvelope(*read.object(), "latest_runs"));
    auto triggered = run(bearerHeader(token));
    ASSERT_TRUE(IsJsonResponse(triggered, 201)) << token;
    EXPECT_TRUE(HasTriggerShape(*triggered.object(), {"ninja"}, {"ninja-collector"}));
  }
  // The scheme is case-insensitive (RFC 7235).
  EXPECT_TRUE(IsJsonResponse(latest({{"Authorization", "bearer " + hs256({})}}), 200));
  EXPECT_EQ(totalRuns(), "2");
}

TEST_F(Auth, ExpiryAndNotBeforeAllowThirtySecondsOfClockSkew) {
  Claims just_expired;
  just_expired.exp = unixNow() - 10;
  Claims nearly_valid;
  nearly_valid.nbf = unixNow() + 10;
  for (const Claims& claims : {just_expired, nearly_valid}) {
    EXPECT_TRUE(IsJsonResponse(latest(bearerHeader(hs256(claims))), 200));
    EXPECT_TRUE(IsJsonResponse(latest(bearerHeader(rs256(claims, rsa_))), 200));
  }
}

TEST_F(Auth, ExpiredTokensAre401) {
  Claims expired;
  expired.exp = unixNow() - 120;
  EXPECT_TRUE(IsRefusal(latest(bearerHeader(hs256(expired))), "Invalid credentials: token has expired"));
  EXPECT_TRUE(
      IsRefusal(latest(bearerHeader(rs256(expired, rsa_))), "Invalid credentials: token has expired"));
}

TEST_F(Auth, NotYetValidTokensAre401) {
  Claims early;
  early.nbf = unixNow() + 120;
  EXPECT_TRUE(IsRefusal(latest(bearerHeader(hs256(early))),
                        "Invalid credentials: token is not valid yet (nbf)"));
  EXPECT_TRUE(IsRefusal(latest(bearerHeader(rs256(early, rsa_))),
                        "Invalid credentials: token is not valid yet (nbf)"));
}

TEST_F(Auth, TokensWithoutExpiryAre401) {
  Claims forever;
  forever.exp.reset();
  EXPECT_TRUE(IsRefusal(latest(bearerHeader(hs256(forever))),
                        "Invalid credentials: token has no expiry (exp)"));
  EXPECT_TRUE(IsRefusal(latest(bearerHeader(rs256(forever, rsa_))),
                        "Invalid credentials: token has no expiry (exp)"));
}

TEST_F(Auth, TokensWithAWrongSignatureAre401) {
  Poco::SharedPtr<Poco::Crypto::RSAKey> other(
      new Poco::Crypto::RSAKey(Poco::Crypto::RSAKey::KL_2048, Poco::Crypto::RSAKey::EXP_LARGE));
  const std::string public_pem = readFile(dir_.file("jwt_public.pem")).value_or("");
  ASSERT_FALSE(public_pem.empty());

  Claims reader;
  reader.scope = std::string("read");
  Claims admin;
  admin.scope = std::string("admin");
  const auto genuine = partsOf(hs256(reader));
  ASSERT_EQ(genuine.size(), 3u);
  const std::string escalated =
      genuine[0] + "." + base64Url(payloadJson(admin)) + "." + genuine[2];  // signature kept
  const std::string unsigned_hs256 = genuine[0] + "." + genuine[1] + ".";

  const std::vector<std::pair<std::string, std::string>> tokens = {
      {"HS256 with another secret", hs256({}, "another-secret-0123456789abcdef")},
      {"RS256 with another key pair", rs256({}, other)},
      // Algorithm confusion: HS256 keyed with the RS256 public key the server holds.
      {"HS256 keyed with the RSA public key", hs256({}, public_pem)},
      {"payload swapped for more scopes", escalated},
      {"signature stripped", unsigned_hs256},
  };
  for (const auto& [what, token] : tokens) {
    EXPECT_TRUE(IsRefusal(latest(bearerHeader(token)), "Invalid credentials: token signature is invalid"))
        << what;
    EXPECT_TRUE(IsRefusal(run(bearerHeader(token)), "Invalid credentials: token signature is invalid"))
        << what;
  }
  EXPECT_EQ(totalRuns(), "0");
}

TEST_F(Auth, UnacceptedAlgorithmsAre401) {
  // alg "none", built by hand: header.payload. with an empty signature.
  const std::string none = base64Url(R"({"alg":"none","typ":"JWT"})") + "." +
                           base64Url(payloadJson({})) + ".";
  EXPECT_TRUE(IsRefusal(latest(bearerHeader(none)),
                        "Invalid credentials: token algorithm 'none' is not accepted"));
  EXPECT_TRUE(IsRefusal(run(bearerHeader(none)),
                        "Invalid credentials: token algorithm 'none' is not accepted"));
  // A correctly signed token with an algorithm the server was not configured for.
  EXPECT_TRUE(IsRefusal(latest(bearerHeader(hs256({}, kJwtSecret, Poco::JWT::Signer::ALGO_HS512))),
                        "Invalid credentials: token algorithm 'HS512' is not accepted"));
  EXPECT_EQ(totalRuns(), "0");
}

TEST_F(Auth, TokensForAnotherAudienceAre401) {
  Claims other;
  other.aud = std::string("another-api");
  Claims none;
  none.aud.clear();
  for (const Claims& claims : {other, none}) {
    EXPECT_TRUE(IsRefusal(latest(bearerHeader(hs256(claims))),
                          "Invalid credentials: token audience is not accepted"));
    EXPECT_TRUE(IsRefusal(latest(bearerHeader(rs256(claims, rsa_))),
                          "Invalid credentials: token audience is not accepted"));
  }
  // One of several audiences is enough (RFC 7519 4.1.3).
  Claims several;
  several.aud = arrayOf({"another-api", kAudience});
  EXPECT_TRUE(IsJsonResponse(latest(bearerHeader(hs256(several))), 200));
}

TEST_F(Auth, TokensFromAnotherIssuerAre401) {
  Claims other;
  other.iss = "https://idp.evil.test";
  Claims none;
  none.iss.reset();
  for (const Claims& claims : {other, none}) {
    EXPECT_TRUE(IsRefusal(latest(bearerHeader(hs256(claims))),
                          "Invalid credentials: token issuer is not accepted"));
    EXPECT_TRUE(IsRefusal(latest(bearerHeader(rs256(claims, rsa_))),
                          "Invalid credentials: token issuer is not accepted"));
  }
}

TEST_F(Auth, KeysWithoutTheNeededScopeAre403) {
  EXPECT_TRUE(IsErrorResponse(
      run(apiKeyHeader(kReaderKey)), 403,
      "Forbidden: this request needs the 'run' scope; these credentials have 'read'"));
  EXPECT_TRUE(IsJsonResponse(latest(apiKeyHeader(kReaderKey)), 200));

  EXPECT_TRUE(IsErrorResponse(
      latest(apiKeyHeader(kRunnerKey)), 403,
      "Forbidden: this request needs the 'read' scope; these credentials have 'run'"));
  EXPECT_TRUE(IsJsonResponse(run(apiKeyHeader(kRunnerKey)), 201));

  EXPECT_TRUE(IsJsonResponse(latest(apiKeyHeader(kAdminKey)), 200));
  EXPECT_TRUE(IsJsonResponse(run(apiKeyHeader(kAdminKey)), 201));
  EXPECT_EQ(totalRuns(), "2");  // the 403 created nothing
}

TEST_F(Auth, TokenScopesComeFromTheScopeClaim) {
  struct Row {
    const char* what;
    Poco::Dynamic::Var scope;
    int read_status;
    int run_status;
    const char* have;  // as the 403 message names them
  };
  const std::vector<Row> rows = {
      {"string 'read run'", std::string("read run"), 200, 201, "read,run"},
      {"string 'read'", std::string("read"), 200, 403, "read"},
      {"string 'run'", std::string("run"), 403, 201, "run"},
      {"string 'admin'", std::string("admin"), 200, 201, "admin"},
      {"array [read]", arrayOf({"read"}), 200, 403, "read"},
      {"array [read, run]", arrayOf({"read", "run"}), 200, 201, "read,run"},
      {"unknown names only", std::string("write delete"), 403, 403, "none"},
      {"no scope claim", Poco::Dynamic::Var(), 403, 403, "none"},
  };
  for (const Row& row : rows) {
    Claims claims;
    claims.scope = row.scope;
    for (const std::string& token : {hs256(claims), rs256(claims, rsa_)}) {
      auto read = latest(bearerHeader(token));
      auto ran = run(bearerHeader(token));
      if (row.read_status == 200) {
        EXPECT_TRUE(IsJsonResponse(read, 200)) << row.what;
      } else {
        EXPECT_TRUE(IsErrorResponse(read, 403,
                                    std::string("Forbidden: this request needs the 'read' scope; "
                                                "these credentials have '") +
                                        row.have + "'"))
            << row.what;
      }
      if (row.run_status == 201) {
        EXPECT_TRUE(IsJsonResponse(ran, 201)) << row.what;
      } else {
        EXPECT_TRUE(IsErrorResponse(ran, 403,
                                    std::string("Forbidden: this request needs the 'run' scope; "
                                                "these credentials have '") +
                                        row.have + "'"))
            << row.what;
      }
    }
  }
}

TEST_F(Auth, SecretsNeverAppearInTheLog) {
  const std::string hs_token = hs256({});
  const std::string rs_token = rs256({}, rsa_);
  const std::string wrong_key = "wrong-key-4d3c2b1a09f8e7d6c5";
  Claims expired;
  expired.exp = unixNow() - 600;
  const std::string expired_token = hs256(expired);
  EXPECT_TRUE(IsJsonResponse(latest(apiKeyHeader(kOpsKey)), 200));
  EXPECT_TRUE(IsJsonResponse(run(apiKeyHeader(kHashedKey)), 201));
  EXPECT_TRUE(IsJsonResponse(latest(bearerHeader(hs_token)), 200));
  EXPECT_TRUE(IsJsonResponse(run(bearerHeader(rs_token)), 201));
  EXPECT_EQ(latest(apiKeyHeader(wrong_key)).status, 401);
  EXPECT_EQ(latest(bearerHeader(expired_token)).status, 401);
  EXPECT_EQ(run(apiKeyHeader(kReaderKey)).status, 403);
  // Stopping flushes the log.
  EXPECT_EQ(daemon().stop(), 0);
  const std::string log = daemon().logText();

  // The requests were logged, with who made them...
  EXPECT_NE(log.find("identity=key:ops"), std::string::npos) << log;
  EXPECT_NE(log.find("identity=key:hashed"), std::string::npos) << log;
  EXPECT_NE(log.find("identity=jwt:dashboard"), std::string::npos) << log;
  // ...and no secret, accepted or refused.
  const std::vector<std::pair<std::string, std::string>> secrets = {
      {"ops key", kOpsKey},
      {"hashed key", kHashedKey},
      {"reader key", kReaderKey},
      {"wrong key", wrong_key},
      {"JWT secret", kJwtSecret},
      {"HS256 token signature", partsOf(hs_token).back()},
      {"RS256 token signature", partsOf(rs_token).back()},
      {"expired token signature", partsOf(expired_token).back()},
      {"HS256 token payload", partsOf(hs_token)[1]},
  };
  for (const auto& [what, secret] : secrets) {
    ASSERT_FALSE(secret.empty()) << what;
    EXPECT_EQ(log.find(secret), std::string::npos) << what << " is in the log:\n" << log;
  }
}

TEST_F(Auth, CollectorsDoNotSeeTheCredentials) {
  const std::string env_file = dir_.file("collector.env");
  config_.addCollector("envdump", "env > \"$OUT\"\n", {{"env.OUT", env_file}});
  const std::string token = hs256({});
  // Secrets handed to the daemon through its environment must not reach collectors either.
  daemon_ = std::make_unique<Daemon>(
      config_, DaemonOptions{{{"COLLECTORD_API_KEY", kAdminKey}, {"JWT_SECRET", kJwtSecret}}});
  const HttpClient client = daemon().client().withHeaders(apiKeyHeader(kOpsKey));

  auto triggered = client.post("/api/collectors/run", R"({"collectors": ["envdump"]})",
                               {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(IsJsonResponse(triggered, 201));
  const std::string batch_id = stringField(*triggered.object(), "batch_id");
  auto batch = waitForBatchTerminal(client, batch_id);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  ASSERT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.body;

  const std::string env = readFile(env_file).value_or("");
  ASSERT_NE(env.find("COLLECTOR_BATCH_ID=" + batch_id), std::string::npos) << env;
  for (const std::string& secret : {kOpsKey, kAdminKey, kJwtSecret, partsOf(token).back()}) {
    EXPECT_EQ(env.find(secret), std::string::npos) << "the collector sees '" << secret << "':\n"
                                                   << env;
  }
  EXPECT_EQ(env.find("COLLECTORD_API_KEY"), std::string::npos) << env;
  EXPECT_EQ(env.find("JWT_SECRET"), std::string::npos) << env;
}

TEST(AuthStartup, RefusesToRunWithoutCredentialsOnAReachableAddress) {
  for (const std::string address : {"0.0.0.0", "::", "192.0.2.10"}) {
    TempDir dir;
    DaemonConfig config(dir);  // auth.required = false
    config.appendToMain("[http]\naddress = " + address + "\n");
    auto result = runCollectord({"--config=" + config.mainPath()}, std::chrono::seconds(15));
    EXPECT_EQ(result.exit_code, 78) << address << ": " << result.err;  // EX_CONFIG
    EXPECT_EQ(result.err,
              config.mainPath() +
                  ": auth.required: false is only allowed when http.address is a loopback "
                  "address (127.0.0.1, ::1, localhost); '" + address +
                  "' is reachable from other machines\n"
                  "collectord: 1 configuration problem\n")
        << address;
  }
}

// Docs and health are public by default, /metrics is not.
class PublicRoutes : public Auth {
 protected:
  PublicRoutes() {
    writeFile(dir_.file("docs/GUIDE.md"), "# Guide\n");
    config_.appendToMain("[docs]\ndirectory = docs\n");
  }
  void expectOpen(const std::string& path, int status = 200) {
    auto response = daemon().client().get(path);
    EXPECT_EQ(response.status, status) << path << ": " << response.describe();
  }
  void expectClosed(const std::string& path) {
    EXPECT_TRUE(IsRefusal(daemon().client().get(path), kMissingCredentials, kChallenge)) << path;
    EXPECT_EQ(daemon().client().get(path, apiKeyHeader(kReaderKey)).status, 200) << path;
  }
};

TEST_F(PublicRoutes, DocsAndHealthNeedNoCredentialsButMetricsDoes) {
  expectOpen("/api/docs");
  expectOpen("/api/docs/GUIDE.md");
  expectOpen("/healthz");
  expectOpen("/readyz");
  expectClosed("/metrics");
  EXPECT_TRUE(IsErrorResponse(
      daemon().client().get("/metrics", apiKeyHeader(kRunnerKey)), 403,
      "Forbidden: this request needs the 'read' scope; these credentials have 'run'"));
  auto metrics = daemon().client().get("/metrics", bearerHeader(hs256({})));
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("collectord_http_auth_failures_total"), std::string::npos);
}

TEST_F(PublicRoutes, PublicMetricsTrueOpensMetrics) {
  config_.appendToMain("[auth]\npublic_metrics = true\n");
  expectOpen("/metrics");
  auto metrics = daemon().client().get("/metrics");
  EXPECT_NE(metrics.body.find("collectord_jobs_total"), std::string::npos) << metrics.body;
  // Nothing else opened with it.
  EXPECT_TRUE(IsRefusal(latest({}), kMissingCredentials, kChallenge));
}

TEST_F(PublicRoutes, PublicDocsAndHealthFalseCloseThem) {
  config_.appendToMain("[auth]\npublic_docs = false\npublic_health = false\n");
  expectClosed("/api/docs");
  expectClosed("/api/docs/GUIDE.md");
  expectClosed("/healthz");
  expectClosed("/readyz");
  expectClosed("/metrics");
}

}  // namespace
}  // namespace collectord::test
