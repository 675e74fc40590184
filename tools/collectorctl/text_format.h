#pragma once

// How collectorctl writes times and durations for people.

#include <cstdint>
#include <optional>
#include <string>

namespace collectorctl {

// Microseconds since the epoch, now.
std::int64_t nowMicros();

// "0.4s", "10.4s", "1m 20s", "2h 3m 4s".
std::string formatSeconds(double seconds);

// A clock for elapsed time on a progress line: "0:07", "12:34", "1:02:03".
std::string formatClock(double seconds);

// "2025-10-06T15:16:14Z": UTC to the second.
std::string formatUtc(std::int64_t micros);

// A server timestamp for a table: "2025-10-06 15:16:14" in UTC, from the server's text
// ("" stays ""; anything malformed is shown as it came).
std::string formatTableTime(const std::string& server_timestamp);

// "5s ago", "3m ago", "2h ago", "4d ago", "in 12s" from a server timestamp; "" when malformed.
std::string formatRelative(const std::string& server_timestamp);

}  // namespace collectorctl
