#include "text_format.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "run_state.h"

namespace collectorctl {

std::int64_t nowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string formatSeconds(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  char text[48];
  if (seconds < 60) {
    std::snprintf(text, sizeof text, "%.1fs", std::floor(seconds * 10) / 10);
    return text;
  }
  const auto whole = static_cast<long long>(seconds);
  const long long h = whole / 3600, m = whole / 60 % 60, s = whole % 60;
  if (h > 0) {
    std::snprintf(text, sizeof text, "%lldh %lldm %llds", h, m, s);
  } else {
    std::snprintf(text, sizeof text, "%lldm %llds", m, s);
  }
  return text;
}

std::string formatClock(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  const auto whole = static_cast<long long>(seconds);
  const long long h = whole / 3600, m = whole / 60 % 60, s = whole % 60;
  char text[48];
  if (h > 0) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", h, m, s);
  } else {
    std::snprintf(text, sizeof text, "%lld:%02lld", m, s);
  }
  return text;
}

std::string formatUtc(std::int64_t micros) {
  const std::time_t seconds = static_cast<std::time_t>(micros / 1'000'000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string formatTableTime(const std::string& server_timestamp) {
  const auto micros = parseTimestamp(server_timestamp);
  if (!micros) return server_timestamp;
  std::string text = formatUtc(*micros);
  text[10] = ' ';
  text.pop_back();  // the Z: tables say UTC in their header
  return text;
}

std::string formatRelative(const std::string& server_timestamp) {
  const auto micros = parseTimestamp(server_timestamp);
  if (!micros) return "";
  const std::int64_t delta = (nowMicros() - *micros) / 1'000'000;
  const std::int64_t magnitude = delta < 0 ? -delta : delta;
  std::string amount;
  if (magnitude < 60) {
    amount = std::to_string(magnitude) + "s";
  } else if (magnitude < 3600) {
    amount = std::to_string(magnitude / 60) + "m";
  } else if (magnitude < 86400) {
    amount = std::to_string(magnitude / 3600) + "h";
  } else {
    amount = std::to_string(magnitude / 86400) + "d";
  }
  return delta < 0 ? "in " + amount : amount + " ago";
}

}  // namespace collectorctl
