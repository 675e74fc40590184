#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace collectord {

// What a collector may report as its own status in a protocol line.
enum class ReportedStatus { kRunning, kCompleted, kFailed };

// One protocol line, parsed and validated. Absent fields are nullopt.
struct ProgressUpdate {
  bool has_progress = false;    // the line carried a "progress" key
  std::optional<int> progress;  // its value; nullopt for an explicit null
  std::optional<std::string> message;
  std::optional<ReportedStatus> status;
  std::optional<std::string> error;
};

// Why a protocol line was rejected, in words for the job's log.
struct ProtocolError {
  std::string reason;
};

using ParsedLine = std::variant<ProgressUpdate, ProtocolError>;

// The longest line the protocol accepts, in bytes, without its newline.
inline constexpr std::size_t kMaxProtocolLine = 64 * 1024;

// Parses one protocol line (without its newline): a flat JSON object whose known keys are
// "progress" (0-100 or null), "message", "status" ("running"|"completed"|"failed") and
// "error". Unknown keys are ignored; nested values under them are skipped without recursion.
// Never throws; anything malformed, not UTF-8, or out of range is a ProtocolError.
ParsedLine parseProgressLine(std::string_view line);

}  // namespace collectord
