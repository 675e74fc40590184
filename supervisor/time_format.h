#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "job.h"

namespace collectord {

// The current wall-clock time.
Micros nowMicros();

// "2025-10-06T15:16:10.552780Z": UTC with six fractional digits.
std::string formatTimestamp(Micros t);
// "2025-10-06T15:17:45Z": UTC to the second, the seed's format for estimates.
std::string formatTimestampSeconds(Micros t);

// "45s", "1m 20s", "2h 3m 4s": whole seconds, rounded down.
std::string formatDuration(double seconds);

// Parses a config duration: a non-negative integer or decimal followed by ms, s, m or h
// ("500ms", "90s", "5m", "1.5h"); a bare number is seconds. Nullopt when malformed.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

// "30m", "1h 30m", "45s", "500ms": the shortest exact spelling, for messages.
std::string formatDurationSpec(std::chrono::milliseconds d);

}  // namespace collectord
