#include "job.h"

#include <array>

namespace collectord {
namespace {

constexpr std::array<std::string_view, 5> kStatusNames = {"queued", "running", "completed",
                                                          "failed", "cancelled"};
constexpr std::array<std::string_view, 3> kPriorityNames = {"high", "normal", "low"};

}  // namespace

std::string_view toString(JobStatus status) { return kStatusNames[static_cast<int>(status)]; }

std::optional<JobStatus> parseJobStatus(std::string_view name) {
  for (std::size_t i = 0; i < kStatusNames.size(); ++i) {
    if (kStatusNames[i] == name) return static_cast<JobStatus>(i);
  }
  return std::nullopt;
}

bool isTerminal(JobStatus status) {
  return status == JobStatus::kCompleted || status == JobStatus::kFailed ||
         status == JobStatus::kCancelled;
}

std::string_view toString(Priority priority) {
  return kPriorityNames[static_cast<int>(priority)];
}

std::optional<Priority> parsePriority(std::string_view name) {
  for (std::size_t i = 0; i < kPriorityNames.size(); ++i) {
    if (kPriorityNames[i] == name) return static_cast<Priority>(i);
  }
  return std::nullopt;
}

std::optional<double> durationSeconds(Micros started_at, std::optional<Micros> ended_at) {
  if (!ended_at) return std::nullopt;
  Micros delta = *ended_at - started_at;
  if (delta < 0) delta = 0;
  // Millisecond precision: enough for short runs, no float noise in the JSON.
  return static_cast<double>(delta / 1000) / 1000.0;
}

}  // namespace collectord
