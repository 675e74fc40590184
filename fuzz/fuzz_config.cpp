// Fuzzes the configuration parser: the first byte picks the file (even: collectord.ini, odd: a
// collector file collectors.d/fuzzed.ini), the rest is its text. Both are parsed from memory
// (parseConfig, parseCollectorConfig) as if they sat in a scratch folder made once per process,
// whose collectors.d/ is empty but for an executable run.sh. Beyond not crashing or throwing,
// it checks that every problem names its file and says what is wrong, and that a file parsed
// without problems yields values inside the ranges the daemon relies on.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "config.h"
#include "fuzz_check.h"
#include "time_format.h"

namespace fs = std::filesystem;

namespace {

std::string scratch;  // the scratch folder, absolute

void removeScratch() {
  std::error_code ec;
  if (!scratch.empty()) fs::remove_all(scratch, ec);
}

bool validEnvName(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (const char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

void checkProblems(const std::vector<collectord::ConfigProblem>& problems) {
  for (const auto& p : problems) {
    FUZZ_CHECK(!p.file.empty(), "a problem names its file");
    FUZZ_CHECK(!p.message.empty(), "a problem says what is wrong");
  }
}

void checkCollector(const collectord::CollectorConfig& c) {
  using collectord::CollectorConfig;
  FUZZ_CHECK(!c.name.empty() && !c.job_name.empty(), "a collector has a name and a job name");
  if (c.type == CollectorConfig::Type::kExec) {
    FUZZ_CHECK(!c.command.empty() && c.command.front() == '/', "an exec command is absolute");
  } else {
    FUZZ_CHECK(!c.plugin.empty() && c.plugin.front() == '/', "a plugin path is absolute");
  }
  FUZZ_CHECK(!c.working_directory.empty() && c.working_directory.front() == '/',
             "the working directory is absolute");
  if (c.timeout) FUZZ_CHECK(c.timeout->count() > 0, "a timeout is positive");
  if (c.stall_timeout) FUZZ_CHECK(c.stall_timeout->count() > 0, "a stall timeout is positive");
  FUZZ_CHECK(c.kill_grace.count() > 0, "the kill grace is positive");
  FUZZ_CHECK(c.retries >= 0 && c.retries <= 100, "retries are within 0..100");
  FUZZ_CHECK(c.retry_backoff.count() > 0 && c.retry_backoff <= c.retry_backoff_max,
             "the retry backoff is positive and within its maximum");
  FUZZ_CHECK(c.concurrency >= 1 && c.concurrency <= 10000, "concurrency is within 1..10000");
  FUZZ_CHECK(c.concurrency == 1 || c.overlap == CollectorConfig::Overlap::kParallel,
             "concurrency above 1 comes with overlap = parallel");
  if (c.nice) FUZZ_CHECK(*c.nice >= -20 && *c.nice <= 19, "nice is within -20..19");
  if (c.memory_limit) FUZZ_CHECK(*c.memory_limit > 0, "a memory limit is positive");
  if (c.cpu_limit) FUZZ_CHECK(c.cpu_limit->count() > 0, "a CPU limit is positive");
  if (c.max_open_files) {
    FUZZ_CHECK(*c.max_open_files >= 16 && *c.max_open_files <= (1u << 20),
               "max_open_files is within 16..2^20");
  }
  for (const auto& [name, value] : c.env) {
    FUZZ_CHECK(validEnvName(name), "environment names are valid");
    FUZZ_CHECK(name.rfind("COLLECTOR_", 0) != 0, "COLLECTOR_* names are refused");
  }
  if (c.schedule) {
    FUZZ_CHECK(!c.schedule->describe().empty(), "a schedule describes itself");
    FUZZ_CHECK(c.schedule->next(collectord::nowMicros()).has_value(), "a schedule fires");
  }
}

void checkConfig(const collectord::Config& config) {
  FUZZ_CHECK(config.http_port >= 0 && config.http_port <= 65535, "the port is within 0..65535");
  FUZZ_CHECK(config.http_threads >= 1 && config.http_threads <= 1024, "threads within 1..1024");
  FUZZ_CHECK(config.http_max_body_bytes >= 1024, "the body limit is at least 1 KiB");
  FUZZ_CHECK(config.http_timeout.count() > 0, "the HTTP timeout is positive");
  FUZZ_CHECK(config.shutdown_grace.count() > 0, "the shutdown grace is positive");
  FUZZ_CHECK(config.max_concurrent >= 1, "max_concurrent is positive");
  FUZZ_CHECK(config.store_url.rfind("postgres", 0) == 0 ||
                 (!config.sqlite_path.empty() && config.sqlite_path.front() == '/'),
             "a SQLite store's path is absolute");
  FUZZ_CHECK(config.log_max_bytes_per_job > 0, "the log size limit is positive");
  FUZZ_CHECK(config.log_retention_days >= 0, "log retention is not negative");
  FUZZ_CHECK(config.requests_per_minute >= 1, "the rate limit is positive");
  FUZZ_CHECK(config.tls_cert_file.empty() == config.tls_key_file.empty(),
             "TLS has both a certificate and a key, or neither");
  FUZZ_CHECK(config.auth_required || config.http_address == "localhost" ||
                 config.http_address == "::1" || config.http_address.rfind("127.", 0) == 0,
             "authentication is off only on a loopback address");
  FUZZ_CHECK(!config.auth_required || !config.api_keys_file.empty() || !config.jwt_secret.empty() ||
                 !config.jwt_public_key_file.empty(),
             "authentication on has credentials");
  for (const std::string& origin : config.allowed_origins) {
    FUZZ_CHECK(origin.rfind("http://", 0) == 0 || origin.rfind("https://", 0) == 0,
               "CORS origins are http(s) origins");
  }
  for (const std::string& proxy : config.trusted_proxies) {
    FUZZ_CHECK(!proxy.empty() && proxy.front() != ' ' && proxy.back() != ' ',
               "trusted proxies are trimmed and not empty");
  }
  for (const auto& c : config.collectors) checkCollector(c);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char folder[] = "/tmp/collectord-fuzz-config-XXXXXX";
  FUZZ_CHECK(::mkdtemp(folder) != nullptr, "a scratch folder can be made");
  scratch = folder;
  std::atexit(removeScratch);
  fs::create_directory(scratch + "/collectors.d");
  const std::string script = scratch + "/collectors.d/run.sh";
  std::ofstream(script) << "#!/bin/sh\nexit 0\n";
  fs::permissions(script, fs::perms::owner_all);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool collector_file = (data[0] & 1) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (collector_file) {
      const std::string path = scratch + "/collectors.d/fuzzed.ini";
      std::vector<collectord::ConfigProblem> problems;
      const collectord::CollectorConfig c = collectord::parseCollectorConfig(text, path, problems);
      checkProblems(problems);
      FUZZ_CHECK(c.name == "fuzzed" && c.source_file == path, "the collector is named by its file");
      if (problems.empty()) checkCollector(c);
    } else {
      const collectord::ConfigResult result =
          collectord::parseConfig(text, scratch + "/collectord.ini");
      checkProblems(result.problems);
      FUZZ_CHECK(result.config.has_value() == result.problems.empty(),
                 "a configuration is returned exactly when there are no problems");
      if (result.config) checkConfig(*result.config);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "the config parser threw: %s\n", e.what());
    FUZZ_CHECK(false, "the config parser never throws");
  }
  return 0;
}
