#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "unique_fd.h"

namespace collectord {

// One job's log file: its collector's stdout and stderr, and collectord's own "[collectord]"
// lines. Capped: once it exceeds max_bytes, the oldest half is dropped and the file starts with
// a marker line saying how many bytes went, so offsets into the whole output stay meaningful.
// Written by the supervision thread only.
class JobLog {
 public:
  JobLog(std::string path, std::uint64_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {}

  // Opens (appending to) the file; false with `error` set when it cannot.
  bool open(std::string& error);
  void write(std::string_view data);
  void close() { fd_.reset(); }
  const std::string& path() const { return path_; }

 private:
  void dropOldest();
  // Replaces the file with the marker and the output that `write_kept` writes to the descriptor
  // it is given (returning how many bytes, or nullopt when it failed), counting `dropping` more
  // bytes as dropped.
  void rewrite(std::uint64_t dropping,
               const std::function<std::optional<std::uint64_t>(int out)>& write_kept);

  std::string path_;
  std::uint64_t max_bytes_;
  UniqueFd fd_;
  std::uint64_t size_ = 0;     // bytes in the file now, marker included
  std::uint64_t marker_ = 0;   // bytes of the marker line at the top, when there is one
  std::uint64_t dropped_ = 0;  // bytes of output dropped so far
};

// A piece of a job log, by offsets into everything the job ever wrote.
struct LogSlice {
  std::string text;
  std::uint64_t offset = 0;       // where `text` starts
  std::uint64_t next_offset = 0;  // where the next read should start
  std::uint64_t size = 0;         // all output so far, dropped bytes included
  std::uint64_t dropped = 0;      // output no longer available (the oldest bytes)
};

// Reads up to `limit` bytes from `offset` (clamped to what is still there). Nullopt when the
// log does not exist.
std::optional<LogSlice> readJobLog(const std::string& path, std::uint64_t offset,
                                   std::uint64_t limit);
// The last `lines` lines.
std::optional<LogSlice> tailJobLog(const std::string& path, std::size_t lines);

// The marker a capped log starts with.
std::string droppedMarker(std::uint64_t dropped);

}  // namespace collectord
