#include "poll_pacing.h"

#include <algorithm>
#include <cstdlib>

namespace collectorctl {
namespace {

std::optional<long> headerNumber(const ApiResponse& response, const char* name) {
  const auto text = response.header(name);
  if (!text || text->empty()) return std::nullopt;
  char* end = nullptr;
  const long value = std::strtol(text->c_str(), &end, 10);
  if (*end != '\0' || value < 0) return std::nullopt;
  return value;
}

}  // namespace

std::chrono::milliseconds pollDelay(const ApiResponse& last, std::chrono::milliseconds interval,
                                    int requests_per_poll) {
  using std::chrono::milliseconds;
  if (last.status == 429) {
    return std::max(interval, milliseconds(1000 * headerNumber(last, "Retry-After").value_or(5)));
  }
  const auto remaining = headerNumber(last, "X-RateLimit-Remaining");
  const auto reset = headerNumber(last, "X-RateLimit-Reset");
  if (!remaining || !reset) return interval;
  const long per_poll = std::max(1, requests_per_poll);
  const long polls_left = *remaining / per_poll;
  // Spread the polls left over the rest of the window; the last one lands as it resets.
  const milliseconds spread(*reset * 1000 / (polls_left + 1));
  return std::max(interval, spread);
}

}  // namespace collectorctl
