#include <gtest/gtest.h>
#include <unistd.h>

#include <Poco/Base64Encoder.h>
#include <Poco/Crypto/RSAKey.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth.h"

namespace collectord::http {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "a-very-long-hmac-secret-for-tests";

std::string hex(const std::string& raw) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string base64url(const std::string& text) {
  std::ostringstream out;
  Poco::Base64Encoder enc(out, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
  enc << text;
  enc.close();
  return out.str();
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/collectord-auth-XXXXXX";
    dir_ = ::mkdtemp(pattern);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string keysFile(const std::string& text) {
    const fs::path p = dir_ / "api_keys";
    std::ofstream(p) << text;
    return p.string();
  }

  std::unique_ptr<Authenticator> load(AuthSettings settings) {
    std::string error;
    auto auth = Authenticator::load(settings, error);
    EXPECT_TRUE(auth) << error;
    return auth;
  }

  std::string hs256(Poco::JWT::Token token) {
    Poco::JWT::Signer signer(kSecret);
    return signer.sign(token, Poco::JWT::Signer::ALGO_HS256);
  }

  static Poco::JWT::Token claims(std::int64_t exp = kNow + 3600) {
    Poco::JWT::Token token;
    token.setSubject("dashboard");
    token.setExpiration(Poco::Timestamp::fromEpochTime(static_cast<std::time_t>(exp)));
    token.payload().set("scope", std::string("read run"));
    return token;
  }

  Authenticator::Result bearer(const Authenticator& auth, const std::string& jwt) {
    const std::string header = "Bearer " + jwt;
    return auth.authenticate(nullptr, &header, kNow);
  }

  fs::path dir_;
};

TEST_F(AuthTest, PlainAndHashedKeysAuthenticateWithTheirScopes) {
  const std::string hashed_key = "hashed-key-0123456789";
  AuthSettings s;
  s.api_keys_file = keysFile("# comment\n\nplain-key-0123456789\n"
                             "sha256:" + hex(sha256(hashed_key)) + " read reporting # trailing\n"
                             "admin-key-0123456789 admin\n");
  auto auth = load(s);
  ASSERT_EQ(auth->keyCount(), 3u);

  const std::string plain = "plain-key-0123456789";
  auto r = auth->authenticate(&plain, nullptr, kNow);
  ASSERT_TRUE(r.identity);
  EXPECT_TRUE(r.identity->has(kScopeRead));
  EXPECT_TRUE(r.identity->has(kScopeRun));
  EXPECT_FALSE(r.identity->has(kScopeAdmin));
  EXPECT_EQ(r.identity->subject.find(plain), std::string::npos) << "the key never appears";

  r = auth->authenticate(&hashed_key, nullptr, kNow);
  ASSERT_TRUE(r.identity);
  EXPECT_EQ(r.identity->subject, "key:reporting");
  EXPECT_TRUE(r.identity->has(kScopeRead));
  EXPECT_FALSE(r.identity->has(kScopeRun));

  const std::string admin = "admin-key-0123456789";
  r = auth->authenticate(&admin, nullptr, kNow);
  ASSERT_TRUE(r.identity);
  EXPECT_TRUE(r.identity->has(kScopeRun)) << "admin implies every scope";
}

TEST_F(AuthTest, WrongOrMissingKeyIsRefused) {
  AuthSettings s;
  s.api_keys_file = keysFile("plain-key-0123456789\n");
  auto auth = load(s);
  const std::string wrong = "plain-key-0123456788";
  auto r = auth->authenticate(&wrong, nullptr, kNow);
  EXPECT_FALSE(r.identity);
  EXPECT_TRUE(r.presented);
  EXPECT_EQ(r.reason, "invalid API key");
  r = auth->authenticate(nullptr, nullptr, kNow);
  EXPECT_FALSE(r.identity);
  EXPECT_FALSE(r.presented);
}

TEST_F(AuthTest, KeyFileErrorsNameFileAndLine) {
  std::string error;
  AuthSettings s;
  s.api_keys_file = keysFile("good-key-0123456789\nsha256:abc\n");
  EXPECT_FALSE(Authenticator::load(s, error));
  EXPECT_EQ(error, s.api_keys_file + ":2: 'sha256:' must be followed by 64 hexadecimal digits");
  s.api_keys_file = keysFile("good-key-0123456789 read,write\n");
  EXPECT_FALSE(Authenticator::load(s, error));
  EXPECT_NE(error.find(":1: unknown scope 'write'"), std::string::npos) << error;
  s.api_keys_file = keysFile("short\n");
  EXPECT_FALSE(Authenticator::load(s, error));
  EXPECT_NE(error.find("at least 16 characters"), std::string::npos);
  EXPECT_EQ(error.find("short"), std::string::npos) << "secrets stay out of messages";
}

TEST_F(AuthTest, ValidHs256TokenGivesSubjectAndScopes) {
  AuthSettings s;
  s.jwt_secret = kSecret;
  auto auth = load(s);
  const auto r = bearer(*auth, hs256(claims()));
  ASSERT_TRUE(r.identity) << r.reason;
  EXPECT_EQ(r.identity->subject, "jwt:dashboard");
  EXPECT_TRUE(r.identity->has(kScopeRead | kScopeRun));
}

TEST_F(AuthTest, ScopeClaimMayBeAnArray) {
  AuthSettings s;
  s.jwt_secret = kSecret;
  auto auth = load(s);
  Poco::JWT::Token token = claims();
  Poco::JSON::Array::Ptr scopes = new Poco::JSON::Array;
  scopes->add(std::string("read"));
  token.payload().set("scope", scopes);
  const auto r = bearer(*auth, hs256(token));
  ASSERT_TRUE(r.identity) << r.reason;
  EXPECT_TRUE(r.identity->has(kScopeRead));
  EXPECT_FALSE(r.identity->has(kScopeRun));
}

TEST_F(AuthTest, ExpiredNotYetValidAndUnexpiringTokensAreRefused) {
  AuthSettings s;
  s.jwt_secret = kSecret;
  auto auth = load(s);
  EXPECT_EQ(bearer(*auth, hs256(claims(kNow - 31))).reason, "token has expired");
  EXPECT_TRUE(bearer(*auth, hs256(claims(kNow - 10))).identity) << "30 s of clock skew allowed";
  Poco::JWT::Token early = claims();
  early.setNotBefore(Poco::Timestamp::fromEpochTime(kNow + 120));
  EXPECT_EQ(bearer(*auth, hs256(early)).reason, "token is not valid yet (nbf)");
  Poco::JWT::Token forever;
  forever.setSubject("x");
  EXPECT_EQ(bearer(*auth, hs256(forever)).reason, "token has no expiry (exp)");
}

TEST_F(AuthTest, WrongSignatureAndAlgNoneAreRefused) {
  AuthSettings s;
  s.jwt_secret = kSecret;
  auto auth = load(s);
  Poco::JWT::Signer other("another-secret-entirely-0123");
  Poco::JWT::Token token = claims();
  EXPECT_EQ(bearer(*auth, other.sign(token, Poco::JWT::Signer::ALGO_HS256)).reason,
            "token signature is invalid");
  const std::string none = base64url(R"({"alg":"none","typ":"JWT"})") + "." +
                           base64url(R"({"sub":"evil","exp":9999999999,"scope":"admin"})") + ".";
  EXPECT_EQ(bearer(*auth, none).reason, "token algorithm 'none' is not accepted");
  EXPECT_EQ(bearer(*auth, "not.a.token").reason, "malformed bearer token");
  const std::string basic = "Basic dXNlcjpwYXNz";
  EXPECT_EQ(auth->authenticate(nullptr, &basic, kNow).reason,
            "Authorization must be 'Bearer <token>'");
}

TEST_F(AuthTest, IssuerAndAudienceAreCheckedWhenConfigured) {
  AuthSettings s;
  s.jwt_secret = kSecret;
  s.jwt_issuer = "https://login.example";
  s.jwt_audience = "collectord";
  auto auth = load(s);
  Poco::JWT::Token token = claims();
  EXPECT_EQ(bearer(*auth, hs256(token)).reason, "token issuer is not accepted");
  token.setIssuer("https://login.example");
  token.setAudience("someone-else");
  EXPECT_EQ(bearer(*auth, hs256(token)).reason, "token audience is not accepted");
  token.setAudience(std::vector<std::string>{"other", "collectord"});
  EXPECT_TRUE(bearer(*auth, hs256(token)).identity);
}

TEST_F(AuthTest, Rs256TokensVerifyAndHs256SignedWithThePublicKeyDoesNot) {
  Poco::Crypto::RSAKey key(Poco::Crypto::RSAKey::KL_2048, Poco::Crypto::RSAKey::EXP_LARGE);
  const fs::path public_pem = dir_ / "public.pem";
  key.save(public_pem.string());
  AuthSettings s;
  s.jwt_public_key_file = public_pem.string();
  auto auth = load(s);
  Poco::JWT::Signer rs(Poco::SharedPtr<Poco::Crypto::RSAKey>(new Poco::Crypto::RSAKey(key)));
  Poco::JWT::Token token = claims();
  const auto ok = bearer(*auth, rs.sign(token, Poco::JWT::Signer::ALGO_RS256));
  EXPECT_TRUE(ok.identity) << ok.reason;

  // Algorithm confusion: an HS256 token whose HMAC key is the public key's PEM text.
  std::ifstream in(public_pem);
  std::stringstream pem;
  pem << in.rdbuf();
  Poco::JWT::Signer forger(pem.str());
  EXPECT_EQ(bearer(*auth, forger.sign(token, Poco::JWT::Signer::ALGO_HS256)).reason,
            "token algorithm 'HS256' is not accepted");
}

TEST_F(AuthTest, BearerWithoutJwtConfiguredIsRefused) {
  AuthSettings s;
  s.api_keys_file = keysFile("plain-key-0123456789\n");
  auto auth = load(s);
  EXPECT_EQ(bearer(*auth, hs256(claims())).reason, "bearer tokens are not accepted by this server");
}

}  // namespace
}  // namespace collectord::http
