#include "job_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

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

std::string readFile(const std::string& path, bool& found) {
  std::ifstream in(path, std::ios::binary);
  found = static_cast<bool>(in);
  std::ostringstream text;
  if (found) text << in.rdbuf();
  return text.str();
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
    bool found = false;
    const std::string text = readFile(path_, found);
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
    rewrite(keep, (size_ - marker_) + (data.size() - keep.size()));
    return;
  }
  if (size_ + data.size() > max_bytes_ && size_ > 0) dropOldest();
  if (writeAll(fd_.get(), data.data(), data.size())) size_ += data.size();
  // A full disk must not stop supervision; the daemon log and the job's status still tell.
}

void JobLog::dropOldest() {
  bool found = false;
  const std::string text = readFile(path_, found);
  const std::string_view output = parse(text).second;
  // Keep the newest half, from a line start when there is one.
  std::size_t cut = output.size() > max_bytes_ / 2 ? output.size() - max_bytes_ / 2 : 0;
  const auto newline = output.find('\n', cut);
  if (newline != std::string_view::npos && newline + 1 < output.size()) cut = newline + 1;
  rewrite(output.substr(cut), cut);
}

void JobLog::rewrite(std::string_view keep, std::uint64_t dropping) {
  const std::string temp = path_ + ".tmp";
  UniqueFd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!out) return;
  const std::string marker = droppedMarker(dropped_ + dropping);
  if (!writeAll(out.get(), marker.data(), marker.size()) ||
      !writeAll(out.get(), keep.data(), keep.size()) ||
      ::rename(temp.c_str(), path_.c_str()) != 0) {
    ::unlink(temp.c_str());
    return;
  }
  dropped_ += dropping;
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  marker_ = marker.size();
  size_ = marker.size() + keep.size();
}

std::optional<LogSlice> readJobLog(const std::string& path, std::uint64_t offset,
                                   std::uint64_t limit) {
  bool found = false;
  const std::string text = readFile(path, found);
  if (!found) return std::nullopt;
  const auto [dropped, output] = parse(text);
  LogSlice slice;
  slice.dropped = dropped;
  slice.size = dropped + output.size();
  slice.offset = std::clamp(offset, dropped, slice.size);
  const std::size_t start = static_cast<std::size_t>(slice.offset - dropped);
  slice.text = std::string(output.substr(start, static_cast<std::size_t>(limit)));
  slice.next_offset = slice.offset + slice.text.size();
  return slice;
}

std::optional<LogSlice> tailJobLog(const std::string& path, std::size_t lines) {
  bool found = false;
  const std::string text = readFile(path, found);
  if (!found) return std::nullopt;
  const auto [dropped, output] = parse(text);
  std::size_t start = output.size();
  std::size_t seen = 0;
  // A final newline ends the last line; it does not start another.
  std::size_t scan = output.size() > 0 && output.back() == '\n' ? output.size() - 1 : output.size();
  while (scan > 0 && seen < lines) {
    const auto nl = output.rfind('\n', scan - 1);
    if (nl == std::string_view::npos) {
      start = 0;
      ++seen;
      break;
    }
    start = nl + 1;
    scan = nl;
    ++seen;
  }
  if (lines == 0) start = output.size();
  LogSlice slice;
  slice.dropped = dropped;
  slice.size = dropped + output.size();
  slice.offset = dropped + start;
  slice.text = std::string(output.substr(start));
  slice.next_offset = slice.size;
  return slice;
}

}  // namespace collectord
