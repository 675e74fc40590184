#include "job_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

namespace collectord {
namespace {

constexpr std::string_view kMarkerPrefix = "[collectord] ";
constexpr std::string_view kMarkerSuffix = " earlier bytes of output were dropped (logs.max_bytes_per_job)\n";

bool writeAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Splits a log's text into its dropped-byte count and the output that is left.
std::pair<std::uint64_t, std::string_view> parse(std::string_view text) {
  if (text.substr(0, kMarkerPrefix.size()) != kMarkerPrefix) return {0, text};
  const auto end = text.find('\n');
  if (end == std::string_view::npos) return {0, text};
  const std::string_view line = text.substr(0, end + 1);
  if (line.size() <= kMarkerPrefix.size() + kMarkerSuffix.size() ||
      line.substr(line.size() - kMarkerSuffix.size()) != kMarkerSuffix) {
    return {0, text};
  }
  std::uint64_t dropped = 0;
  for (char c : line.substr(kMarkerPrefix.size(), line.size() - kMarkerPrefix.size() - kMarkerSuffix.size())) {
    if (c < '0' || c > '9') return {0, text};
    dropped = dropped * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return {dropped, text.substr(end + 1)};
}

}  // namespace

std::string droppedMarker(std::uint64_t dropped) {
  return std::string(kMarkerPrefix) + std::to_string(dropped) + std::string(kMarkerSuffix);
}

bool JobLog::open(std::string& error) {
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd_) {
    error = "cannot open the job log " + path_ + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd_.get(), &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
  if (size_ > 0) {  // appending to a retried job's log: learn what was dropped before
    // The marker line alone tells; a capped log is megabytes the daemon need not hold.
    const UniqueFd in(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    char head[256];
    const ssize_t n = in ? ::pread(in.get(), head, sizeof head, 0) : 0;
    const std::string_view text(head, n > 0 ? static_cast<std::size_t>(n) : 0);
    const auto [dropped, output] = parse(text);
    dropped_ = dropped;
    marker_ = text.size() - output.size();
  }
  return true;
}

void JobLog::write(std::string_view data) {
  if (!fd_) return;
  if (data.size() > max_bytes_ / 2) {
    // One write larger than half the cap: everything before it, and its own start, go.
    const std::string_view keep = data.substr(data.size() - max_bytes_ / 2);
    rewrite((size_ - marker_) + (data.size() - keep.size()), [keep](int out) {
      return writeAll(out, keep.data(), keep.size()) ? std::optional(keep.size()) : std::nullopt;
    });
    return;
  }
  if (size_ + data.size() > max_bytes_ && size_ > 0) dropOldest();
  if (writeAll(fd_.get(), data.data(), data.size())) size_ += data.size();
  // A full disk must not stop supervision; the daemon log and the job's status still tell.
}

void JobLog::dropOldest() {
  // Keep the newest half, from a line start when there is one. It is copied from the old file
  // to the new one a chunk at a time: a collector flooding its output must not make the daemon
  // hold megabytes of log in memory.
  const UniqueFd in(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return;
  const std::uint64_t output = size_ - marker_;
  std::uint64_t cut = output > max_bytes_ / 2 ? output - max_bytes_ / 2 : 0;
  std::vector<char> chunk(64 * 1024);
  for (std::uint64_t at = cut; at < output;) {
    const ssize_t n =
        ::pread(in.get(), chunk.data(), chunk.size(), static_cast<off_t>(marker_ + at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const void* newline = std::memchr(chunk.data(), '\n', static_cast<std::size_t>(n));
    if (newline) {
      const std::uint64_t next =
          at + static_cast<std::uint64_t>(static_cast<const char*>(newline) - chunk.data()) + 1;
      if (next < output) cut = next;
      break;
    }
    at += static_cast<std::uint64_t>(n);
  }
  // To the end of the file as it is, should a failed write have left it longer than size_.
  rewrite(cut, [&](int out) -> std::optional<std::uint64_t> {
    for (std::uint64_t at = cut;;) {
      const ssize_t n =
          ::pread(in.get(), chunk.data(), chunk.size(), static_cast<off_t>(marker_ + at));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) return at - cut;
      if (n < 0 || !writeAll(out, chunk.data(), static_cast<std::size_t>(n))) return std::nullopt;
      at += static_cast<std::uint64_t>(n);
    }
  });
}

void JobLog::rewrite(std::uint64_t dropping,
                     const std::function<std::optional<std::uint64_t>(int out)>& write_kept) {
  const std::string temp = path_ + ".tmp";
  UniqueFd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!out) return;
  const std::string marker = droppedMarker(dropped_ + dropping);
  std::optional<std::uint64_t> kept;
  if (!writeAll(out.get(), marker.data(), marker.size()) || !(kept = write_kept(out.get())) ||
      ::rename(temp.c_str(), path_.c_str()) != 0) {
    ::unlink(temp.c_str());
    return;
  }
  dropped_ += dropping;
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  marker_ = marker.size();
  size_ = marker.size() + *kept;
}

namespace {

// An open job log for reading: its dropped-byte count and where the output starts, learnt
// from the marker line alone, so a read costs what it returns, not the whole file.
struct LogReader {
  UniqueFd fd;
  std::uint64_t dropped = 0;
  std::uint64_t start = 0;  // file offset of the output (after the marker line)
  std::uint64_t size = 0;   // bytes of output in the file

  bool open(const std::string& path) {
    fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return false;
    char head[256];
    const ssize_t n = ::pread(fd.get(), head, sizeof head, 0);
    const auto [d, output] = parse(std::string_view(head, n > 0 ? static_cast<std::size_t>(n) : 0));
    dropped = d;
    start = (n > 0 ? static_cast<std::uint64_t>(n) : 0) - output.size();
    size = static_cast<std::uint64_t>(st.st_size) - start;
    return true;
  }

  std::string read(std::uint64_t from, std::uint64_t length) const {
    std::string text(static_cast<std::size_t>(length), '\0');
    std::size_t got = 0;
    while (got < text.size()) {
      const ssize_t n = ::pread(fd.get(), text.data() + got, text.size() - got,
                                static_cast<off_t>(start + from + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    text.resize(got);
    return text;
  }
};

}  // namespace

std::optional<LogSlice> readJobLog(const std::string& path, std::uint64_t offset,
                                   std::uint64_t limit) {
  LogReader log;
  if (!log.open(path)) return std::nullopt;
  LogSlice slice;
  slice.dropped = log.dropped;
  slice.size = log.dropped + log.size;
  slice.offset = std::clamp(offset, log.dropped, slice.size);
  const std::uint64_t from = slice.offset - log.dropped;
  slice.text = log.read(from, std::min(limit, log.size - from));
  slice.next_offset = slice.offset + slice.text.size();
  return slice;
}

std::optional<LogSlice> tailJobLog(const std::string& path, std::size_t lines) {
  LogReader log;
  if (!log.open(path)) return std::nullopt;
  // Read backwards in chunks until `lines` line starts are found or the output begins.
  constexpr std::uint64_t kChunk = 64 * 1024;
  std::string tail;
  std::uint64_t begin = log.size;  // output offset where `tail` starts
  std::size_t found = 0;
  std::size_t start = std::string::npos;  // in `tail`, once found
  while (lines > 0 && begin > 0 && start == std::string::npos) {
    const std::uint64_t step = std::min(kChunk, begin);
    begin -= step;
    tail = log.read(begin, step) + tail;
    // Newlines after the last line's own (a final newline ends a line, it starts none).
    std::size_t scan = tail.size();
    if (begin + tail.size() == log.size && !tail.empty() && tail.back() == '\n') --scan;
    found = 0;
    while (scan > 0) {
      const auto nl = tail.rfind('\n', scan - 1);
      if (nl == std::string::npos) break;
      if (++found == lines) {
        start = nl + 1;
        break;
      }
      scan = nl;
    }
  }
  if (lines == 0) {
    tail.clear();
    start = 0;
    begin = log.size;
  } else if (start == std::string::npos) {
    start = 0;  // fewer lines than asked: everything
  }
  LogSlice slice;
  slice.dropped = log.dropped;
  slice.size = log.dropped + log.size;
  slice.offset = log.dropped + begin + start;
  slice.text = tail.substr(start);
  slice.next_offset = slice.size;
  return slice;
}

}  // namespace collectord
