#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace collectord {

// One collector, from collectors.d/NAME.ini. Paths are absolute once loaded.
struct CollectorConfig {
  enum class Type { kExec, kPlugin };

  std::string name;  // the file's stem
  std::string source_file;
  std::string job_name;
  Type type = Type::kExec;
  std::string command;  // exec: the resolved program
  std::vector<std::string> args;
  std::string plugin;  // plugin: the shared library
  std::string working_directory;
  std::vector<std::pair<std::string, std::string>> env;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::chrono::milliseconds> stall_timeout;
  int retries = 0;
  int concurrency = 1;
};

// The daemon's whole configuration: collectord.ini plus every collector file.
struct Config {
  std::string file;  // absolute path of the main file

  std::string http_address = "127.0.0.1";
  int http_port = 8080;
  int http_threads = 16;
  std::size_t http_max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds http_timeout{30'000};
  std::string tls_cert_file;
  std::string tls_key_file;

  std::string store_url = "sqlite:collectord.db";
  std::string sqlite_path;  // resolved from store_url

  std::string collectors_directory;
  int max_concurrent = 8;

  std::string api_keys_file;
  std::string jwt_secret;
  std::string jwt_public_key_file;
  std::string jwt_issuer;
  std::string jwt_audience;
  bool auth_required = true;
  bool public_docs = true;
  bool public_health = true;
  bool public_metrics = false;

  int requests_per_minute = 60;
  std::vector<std::string> trusted_proxies;
  std::vector<std::string> allowed_origins;

  std::string logs_directory;
  std::string docs_directory;

  std::vector<CollectorConfig> collectors;  // sorted by name
  // Keys that were set but whose feature is not built yet ("auth.required", ...).
  std::vector<std::string> not_in_effect;

  const CollectorConfig* findCollector(std::string_view name) const;
};

// A problem found while loading: the file, the "section.key" it concerns, and what is wrong.
struct ConfigProblem {
  std::string file;
  std::string key;
  std::string message;
  // "FILE: KEY: MESSAGE".
  std::string toString() const;
};

struct ConfigResult {
  std::optional<Config> config;         // set when there are no problems
  std::vector<ConfigProblem> problems;  // every problem, not just the first
};

// Reads and validates the main file at `path` and the collector files it points to.
// Never throws: unreadable files and invalid values are problems in the result.
ConfigResult loadConfig(const std::string& path);

// Splits a command line into words the way a POSIX shell would for quoting: '...', "..." and
// backslash escapes; no expansion. Nullopt (with `error` set) for an unterminated quote.
std::optional<std::vector<std::string>> splitShellWords(std::string_view text, std::string& error);

}  // namespace collectord
