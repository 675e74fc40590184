#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "schedule.h"
#include "webhook.h"

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
  std::chrono::milliseconds kill_grace{5000};  // SIGTERM, then SIGKILL this much later
  int retries = 0;
  std::chrono::milliseconds retry_backoff{30'000};      // before the first retry; doubles
  std::chrono::milliseconds retry_backoff_max{600'000};  // the doubling stops here
  int concurrency = 1;

  // What a trigger does while the collector has an active run: wait for it (queue), return
  // it instead of starting another (skip), or run beside it up to `concurrency` (parallel).
  enum class Overlap { kQueue, kSkip, kParallel };
  Overlap overlap = Overlap::kQueue;

  // Process limits, applied in the child before exec.
  std::optional<int> nice;
  std::optional<std::uint64_t> memory_limit;          // bytes of address space (RLIMIT_AS)
  std::optional<std::chrono::milliseconds> cpu_limit;  // CPU time (RLIMIT_CPU)
  std::optional<std::uint64_t> max_open_files;        // RLIMIT_NOFILE
  std::string user;                                    // run as this account (daemon is root)
  std::string group;

  std::optional<Schedule> schedule;  // from `schedule = every ...` or `cron` + `timezone`

  // `nodes = tag:site-a, node-c`: in a cluster, the nodes that may run it (a `tag:NAME` matches
  // nodes with that tag, a bare word one node's id). Empty: any node.
  std::vector<std::string> nodes;

  // Whether a node with this id and these tags may run the collector.
  bool runsOn(const std::string& node_id, const std::vector<std::string>& node_tags) const;

  // How many runs of this collector may be running at once on this node.
  int effectiveConcurrency() const { return overlap == Overlap::kParallel ? concurrency : 1; }
};

// "queue", "skip", "parallel".
std::string_view toString(CollectorConfig::Overlap overlap);

// [node] and [cluster]: several collectord nodes sharing one PostgreSQL store (docs/cluster.md).
struct ClusterSettings {
  bool enabled = false;  // off: one collectord per database
  std::string node_id;   // [node] id; HOSTNAME:PORT when not set
  std::vector<std::string> tags;
  std::chrono::milliseconds lease_timeout{15'000};  // a node silent this long is lost
  std::chrono::milliseconds heartbeat_interval{5'000};
  std::chrono::milliseconds poll_interval{1'000};  // looks for queued work at least this often
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
  std::string sqlite_path;  // resolved from store_url; empty for a PostgreSQL store

  std::string collectors_directory;
  int max_concurrent = 8;
  std::chrono::milliseconds shutdown_grace{30'000};  // SIGTERM to SIGKILL when stopping

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
  std::uint64_t log_max_bytes_per_job = 10 * 1024 * 1024;  // older output is dropped past this
  int log_retention_days = 30;                             // 0: keep job logs for ever
  std::string docs_directory;

  // [events]: the live event streams (Server-Sent Events).
  std::chrono::seconds events_heartbeat{15};          // a comment line after this long idle
  int events_max_streams = 1000;                      // open at once; more are refused
  std::uint64_t events_client_buffer = 1024 * 1024;   // bytes waiting per client before a drop
  std::uint64_t events_replay_buffer = 8 * 1024 * 1024;  // recent events kept for resuming

  WebhookSettings webhooks;  // [webhooks] and each [webhook.NAME]
  ClusterSettings cluster;

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

// loadConfig for a main file whose text is given: `path` stands for the file's absolute path
// (relative paths resolve against its folder); collector files are still read from the
// collectors directory the text names. Never throws.
ConfigResult parseConfig(std::string_view text, const std::string& path);

// Parses the text of one collector file as if it were read from `path` (collectors.d/NAME.ini;
// NAME is the collector's name). Appends any problems to `problems`; the result is complete only
// when none were added. Never throws.
CollectorConfig parseCollectorConfig(std::string_view text, const std::string& path,
                                     std::vector<ConfigProblem>& problems);

// Splits a command line into words the way a POSIX shell would for quoting: '...', "..." and
// backslash escapes; no expansion. Nullopt (with `error` set) for an unterminated quote.
std::optional<std::vector<std::string>> splitShellWords(std::string_view text, std::string& error);

}  // namespace collectord
