#include "daemon_harness.h"

#include "postgres_server.h"

#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/StreamCopier.h>
#include <Poco/String.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <exception>
#include <stdexcept>
#include <thread>

#include "postgres_server.h"

extern char** environ;

namespace collectord::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::runtime_error systemError(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

int exitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

// Waits for `pid` until `deadline`; returns its exit code, or nullopt when it is still running.
std::optional<int> waitForExit(pid_t pid, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return exitCodeOf(status);
    if (done < 0 && errno != EINTR) throw systemError("waitpid");
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// posix_spawn with stdin from /dev/null and stdout/stderr going to `out_fd`/`err_fd`.
pid_t spawn(std::vector<std::string> argv, std::vector<std::string> env, int out_fd, int err_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  auto c_argv = cStrings(argv);
  auto c_env = cStrings(env);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, c_argv[0], &actions, nullptr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    errno = rc;
    throw systemError("posix_spawn " + argv[0]);
  }
  return pid;
}

std::string quoteJson(const std::string& text) {
  std::ostringstream out;
  Poco::JSON::Stringifier::formatString(text, out);
  return out.str();
}

// A server may close a connection the test is still writing to (a refused body): that must be
// an error code for the test to look at, not a SIGPIPE that ends the test binary.
void ignoreSigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

void parseJsonBody(HttpResponse& result) {
  if (result.body.empty()) return;
  try {
    Poco::JSON::Parser parser;
    result.json = parser.parse(result.body);
  } catch (const Poco::Exception&) {
    result.json.clear();  // not JSON: tests look at `body`
  }
}

// `bytes` as one HTTP response, or nullopt while it is not whole (or is not HTTP at all).
// `closed`: nothing more will come, so a body without Content-Length ends here.
std::optional<HttpResponse> parseRawResponse(const std::string& bytes, bool closed) {
  const auto end = bytes.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  Poco::Net::HTTPResponse head;
  try {
    std::istringstream in(bytes.substr(0, end + 4));
    head.read(in);
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
  std::string body = bytes.substr(end + 4);
  if (head.hasContentLength()) {
    const auto length = static_cast<std::size_t>(head.getContentLength64());
    if (body.size() < length) return std::nullopt;
    body.resize(length);
  } else if (!closed) {
    return std::nullopt;
  }
  HttpResponse result;
  result.status = static_cast<int>(head.getStatus());
  result.reason = head.getReason();
  for (const auto& [name, value] : head) result.headers.emplace_back(name, value);
  result.body = std::move(body);
  parseJsonBody(result);
  return result;
}

constexpr std::string_view kReleasePrelude = R"(#!/bin/sh
# Blocks until the test creates $RELEASE/STAGE; gives up after about a minute so that an
# abandoned collector never outlives its test for long.
wait_for_release() {
  waited=0
  while [ ! -e "$RELEASE/$1" ]; do
    waited=$((waited + 1))
    if [ "$waited" -gt 1200 ]; then exit 99; fi
    sleep 0.05
  done
}
)";

}  // namespace

std::vector<std::string> environmentWith(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& changes) {
  std::map<std::string, std::string> vars;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text(*entry);
    auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    vars[std::string(text.substr(0, eq))] = std::string(text.substr(eq + 1));
  }
  for (const auto& [name, value] : changes) {
    if (value) {
      vars[name] = *value;
    } else {
      vars.erase(name);
    }
  }
  std::vector<std::string> result;
  for (const auto& [name, value] : vars) result.push_back(name + "=" + value);
  return result;
}

std::vector<char*> cStrings(std::vector<std::string>& strings) {
  std::vector<char*> result;
  for (auto& s : strings) result.push_back(s.data());
  result.push_back(nullptr);
  return result;
}

TempDir::TempDir() {
  std::string pattern = "/tmp/collectord-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw systemError("mkdtemp");
  path_ = canonicalPath(pattern);
}

TempDir::~TempDir() {
  if (std::getenv("COLLECTORD_KEEP_TEST_DIRS") != nullptr) {
    std::cerr << "[collectord test] kept " << path_ << "\n";
    return;
  }
  std::error_code error;
  fs::remove_all(path_, error);
  if (error)
    std::cerr << "[collectord test] could not remove " << path_ << ": " << error.message() << "\n";
}

std::string TempDir::file(std::string_view relative) const {
  return path_ + "/" + std::string(relative);
}

void writeFile(const std::string& path, std::string_view text, mode_t mode) {
  fs::create_directories(fs::path(path).parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + path);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  if (::chmod(path.c_str(), mode) != 0) throw systemError("chmod " + path);
}

void writeExecutable(const std::string& path, std::string_view text) {
  writeFile(path, text, 0755);
}

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool fileExists(const std::string& path) {
  std::error_code error;
  return fs::exists(path, error);
}

std::string canonicalPath(const std::string& path) {
  std::error_code error;
  auto canonical = fs::canonical(path, error);
  return error ? path : canonical.string();
}

DaemonConfig::DaemonConfig(const TempDir& dir) : dir_(dir) {
  if (const std::optional<std::string> server = sharedPostgres()) {
    store_url_ = createDatabase(*server);
  }
  replaceMain(
      "[http]\n"
      "address = 127.0.0.1\n"
      "port = 0\n"
      "[store]\n"
      "url = " + store_url_ + "\n"
      "[collectors]\n"
      "directory = collectors.d\n"
      "[logs]\n"
      "directory = logs\n"
      // Tests talk to a loopback daemon without credentials and poll it every 50 ms, whatever
      // the defaults of auth and rate limiting become.
      "[auth]\n"
      "required = false\n"
      "[ratelimit]\n"
      "requests_per_minute = 1000000\n");
  fs::create_directories(collectorsDir());
  fs::create_directories(logsDir());
}

DaemonConfig& DaemonConfig::useStore(const std::string& url) {
  std::string text = readFile(mainPath()).value_or("");
  const std::string line = "url = " + store_url_ + "\n";
  const auto at = text.find(line);
  if (at == std::string::npos) throw std::runtime_error("no '" + line + "' in " + mainPath());
  text.replace(at, line.size(), "url = " + url + "\n");
  writeFile(mainPath(), text);
  store_url_ = url;
  return *this;
}

DaemonConfig& DaemonConfig::appendToMain(std::string_view ini_text) {
  std::string text = readFile(mainPath()).value_or("");
  text += ini_text;
  writeFile(mainPath(), text);
  return *this;
}

DaemonConfig& DaemonConfig::replaceMain(std::string_view ini_text) {
  writeFile(mainPath(), ini_text);
  return *this;
}

DaemonConfig& DaemonConfig::addCollector(const std::string& name, std::string_view script,
                                         const Keys& keys) {
  std::string text(script);
  if (text.rfind("#!", 0) != 0) text = "#!/bin/sh\n" + text;
  writeExecutable(collectorsDir() + "/" + name + ".sh", text);

  bool has_command = false;
  for (const auto& [key, value] : keys) has_command = has_command || key == "command";
  std::string ini = "[collector]\n";
  if (!has_command) ini += "command = ./" + name + ".sh\n";
  for (const auto& [key, value] : keys) ini += key + " = " + value + "\n";
  return addCollectorFile(name + ".ini", ini);
}

DaemonConfig& DaemonConfig::addBlockingCollector(const std::string& name, std::string_view script,
                                                 const Keys& keys) {
  fs::create_directories(releaseDir(name));
  Keys all = keys;
  all.emplace_back("env.RELEASE", releaseDir(name));
  return addCollector(name, std::string(kReleasePrelude) + std::string(script), all);
}

DaemonConfig& DaemonConfig::addCollectorFile(const std::string& file_name,
                                             std::string_view ini_text) {
  writeFile(collectorsDir() + "/" + file_name, ini_text);
  return *this;
}

void DaemonConfig::release(const std::string& name, int stage) const {
  writeFile(releaseDir(name) + "/" + std::to_string(stage), "");
}

std::string DaemonConfig::mainPath() const { return dir_.file("collectord.ini"); }
std::string DaemonConfig::collectorsDir() const { return dir_.file("collectors.d"); }
std::string DaemonConfig::collectorIni(const std::string& name) const {
  return collectorsDir() + "/" + name + ".ini";
}
std::string DaemonConfig::logsDir() const { return dir_.file("logs"); }
std::string DaemonConfig::dbPath() const { return dir_.file("collectord.db"); }
std::string DaemonConfig::jobLogPath(const std::string& job_id) const {
  return logsDir() + "/" + job_id + ".log";
}
std::string DaemonConfig::releaseDir(const std::string& name) const {
  return dir_.file("release/" + name);
}

RunResult runCollectord(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw systemError("pipe2");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw systemError("pipe2");
  }
  std::vector<std::string> argv = {COLLECTORD_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = -1;
  try {
    pid = spawn(argv, environmentWith({}), out_pipe[1], err_pipe[1]);
  } catch (const std::exception&) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    throw;
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  RunResult result;
  auto deadline = Clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_count = 2;
  while (open_count > 0 && Clock::now() < deadline) {
    int ready = ::poll(fds, 2, 50);
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  for (auto& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  auto code = waitForExit(pid, deadline);
  if (!code) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    throw std::runtime_error("collectord did not finish in time; stdout: " + result.out +
                             " stderr: " + result.err);
  }
  result.exit_code = *code;
  return result;
}

Daemon::Daemon(const DaemonConfig& config, DaemonOptions options) : config_(config) {
  const std::string port_file = config.dir().file("port");
  ::unlink(port_file.c_str());
  const std::string out_path = config.dir().file("daemon.out");
  int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0) throw systemError("open " + out_path);
  try {
    std::vector<std::string> argv = {COLLECTORD_BINARY, "--config=" + config.mainPath(),
                                     "--port-file=" + port_file};
    argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
    pid_ = spawn(argv, environmentWith(options.env), out_fd, out_fd);
  } catch (const std::exception&) {
    ::close(out_fd);
    throw;
  }
  ::close(out_fd);

  auto deadline = Clock::now() + options.start_timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("collectord exited with code " + std::to_string(exitCodeOf(status)) +
                               " before listening; its log:\n" + logText());
    }
    auto text = readFile(port_file);
    if (text && !text->empty() && text->back() == '\n') {
      try {
        port_ = std::stoi(*text);
      } catch (const std::exception&) {
        port_ = 0;
      }
      if (port_ <= 0 || port_ > 65535) {
        stop();
        throw std::runtime_error("port file holds '" + *text + "', not a port number");
      }
      return;
    }
    if (Clock::now() >= deadline) {
      std::string log = logText();
      stop();
      throw std::runtime_error("collectord wrote no port file in time; its log:\n" + log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Daemon::~Daemon() {
  if (running()) {
    try {
      stop();
    } catch (const std::exception& e) {
      std::cerr << "[collectord test] stopping the daemon: " << e.what() << "\n";
    }
  }
  // An exception unwinding the test (a refused connection, say) is a failure gtest records only
  // after this runs: the log is what tells why.
  if (::testing::Test::HasFailure() || std::uncaught_exceptions() > 0) {
    std::cerr << "[collectord test] daemon log (" << config_.dir().path() << "):\n"
              << logText() << "\n";
  }
}

int Daemon::stop(std::chrono::milliseconds timeout) { return stopWith(SIGTERM, timeout); }

int Daemon::stopWith(int signal, std::chrono::milliseconds timeout) {
  if (!running()) return -1;
  ::kill(pid_, signal);
  auto code = waitForExit(pid_, Clock::now() + timeout);
  if (!code) {
    std::cerr << "[collectord test] daemon ignored signal " << signal << " for " << timeout.count()
              << " ms; killing it\n";
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    code = exitCodeOf(status);
  }
  pid_ = -1;
  return *code;
}

void Daemon::killHard() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string Daemon::logText() const {
  auto output = readFile(config_.dir().file("daemon.out")).value_or("");
  auto log = readFile(config_.logsDir() + "/collectord.log").value_or("");
  std::string text = "--- " + config_.dir().file("daemon.out") + "\n" + output;
  // The daemon may copy its log to the console; show the file only when it says more.
  if (log != output) text += "--- " + config_.logsDir() + "/collectord.log\n" + log;
  return text;
}

HttpClient Daemon::client() const { return HttpClient(port_); }

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (Poco::icompare(key, std::string(name)) == 0) return value;
  }
  return std::nullopt;
}

Poco::JSON::Object::Ptr HttpResponse::object() const {
  if (json.type() == typeid(Poco::JSON::Object::Ptr)) {
    return json.extract<Poco::JSON::Object::Ptr>();
  }
  return nullptr;
}

std::string HttpResponse::describe() const {
  std::string shown = body.size() > 4000 ? body.substr(0, 4000) + "..." : body;
  return "HTTP " + std::to_string(status) + " " + shown;
}

HttpResponse HttpClient::get(const std::string& path, const Keys& headers) const {
  return request(Poco::Net::HTTPRequest::HTTP_GET, path, std::nullopt, headers);
}
HttpResponse HttpClient::post(const std::string& path, const std::string& body,
                              const Keys& headers) const {
  return request(Poco::Net::HTTPRequest::HTTP_POST, path, body, headers);
}
HttpResponse HttpClient::put(const std::string& path, const std::string& body,
                             const Keys& headers) const {
  return request(Poco::Net::HTTPRequest::HTTP_PUT, path, body, headers);
}
HttpResponse HttpClient::del(const std::string& path, const Keys& headers) const {
  return request(Poco::Net::HTTPRequest::HTTP_DELETE, path, std::nullopt, headers);
}
HttpResponse HttpClient::options(const std::string& path, const Keys& headers) const {
  return request(Poco::Net::HTTPRequest::HTTP_OPTIONS, path, std::nullopt, headers);
}

HttpResponse HttpClient::request(const std::string& method, const std::string& path,
                                 const std::optional<std::string>& body,
                                 const Keys& headers) const {
  ignoreSigpipe();
  Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port_));
  session.setTimeout(Poco::Timespan(10, 0));
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (body) {
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body->size()));
  }
  for (const auto& [name, value] : default_headers_) request.set(name, value);
  for (const auto& [name, value] : headers) request.set(name, value);
  std::ostream& out = session.sendRequest(request);
  if (body) out << *body;

  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  HttpResponse result;
  result.status = static_cast<int>(response.getStatus());
  result.reason = response.getReason();
  for (const auto& [name, value] : response) result.headers.emplace_back(name, value);
  Poco::StreamCopier::copyToString(in, result.body);
  parseJsonBody(result);
  return result;
}

HttpClient HttpClient::withHeaders(const Keys& headers) const {
  HttpClient copy = *this;
  copy.default_headers_.insert(copy.default_headers_.end(), headers.begin(), headers.end());
  return copy;
}

Poco::Net::StreamSocket HttpClient::connect() const {
  ignoreSigpipe();
  Poco::Net::StreamSocket socket;
  socket.connect(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port_)),
                 Poco::Timespan(10, 0));
  socket.setSendTimeout(Poco::Timespan(10, 0));
  socket.setReceiveTimeout(Poco::Timespan(10, 0));
  return socket;
}

RawExchange HttpClient::raw(std::string_view bytes, std::chrono::milliseconds timeout) const {
  Poco::Net::StreamSocket socket = connect();
  try {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      int n = socket.sendBytes(bytes.data() + sent, static_cast<int>(bytes.size() - sent));
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
  } catch (const Poco::Exception&) {
    // The server stopped reading (it refused what came so far): its answer may still be there.
  }
  return readRawResponse(socket, timeout);
}

RawExchange readRawResponse(Poco::Net::StreamSocket& socket, std::chrono::milliseconds timeout) {
  RawExchange result;
  const auto started = Clock::now();
  const auto deadline = started + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    try {
      if (!socket.poll(Poco::Timespan(left.count()), Poco::Net::Socket::SELECT_READ)) continue;
      char buffer[8192];
      const int n = socket.receiveBytes(buffer, sizeof buffer);
      if (n <= 0) {
        result.closed = true;
        break;
      }
      result.received.append(buffer, static_cast<std::size_t>(n));
    } catch (const Poco::Exception&) {
      result.closed = true;  // reset by the peer
      break;
    }
    result.response = parseRawResponse(result.received, false);
    if (result.response) break;
  }
  if (!result.response) result.response = parseRawResponse(result.received, result.closed);
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  return result;
}

HttpResponse HttpClient::trigger(const std::vector<std::string>& collectors,
                                 const std::optional<std::string>& priority) const {
  std::string body = "{\"collectors\": [";
  for (std::size_t i = 0; i < collectors.size(); ++i) {
    if (i > 0) body += ", ";
    body += quoteJson(collectors[i]);
  }
  body += "]";
  if (priority) body += ", \"priority\": " + quoteJson(*priority);
  body += "}";
  return post("/api/collectors/run", body);
}

HttpResponse HttpClient::batch(const std::string& batch_id) const {
  return get("/api/collectors/runs/batch/" + batch_id);
}

HttpResponse HttpClient::job(const std::string& job_id) const {
  return get("/api/collectors/runs/job/" + job_id);
}

bool waitUntil(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (Clock::now() >= deadline) return predicate();
    std::this_thread::sleep_for(interval);
  }
}

HttpResponse waitForBatchTerminal(const HttpClient& client, const std::string& batch_id,
                                  std::chrono::milliseconds timeout) {
  HttpResponse last;
  waitUntil(
      [&] {
        last = client.batch(batch_id);
        auto object = last.object();
        if (last.status != 200 || !object) return false;
        std::string status = stringField(*object, "status");
        return status == "completed" || status == "failed" || status == "cancelled";
      },
      timeout, std::chrono::milliseconds(50));
  return last;
}

HttpResponse waitForJob(const HttpClient& client, const std::string& job_id,
                        const std::function<bool(const Poco::JSON::Object&)>& predicate,
                        std::chrono::milliseconds timeout) {
  HttpResponse last;
  waitUntil(
      [&] {
        last = client.job(job_id);
        auto object = last.object();
        return last.status == 200 && object && predicate(*object);
      },
      timeout, std::chrono::milliseconds(50));
  return last;
}

std::string runOnce(const HttpClient& client, const std::string& collector) {
  const Triggered run = triggerOrThrow(client, {collector});
  waitForBatchTerminal(client, run.batch_id);
  return run.job_ids[0];
}

Triggered triggerOrThrow(const HttpClient& client, const std::vector<std::string>& collectors) {
  HttpResponse response = client.trigger(collectors);
  auto object = response.object();
  if (response.status != 201 || !object || !object->isArray("collectors")) {
    throw std::runtime_error("trigger refused: " + response.describe());
  }
  Triggered result;
  result.batch_id = stringField(*object, "batch_id");
  auto jobs = object->getArray("collectors");
  for (std::size_t i = 0; i < jobs->size(); ++i) {
    auto job = jobs->getObject(static_cast<unsigned>(i));
    result.job_ids.push_back(job ? stringField(*job, "job_id") : "");
  }
  if (result.job_ids.size() != collectors.size()) {
    throw std::runtime_error("trigger answered with the wrong number of jobs: " +
                             response.describe());
  }
  return result;
}

bool isBatchId(std::string_view text) {
  static const std::regex pattern("^bc_[0-9]{8}$");
  return std::regex_match(text.begin(), text.end(), pattern);
}

bool isJobId(std::string_view text) {
  static const std::regex pattern("^[a-z0-9]{2}_[0-9]{8}$");
  return std::regex_match(text.begin(), text.end(), pattern);
}

bool isMicroTimestamp(std::string_view text) {
  static const std::regex pattern(
      "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$");
  return std::regex_match(text.begin(), text.end(), pattern) && parseTimestamp(text).has_value();
}

bool isSecondTimestamp(std::string_view text) {
  static const std::regex pattern("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$");
  return std::regex_match(text.begin(), text.end(), pattern) && parseTimestamp(text).has_value();
}

std::optional<std::int64_t> parseTimestamp(std::string_view text) {
  static const std::regex pattern(
      "^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\\.([0-9]{6}))?Z$");
  std::match_results<std::string_view::const_iterator> match;
  if (!std::regex_match(text.begin(), text.end(), match, pattern)) return std::nullopt;
  auto number = [&](int group) { return std::stoi(match[group].str()); };
  std::tm tm{};
  tm.tm_year = number(1) - 1900;
  tm.tm_mon = number(2) - 1;
  tm.tm_mday = number(3);
  tm.tm_hour = number(4);
  tm.tm_min = number(5);
  tm.tm_sec = number(6);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return std::nullopt;
  }
  std::int64_t seconds = ::timegm(&tm);
  std::int64_t micros = match[8].matched ? std::stoll(match[8].str()) : 0;
  return seconds * 1000000 + micros;
}

std::int64_t nowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string stringField(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key)) return "";
  Poco::Dynamic::Var value = object.get(key);
  return value.isString() ? value.extract<std::string>() : "";
}

bool processAlive(pid_t pid) {
  auto stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  auto close_paren = stat->rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat->size()) return false;
  char state = (*stat)[close_paren + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace collectord::test
