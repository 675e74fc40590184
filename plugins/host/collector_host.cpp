// collector-host PLUGIN.so: runs one shared-library collector in a process of its own and
// speaks the pipe protocol for it, so a plugin that crashes, aborts or hangs fails its job and
// never the daemon. collectord starts it for collectors of type = plugin.
#include <signal.h>
#include <unistd.h>

#include <Poco/Exception.h>
#include <Poco/SharedLibrary.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "collectord/plugin.h"

// Under AddressSanitizer (the asan preset), a plugin's crash must still end this process by its
// signal, as in production, so the supervisor reports "killed by signal 11 (SIGSEGV)" rather
// than ASan's exit code; ASan's own reports of the host's memory errors stay on.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COLLECTOR_HOST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(COLLECTOR_HOST_ASAN)
extern "C" const char* __asan_default_options() { return "handle_segv=0:handle_abort=0"; }
#endif

namespace {

volatile sig_atomic_t g_cancelled = 0;

void onStopSignal(int) { g_cancelled = 1; }

// A JSON string literal of `text`; bytes that are not UTF-8 become U+FFFD so the line stays
// valid for the protocol parser.
std::string jsonString(const char* text) {
  std::string out = "\"";
  const auto* p = reinterpret_cast<const unsigned char*>(text ? text : "");
  while (*p) {
    const unsigned char c = *p;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++p;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++p;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++p;
    } else {
      // Well-formed UTF-8 only (RFC 3629), exactly what the daemon's parser accepts: no
      // overlong forms, no surrogates, nothing above U+10FFFF.
      int len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
      for (int i = 1; i < len; ++i) {
        if ((p[i] & 0xC0) != 0x80) len = 0;
      }
      if ((c == 0xE0 && len && p[1] < 0xA0) || (c == 0xED && len && p[1] >= 0xA0) ||
          (c == 0xF0 && len && p[1] < 0x90) || (c == 0xF4 && len && p[1] >= 0x90)) {
        len = 0;
      }
      if (len == 0) {
        out += "\xEF\xBF\xBD";
        ++p;
      } else {
        out.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
        p += len;
      }
    }
  }
  return out + "\"";
}

class Protocol {
 public:
  Protocol() {
    const char* fd = std::getenv("COLLECTOR_PROGRESS_FD");
    fd_ = fd ? std::atoi(fd) : 3;
  }
  void send(const std::string& line) {
    const std::string text = line + "\n";
    const char* p = text.data();
    std::size_t left = text.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // no pipe (run by hand): the exit code still tells
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  void progress(int percent, const char* message) {
    std::string line = "{\"progress\": ";
    line += percent < 0 ? "null" : std::to_string(percent > 100 ? 100 : percent);
    if (message) line += ", \"message\": " + jsonString(message);
    send(line + "}");
  }
  int fail(const std::string& error) {
    send("{\"status\": \"failed\", \"error\": " + jsonString(error.c_str()) + "}");
    std::fprintf(stderr, "collector-host: %s\n", error.c_str());
    return 1;
  }

 private:
  int fd_;
};

extern "C" void hostProgress(void* context, int percent, const char* message) {
  static_cast<Protocol*>(context)->progress(percent, message);
}
extern "C" int hostCancelled(void*) { return g_cancelled; }
extern "C" void hostLog(void*, const char* message) {
  std::fprintf(stderr, "%s\n", message ? message : "");
  std::fflush(stderr);
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr,
                 "usage: collector-host PLUGIN.so\n"
                 "Runs a collectord plugin (a shared library exporting collectord_plugin_v1),\n"
                 "reporting on the descriptor in COLLECTOR_PROGRESS_FD (3 by default).\n");
    return argc == 2 ? 0 : 64;
  }
  struct sigaction stop {};
  stop.sa_handler = onStopSignal;
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTERM, &stop, nullptr);
  sigaction(SIGINT, &stop, nullptr);

  Protocol protocol;
  const std::string path = argv[1];
  Poco::SharedLibrary library;
  try {
    library.load(path);
  } catch (const Poco::Exception& e) {
    return protocol.fail("cannot load plugin " + path + ": " + e.message());
  }
  if (!library.hasSymbol("collectord_plugin_abi_version")) {
    return protocol.fail(path + " is not a collectord plugin: it does not export "
                                "collectord_plugin_abi_version");
  }
  const auto abi = reinterpret_cast<collectord_plugin_abi_version_fn>(
      library.getSymbol("collectord_plugin_abi_version"));
  const uint32_t version = abi();
  if (version != COLLECTORD_PLUGIN_ABI_VERSION) {
    return protocol.fail(path + " was built for plugin ABI version " + std::to_string(version) +
                         "; this collector-host supports version " +
                         std::to_string(COLLECTORD_PLUGIN_ABI_VERSION));
  }
  if (!library.hasSymbol("collectord_plugin_v1")) {
    return protocol.fail(path + " does not export collectord_plugin_v1");
  }
  const auto run =
      reinterpret_cast<collectord_plugin_v1_fn>(library.getSymbol("collectord_plugin_v1"));

  // The collector's env.* settings, named by collectord in COLLECTOR_CONFIG_KEYS.
  std::vector<std::string> keys, values;
  std::istringstream names(env("COLLECTOR_CONFIG_KEYS"));
  for (std::string key; std::getline(names, key, ',');) {
    if (key.empty()) continue;
    keys.push_back(key);
    values.push_back(env(key.c_str()));
  }
  std::vector<collectord_kv> config;
  for (std::size_t i = 0; i < keys.size(); ++i) config.push_back({keys[i].c_str(), values[i].c_str()});
  const std::string job_id = env("COLLECTOR_JOB_ID"), batch_id = env("COLLECTOR_BATCH_ID"),
                    name = env("COLLECTOR_NAME");

  collectord_host_v1 host{};
  host.abi_version = COLLECTORD_PLUGIN_ABI_VERSION;
  host.size = sizeof host;
  host.context = &protocol;
  host.job_id = job_id.c_str();
  host.batch_id = batch_id.c_str();
  host.collector_name = name.c_str();
  host.config = config.data();
  host.config_count = config.size();
  host.progress = hostProgress;
  host.cancelled = hostCancelled;
  host.log = hostLog;

  char error[1024] = {};
  const int result = run(&host, error, sizeof error);
  error[sizeof error - 1] = '\0';
  if (result != 0) {
    return protocol.fail(error[0] ? error : "plugin returned " + std::to_string(result));
  }
  if (g_cancelled) return protocol.fail("plugin stopped on request");
  protocol.send("{\"status\": \"completed\", \"progress\": 100}");
  return 0;
}
