#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace collectord::http {

// What an identity may do. Reads need kRead; triggering, cancelling and reporting progress need
// kRun; kAdmin implies both.
enum Scope : unsigned { kScopeRead = 1u, kScopeRun = 2u, kScopeAdmin = 4u };

// "read", "run", "admin" -> the scope bit; 0 for anything else.
unsigned parseScope(const std::string& name);
// "read,run" for logs and errors.
std::string describeScopes(unsigned scopes);

// Who made a request, once authenticated.
struct Identity {
  std::string subject;  // "key:<label>" or "jwt:<sub>": safe to log, used for rate limits
  unsigned scopes = 0;
  bool has(unsigned scope) const {
    return (scopes & kScopeAdmin) != 0 || (scopes & scope) == scope;
  }
};

struct AuthSettings {
  std::string api_keys_file;
  std::string jwt_secret;           // HS256
  std::string jwt_public_key_file;  // RS256, PEM
  std::string jwt_issuer;           // checked when set
  std::string jwt_audience;         // checked when set
  int leeway_seconds = 30;          // clock skew allowed on exp and nbf
};

// Verifies X-API-Key and Authorization: Bearer credentials. Immutable once loaded, so any number
// of request threads may use one instance; a reload builds a new one.
class Authenticator {
 public:
  struct Result {
    std::optional<Identity> identity;  // set when the credentials are valid
    bool presented = false;            // false: no credentials at all
    std::string reason;                // why they were refused, for the client and the log
  };

  // Reads the key file and the JWT key. Nullptr with `error` set (naming the file and line)
  // when something cannot be read or parsed. Secrets never appear in `error`.
  static std::unique_ptr<Authenticator> load(const AuthSettings& settings, std::string& error);
  ~Authenticator();

  // Checks whichever credential is present (the API key first). `now` is Unix seconds.
  Result authenticate(const std::string* api_key, const std::string* authorization,
                      std::int64_t now) const;

  std::size_t keyCount() const;
  bool jwtEnabled() const;

 private:
  struct Impl;
  explicit Authenticator(std::unique_ptr<Impl> impl);
  Result checkApiKey(const std::string& key) const;
  Result checkBearer(const std::string& token, std::int64_t now) const;
  std::unique_ptr<Impl> impl_;
};

// SHA-256 of `data` as 32 raw bytes.
std::string sha256(const std::string& data);

}  // namespace collectord::http
