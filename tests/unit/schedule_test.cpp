#include <gtest/gtest.h>

#include "schedule.h"
#include "time_format.h"

namespace collectord {
namespace {

// 2026-03-02T10:07:30Z, a Monday.
constexpr Micros kMonday = 1772446050LL * 1'000'000;

Schedule cron(const std::string& expr, const std::string& tz = "") {
  std::string error;
  auto s = Schedule::cron(expr, tz, error);
  EXPECT_TRUE(s) << expr << ": " << error;
  return s ? *s : *Schedule::every("every 1h", error);
}

std::string nextAfter(const Schedule& s, Micros t) {
  const auto next = s.next(t);
  return next ? formatTimestamp(*next) : "never";
}

TEST(Schedule, EveryIntervalAddsTheDuration) {
  std::string error;
  const auto s = Schedule::every("every 15m", error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(*s->next(kMonday), kMonday + 15LL * 60 * 1'000'000);
  EXPECT_EQ(s->describe(), "every 15m");
  EXPECT_TRUE(Schedule::every("every 2s", error));
}

TEST(Schedule, EveryRejectsNonsense) {
  std::string error;
  EXPECT_FALSE(Schedule::every("15m", error));
  EXPECT_FALSE(Schedule::every("every", error));
  EXPECT_FALSE(Schedule::every("every soon", error));
  EXPECT_FALSE(Schedule::every("every 500ms", error)) << "below a second";
}

TEST(Schedule, CronStepsRangesListsAndNames) {
  EXPECT_EQ(nextAfter(cron("*/15 * * * *"), kMonday), "2026-03-02T10:15:00.000000Z");
  EXPECT_EQ(nextAfter(cron("0 6 * * *"), kMonday), "2026-03-03T06:00:00.000000Z");
  EXPECT_EQ(nextAfter(cron("30 9 * * SAT,SUN"), kMonday), "2026-03-07T09:30:00.000000Z");
  EXPECT_EQ(nextAfter(cron("0 12 1 JAN *"), kMonday), "2027-01-01T12:00:00.000000Z");
  EXPECT_EQ(nextAfter(cron("0-30/10 10 * * MON-FRI"), kMonday), "2026-03-02T10:10:00.000000Z");
  EXPECT_EQ(nextAfter(cron("0 0 * * 7"), kMonday), "2026-03-08T00:00:00.000000Z") << "7 is Sunday";
}

TEST(Schedule, CronFiresStrictlyAfterTheGivenTime) {
  const Micros at_quarter = kMonday - 450LL * 1'000'000 + 15 * 60LL * 1'000'000;  // 10:15:00
  EXPECT_EQ(nextAfter(cron("*/15 * * * *"), at_quarter), "2026-03-02T10:30:00.000000Z");
}

TEST(Schedule, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // The 13th, or any Friday: the next is Friday the 6th.
  EXPECT_EQ(nextAfter(cron("0 0 13 * FRI"), kMonday), "2026-03-06T00:00:00.000000Z");
}

TEST(Schedule, CronInATimeZone) {
  // 06:00 in Paris is 05:00 UTC in winter (CET, +1).
  EXPECT_EQ(nextAfter(cron("0 6 * * *", "Europe/Paris"), kMonday), "2026-03-03T05:00:00.000000Z");
  // After the spring change (29 March 2026), 06:00 CEST is 04:00 UTC.
  const Micros march30 = 1774828800LL * 1'000'000;  // 2026-03-30T00:00:00Z
  EXPECT_EQ(nextAfter(cron("0 6 * * *", "Europe/Paris"), march30), "2026-03-30T04:00:00.000000Z");
  EXPECT_EQ(cron("0 6 * * *", "Europe/Paris").describe(), "cron 0 6 * * * (Europe/Paris)");
}

TEST(Schedule, DaysOf23HoursDoNotSkipTheNextMidnight) {
  // New York springs forward on Sunday 2026-03-08; Monday 00:30 EDT is 04:30 UTC.
  const Micros saturday = 1772928000LL * 1'000'000;  // 2026-03-08T00:00:00Z, Saturday evening NY
  EXPECT_EQ(nextAfter(cron("30 0 * * MON", "America/New_York"), saturday),
            "2026-03-09T04:30:00.000000Z");
}

TEST(Schedule, ADateThatNeverExistsIsRefused) {
  std::string error;
  EXPECT_FALSE(Schedule::cron("0 0 31 2 *", "", error));
  EXPECT_NE(error.find("never fires"), std::string::npos) << error;
}

TEST(Schedule, CronRejectsMalformedExpressions) {
  std::string error;
  EXPECT_FALSE(Schedule::cron("* * * *", "", error));
  EXPECT_NE(error.find("5 fields"), std::string::npos);
  EXPECT_FALSE(Schedule::cron("60 * * * *", "", error));
  EXPECT_NE(error.find("minute field allows 0-59"), std::string::npos) << error;
  EXPECT_FALSE(Schedule::cron("*/0 * * * *", "", error));
  EXPECT_FALSE(Schedule::cron("5-1 * * * *", "", error));
  EXPECT_FALSE(Schedule::cron("* * * FOO *", "", error));
  EXPECT_FALSE(Schedule::cron("* * * * *", "Mars/Olympus", error));
  EXPECT_NE(error.find("unknown time zone"), std::string::npos);
}

}  // namespace
}  // namespace collectord
