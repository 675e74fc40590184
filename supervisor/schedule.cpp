#include "schedule.h"

#include <unicode/gregocal.h>
#include <unicode/timezone.h>

#include <Poco/String.h>
#include <sstream>
#include <vector>

#include "time_format.h"

namespace collectord {
namespace {

constexpr std::array<const char*, 12> kMonths = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                  "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 7> kWeekdays = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct Field {
  const char* name;
  int min, max;
  const char* const* names;  // optional: names for min..min+count-1
  int name_count;
};

std::optional<int> parseValue(const std::string& text, const Field& f) {
  if (f.names) {
    const std::string upper = Poco::toUpper(text);
    for (int i = 0; i < f.name_count; ++i) {
      if (upper == f.names[i]) return f.min + i;
    }
  }
  if (text.empty() || text.size() > 2) return std::nullopt;
  int n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

// Parses one field ("*/15", "1-5", "MON,WED", "0-30/10") into `bits`; false with `error`.
template <std::size_t N>
bool parseField(const std::string& text, const Field& f, std::bitset<N>& bits, bool& any,
                std::string& error) {
  any = text == "*";
  std::istringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    int step = 1;
    const auto slash = item.find('/');
    if (slash != std::string::npos) {
      const auto s = parseValue(item.substr(slash + 1), Field{f.name, 1, 99, nullptr, 0});
      if (!s || *s < 1) {
        error = std::string("invalid step in the ") + f.name + " field: '" + item + "'";
        return false;
      }
      step = *s;
      item = item.substr(0, slash);
    }
    int lo, hi;
    if (item == "*") {
      lo = f.min;
      hi = f.max;
    } else if (const auto dash = item.find('-'); dash != std::string::npos) {
      const auto a = parseValue(item.substr(0, dash), f);
      const auto b = parseValue(item.substr(dash + 1), f);
      if (!a || !b || *a > *b) {
        error = std::string("invalid range in the ") + f.name + " field: '" + item + "'";
        return false;
      }
      lo = *a;
      hi = *b;
    } else {
      const auto v = parseValue(item, f);
      if (!v) {
        error = std::string("invalid value in the ") + f.name + " field: '" + item + "'";
        return false;
      }
      lo = *v;
      hi = slash == std::string::npos ? *v : f.max;
    }
    if (lo < f.min || hi > f.max) {
      error = std::string("the ") + f.name + " field allows " + std::to_string(f.min) + "-" +
              std::to_string(f.max) + ": '" + text + "'";
      return false;
    }
    for (int v = lo; v <= hi; v += step) bits.set(static_cast<std::size_t>(v));
  }
  if (bits.none()) {
    error = std::string("empty ") + f.name + " field";
    return false;
  }
  return true;
}

}  // namespace

Schedule::Schedule(const Schedule& other)
    : interval_(other.interval_),
      expression_(other.expression_),
      timezone_(other.timezone_),
      minutes_(other.minutes_),
      hours_(other.hours_),
      days_(other.days_),
      months_(other.months_),
      weekdays_(other.weekdays_),
      any_day_(other.any_day_),
      any_weekday_(other.any_weekday_),
      zone_(other.zone_ ? other.zone_->clone() : nullptr) {}

Schedule& Schedule::operator=(const Schedule& other) {
  if (this != &other) *this = Schedule(other);
  return *this;
}

Schedule::Schedule(Schedule&&) noexcept = default;
Schedule& Schedule::operator=(Schedule&&) noexcept = default;
Schedule::~Schedule() = default;

std::optional<Schedule> Schedule::every(std::string_view text, std::string& error) {
  std::string t = Poco::trim(std::string(text));
  if (t.rfind("every ", 0) != 0) {
    error = "'" + t + "' is not a schedule (use e.g. 'every 15m', or cron = ... for cron)";
    return std::nullopt;
  }
  const auto d = parseDuration(t.substr(6));
  if (!d || d->count() < 1000) {
    error = "'" + t + "' needs a duration of at least 1s (e.g. every 30s, every 15m, every 1h)";
    return std::nullopt;
  }
  Schedule s;
  s.interval_ = *d;
  return s;
}

std::optional<Schedule> Schedule::cron(std::string_view expression, const std::string& timezone,
                                       std::string& error) {
  std::istringstream words{std::string(expression)};
  std::vector<std::string> fields;
  std::string w;
  while (words >> w) fields.push_back(w);
  if (fields.size() != 5) {
    error = "a cron expression has 5 fields (minute hour day month weekday), not " +
            std::to_string(fields.size());
    return std::nullopt;
  }
  Schedule s;
  s.expression_ = std::string(expression);
  s.timezone_ = timezone.empty() ? "UTC" : timezone;
  bool any_ignored = false;
  std::bitset<8> weekdays;  // 0-7: 7 is Sunday too
  if (!parseField(fields[0], {"minute", 0, 59, nullptr, 0}, s.minutes_, any_ignored, error) ||
      !parseField(fields[1], {"hour", 0, 23, nullptr, 0}, s.hours_, any_ignored, error) ||
      !parseField(fields[2], {"day-of-month", 1, 31, nullptr, 0}, s.days_, s.any_day_, error) ||
      !parseField(fields[3], {"month", 1, 12, kMonths.data(), 12}, s.months_, any_ignored, error) ||
      !parseField(fields[4], {"day-of-week", 0, 7, kWeekdays.data(), 7}, weekdays, s.any_weekday_,
                  error)) {
    return std::nullopt;
  }
  for (int d = 0; d < 7; ++d) s.weekdays_[static_cast<std::size_t>(d)] = weekdays[static_cast<std::size_t>(d)];
  if (weekdays[7]) s.weekdays_.set(0);
  s.zone_.reset(icu::TimeZone::createTimeZone(icu::UnicodeString::fromUTF8(s.timezone_)));
  if (*s.zone_ == icu::TimeZone::getUnknown()) {
    error = "unknown time zone '" + s.timezone_ + "' (use an IANA name such as Europe/Paris)";
    return std::nullopt;
  }
  if (!s.next(nowMicros())) {
    error = "'" + s.expression_ + "' never fires (no such date)";
    return std::nullopt;
  }
  return s;
}

bool Schedule::dayMatches(int day, int weekday) const {
  const bool day_ok = days_[static_cast<std::size_t>(day)];
  const bool weekday_ok = weekdays_[static_cast<std::size_t>(weekday)];
  // Standard cron: when both day fields are restricted, either may match.
  if (!any_day_ && !any_weekday_) return day_ok || weekday_ok;
  return day_ok && weekday_ok;
}

std::optional<Micros> Schedule::next(Micros after) const {
  if (interval_) return after + interval_->count() * 1000;
  UErrorCode status = U_ZERO_ERROR;
  icu::GregorianCalendar calendar(zone_->clone(), status);
  // Start at the next whole minute; skip whole days or hours that cannot match. The calendar
  // does the skipping in local time, so days of 23 or 25 hours (DST) land on local midnight.
  calendar.setTime(static_cast<UDate>((after / 60'000'000 + 1) * 60'000), status);
  const UDate horizon = static_cast<UDate>(after / 1000) + 4.0 * 366 * 24 * 3600 * 1000;
  while (U_SUCCESS(status) && calendar.getTime(status) < horizon) {
    const int minute = calendar.get(UCAL_MINUTE, status);
    const int hour = calendar.get(UCAL_HOUR_OF_DAY, status);
    const int day = calendar.get(UCAL_DAY_OF_MONTH, status);
    const int month = calendar.get(UCAL_MONTH, status) + 1;
    const int weekday = calendar.get(UCAL_DAY_OF_WEEK, status) - 1;
    if (U_FAILURE(status)) break;
    if (!months_[static_cast<std::size_t>(month)] || !dayMatches(day, weekday)) {
      calendar.set(UCAL_MINUTE, 0);
      calendar.set(UCAL_HOUR_OF_DAY, 0);
      calendar.add(UCAL_DATE, 1, status);
    } else if (!hours_[static_cast<std::size_t>(hour)]) {
      calendar.set(UCAL_MINUTE, 0);
      calendar.add(UCAL_HOUR_OF_DAY, 1, status);
    } else if (!minutes_[static_cast<std::size_t>(minute)]) {
      calendar.add(UCAL_MINUTE, 1, status);
    } else {
      return static_cast<Micros>(calendar.getTime(status)) * 1000;
    }
  }
  return std::nullopt;
}

std::string Schedule::describe() const {
  if (interval_) return "every " + formatDurationSpec(*interval_);
  return "cron " + expression_ + " (" + timezone_ + ")";
}

}  // namespace collectord
