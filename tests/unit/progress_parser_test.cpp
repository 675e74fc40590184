#include <gtest/gtest.h>

#include <string>

#include "progress_update.h"

namespace collectord {
namespace {

ProgressUpdate ok(std::string_view line) {
  ParsedLine parsed = parseProgressLine(line);
  if (auto* e = std::get_if<ProtocolError>(&parsed)) {
    ADD_FAILURE() << "rejected " << line << ": " << e->reason;
    return {};
  }
  return std::get<ProgressUpdate>(parsed);
}

std::string rejected(std::string_view line) {
  ParsedLine parsed = parseProgressLine(line);
  if (auto* e = std::get_if<ProtocolError>(&parsed)) return e->reason;
  ADD_FAILURE() << "accepted " << line;
  return {};
}

TEST(ProgressParser, ReadsProgressAndMessage) {
  const auto u = ok(R"({"progress": 50, "message": "Processing devices..."})");
  EXPECT_TRUE(u.has_progress);
  EXPECT_EQ(u.progress, 50);
  EXPECT_EQ(u.message, "Processing devices...");
  EXPECT_FALSE(u.status.has_value());
  EXPECT_FALSE(u.error.has_value());
}

TEST(ProgressParser, ReadsStatusLines) {
  const auto done = ok(R"({"status": "completed", "progress": 100, "message": "Collection completed"})");
  EXPECT_EQ(done.status, ReportedStatus::kCompleted);
  EXPECT_EQ(done.progress, 100);
  const auto failed = ok(R"({"status": "failed", "error": "API returned 401"})");
  EXPECT_EQ(failed.status, ReportedStatus::kFailed);
  EXPECT_EQ(failed.error, "API returned 401");
  EXPECT_FALSE(failed.has_progress);
  EXPECT_EQ(ok(R"({"status":"running"})").status, ReportedStatus::kRunning);
}

TEST(ProgressParser, EveryFieldIsOptional) {
  const auto u = ok("{}");
  EXPECT_FALSE(u.has_progress);
  EXPECT_FALSE(u.message.has_value());
  EXPECT_FALSE(u.status.has_value());
  EXPECT_FALSE(ok("  { }  ").has_progress);
}

TEST(ProgressParser, NullProgressIsExplicitlyUnknown) {
  const auto u = ok(R"({"progress": null})");
  EXPECT_TRUE(u.has_progress);
  EXPECT_FALSE(u.progress.has_value());
}

TEST(ProgressParser, DecimalProgressRoundsDown) {
  EXPECT_EQ(ok(R"({"progress": 62.9})").progress, 62);
  EXPECT_EQ(ok(R"({"progress": 1e2})").progress, 100);
  EXPECT_EQ(ok(R"({"progress": 0})").progress, 0);
}

TEST(ProgressParser, RejectsProgressOutOfRangeOrOfWrongType) {
  EXPECT_NE(rejected(R"({"progress": -1})").find("out of range"), std::string::npos);
  EXPECT_NE(rejected(R"({"progress": 100.5})").find("out of range"), std::string::npos);
  EXPECT_NE(rejected(R"({"progress": 1e999})").find("out of range"), std::string::npos);
  EXPECT_NE(rejected(R"({"progress": "50"})").find("\"progress\" must be a number"),
            std::string::npos);
  rejected(R"({"progress": true})");
  rejected(R"({"progress": [50]})");
}

TEST(ProgressParser, RejectsUnknownStatusAndNonStringFields) {
  EXPECT_NE(rejected(R"({"status": "cancelled"})").find("\"status\" must be"), std::string::npos);
  rejected(R"({"status": "weird"})");
  rejected(R"({"status": 1})");
  rejected(R"({"message": 5})");
  rejected(R"({"error": {"code": 1}})");
}

TEST(ProgressParser, IgnoresUnknownKeysIncludingNestedValues) {
  const auto u = ok(R"({"extra": {"a": [1, 2, {"b": null}], "c": "x"}, "progress": 5, "z": [[]]})");
  EXPECT_EQ(u.progress, 5);
}

TEST(ProgressParser, RejectsMalformedJson) {
  rejected("");
  rejected("not json");
  rejected("[1, 2]");
  rejected(R"("just a string")");
  rejected(R"({"progress": 50)");
  rejected(R"({"progress": 50,})");
  rejected(R"({progress: 50})");
  rejected(R"({"progress": 50} trailing)");
  rejected(R"({"progress": 05})");
  rejected(R"({"extra": [1 2]})");
  rejected(R"({"extra": {"a" 1}})");
  rejected(R"({"extra": tru})");
  rejected(R"({"message": "unterminated})");
}

TEST(ProgressParser, DecodesEscapesAndUnicode) {
  EXPECT_EQ(ok(R"({"message": "a \"quoted\" \\ path\nnext"})").message,
            "a \"quoted\" \\ path\nnext");
  EXPECT_EQ(ok(R"({"message": "caf\u00e9 \ud83d\ude00"})").message, "caf\xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(ok("{\"message\": \"d\xc3\xa9j\xc3\xa0 vu\"}").message, "d\xc3\xa9j\xc3\xa0 vu");
}

TEST(ProgressParser, RejectsInvalidUtf8AndBadEscapes) {
  EXPECT_NE(rejected("{\"message\": \"bad \xff byte\"}").find("UTF-8"), std::string::npos);
  rejected("{\"message\": \"overlong \xc0\xaf\"}");
  rejected("{\"message\": \"surrogate \xed\xa0\x80\"}");
  rejected("{\"message\": \"truncated \xe2\x82\"}");
  rejected(R"({"message": "\ud83d alone"})");
  rejected(R"({"message": "\x41"})");
  rejected(R"({"message": "\u12G4"})");
  rejected(std::string("{\"message\": \"nul \0 inside\"}", 25));
  rejected("{\"message\": \"tab\there\"}");
}

TEST(ProgressParser, RejectsLinesOverTheLimit) {
  std::string line = R"({"message": ")" + std::string(kMaxProtocolLine, 'x') + R"("})";
  EXPECT_NE(rejected(line).find("longer than"), std::string::npos);
}

TEST(ProgressParser, DeepNestingIsRejectedOrSkippedWithoutRecursion) {
  std::string deep = R"({"extra": )" + std::string(30000, '[') + std::string(30000, ']') + "}";
  EXPECT_FALSE(ok(deep).has_progress);
  std::string unbalanced = R"({"extra": )" + std::string(30000, '[') + "}";
  rejected(unbalanced);
}

TEST(ProgressParser, LastDuplicateKeyWins) {
  EXPECT_EQ(ok(R"({"progress": 10, "progress": 20})").progress, 20);
}

}  // namespace
}  // namespace collectord
