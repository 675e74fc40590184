#include "auth.h"

#include <Poco/Crypto/RSAKey.h>
#include <Poco/DigestEngine.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>
#include <Poco/SHA2Engine.h>
#include <Poco/String.h>
#include <Poco/StringTokenizer.h>

#include <fstream>
#include <sstream>

namespace collectord::http {
namespace {

struct ApiKey {
  std::string hash;  // SHA-256 of the key, raw bytes
  unsigned scopes;
  std::string label;
};

// Compares two equal-length byte strings in time that does not depend on where they differ.
bool constantTimeEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

std::optional<std::string> fromHex(const std::string& hex) {
  if (hex.size() != 64) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int byte = 0;
    for (int k = 0; k < 2; ++k) {
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(hex[i + k])));
      byte <<= 4;
      if (c >= '0' && c <= '9') byte |= c - '0';
      else if (c >= 'a' && c <= 'f') byte |= c - 'a' + 10;
      else return std::nullopt;
    }
    out += static_cast<char>(byte);
  }
  return out;
}

std::string hexPrefix(const std::string& raw, std::size_t bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes && i < raw.size(); ++i) {
    out += digits[(static_cast<unsigned char>(raw[i]) >> 4) & 0xF];
    out += digits[static_cast<unsigned char>(raw[i]) & 0xF];
  }
  return out;
}

// A NumericDate claim (RFC 7519, section 2): a JSON number of seconds since 1970. Nullopt when
// absent or of another kind; Poco's own getters would turn "4102444800" (a string) into a date
// and a number beyond 64 bits into an undefined conversion.
std::optional<double> numericDate(const Poco::JSON::Object& claims, const std::string& name) {
  if (!claims.has(name)) return std::nullopt;
  const Poco::Dynamic::Var value = claims.get(name);
  if (!value.isNumeric() || value.isBoolean()) return std::nullopt;  // Poco counts bool as numeric
  return value.convert<double>();
}

Authenticator::Result refused(std::string reason) {
  Authenticator::Result r;
  r.presented = true;
  r.reason = std::move(reason);
  return r;
}

}  // namespace

unsigned parseScope(const std::string& name) {
  if (name == "read") return kScopeRead;
  if (name == "run") return kScopeRun;
  if (name == "admin") return kScopeAdmin;
  return 0;
}

std::string describeScopes(unsigned scopes) {
  std::string out;
  for (auto [bit, name] : {std::pair{kScopeRead, "read"}, {kScopeRun, "run"}, {kScopeAdmin, "admin"}}) {
    if (scopes & bit) out += (out.empty() ? "" : ",") + std::string(name);
  }
  return out.empty() ? "none" : out;
}

std::string sha256(const std::string& data) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(data);
  const Poco::DigestEngine::Digest& digest = engine.digest();
  return std::string(digest.begin(), digest.end());
}

struct Authenticator::Impl {
  std::vector<ApiKey> keys;
  std::unique_ptr<Poco::JWT::Signer> hs256;
  std::unique_ptr<Poco::JWT::Signer> rs256;
  AuthSettings settings;
};

Authenticator::Authenticator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Authenticator::~Authenticator() = default;

std::unique_ptr<Authenticator> Authenticator::load(const AuthSettings& settings,
                                                   std::string& error) {
  auto impl = std::make_unique<Impl>();
  impl->settings = settings;
  if (!settings.api_keys_file.empty()) {
    std::ifstream in(settings.api_keys_file);
    if (!in) {
      error = settings.api_keys_file + ": cannot read the file";
      return nullptr;
    }
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      const auto hash_mark = line.find('#');
      if (hash_mark != std::string::npos) line.erase(hash_mark);
      std::istringstream words(line);
      std::string secret, scopes_word, label;
      if (!(words >> secret)) continue;
      words >> scopes_word >> label;
      const std::string where = settings.api_keys_file + ":" + std::to_string(line_no);
      ApiKey key;
      if (secret.rfind("sha256:", 0) == 0) {
        const auto raw = fromHex(secret.substr(7));
        if (!raw) {
          error = where + ": 'sha256:' must be followed by 64 hexadecimal digits";
          return nullptr;
        }
        key.hash = *raw;
      } else {
        if (secret.size() < 16) {
          error = where + ": a key must be at least 16 characters long";
          return nullptr;
        }
        key.hash = sha256(secret);
      }
      key.scopes = kScopeRead | kScopeRun;
      if (!scopes_word.empty()) {
        key.scopes = 0;
        Poco::StringTokenizer scopes(scopes_word, ",",
                                     Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
        for (const std::string& s : scopes) {
          const unsigned bit = parseScope(s);
          if (bit == 0) {
            error = where + ": unknown scope '" + s + "' (use read, run, admin)";
            return nullptr;
          }
          key.scopes |= bit;
        }
      }
      key.label = label.empty() ? hexPrefix(key.hash, 4) : label;
      impl->keys.push_back(std::move(key));
    }
  }
  try {
    if (!settings.jwt_secret.empty()) {
      impl->hs256 = std::make_unique<Poco::JWT::Signer>(settings.jwt_secret);
      impl->hs256->setAlgorithms({Poco::JWT::Signer::ALGO_HS256});
    }
    if (!settings.jwt_public_key_file.empty()) {
      Poco::SharedPtr<Poco::Crypto::RSAKey> key(
          new Poco::Crypto::RSAKey(settings.jwt_public_key_file, "", ""));
      impl->rs256 = std::make_unique<Poco::JWT::Signer>(key);
      impl->rs256->setAlgorithms({Poco::JWT::Signer::ALGO_RS256});
    }
  } catch (const Poco::Exception& e) {
    error = settings.jwt_public_key_file + ": cannot load the RS256 public key: " + e.displayText();
    return nullptr;
  }
  return std::unique_ptr<Authenticator>(new Authenticator(std::move(impl)));
}

std::size_t Authenticator::keyCount() const { return impl_->keys.size(); }
bool Authenticator::jwtEnabled() const { return impl_->hs256 || impl_->rs256; }

Authenticator::Result Authenticator::authenticate(const std::string* api_key,
                                                  const std::string* authorization,
                                                  std::int64_t now) const {
  if (api_key) return checkApiKey(*api_key);
  if (authorization) {
    const std::string value = Poco::trim(*authorization);
    // A client whose token variable is unset sends "Bearer " and deserves to be told so.
    if (Poco::icompare(value, "bearer") == 0) return refused("the bearer token is empty");
    if (Poco::icompare(value.substr(0, 7), "bearer ") != 0) {
      return refused("Authorization must be 'Bearer <token>'");
    }
    return checkBearer(Poco::trim(value.substr(7)), now);
  }
  return Result{};
}

Authenticator::Result Authenticator::checkApiKey(const std::string& key) const {
  const std::string hash = sha256(key);
  const ApiKey* match = nullptr;
  for (const ApiKey& candidate : impl_->keys) {  // no early exit: time does not reveal position
    if (constantTimeEqual(hash, candidate.hash)) match = &candidate;
  }
  if (!match) return refused("invalid API key");
  Result r;
  r.presented = true;
  r.identity = Identity{"key:" + match->label, match->scopes};
  return r;
}

Authenticator::Result Authenticator::checkBearer(const std::string& jwt, std::int64_t now) const {
  if (!jwtEnabled()) return refused("bearer tokens are not accepted by this server");
  Poco::JWT::Token token;
  try {
    // Only the header's algorithm picks the verifier; each verifier accepts one algorithm and
    // holds its own key, so neither "none" nor an HS256 token signed with the RSA public key
    // can pass.
    const std::string alg = Poco::JWT::Token(jwt).getAlgorithm();  // parsed, not yet trusted
    const Poco::JWT::Signer* signer = nullptr;
    if (alg == Poco::JWT::Signer::ALGO_HS256) signer = impl_->hs256.get();
    if (alg == Poco::JWT::Signer::ALGO_RS256) signer = impl_->rs256.get();
    if (!signer) return refused("token algorithm '" + alg + "' is not accepted");
    if (!signer->tryVerify(jwt, token)) return refused("token signature is invalid");
  } catch (const Poco::Exception&) {
    return refused("malformed bearer token");
  }
  // The claims are read inside a try: Poco converts them on access and throws for a value of
  // the wrong kind (a null audience, a null in a scope list), which must be a refusal, not a 500.
  try {
    const Poco::JSON::Object& claims = token.payload();
    const double leeway = impl_->settings.leeway_seconds;
    if (!claims.has("exp")) return refused("token has no expiry (exp)");
    const auto exp = numericDate(claims, "exp");
    if (!exp) return refused("token expiry (exp) is not a number");
    if (*exp + leeway < static_cast<double>(now)) return refused("token has expired");
    if (claims.has("nbf")) {
      const auto nbf = numericDate(claims, "nbf");
      if (!nbf) return refused("token start (nbf) is not a number");
      if (*nbf - leeway > static_cast<double>(now)) return refused("token is not valid yet (nbf)");
    }
    if (!impl_->settings.jwt_issuer.empty() && token.getIssuer() != impl_->settings.jwt_issuer) {
      return refused("token issuer is not accepted");
    }
    if (!impl_->settings.jwt_audience.empty()) {
      bool ok = false;
      for (const std::string& aud : token.getAudience()) {
        ok = ok || aud == impl_->settings.jwt_audience;
      }
      if (!ok) return refused("token audience is not accepted");
    }
    unsigned scopes = 0;
    if (claims.has("scope")) {
      const Poco::Dynamic::Var scope = claims.get("scope");
      std::vector<std::string> names;
      if (scope.isString()) {
        std::istringstream words(scope.extract<std::string>());
        std::string w;
        while (words >> w) names.push_back(w);
      } else if (auto list = claims.getArray("scope")) {
        for (std::size_t i = 0; i < list->size(); ++i) {
          names.push_back(list->getElement<std::string>(static_cast<unsigned>(i)));
        }
      }
      for (const std::string& n : names) scopes |= parseScope(n);
    }
    Result r;
    r.presented = true;
    const std::string subject = token.getSubject();
    r.identity = Identity{"jwt:" + (subject.empty() ? std::string("anonymous") : subject), scopes};
    return r;
  } catch (const Poco::Exception&) {
    return refused("token claims are malformed");
  }
}

}  // namespace collectord::http
