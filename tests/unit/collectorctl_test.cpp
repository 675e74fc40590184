// collectorctl's pure parts: the command line, terminal text, the event-stream format, poll
// pacing under the rate limit, and the run state that --wait follows.

#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <clocale>

#include "api_client.h"
#include "command_line.h"
#include "event_stream.h"
#include "poll_pacing.h"
#include "run_state.h"
#include "terminal.h"
#include "text_format.h"

namespace collectorctl {
namespace {

using std::chrono::milliseconds;

CommandLine parsed(const std::vector<std::string>& args) {
  auto result = parseCommandLine(args);
  if (auto* error = std::get_if<UsageError>(&result)) {
    ADD_FAILURE() << error->message;
    return {};
  }
  return std::get<CommandLine>(result);
}

std::string usageError(const std::vector<std::string>& args) {
  auto result = parseCommandLine(args);
  if (auto* error = std::get_if<UsageError>(&result)) return error->message;
  return "<parsed>";
}

Poco::JSON::Object::Ptr json(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

TEST(CollectorctlCommandLine, GlobalOptionsGoBeforeOrAfterTheCommandInEitherSpelling) {
  const CommandLine line = parsed({"--url=http://h:1", "run", "ninja", "--json", "threatlocker",
                                   "-p", "high", "--wait", "--interval", "2s"});
  EXPECT_EQ(line.command, "run");
  EXPECT_EQ(line.args, (std::vector<std::string>{"ninja", "threatlocker"}));
  EXPECT_EQ(line.value("url"), "http://h:1");
  EXPECT_EQ(line.value("priority"), "high");
  EXPECT_EQ(line.value("interval"), "2s");
  EXPECT_TRUE(line.has("json"));
  EXPECT_TRUE(line.has("wait"));
  EXPECT_FALSE(line.has("no-events"));
}

TEST(CollectorctlCommandLine, DoubleDashEndsOptionsSoANameMayStartWithADash) {
  const CommandLine line = parsed({"run", "--", "-odd-name"});
  EXPECT_EQ(line.args, std::vector<std::string>{"-odd-name"});
}

TEST(CollectorctlCommandLine, HelpWinsOverMissingArgumentsAndNamesTheCommand) {
  EXPECT_TRUE(parsed({"run", "--help"}).help);
  EXPECT_EQ(parsed({"run", "--help"}).command, "run");
  const CommandLine help = parsed({"help", "logs"});
  EXPECT_TRUE(help.help);
  EXPECT_EQ(help.command, "logs");
  EXPECT_TRUE(parsed({"--version"}).version);
}

TEST(CollectorctlCommandLine, MistakesAreUsageErrorsThatSayWhat) {
  EXPECT_EQ(usageError({}), "no command given");
  EXPECT_EQ(usageError({"launch"}), "unknown command 'launch'");
  EXPECT_EQ(usageError({"run"}), "'run' needs at least one argument");
  EXPECT_EQ(usageError({"cancel"}), "'cancel' needs one argument");
  EXPECT_EQ(usageError({"collectors", "x"}), "'collectors' takes no arguments");
  EXPECT_EQ(usageError({"history", "--tail", "3"}), "unknown option '--tail' for 'history'");
  EXPECT_EQ(usageError({"run", "x", "-x"}), "unknown option '-x' for 'run'");
  EXPECT_EQ(usageError({"run", "x", "-pw"}), "unknown option '-pw'");
  EXPECT_EQ(usageError({"run", "x", "--priority"}), "--priority needs a value (PRIORITY)");
  EXPECT_EQ(usageError({"run", "x", "--wait=yes"}), "--wait takes no value");
  EXPECT_EQ(usageError({"logs", "x", "--tail", "-1"}), "--tail must be a whole number, not '-1'");
  EXPECT_EQ(usageError({"help", "launch"}), "unknown command 'launch'");
}

TEST(CollectorctlCommandLine, DurationsAcceptMillisecondsSecondsAndBareSeconds) {
  EXPECT_EQ(parseMilliseconds("500ms"), 500);
  EXPECT_EQ(parseMilliseconds("2s"), 2000);
  EXPECT_EQ(parseMilliseconds("1.5s"), 1500);
  EXPECT_EQ(parseMilliseconds("3"), 3000);
  EXPECT_EQ(parseMilliseconds("0"), std::nullopt);
  EXPECT_EQ(parseMilliseconds("-1s"), std::nullopt);
  EXPECT_EQ(parseMilliseconds("2m"), std::nullopt);
  EXPECT_EQ(parseMilliseconds("s"), std::nullopt);
  EXPECT_EQ(parseMilliseconds(""), std::nullopt);
}

TEST(CollectorctlTerminal, ServerTextCannotCarryControlSequences) {
  EXPECT_EQ(printable("page 1\x1b[2J\x1b]0;owned\x07"), "page 1?[2J?]0;owned?");
  EXPECT_EQ(printable("a\tb\nc\rd"), "a b c d");
  EXPECT_EQ(printable("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93");
  EXPECT_EQ(printable("bad \xff\xc3 end"), "bad ?? end");
  EXPECT_EQ(printable("c1 \xc2\x9b"
                      "31m"),
            "c1 ?31m");  // U+009B, the one-byte CSI
  EXPECT_EQ(printable("overlong \xc0\xaf"), "overlong ??");
}

TEST(CollectorctlTerminal, TruncationCountsCharactersNotBytesAndMarksTheCut) {
  const TextStyle ascii{false, false};
  const TextStyle unicode{false, true};
  EXPECT_EQ(truncateToWidth("Processing page 4/10", 30, ascii), "Processing page 4/10");
  EXPECT_EQ(truncateToWidth("Processing page 4/10", 10, ascii), "Process...");
  EXPECT_EQ(truncateToWidth("Processing page 4/10", 10, unicode), "Processin\u2026");
  EXPECT_EQ(truncateToWidth("\xc3\xa9t\xc3\xa9 \xc3\xa9t\xc3\xa9", 5, unicode),
            "\xc3\xa9t\xc3\xa9 \u2026");
  EXPECT_EQ(truncateToWidth("abc", 0, unicode), "");
  EXPECT_EQ(truncateToWidth("abcdef", 2, ascii), "..");
  EXPECT_EQ(displayWidth("\xc3\xa9t\xc3\xa9"), 3u);
  EXPECT_EQ(padRight("ab", 4), "ab  ");
  EXPECT_EQ(padLeft("ab", 4), "  ab");
  EXPECT_EQ(padLeft("abcdef", 4), "abcdef");
}

TEST(CollectorctlTerminal, WideCharactersTakeTwoColumnsInAUtf8Locale) {
  if (!std::setlocale(LC_CTYPE, "C.UTF-8")) GTEST_SKIP() << "no C.UTF-8 locale";
  EXPECT_EQ(displayWidth("\xe6\x97\xa5\xe6\x9c\xac"), 4u);  // 日本
  EXPECT_EQ(truncateToWidth("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 4, TextStyle{false, true}),
            "\xe6\x97\xa5\u2026");
  std::setlocale(LC_CTYPE, "C");
}

TEST(CollectorctlTerminal, ColoursOnlyWhenAsked) {
  EXPECT_EQ((TextStyle{false, false}).paint("failed", Colour::kRed), "failed");
  EXPECT_EQ((TextStyle{true, false}).paint("failed", Colour::kRed), "\x1b[31mfailed\x1b[0m");
  EXPECT_EQ(statusColour("completed"), Colour::kGreen);
  EXPECT_EQ(statusColour("cancelled"), Colour::kYellow);
}

TEST(CollectorctlEventStream, FieldsAccumulateUntilABlankLineDispatches) {
  EventStreamParser parser;
  EXPECT_FALSE(parser.feed(": heartbeat"));
  EXPECT_FALSE(parser.feed("id: 41"));
  EXPECT_FALSE(parser.feed("event: job"));
  EXPECT_FALSE(parser.feed("data: {\"a\":"));
  EXPECT_FALSE(parser.feed("data:1}"));
  const auto event = parser.feed("");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->type, "job");
  EXPECT_EQ(event->data, "{\"a\":\n1}");
  EXPECT_EQ(event->id, "41");

  // The id carries over; the type does not; a blank line without data dispatches nothing.
  EXPECT_FALSE(parser.feed("event: batch"));
  EXPECT_FALSE(parser.feed(""));
  EXPECT_FALSE(parser.feed("data: x"));
  const auto next = parser.feed("");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->type, "message");
  EXPECT_EQ(next->id, "41");
  EXPECT_EQ(parser.lastId(), "41");
}

ApiResponse withLimit(int status, const std::string& remaining, const std::string& reset,
                      const std::string& retry_after = "") {
  ApiResponse response;
  response.status = status;
  response.headers = {{"X-RateLimit-Remaining", remaining}, {"X-RateLimit-Reset", reset}};
  if (!retry_after.empty()) response.headers.emplace_back("Retry-After", retry_after);
  return response;
}

TEST(CollectorctlPollPacing, PollsAreSpreadSoTheBudgetLastsUntilTheWindowResets) {
  // A fresh budget of 60: one poll a second, not the 500 ms asked for.
  EXPECT_EQ(pollDelay(withLimit(200, "59", "60"), milliseconds(500), 1), milliseconds(1000));
  // Two requests a poll (logs -f) halve the polls left.
  EXPECT_EQ(pollDelay(withLimit(200, "59", "60"), milliseconds(500), 2), milliseconds(2000));
  // Plenty left: the interval asked for.
  EXPECT_EQ(pollDelay(withLimit(200, "999999", "60"), milliseconds(500), 1), milliseconds(500));
  // Nothing left: wait for the window to reset.
  EXPECT_EQ(pollDelay(withLimit(200, "0", "37"), milliseconds(500), 1), milliseconds(37000));
  // Refused: Retry-After, or 5 s without one.
  EXPECT_EQ(pollDelay(withLimit(429, "0", "12", "12"), milliseconds(500), 1), milliseconds(12000));
  ApiResponse bare;
  bare.status = 429;
  EXPECT_EQ(pollDelay(bare, milliseconds(500), 1), milliseconds(5000));
  // No rate-limit headers (an endpoint that is not limited): the interval.
  bare.status = 200;
  EXPECT_EQ(pollDelay(bare, milliseconds(700), 1), milliseconds(700));
}

TEST(CollectorctlApiResponse, ProblemIsTheServersMessageWithTheStatus) {
  ApiResponse response;
  response.status = 404;
  response.body = R"({"error":"Job not found"})";
  response.json = Poco::Dynamic::Var(json(response.body));
  EXPECT_EQ(response.problem(), "Job not found (404)");
  EXPECT_FALSE(response.transient());

  ApiResponse gateway;
  gateway.status = 502;
  gateway.body = "<html>bad gateway</html>";
  EXPECT_EQ(gateway.problem(), "HTTP 502 Bad Gateway");
  EXPECT_TRUE(gateway.transient());

  ApiResponse unreachable;
  unreachable.transport_error = "cannot connect";
  EXPECT_EQ(unreachable.problem(), "cannot connect");
  EXPECT_TRUE(unreachable.transient());
}

constexpr const char* kBatchRunning = R"({"batch_id":"bc_00000001","status":"running",
  "progress_percent":40,"estimated_completion":null,"started_at":"2025-10-06T15:16:10.552780Z",
  "updated_at":"2025-10-06T15:16:14.000000Z","ended_at":null,"message":"Processing","error":null,
  "collectors":[{"job_name":"ninja-collector","job_id":"ni_00000001","status":"running",
  "started_at":"2025-10-06T15:16:10.552780Z","updated_at":"2025-10-06T15:16:14.000000Z",
  "ended_at":null,"progress_percent":40,"message":"Page 4/10","error":null,
  "duration_seconds":null}],"duration_seconds":null,"priority":"normal"})";

constexpr const char* kJobQueuedEarlier = R"({"job_id":"ni_00000001","batch_id":"bc_00000001",
  "job_name":"ninja-collector","status":"queued","started_at":"2025-10-06T15:16:10.552780Z",
  "updated_at":"2025-10-06T15:16:10.552780Z","ended_at":null,"progress_percent":null,
  "message":null,"error":null,"duration_seconds":null})";

constexpr const char* kJobCompleted = R"({"job_id":"ni_00000001","batch_id":"bc_00000001",
  "job_name":"ninja-collector","status":"completed","started_at":"2025-10-06T15:16:10.552780Z",
  "updated_at":"2025-10-06T15:16:20.963114Z","ended_at":"2025-10-06T15:16:20.963114Z",
  "progress_percent":100,"message":"Collection completed","error":null,
  "duration_seconds":10.41})";

RunState followedNinja() {
  RunState state;
  JobProgress job;
  job.job_id = "ni_00000001";
  job.batch_id = "bc_00000001";
  job.job_name = "ninja-collector";
  state.addJob(job);
  return state;
}

TEST(CollectorctlRunState, ABatchDocumentUpdatesTheBatchAndItsFollowedJobs) {
  RunState state = followedNinja();
  EXPECT_TRUE(state.applyBatch(*json(kBatchRunning), kBatchRunning));
  EXPECT_FALSE(state.applyBatch(*json(kBatchRunning), kBatchRunning)) << "nothing changed";
  ASSERT_EQ(state.batches().size(), 1u);
  EXPECT_EQ(state.batches()[0].status, "running");
  EXPECT_EQ(state.batches()[0].progress, 40);
  EXPECT_EQ(state.batches()[0].job_count, 1u);
  EXPECT_EQ(state.jobs()[0].progress, 40);
  EXPECT_EQ(state.jobs()[0].message, "Page 4/10");
  EXPECT_FALSE(state.finished());
}

TEST(CollectorctlRunState, AnOlderDocumentNeverUndoesANewerOne) {
  // An event stream replays history that a poll has already shown.
  RunState state = followedNinja();
  state.applyBatch(*json(kBatchRunning), kBatchRunning);
  EXPECT_FALSE(state.applyJob(*json(kJobQueuedEarlier)));
  EXPECT_EQ(state.jobs()[0].status, "running");
  EXPECT_EQ(state.jobs()[0].progress, 40);
}

TEST(CollectorctlRunState, FinishedOnceEveryJobAndEachFullyFollowedBatchHasEnded) {
  RunState state = followedNinja();
  state.applyBatch(*json(kBatchRunning), kBatchRunning);
  EXPECT_TRUE(state.applyJob(*json(kJobCompleted)));
  EXPECT_EQ(state.jobs()[0].duration_seconds, 10.41);
  // The job has ended, its batch (whose every job is followed) not yet.
  EXPECT_FALSE(state.finished());
  std::string batch = kBatchRunning;
  batch.replace(batch.find("\"running\""), 9, "\"completed\"");
  batch.replace(batch.find("15:16:14.000000Z"), 16, "15:16:20.963114Z");
  state.applyBatch(*json(batch), batch);
  EXPECT_TRUE(state.finished());
  EXPECT_TRUE(state.allCompleted());
}

TEST(CollectorctlRunState, ServerTimestampsParseInBothFormats) {
  EXPECT_EQ(parseTimestamp("1970-01-01T00:00:01.000002Z"), 1'000'002);
  EXPECT_EQ(parseTimestamp("2025-10-06T15:16:19Z"), 1'759'763'779'000'000);
  EXPECT_EQ(parseTimestamp("2025-10-06T15:16:19.5Z"), 1'759'763'779'500'000);
  EXPECT_EQ(parseTimestamp("2025-10-06 15:16:19Z"), std::nullopt);
  EXPECT_EQ(parseTimestamp("2025-10-06T15:16:19"), std::nullopt);
  EXPECT_EQ(parseTimestamp(""), std::nullopt);
}

TEST(CollectorctlTextFormat, DurationsAndClocksReadNaturally) {
  EXPECT_EQ(formatSeconds(10.41), "10.4s");
  EXPECT_EQ(formatSeconds(0.05), "0.0s");
  EXPECT_EQ(formatSeconds(80), "1m 20s");
  EXPECT_EQ(formatSeconds(7384), "2h 3m 4s");
  EXPECT_EQ(formatClock(7), "0:07");
  EXPECT_EQ(formatClock(754), "12:34");
  EXPECT_EQ(formatClock(3723), "1:02:03");
  EXPECT_EQ(formatUtc(1'759'763'779'552'780), "2025-10-06T15:16:19Z");
  EXPECT_EQ(formatTableTime("2025-10-06T15:16:19.552780Z"), "2025-10-06 15:16:19");
}

}  // namespace
}  // namespace collectorctl
