#include <gtest/gtest.h>

#include "ids.h"
#include "time_format.h"

namespace collectord {
namespace {

using std::chrono::milliseconds;

// 2025-10-06T15:16:10.552780Z
constexpr Micros kSeedTime = 1759763770552780;

TEST(Timestamps, FormatInUtcWithMicroseconds) {
  EXPECT_EQ(formatTimestamp(kSeedTime), "2025-10-06T15:16:10.552780Z");
  EXPECT_EQ(formatTimestamp(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(formatTimestamp(kSeedTime - 552780 + 1), "2025-10-06T15:16:10.000001Z");
}

TEST(Timestamps, EveryFieldIsZeroPadded) {
  // 2001-02-03T04:05:06.000007Z
  EXPECT_EQ(formatTimestamp(981173106000007), "2001-02-03T04:05:06.000007Z");
  EXPECT_EQ(formatTimestampSeconds(981173106000007), "2001-02-03T04:05:06Z");
  EXPECT_EQ(formatTimestamp(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(Timestamps, EstimatesAreFormattedToTheSecond) {
  EXPECT_EQ(formatTimestampSeconds(kSeedTime), "2025-10-06T15:16:10Z");
}

TEST(Timestamps, NowIsAfterTheSeedDate) { EXPECT_GT(nowMicros(), kSeedTime); }

TEST(Durations, FormatLikeTheSeed) {
  EXPECT_EQ(formatDuration(0), "0s");
  EXPECT_EQ(formatDuration(0.9), "0s");
  EXPECT_EQ(formatDuration(45), "45s");
  EXPECT_EQ(formatDuration(60), "1m 0s");
  EXPECT_EQ(formatDuration(80), "1m 20s");
  EXPECT_EQ(formatDuration(135.7), "2m 15s");
  EXPECT_EQ(formatDuration(2 * 3600 + 3 * 60 + 4), "2h 3m 4s");
  EXPECT_EQ(formatDuration(3600), "1h 0m 0s");
  EXPECT_EQ(formatDuration(-5), "0s");
}

TEST(Durations, DurationSecondsHasMillisecondPrecisionAndNeedsAnEnd) {
  EXPECT_FALSE(durationSeconds(0, std::nullopt).has_value());
  EXPECT_DOUBLE_EQ(*durationSeconds(1'000'000, 81'000'000), 80.0);
  EXPECT_DOUBLE_EQ(*durationSeconds(0, 1'234'567), 1.234);
  EXPECT_DOUBLE_EQ(*durationSeconds(5, 1), 0.0);
}

TEST(Durations, ParseConfigDurations) {
  EXPECT_EQ(parseDuration("30m"), milliseconds(30 * 60'000));
  EXPECT_EQ(parseDuration("90s"), milliseconds(90'000));
  EXPECT_EQ(parseDuration("90"), milliseconds(90'000));
  EXPECT_EQ(parseDuration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(parseDuration("1.5h"), milliseconds(5'400'000));
  EXPECT_EQ(parseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(parseDuration(" 5m "), milliseconds(300'000));
}

TEST(Durations, RejectMalformedDurations) {
  for (const char* bad : {"", "abc", "5x", "m", "-5s", "5 m", "1h30m", "1e3s", "99999999999h"}) {
    EXPECT_FALSE(parseDuration(bad).has_value()) << bad;
  }
}

TEST(Durations, SpecFormatIsTheShortestExactSpelling) {
  EXPECT_EQ(formatDurationSpec(milliseconds(30 * 60'000)), "30m");
  EXPECT_EQ(formatDurationSpec(milliseconds(3'600'000)), "1h");
  EXPECT_EQ(formatDurationSpec(milliseconds(90'000)), "90s");
  EXPECT_EQ(formatDurationSpec(milliseconds(500)), "500ms");
}

TEST(Ids, BatchIdsAreBcAndEightDigits) {
  IdGenerator ids;
  for (int i = 0; i < 100; ++i) {
    const std::string id = ids.batchId();
    EXPECT_TRUE(isBatchId(id)) << id;
  }
}

TEST(Ids, JobIdsStartWithTheCollectorsFirstTwoLetters) {
  IdGenerator ids;
  const std::string id = ids.jobId("ninja");
  EXPECT_EQ(id.substr(0, 3), "ni_");
  EXPECT_TRUE(isJobId(id)) << id;
  EXPECT_EQ(ids.jobId("ThreatLocker").substr(0, 3), "th_");
  EXPECT_EQ(jobIdPrefix("a-b"), "ab");
  EXPECT_EQ(jobIdPrefix("x"), "xx");
  EXPECT_EQ(jobIdPrefix("9lives"), "9l");
}

TEST(Ids, IdsDifferBetweenCalls) {
  IdGenerator ids;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(ids.batchId());
  EXPECT_GT(seen.size(), 990u);
}

TEST(Ids, ValidatorsRejectLookAlikes) {
  for (const char* bad : {"", "bc_1234567", "bc_123456789", "BC_12345678", "bc-12345678",
                          "bc_1234567a", "bc_12345678 "}) {
    EXPECT_FALSE(isBatchId(bad)) << bad;
  }
  for (const char* bad : {"", "n_12345678", "NI_12345678", "ni_1234567", "ni-12345678",
                          "ni_12345678x", "../12345678"}) {
    EXPECT_FALSE(isJobId(bad)) << bad;
  }
  EXPECT_TRUE(isJobId("th_11223344"));
}

}  // namespace
}  // namespace collectord
