// collectord C++ SDK: a header-only convenience layer over the C plugin ABI (plugin.h) and the
// progress protocol, for C++17 and later.
//
// Native collectors (type = plugin) derive from collectord::Collector and name their class once
// in COLLECTORD_PLUGIN; the macro defines the two C entry points collector-host looks for and
// turns an exception escaping run() into a failed job whose error is the exception's what().
// Nothing but C types ever crosses the C boundary.
//
//   class Inventory : public collectord::Collector {
//    public:
//     void run(collectord::Context& ctx) override {
//       collectord::Progress steps(ctx, folders.size());
//       for (const auto& folder : folders) {
//         ctx.throwIfCancelled();
//         steps.next("Scanning " + folder);
//         ...
//       }
//     }
//   };
//   COLLECTORD_PLUGIN(Inventory);
//
// Exec collectors (type = exec) written in C++ use collectord::ProgressReporter, which writes
// protocol lines to the descriptor in COLLECTOR_PROGRESS_FD.
//
// Build plugins with -fvisibility=hidden so that only the two entry points are exported.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "collectord/plugin.h"

namespace collectord {

namespace detail {

// Longest message or error text, in bytes, that the SDK passes on. Escaped for JSON it stays
// below the protocol's 64 KiB line limit even when every byte needs a \u escape.
inline constexpr std::size_t kMaxTextBytes = 8192;

// The length of the well-formed UTF-8 sequence at the start of `text` (1-4), or 0 when it is
// not one. Overlong forms, surrogates and code points above U+10FFFF are not well formed: they
// are exactly what collectord's protocol parser rejects.
inline std::size_t utf8SequenceLength(std::string_view text) {
  if (text.empty()) return 0;
  const auto byte = [&text](std::size_t i) -> unsigned {
    return i < text.size() ? static_cast<unsigned char>(text[i]) : 0u;
  };
  const auto cont = [&byte](std::size_t i) { return (byte(i) & 0xC0u) == 0x80u; };
  const unsigned b0 = byte(0);
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned b1 = byte(1);
    if ((b0 == 0xE0 && b1 < 0xA0) || (b0 == 0xED && b1 >= 0xA0)) return 0;
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned b1 = byte(1);
    if ((b0 == 0xF0 && b1 < 0x90) || (b0 == 0xF4 && b1 >= 0x90)) return 0;
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// `text` as well-formed UTF-8 of at most `max_bytes` bytes: each byte that does not begin a
// well-formed sequence, and each NUL (which would end a C string early), becomes U+FFFD; text
// too long is cut at a character boundary and ends with "...".
inline std::string sanitizeUtf8(std::string_view text, std::size_t max_bytes = kMaxTextBytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  static constexpr std::string_view kCut = "...";
  std::string out;
  out.reserve(text.size() < max_bytes ? text.size() : max_bytes);
  std::size_t at = 0;
  // Past max_bytes the text is cut anyway: stop copying one character later.
  while (at < text.size() && out.size() <= max_bytes) {
    const std::size_t len = text[at] == '\0' ? 0 : utf8SequenceLength(text.substr(at));
    if (len == 0) {
      out += kReplacement;
      ++at;
    } else {
      out.append(text.data() + at, len);
      at += len;
    }
  }
  if (out.size() <= max_bytes && at == text.size()) return out;
  std::size_t keep = max_bytes < kCut.size() ? 0 : max_bytes - kCut.size();
  while (keep > 0 && (static_cast<unsigned char>(out[keep]) & 0xC0u) == 0x80u) --keep;
  out.resize(keep);
  if (out.size() + kCut.size() <= max_bytes) out += kCut;
  return out;
}

// A JSON string literal, quotes included, of `text`, which sanitizeUtf8 first makes valid UTF-8
// of at most kMaxTextBytes bytes.
inline std::string jsonString(std::string_view text) {
  const std::string clean = sanitizeUtf8(text);
  std::string out;
  out.reserve(clean.size() + 2);
  out += '"';
  for (const char c : clean) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

// Copies `text` into the caller's buffer `out` of `size` bytes as a NUL-terminated,
// well-formed UTF-8 string (invalid bytes and NULs become U+FFFD, as in sanitizeUtf8), cut at a
// character boundary when it does not fit. Allocates nothing, so it is safe while handling
// std::bad_alloc. Does nothing when `out` is null or `size` is 0.
inline void copyCString(std::string_view text, char* out, std::size_t size) noexcept {
  if (out == nullptr || size == 0) return;
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::size_t used = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t len = text[at] == '\0' ? 0 : utf8SequenceLength(text.substr(at));
    const std::string_view piece = len == 0 ? kReplacement : text.substr(at, len);
    if (used + piece.size() > size - 1) break;
    for (const char c : piece) out[used++] = c;
    at += len == 0 ? 1 : len;
  }
  out[used] = '\0';
}

// The protocol's percent: 0-100, or -1 for "unknown" (any negative value); above 100 is 100.
inline int clampPercent(int percent) { return percent < 0 ? -1 : percent > 100 ? 100 : percent; }

}  // namespace detail

// Thrown by Context::throwIfCancelled() once the run is to stop. Let it escape run(): the run
// then fails with the error "cancelled", and collectord gives the job the reason it stopped it
// for (cancelled by request, timed out, shutting down).
class Cancelled : public std::exception {
 public:
  const char* what() const noexcept override { return "cancelled"; }
};

// What one run of a native collector sees of collectord: its configuration, its identity and
// the host's callbacks. COLLECTORD_PLUGIN creates one per run; it is valid only during run().
// The ABI does not promise thread-safe callbacks: call progress() and log() from one thread at
// a time (cancelled() and config() may be called from any thread).
class Context {
 public:
  // Wraps `host`, which the caller (collector-host) owns and keeps valid for the whole run.
  explicit Context(const collectord_host_v1& host) : host_(host) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The value of the collector file's `env.KEY` setting, or nullopt when the file has none.
  std::optional<std::string> config(const std::string& key) const {
    const char* value = collectord_config(&host_, key.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  }

  // Reports progress: `percent` 0-100 (above 100 counts as 100), negative for "unknown".
  // `message`, made valid UTF-8 and cut to 8 KiB, becomes the job's message.
  // Cheap enough to call often: collectord keeps the newest report.
  void progress(int percent, std::string_view message) const {
    const std::string text = detail::sanitizeUtf8(message);
    host_.progress(host_.context, detail::clampPercent(percent), text.c_str());
  }
  // Reports progress without changing the job's message.
  void progress(int percent) const {
    host_.progress(host_.context, detail::clampPercent(percent), nullptr);
  }

  // True once the run is to stop (cancelled, timed out, or the daemon shutting down). Check it
  // between units of work and return soon: the process is killed after the collector's
  // kill_grace.
  bool cancelled() const { return host_.cancelled(host_.context) != 0; }
  // Throws Cancelled when cancelled() is true; otherwise does nothing.
  void throwIfCancelled() const {
    if (cancelled()) throw Cancelled();
  }

  // Writes `message` as one line of the job's log (sanitised like a progress message).
  void log(std::string_view message) const {
    const std::string text = detail::sanitizeUtf8(message);
    host_.log(host_.context, text.c_str());
  }

  // This run's job ID (e.g. "ni_12345678"), batch ID and collector name; empty when the host
  // does not know them (run by hand). The views stay valid until run() returns.
  std::string_view job_id() const { return orEmpty(host_.job_id); }
  std::string_view batch_id() const { return orEmpty(host_.batch_id); }
  std::string_view collector_name() const { return orEmpty(host_.collector_name); }

 private:
  static std::string_view orEmpty(const char* text) { return text ? text : ""; }

  const collectord_host_v1& host_;
};

// A native collector. Derive, implement run(), and name the class in COLLECTORD_PLUGIN. The
// class must be default-constructible; one instance is made per run.
class Collector {
 public:
  virtual ~Collector() = default;

  // Does the collection. Returning normally completes the run, unless the run was stopped
  // (cancelled() is true); throwing fails it with the exception's what() as the job's error.
  virtual void run(Context& ctx) = 0;
};

// Progress through `total` equal steps, mapped onto the percentages [from, to]: next() starts a
// step and reports only the steps already finished, so the percentage never runs ahead of the
// work. When the Progress goes out of scope normally after every step was started, the last
// step counts as finished and `to` is reported; when it is left by an exception, or with steps
// never started (a cancelled loop), nothing more is reported.
class Progress {
 public:
  // Reports nothing yet. `from` and `to` are clamped to 0-100; `to` below `from` is `from`.
  Progress(const Context& ctx, std::size_t total, int from = 0, int to = 100)
      : ctx_(ctx),
        total_(total),
        from_(clamp(from)),
        to_(clamp(to) < clamp(from) ? clamp(from) : clamp(to)),
        exceptions_(std::uncaught_exceptions()) {}
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() {
    if (!finished_ && total_ > 0 && started_ >= total_ &&
        std::uncaught_exceptions() == exceptions_) {
      ctx_.progress(to_);
    }
  }

  // Starts the next step: reports the percentage of the steps finished before it, with
  // `message`. Calls past `total` report `to` and change nothing else.
  void next(std::string_view message) {
    ctx_.progress(percentAfter(started_), message);
    if (started_ < total_) ++started_;
  }
  // Marks every step finished and reports `to` with `message`; the destructor then reports
  // nothing more.
  void finish(std::string_view message) {
    started_ = total_;
    finished_ = true;
    ctx_.progress(to_, message);
  }

  // The percentage that `done` finished steps stand for.
  int percentAfter(std::size_t done) const {
    if (total_ == 0 || done >= total_) return to_;
    return from_ + static_cast<int>(static_cast<std::uint64_t>(to_ - from_) * done / total_);
  }
  // Steps started so far (at most total).
  std::size_t started() const { return started_; }
  std::size_t total() const { return total_; }

 private:
  static int clamp(int percent) { return percent < 0 ? 0 : percent > 100 ? 100 : percent; }

  const Context& ctx_;
  const std::size_t total_;
  const int from_;
  const int to_;
  const int exceptions_;  // in flight at construction: more at destruction means unwinding
  std::size_t started_ = 0;
  bool finished_ = false;
};

namespace detail {

// The body of collectord_plugin_v1 for collector class T: runs one T and converts every
// outcome to the C ABI's return value and error text. Never throws.
template <typename T>
int runCollector(const collectord_host_v1* host, char* error, std::size_t error_size) noexcept {
  if (host == nullptr || host->abi_version != COLLECTORD_PLUGIN_ABI_VERSION ||
      host->size < sizeof(collectord_host_v1)) {
    copyCString("collector-host does not speak plugin ABI version 1 as this plugin was built for",
                error, error_size);
    return 1;
  }
  try {
    Context ctx(*host);
    T collector{};
    static_cast<Collector&>(collector).run(ctx);
    return 0;
  } catch (const Cancelled& e) {
    copyCString(e.what(), error, error_size);
  } catch (const std::exception& e) {
    const char* what = e.what();
    copyCString(what && *what ? what : "collector threw an exception with an empty message", error,
                error_size);
  } catch (...) {
    copyCString("collector threw an exception that is not a std::exception", error, error_size);
  }
  return 1;
}

}  // namespace detail

// Reports progress for an exec collector (type = exec) by writing protocol lines (one JSON
// object per line, escaped, valid UTF-8, under the 64 KiB limit) to a descriptor. Each line is
// one write(2) under a lock, so threads may share a reporter. Writing to a pipe whose reader
// is gone raises SIGPIPE as any write does; collectord keeps its end open until the process
// exits.
class ProgressReporter {
 public:
  // Writes to the descriptor named in COLLECTOR_PROGRESS_FD; to stderr when that variable is
  // unset, not a descriptor number, or names a descriptor that is not open (run by hand).
  ProgressReporter() : fd_(descriptorFromEnvironment()) {}
  // Writes to `fd`, which the caller keeps open for the reporter's lifetime.
  explicit ProgressReporter(int fd) : fd_(fd) {}
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // The descriptor lines go to.
  int fd() const { return fd_; }

  // Reports `percent` 0-100 (above 100 counts as 100; negative reports "unknown", clearing the
  // job's percentage) and, when not empty, `message` as the job's message. True when the whole
  // line was written.
  bool report(int percent, std::string_view message = {}) {
    const int p = detail::clampPercent(percent);
    std::string line = "{\"progress\": ";
    line += p < 0 ? "null" : std::to_string(p);
    if (!message.empty()) line += ", \"message\": " + detail::jsonString(message);
    return send(line + "}");
  }
  // Reports success with progress 100 and, when not empty, `message`. The run still ends when
  // the process exits, as completed if it exits 0. True when the whole line was written.
  bool complete(std::string_view message = {}) {
    std::string line = "{\"status\": \"completed\", \"progress\": 100";
    if (!message.empty()) line += ", \"message\": " + detail::jsonString(message);
    return send(line + "}");
  }
  // Reports failure with `error` as the job's error: the run ends failed whatever the exit
  // code. True when the whole line was written.
  bool fail(std::string_view error) {
    return send("{\"status\": \"failed\", \"error\": " + detail::jsonString(error) + "}");
  }

 private:
  static int descriptorFromEnvironment() {
    const char* text = std::getenv("COLLECTOR_PROGRESS_FD");
    if (text == nullptr || *text == '\0') return STDERR_FILENO;
    char* end = nullptr;
    errno = 0;
    const long fd = std::strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || fd < 0 || fd > 1 << 20) return STDERR_FILENO;
    if (::fcntl(static_cast<int>(fd), F_GETFD) == -1) return STDERR_FILENO;
    return static_cast<int>(fd);
  }

  bool send(std::string line) {
    line += '\n';
    const std::lock_guard<std::mutex> lock(mutex_);
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    return true;
  }

  const int fd_;
  std::mutex mutex_;  // guards writes to fd_, so lines from several threads never interleave
};

}  // namespace collectord

// Defines the plugin's two exported C entry points for collector class ClassName (derived from
// collectord::Collector). Use once per plugin, at global scope, followed by a semicolon.
#define COLLECTORD_PLUGIN(ClassName)                                                         \
  extern "C" COLLECTORD_PLUGIN_EXPORT uint32_t collectord_plugin_abi_version(void) noexcept { \
    return COLLECTORD_PLUGIN_ABI_VERSION;                                                    \
  }                                                                                          \
  extern "C" COLLECTORD_PLUGIN_EXPORT int collectord_plugin_v1(                              \
      const collectord_host_v1* host, char* error, size_t error_size) noexcept {             \
    return ::collectord::detail::runCollector<ClassName>(host, error, error_size);           \
  }                                                                                          \
  static_assert(std::is_base_of_v<::collectord::Collector, ClassName>,                       \
                #ClassName " must derive from collectord::Collector")
