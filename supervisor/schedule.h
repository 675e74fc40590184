#pragma once

#include <array>
#include <bitset>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "job.h"

#include <unicode/uversion.h>

U_NAMESPACE_BEGIN
class TimeZone;
U_NAMESPACE_END

namespace collectord {

// When a collector runs by itself: "every 15m", or a standard 5-field cron expression
// (minute hour day-of-month month day-of-week) evaluated in a time zone (UTC by default).
class Schedule {
 public:
  // "every 15m", "every 2s" (durations as in the config). Nullopt with `error` when malformed.
  static std::optional<Schedule> every(std::string_view text, std::string& error);
  // "*/15 * * * *", "0 6 * * MON-FRI"; `timezone` is an IANA name ("Europe/Paris").
  static std::optional<Schedule> cron(std::string_view expression, const std::string& timezone,
                                      std::string& error);

  Schedule(const Schedule& other);
  Schedule& operator=(const Schedule& other);
  Schedule(Schedule&&) noexcept;
  Schedule& operator=(Schedule&&) noexcept;
  ~Schedule();

  // The first time the schedule fires strictly after `after`; nullopt when it never does
  // within four years (a date that does not exist, such as 31 February).
  std::optional<Micros> next(Micros after) const;
  // "every 15m" or "cron */15 * * * * (UTC)".
  std::string describe() const;
  bool isInterval() const { return interval_.has_value(); }
  // The least time between two of its slots: the interval, or a minute for a cron line.
  std::chrono::milliseconds shortestGap() const {
    return interval_.value_or(std::chrono::minutes(1));
  }

 private:
  Schedule() = default;
  bool dayMatches(int day, int weekday) const;

  std::optional<std::chrono::milliseconds> interval_;
  std::string expression_;
  std::string timezone_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;
  std::bitset<13> months_;
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool any_day_ = true;      // day-of-month was "*"
  bool any_weekday_ = true;  // day-of-week was "*"
  std::unique_ptr<icu::TimeZone> zone_;
};

}  // namespace collectord
