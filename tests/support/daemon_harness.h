#pragma once

// What every integration test needs: a private temp folder, a config written into it, the real
// collectord binary running on an ephemeral port, an HTTP client, and bounded waits.
// Nothing here sleeps to synchronise: waits poll a condition and give up after a deadline.

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Object.h>
#include <Poco/Net/StreamSocket.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace collectord::test {

using Key = std::pair<std::string, std::string>;
using Keys = std::vector<Key>;

// A fresh folder under /tmp (mkdtemp), removed with everything in it on destruction unless the
// environment variable COLLECTORD_KEEP_TEST_DIRS is set (then its path is printed instead).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The folder's canonical absolute path (no symlinks), without a trailing slash.
  const std::string& path() const { return path_; }
  // path() + "/" + relative.
  std::string file(std::string_view relative) const;

 private:
  std::string path_;
};

// Writes `text` to `path` (creating missing parent folders) and sets its mode. Throws on failure.
void writeFile(const std::string& path, std::string_view text, mode_t mode = 0644);
// Writes an executable (mode 755) file: a collector script.
void writeExecutable(const std::string& path, std::string_view text);
// The whole file, or nullopt when it cannot be read.
std::optional<std::string> readFile(const std::string& path);
bool fileExists(const std::string& path);
// `path` with symlinks and dot segments resolved (the path as given when that fails).
std::string canonicalPath(const std::string& path);

// Builds a daemon's configuration inside a TempDir and writes it as it goes:
//   DIR/collectord.ini            [http] port = 0, [store] storeUrl(), [logs] logs,
//                                 [auth] required = false, [ratelimit] 1000000 a minute
//   DIR/collectors.d/NAME.ini     one per collector
//   DIR/collectors.d/NAME.sh      the collector's script, mode 755
//   DIR/logs/                     created up front
class DaemonConfig {
 public:
  explicit DaemonConfig(const TempDir& dir);

  // Appends raw INI text to collectord.ini (e.g. "[collectors]\nmax_concurrent = 2\n").
  DaemonConfig& appendToMain(std::string_view ini_text);
  // Replaces collectord.ini with exactly this text.
  DaemonConfig& replaceMain(std::string_view ini_text);

  // Adds collector NAME whose command is ./NAME.sh holding `script` (a "#!/bin/sh" line is
  // prepended unless the script starts with "#!"). `keys` go under [collector] after the
  // command, so a "command" key in `keys` is written instead of the default one.
  DaemonConfig& addCollector(const std::string& name, std::string_view script,
                             const Keys& keys = {});
  // Like addCollector, and the script may call `wait_for_release N`, which blocks until the test
  // calls release(NAME, N). The release folder goes to the child as env.RELEASE.
  DaemonConfig& addBlockingCollector(const std::string& name, std::string_view script,
                                     const Keys& keys = {});
  // Writes collectors.d/FILE_NAME with exactly this text (for names and keys that must be odd).
  DaemonConfig& addCollectorFile(const std::string& file_name, std::string_view ini_text);

  // Lets a blocked `wait_for_release STAGE` in collector NAME's script go on.
  void release(const std::string& name, int stage = 1) const;

  const TempDir& dir() const { return dir_; }
  std::string mainPath() const;
  std::string collectorsDir() const;
  std::string collectorIni(const std::string& name) const;
  std::string logsDir() const;
  std::string dbPath() const;
  // sqlite:collectord.db, or when the tests run against PostgreSQL (sharedPostgres()) the URL
  // of an empty database of this config's own on the shared server.
  const std::string& storeUrl() const { return store_url_; }
  bool onPostgres() const { return store_url_.rfind("postgresql:", 0) == 0; }
  // Points [store] url of collectord.ini at `url` instead of storeUrl(), which becomes `url`.
  DaemonConfig& useStore(const std::string& url);
  // DIR/logs/JOB_ID.log: the captured stdout/stderr and protocol warnings of one job.
  std::string jobLogPath(const std::string& job_id) const;
  std::string releaseDir(const std::string& name) const;

 private:
  const TempDir& dir_;
  std::string store_url_ = "sqlite:collectord.db";
};

// The result of running the collectord binary to completion (e.g. --check-config).
struct RunResult {
  int exit_code = -1;  // exit status, or 128 + signal number
  std::string out;
  std::string err;
};

// The test's environment with `changes` applied (a value sets a variable, nullopt unsets it),
// as "NAME=VALUE" strings for a child process.
std::vector<std::string> environmentWith(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& changes);
// Pointers to the strings' characters followed by nullptr, as execve and posix_spawn take them;
// valid while `strings` lives unchanged.
std::vector<char*> cStrings(std::vector<std::string>& strings);

// Runs COLLECTORD_BINARY with `args` and waits (bounded) for it; throws on timeout.
RunResult runCollectord(const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(20));

// How to launch a daemon. `env` changes the daemon's environment, which otherwise is the test's:
// a value sets the variable, nullopt unsets it.
struct DaemonOptions {
  std::vector<std::pair<std::string, std::optional<std::string>>> env;
  std::vector<std::string> extra_args;  // after --config and --port-file
  std::chrono::milliseconds start_timeout = std::chrono::seconds(20);
};

struct HttpResponse;
class HttpClient;

// The real daemon: `COLLECTORD_BINARY --config=DIR/collectord.ini --port-file=DIR/port`, stdout
// and stderr appended to DIR/daemon.out. The constructor returns once the port file names the
// listening port, and throws (with the daemon's output) if it does not appear in time or the
// daemon exits. The destructor stops it (SIGTERM, then SIGKILL after a bound) and, when the
// current test has failed, prints the daemon's log.
class Daemon {
 public:
  explicit Daemon(const DaemonConfig& config, DaemonOptions options = {});
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // SIGTERM, then waits for exit; SIGKILL when it has not exited within `timeout`.
  // Returns the exit code (128 + signal when killed); -1 when it was not running.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Sends `signal` and waits (bounded) for exit, as stop() does. Returns the exit code.
  int stopWith(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // SIGKILL without warning, as a crash would, and reaps it. Its children are left alone.
  void killHard();

  // What the daemon printed plus DIR/logs/collectord.log, for failure messages.
  std::string logText() const;

  HttpClient client() const;

 private:
  const DaemonConfig& config_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// One HTTP exchange. `json` holds the parsed body when it is JSON, and is empty otherwise.
struct HttpResponse {
  int status = 0;
  std::string reason;  // the status line's reason phrase ("Not Found")
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Poco::Dynamic::Var json;

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // The body as a JSON object, or null when it is not one.
  Poco::JSON::Object::Ptr object() const;
  // "STATUS BODY": what a failure message should show.
  std::string describe() const;
};

// What came back on a raw connection (HttpClient::raw, readRawResponse).
struct RawExchange {
  std::string received;                  // every byte read, as sent
  std::optional<HttpResponse> response;  // set once `received` holds one whole HTTP response
  bool closed = false;                   // the server closed or reset the connection
  bool timed_out = false;  // the deadline passed with neither a whole response nor a close
  std::chrono::milliseconds elapsed{0};
};

// Reads from `socket` until it holds one whole HTTP response (status line, headers, and
// Content-Length bytes of body), the peer closes or resets the connection, or `timeout` passes.
RawExchange readRawResponse(Poco::Net::StreamSocket& socket, std::chrono::milliseconds timeout);

// The headers that present credentials.
inline Keys apiKeyHeader(const std::string& key) { return {{"X-API-Key", key}}; }
inline Keys bearerHeader(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// A tiny client for 127.0.0.1:PORT. A connection per request; every call has a 10 s timeout and
// throws only when the server cannot be reached.
class HttpClient {
 public:
  explicit HttpClient(int port) : port_(port) {}

  // A copy that sends `headers` with every request (credentials, an Origin...); headers given
  // to a call replace these when named alike.
  HttpClient withHeaders(const Keys& headers) const;
  int port() const { return port_; }

  // A connected socket to the daemon, for requests this client cannot or must not send well
  // formed; 10 s send and receive timeouts.
  Poco::Net::StreamSocket connect() const;
  // Connects, sends `bytes` exactly as given, and reads the answer (see readRawResponse).
  RawExchange raw(std::string_view bytes,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  HttpResponse get(const std::string& path, const Keys& headers = {}) const;
  HttpResponse post(const std::string& path, const std::string& body,
                    const Keys& headers = {}) const;
  HttpResponse put(const std::string& path, const std::string& body,
                   const Keys& headers = {}) const;
  HttpResponse del(const std::string& path, const Keys& headers = {}) const;
  HttpResponse options(const std::string& path, const Keys& headers = {}) const;
  // Any method; a body (even empty) is sent with Content-Type application/json.
  HttpResponse request(const std::string& method, const std::string& path,
                       const std::optional<std::string>& body, const Keys& headers = {}) const;

  // POST /api/collectors/run {"collectors": [...]} (plus "priority" when given).
  HttpResponse trigger(const std::vector<std::string>& collectors,
                       const std::optional<std::string>& priority = std::nullopt) const;
  HttpResponse batch(const std::string& batch_id) const;
  HttpResponse job(const std::string& job_id) const;

 private:
  int port_;
  Keys default_headers_;
};

// Polls `predicate` every `interval` until it is true or `timeout` passes; returns its last value.
bool waitUntil(const std::function<bool()>& predicate,
               std::chrono::milliseconds timeout = std::chrono::seconds(15),
               std::chrono::milliseconds interval = std::chrono::milliseconds(20));

// Polls GET /api/collectors/runs/batch/ID every ~50 ms until its status is completed, failed or
// cancelled (bounded by `timeout`). Returns the last response, terminal or not.
HttpResponse waitForBatchTerminal(const HttpClient& client, const std::string& batch_id,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(15));
// Polls GET /api/collectors/runs/job/ID until `predicate` holds for its JSON (bounded).
// Returns the last response.
HttpResponse waitForJob(const HttpClient& client, const std::string& job_id,
                        const std::function<bool(const Poco::JSON::Object&)>& predicate,
                        std::chrono::milliseconds timeout = std::chrono::seconds(15));

// Triggers `collectors`, expects 201, and returns {batch_id, job ids in request order}.
// Throws (with the response) when the trigger is refused.
struct Triggered {
  std::string batch_id;
  std::vector<std::string> job_ids;
};
Triggered triggerOrThrow(const HttpClient& client, const std::vector<std::string>& collectors);
// Runs `collector` alone, waits for its batch to end, and returns its job ID.
std::string runOnce(const HttpClient& client, const std::string& collector);

// Format checks.
bool isBatchId(std::string_view text);          // ^bc_[0-9]{8}$
bool isJobId(std::string_view text);            // ^[a-z0-9]{2}_[0-9]{8}$
bool isMicroTimestamp(std::string_view text);   // YYYY-MM-DDTHH:MM:SS.ffffffZ
bool isSecondTimestamp(std::string_view text);  // YYYY-MM-DDTHH:MM:SSZ
// Microseconds since the epoch for either timestamp format, or nullopt when malformed.
std::optional<std::int64_t> parseTimestamp(std::string_view text);
std::int64_t nowMicros();

// The string value of `key`, or "" when absent or not a string: handy inside predicates.
std::string stringField(const Poco::JSON::Object& object, const std::string& key);

// True while process `pid` exists and is not a zombie.
bool processAlive(pid_t pid);

}  // namespace collectord::test
