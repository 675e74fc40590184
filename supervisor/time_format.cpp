#include "time_format.h"

#include <time.h>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace collectord {

Micros nowMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

// Floor division so times before 1970 still format (they never should, but must not crash).
void split(Micros t, time_t& seconds, long& micros) {
  seconds = static_cast<time_t>(t / 1000000);
  micros = static_cast<long>(t % 1000000);
  if (micros < 0) {
    micros += 1000000;
    seconds -= 1;
  }
}

// Writes `value` as exactly `width` digits (zero-padded) at `out`; returns the end.
char* digits(char* out, long long value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return out + width;
}

// "YYYY-MM-DDTHH:MM:SS" then ".ffffffZ" or "Z". Written digit by digit rather than with
// snprintf: a batch status renders three of these per job.
std::string format(Micros t, bool with_micros) {
  time_t seconds;
  long micros;
  split(t, seconds, micros);
  struct tm tm {};
  gmtime_r(&seconds, &tm);
  const long long year = tm.tm_year + 1900LL;
  if (year < 0 || year > 9999) {  // outside what four digits hold: never for a real run
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d%s", year, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, with_micros ? "" : "Z");
    std::string text = buf;
    if (with_micros) {
      std::snprintf(buf, sizeof buf, ".%06ldZ", micros);
      text += buf;
    }
    return text;
  }
  char buf[32];
  char* p = digits(buf, year, 4);
  *p++ = '-';
  p = digits(p, tm.tm_mon + 1, 2);
  *p++ = '-';
  p = digits(p, tm.tm_mday, 2);
  *p++ = 'T';
  p = digits(p, tm.tm_hour, 2);
  *p++ = ':';
  p = digits(p, tm.tm_min, 2);
  *p++ = ':';
  p = digits(p, tm.tm_sec, 2);
  if (with_micros) {
    *p++ = '.';
    p = digits(p, micros, 6);
  }
  *p++ = 'Z';
  return std::string(buf, p);
}

}  // namespace

std::string formatTimestamp(Micros t) { return format(t, true); }

std::string formatTimestampSeconds(Micros t) { return format(t, false); }

std::string formatDuration(double seconds) {
  long long total = seconds > 0 ? static_cast<long long>(seconds) : 0;
  const long long h = total / 3600, m = (total % 3600) / 60, s = total % 60;
  if (h > 0) return std::to_string(h) + "h " + std::to_string(m) + "m " + std::to_string(s) + "s";
  if (m > 0) return std::to_string(m) + "m " + std::to_string(s) + "s";
  return std::to_string(s) + "s";
}

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  std::size_t digits = 0;
  while (digits < text.size() &&
         ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc() || end != text.data() + digits || !std::isfinite(value)) {
    return std::nullopt;
  }
  const std::string_view unit = text.substr(digits);
  double factor_ms;
  if (unit.empty() || unit == "s") {
    factor_ms = 1000;
  } else if (unit == "ms") {
    factor_ms = 1;
  } else if (unit == "m") {
    factor_ms = 60'000;
  } else if (unit == "h") {
    factor_ms = 3'600'000;
  } else {
    return std::nullopt;
  }
  const double ms = value * factor_ms;
  // A hundred years is the most anyone can mean; beyond that the number is a typo.
  if (ms > 100.0 * 365 * 24 * 3600 * 1000) return std::nullopt;
  return std::chrono::milliseconds(static_cast<long long>(std::llround(ms)));
}

std::string formatDurationSpec(std::chrono::milliseconds d) {
  const long long ms = d.count();
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  const long long s = ms / 1000;
  if (s != 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s != 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

}  // namespace collectord
