// Fuzzes Authenticator::authenticate, which reads the X-API-Key and Authorization headers of
// every request, with a fixed key file, an HS256 secret, an RS256 public key, an issuer and an
// audience. The first byte picks what the rest is:
//   0  the X-API-Key value            1  the Authorization value
//   2  both, split at the first '\n'  (the API key is checked, the Authorization ignored)
//   3  "HEADER\nPAYLOAD": a JWT signed here with the HS256 secret, sent as a Bearer token
//   4  the same, signed with the RS256 private key
//   5  the same, signed HS256 with the RSA public key as the secret (algorithm confusion)
// Signing here lets the fuzzer reach the claim checks behind the signature. Beyond not crashing
// or throwing, it checks that a refusal says why, that an API key is accepted exactly when it
// is one of the configured ones (with its scopes), that no token is accepted unless its header
// names the algorithm whose key really signed it, never in mode 5, and that an accepted token
// carries an unexpired numeric exp, a passed nbf, the issuer and the audience.
#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/Crypto/DigestEngine.h>
#include <Poco/Crypto/RSADigestEngine.h>
#include <Poco/Crypto/RSAKey.h>
#include <Poco/HMACEngine.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "auth.h"
#include "fuzz_check.h"

namespace fs = std::filesystem;
using collectord::http::Authenticator;

namespace {

constexpr std::int64_t kNow = 1'700'000'000;  // fixed, so every input replays the same way
constexpr std::int64_t kLeeway = 30;
const std::string kHsSecret = "fuzz-hs256-secret-0123456789abcdef";
const std::string kIssuer = "collectord-fuzz";
const std::string kAudience = "collectord";

struct KeyEntry {
  std::string key;
  unsigned scopes;
  std::string subject;
};

// The key file's entries: one stored as plain text with a label, one as its SHA-256, one
// without a label (the subject is then a prefix of the key's hash).
const std::vector<KeyEntry> kKeys = {
    {"fuzz-read-key-0123456789", collectord::http::kScopeRead, "key:reader"},
    {"fuzz-admin-key-abcdefghij", collectord::http::kScopeAdmin, "key:ops"},
    {"fuzz-run-key-9876543210", collectord::http::kScopeRead | collectord::http::kScopeRun, ""},
};

std::string scratch;
std::unique_ptr<Authenticator> auth;
std::unique_ptr<Poco::Crypto::RSAKey> rsa;
std::string rsa_public_pem;

class Sha256Engine : public Poco::Crypto::DigestEngine {
 public:
  enum { BLOCK_SIZE = 64, DIGEST_SIZE = 32 };
  Sha256Engine() : Poco::Crypto::DigestEngine("SHA256") {}
};

std::string base64url(const std::string& bytes) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
  encoder.rdbuf()->setLineLength(0);
  encoder << bytes;
  encoder.close();
  return out.str();
}

std::string hmacSha256(const std::string& key, const std::string& data) {
  Poco::HMACEngine<Sha256Engine> hmac(key);
  hmac.update(data);
  const auto& digest = hmac.digest();
  return std::string(digest.begin(), digest.end());
}

std::string rsaSha256(const std::string& data) {
  Poco::Crypto::RSADigestEngine engine(*rsa, "SHA256");
  engine.update(data);
  const auto& signature = engine.signature();
  return std::string(signature.begin(), signature.end());
}

void removeScratch() {
  std::error_code ec;
  if (!scratch.empty()) fs::remove_all(scratch, ec);
}

Poco::JSON::Object::Ptr parseObject(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var v = parser.parse(text);
    if (v.type() == typeid(Poco::JSON::Object::Ptr)) return v.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
  }
  return nullptr;
}

std::optional<std::string> decodeBase64url(const std::string& text) {
  try {
    std::istringstream in(text);
    Poco::Base64Decoder decoder(in, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
    return std::string(std::istreambuf_iterator<char>(decoder), {});
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
}

std::string algorithmOf(const Poco::JSON::Object::Ptr& header) {
  if (!header || !header->has("alg") || !header->get("alg").isString()) return "";
  return header->getValue<std::string>("alg");
}

// What an accepted token's claims must say, read independently of the authenticator.
void checkAcceptedClaims(const Poco::JSON::Object::Ptr& claims) {
  FUZZ_CHECK(claims, "an accepted token has a JSON object as its claims");
  const auto number = [&claims](const char* key) {
    return claims->has(key) && claims->get(key).isNumeric() && !claims->get(key).isBoolean();
  };
  FUZZ_CHECK(number("exp"), "it has a numeric exp");
  FUZZ_CHECK(claims->getValue<double>("exp") + kLeeway >= static_cast<double>(kNow),
             "it has not expired");
  if (claims->has("nbf")) {
    FUZZ_CHECK(
        number("nbf") && claims->getValue<double>("nbf") - kLeeway <= static_cast<double>(kNow),
        "it is valid already");
  }
  FUZZ_CHECK(claims->has("iss") && claims->get("iss").isString() &&
                 claims->getValue<std::string>("iss") == kIssuer,
             "it names the issuer");
  bool audience = false;
  if (claims->has("aud") && claims->get("aud").isString()) {
    audience = claims->getValue<std::string>("aud") == kAudience;
  } else if (const auto list = claims->getArray("aud")) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto item = list->get(static_cast<unsigned>(i));
      audience = audience || (item.isString() && item.extract<std::string>() == kAudience);
    }
  }
  FUZZ_CHECK(audience, "it names the audience");
}

// A Bearer token that arrived as raw text (modes 1, 2): accepted only when it is HS256 and its
// signature is the HMAC of its first two parts; the RS256 private key never leaves this
// process, so no raw token can carry a valid RS256 signature.
void checkAcceptedRawToken(const std::string& authorization) {
  const auto trim = [](std::string s) {
    const char* space = " \t\n\v\f\r";
    s.erase(0, s.find_first_not_of(space));
    s.erase(s.find_last_not_of(space) + 1);
    return s;
  };
  const std::string value = trim(authorization);
  FUZZ_CHECK(value.size() > 7, "an accepted Authorization value is 'Bearer <token>'");
  const std::string token = trim(value.substr(7));
  const auto first = token.find('.');
  const auto second = token.find('.', first == std::string::npos ? 0 : first + 1);
  FUZZ_CHECK(first != std::string::npos && second != std::string::npos,
             "an accepted token has three parts");
  const auto header = decodeBase64url(token.substr(0, first));
  FUZZ_CHECK(header && algorithmOf(parseObject(*header)) == "HS256",
             "an accepted raw token is HS256");
  const auto signature = decodeBase64url(token.substr(second + 1));
  FUZZ_CHECK(signature && *signature == hmacSha256(kHsSecret, token.substr(0, second)),
             "an accepted raw token carries the HMAC of its header and payload");
  const auto payload = decodeBase64url(token.substr(first + 1, second - first - 1));
  FUZZ_CHECK(payload.has_value(), "an accepted token's payload decodes");
  checkAcceptedClaims(parseObject(*payload));
}

void checkApiKey(const std::string& key, const Authenticator::Result& result) {
  const KeyEntry* match = nullptr;
  for (const KeyEntry& entry : kKeys) {
    if (entry.key == key) match = &entry;
  }
  FUZZ_CHECK(result.identity.has_value() == (match != nullptr),
             "an API key is accepted exactly when it is a configured one");
  if (match) {
    FUZZ_CHECK(result.identity->scopes == match->scopes, "a key has its configured scopes");
    if (!match->subject.empty()) {
      FUZZ_CHECK(result.identity->subject == match->subject, "a key has its configured label");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char folder[] = "/tmp/collectord-fuzz-auth-XXXXXX";
  FUZZ_CHECK(::mkdtemp(folder) != nullptr, "a scratch folder can be made");
  scratch = folder;
  std::atexit(removeScratch);

  rsa = std::make_unique<Poco::Crypto::RSAKey>(Poco::Crypto::RSAKey::KL_2048,
                                               Poco::Crypto::RSAKey::EXP_LARGE);
  const std::string public_key_file = scratch + "/jwt-public.pem";
  rsa->save(public_key_file);
  std::ifstream pem(public_key_file);
  rsa_public_pem.assign(std::istreambuf_iterator<char>(pem), {});

  const std::string keys_file = scratch + "/api-keys";
  {
    std::ofstream keys(keys_file);
    keys << "# the fuzz target's keys\n";
    keys << kKeys[0].key << " read reader\n";
    std::string hex;
    for (const unsigned char c : collectord::http::sha256(kKeys[1].key)) {
      static const char* digits = "0123456789abcdef";
      hex += digits[c >> 4];
      hex += digits[c & 0xF];
    }
    keys << "sha256:" << hex << " admin ops  # stored hashed\n";
    keys << kKeys[2].key << " read,run\n";
  }

  collectord::http::AuthSettings settings;
  settings.api_keys_file = keys_file;
  settings.jwt_secret = kHsSecret;
  settings.jwt_public_key_file = public_key_file;
  settings.jwt_issuer = kIssuer;
  settings.jwt_audience = kAudience;
  settings.leeway_seconds = static_cast<int>(kLeeway);
  std::string error;
  auth = Authenticator::load(settings, error);
  if (!auth) std::fprintf(stderr, "cannot load the authenticator: %s\n", error.c_str());
  FUZZ_CHECK(auth && auth->keyCount() == kKeys.size() && auth->jwtEnabled(),
             "the authenticator loads");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 6;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto newline = rest.find('\n');
  const std::string first = rest.substr(0, newline);
  const std::string second = newline == std::string::npos ? "" : rest.substr(newline + 1);

  std::string authorization;
  const std::string* api_key = nullptr;
  const std::string* authorization_header = nullptr;
  switch (mode) {
    case 0:
      api_key = &rest;
      break;
    case 1:
      authorization_header = &rest;
      break;
    case 2:
      api_key = &first;
      authorization_header = &second;
      break;
    default: {
      const std::string signing_input = base64url(first) + "." + base64url(second);
      const std::string signature = mode == 3   ? hmacSha256(kHsSecret, signing_input)
                                    : mode == 4 ? rsaSha256(signing_input)
                                                : hmacSha256(rsa_public_pem, signing_input);
      authorization = "Bearer " + signing_input + "." + base64url(signature);
      authorization_header = &authorization;
    }
  }

  Authenticator::Result result;
  try {
    result = auth->authenticate(api_key, authorization_header, kNow);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "authenticate threw: %s\n", e.what());
    FUZZ_CHECK(false, "authenticate never throws");
  }
  FUZZ_CHECK(result.presented, "credentials that were sent count as presented");
  FUZZ_CHECK(result.identity || !result.reason.empty(), "a refusal says why");
  if (result.identity) {
    FUZZ_CHECK((result.identity->scopes & ~7u) == 0, "scopes are read, run and admin only");
    const std::string& subject = result.identity->subject;
    FUZZ_CHECK(subject.rfind(api_key ? "key:" : "jwt:", 0) == 0 && subject.size() > 4,
               "the subject says what kind of credential it was");
  }
  if (api_key) {
    checkApiKey(*api_key, result);
    return 0;
  }
  if (!result.identity) return 0;
  switch (mode) {
    case 1:
      checkAcceptedRawToken(rest);
      break;
    case 3:
    case 4:
      FUZZ_CHECK(algorithmOf(parseObject(first)) == (mode == 3 ? "HS256" : "RS256"),
                 "a token is accepted only under the algorithm whose key signed it");
      checkAcceptedClaims(parseObject(second));
      break;
    case 5:
      FUZZ_CHECK(false, "a token HMAC-signed with the RSA public key is refused");
      break;
  }
  return 0;
}
