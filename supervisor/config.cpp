#include "config.h"


#include <algorithm>
#include <filesystem>

#include "config_reader.h"
#include "time_format.h"

namespace collectord {

namespace fs = std::filesystem;

std::string_view toString(CollectorConfig::Overlap overlap) {
  switch (overlap) {
    case CollectorConfig::Overlap::kSkip: return "skip";
    case CollectorConfig::Overlap::kParallel: return "parallel";
    case CollectorConfig::Overlap::kQueue: break;
  }
  return "queue";
}

const CollectorConfig* Config::findCollector(std::string_view name) const {
  for (const CollectorConfig& c : collectors) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string ConfigProblem::toString() const {
  return key.empty() ? file + ": " + message : file + ": " + key + ": " + message;
}

std::optional<std::vector<std::string>> splitShellWords(std::string_view text, std::string& error) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'') {
      const std::size_t end = text.find('\'', i + 1);
      if (end == std::string_view::npos) {
        error = "unterminated single quote";
        return std::nullopt;
      }
      word.append(text.substr(i + 1, end - i - 1));
      in_word = true;
      i = end;
    } else if (c == '"') {
      std::size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        // Inside double quotes a backslash escapes only these, as in sh.
        if (text[j] == '\\' && j + 1 < text.size() &&
            (text[j + 1] == '"' || text[j + 1] == '\\' || text[j + 1] == '$' || text[j + 1] == '`')) {
          ++j;
        }
        word += text[j];
      }
      if (j >= text.size()) {
        error = "unterminated double quote";
        return std::nullopt;
      }
      in_word = true;
      i = j;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) {
        error = "trailing backslash";
        return std::nullopt;
      }
      word += text[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

using namespace config_detail;

namespace {

// Fills `result` from the main file in `r`, whose problems go to result.problems.
void readConfig(IniReader& r, ConfigResult& result) {
  auto& problems = result.problems;
  Config config;
  std::error_code ec;
  config.file = r.path();
  if (!r.ok()) return;

  r.rejectUnknown({{"http", {"address", "port", "threads", "max_body_bytes", "timeout",
                             "tls_cert_file", "tls_key_file"}},
                   {"store", {"url"}},
                   {"collectors", {"directory", "max_concurrent", "shutdown_grace"}},
                   {"auth", {"api_keys_file", "jwt_secret", "jwt_public_key_file", "jwt_issuer",
                             "jwt_audience", "required", "public_docs", "public_health",
                             "public_metrics"}},
                   {"ratelimit", {"requests_per_minute", "trusted_proxies"}},
                   {"cors", {"allowed_origins"}},
                   {"logs", {"directory", "max_bytes_per_job", "retention_days"}},
                   {"docs", {"directory"}},
                   {"events", {"heartbeat_seconds", "max_streams", "client_buffer", "replay_buffer"}},
                   {"webhooks",
                    {"retry_backoff", "retry_backoff_max", "max_attempts", "timeout",
                     "retention_days"}},
                   {"webhook", {}},
                   {"node", {"id", "tags"}},
                   {"cluster", {"enabled", "lease_timeout", "heartbeat_interval", "poll_interval"}}},
                  webhookSections(r));

  config.http_address = r.getString("http.address", config.http_address);
  config.http_port = r.getInt("http.port", config.http_port, 0, 65535);
  config.http_threads = r.getInt("http.threads", config.http_threads, 1, 1024);
  config.http_max_body_bytes = static_cast<std::size_t>(
      r.getInt("http.max_body_bytes", static_cast<int>(config.http_max_body_bytes), 1024,
               1 << 30));
  config.http_timeout = r.getDuration("http.timeout").value_or(config.http_timeout);
  config.tls_cert_file = r.getPath("http.tls_cert_file");
  config.tls_key_file = r.getPath("http.tls_key_file");
  requireFile(r, "http.tls_cert_file", config.tls_cert_file);
  requireFile(r, "http.tls_key_file", config.tls_key_file);
  if (config.tls_cert_file.empty() != config.tls_key_file.empty()) {
    r.problem(config.tls_cert_file.empty() ? "http.tls_cert_file" : "http.tls_key_file",
              "HTTPS needs both http.tls_cert_file and http.tls_key_file");
  }

  config.store_url = r.getString("store.url", config.store_url);
  if (config.store_url.rfind("sqlite:", 0) == 0 && config.store_url.size() > 7) {
    config.sqlite_path = r.resolve(config.store_url.substr(7));
  } else if (config.store_url.rfind("postgresql://", 0) == 0 ||
             config.store_url.rfind("postgres://", 0) == 0) {
    // Checked when collectord connects: libpq names what is wrong with the URL then.
  } else {
    r.problem("store.url", "'" + config.store_url +
                               "' is not a store URL (sqlite:PATH or postgresql://...)");
  }

  config.collectors_directory = r.getPath("collectors.directory", "collectors.d");
  config.max_concurrent = r.getInt("collectors.max_concurrent", config.max_concurrent, 1, 100000);
  config.shutdown_grace = r.getDuration("collectors.shutdown_grace").value_or(config.shutdown_grace);

  config.api_keys_file = r.getPath("auth.api_keys_file");
  requireFile(r, "auth.api_keys_file", config.api_keys_file);
  config.jwt_secret = r.getString("auth.jwt_secret", "");
  config.jwt_public_key_file = r.getPath("auth.jwt_public_key_file");
  requireFile(r, "auth.jwt_public_key_file", config.jwt_public_key_file);
  config.jwt_issuer = r.getString("auth.jwt_issuer", "");
  config.jwt_audience = r.getString("auth.jwt_audience", "");
  config.auth_required = r.getBool("auth.required", config.auth_required);
  config.public_docs = r.getBool("auth.public_docs", config.public_docs);
  config.public_health = r.getBool("auth.public_health", config.public_health);
  config.public_metrics = r.getBool("auth.public_metrics", config.public_metrics);
  if (!config.auth_required && !isLoopback(config.http_address)) {
    r.problem("auth.required",
              "false is only allowed when http.address is a loopback address (127.0.0.1, ::1, "
              "localhost); '" + config.http_address + "' is reachable from other machines");
  }
  if (config.auth_required && config.api_keys_file.empty() && config.jwt_secret.empty() &&
      config.jwt_public_key_file.empty()) {
    r.problem("auth.required",
              "is true but no credentials are configured: set auth.api_keys_file, "
              "auth.jwt_secret or auth.jwt_public_key_file");
  }

  config.requests_per_minute =
      r.getInt("ratelimit.requests_per_minute", config.requests_per_minute, 1, 1'000'000);
  if (const auto proxies = r.get("ratelimit.trusted_proxies")) {
    config.trusted_proxies = splitList(*proxies);
  }
  if (const auto origins = r.get("cors.allowed_origins")) {
    for (const std::string& origin : splitList(*origins)) {
      if (origin.rfind("http://", 0) != 0 && origin.rfind("https://", 0) != 0) {
        r.problem("cors.allowed_origins", "'" + origin + "' is not an http:// or https:// origin");
      }
      config.allowed_origins.push_back(origin);
    }
  }
  config.logs_directory = r.getPath("logs.directory", "logs");
  config.log_max_bytes_per_job = r.getSize("logs.max_bytes_per_job").value_or(config.log_max_bytes_per_job);
  config.log_retention_days = r.getInt("logs.retention_days", config.log_retention_days, 0, 36500);
  config.docs_directory = r.getPath("docs.directory", "../docs");
  config.events_heartbeat = std::chrono::seconds(r.getInt(
      "events.heartbeat_seconds", static_cast<int>(config.events_heartbeat.count()), 1, 3600));
  config.events_max_streams =
      r.getInt("events.max_streams", config.events_max_streams, 1, 100'000);
  config.events_client_buffer =
      r.getSize("events.client_buffer").value_or(config.events_client_buffer);
  if (config.events_client_buffer < 4096 || config.events_client_buffer > (1ull << 30)) {
    r.problem("events.client_buffer", "must be from 4K to 1G");
  }
  config.events_replay_buffer =
      r.getSize("events.replay_buffer").value_or(config.events_replay_buffer);
  if (config.events_replay_buffer > (1ull << 32)) {
    r.problem("events.replay_buffer", "must be at most 4G");
  }
  readWebhooks(r, config.webhooks);
  readCluster(r, config);

  if (!fs::is_directory(config.collectors_directory, ec)) {
    r.problem("collectors.directory",
              "directory '" + config.collectors_directory + "' does not exist");
  } else {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(config.collectors_directory, ec)) {
      if (entry.path().extension() == ".ini") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      const std::string name = file.stem().string();
      if (!isValidCollectorName(name)) {
        problems.push_back({file.string(), "",
                            "'" + name +
                                "' is not a valid collector name (letters, digits, '-' and '_', "
                                "starting with a letter or digit)"});
        continue;
      }
      IniReader collector(file.string(), problems);
      config.collectors.push_back(readCollector(collector, name));
    }
  }

  if (problems.empty()) result.config = std::move(config);
}

}  // namespace

ConfigResult loadConfig(const std::string& path) {
  ConfigResult result;
  std::error_code ec;
  IniReader r(fs::absolute(path, ec).lexically_normal().string(), result.problems);
  readConfig(r, result);
  return result;
}

ConfigResult parseConfig(std::string_view text, const std::string& path) {
  ConfigResult result;
  IniReader r(path, text, result.problems);
  readConfig(r, result);
  return result;
}

CollectorConfig parseCollectorConfig(std::string_view text, const std::string& path,
                                     std::vector<ConfigProblem>& problems) {
  IniReader r(path, text, problems);
  return readCollector(r, fs::path(path).stem().string());
}

}  // namespace collectord
