// The C++ SDK (collectord/collector.hpp) without a daemon: ProgressReporter's lines read back
// through a pipe and checked with collectord's own protocol parser, and Collector, Context and
// Progress driven through a fake host exactly as collector-host drives a plugin.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <collectord/collector.hpp>

#include <cstdlib>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "progress_update.h"

namespace {

using collectord::ProgressUpdate;
using collectord::ReportedStatus;

// ---- ProgressReporter -------------------------------------------------------------------------

// A pipe whose read end the test drains, and the lines written to it.
class Pipe {
 public:
  Pipe() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  }
  ~Pipe() {
    closeWriteEnd();
    ::close(fds_[0]);
  }
  int writeEnd() const { return fds_[1]; }
  void closeWriteEnd() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }
  // Closes the write end and returns every line written, without their newlines.
  std::vector<std::string> lines() {
    closeWriteEnd();
    return linesUntilClosed();
  }
  // Every line written until the write end is closed (by another thread), without newlines.
  std::vector<std::string> linesUntilClosed() {
    std::string all;
    char buffer[65536];
    for (ssize_t n; (n = ::read(fds_[0], buffer, sizeof buffer)) > 0;) all.append(buffer, n);
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t nl; (nl = all.find('\n', start)) != std::string::npos; start = nl + 1) {
      out.push_back(all.substr(start, nl - start));
    }
    EXPECT_EQ(start, all.size()) << "the last line has no newline";
    return out;
  }

 private:
  int fds_[2] = {-1, -1};
};

// The line parsed by the daemon's parser; a test failure (and an empty update) when it rejects it.
ProgressUpdate parsed(const std::string& line) {
  auto result = collectord::parseProgressLine(line);
  if (auto* error = std::get_if<collectord::ProtocolError>(&result)) {
    ADD_FAILURE() << "collectord rejects " << line.substr(0, 200) << ": " << error->reason;
    return {};
  }
  return std::get<ProgressUpdate>(result);
}

// The one line that `write` makes the reporter write, parsed.
template <typename Write>
std::pair<std::string, ProgressUpdate> oneLine(Write write) {
  Pipe pipe;
  {
    collectord::ProgressReporter reporter(pipe.writeEnd());
    EXPECT_TRUE(write(reporter));
  }
  const auto lines = pipe.lines();
  if (lines.size() != 1) {
    ADD_FAILURE() << lines.size() << " lines written";
    return {};
  }
  return {lines[0], parsed(lines[0])};
}

TEST(ProgressReporter, ReportWritesOneLineWithPercentAndMessage) {
  const auto [line, update] = oneLine([](auto& r) { return r.report(40, "Processing devices"); });
  EXPECT_EQ(line, R"({"progress": 40, "message": "Processing devices"})");
  EXPECT_TRUE(update.has_progress);
  EXPECT_EQ(update.progress, 40);
  EXPECT_EQ(update.message, "Processing devices");
  EXPECT_FALSE(update.status.has_value());
}

TEST(ProgressReporter, AnEmptyMessageLeavesTheJobsMessageAlone) {
  const auto [line, update] = oneLine([](auto& r) { return r.report(5); });
  EXPECT_EQ(line, R"({"progress": 5})");
  EXPECT_FALSE(update.message.has_value());
}

TEST(ProgressReporter, PercentAbove100Is100AndNegativeIsUnknown) {
  EXPECT_EQ(oneLine([](auto& r) { return r.report(250, "x"); }).second.progress, 100);
  const auto [line, update] = oneLine([](auto& r) { return r.report(-1, "x"); });
  EXPECT_EQ(line, R"({"progress": null, "message": "x"})");
  EXPECT_TRUE(update.has_progress);
  EXPECT_FALSE(update.progress.has_value());
}

TEST(ProgressReporter, MessagesWithQuotesBackslashesAndControlCharactersSurviveIntact) {
  const std::string message = "say \"hi\" to C:\\temp\nthen\ttab \x01\x1f\b\f\r done";
  const auto [line, update] = oneLine([&](auto& r) { return r.report(1, message); });
  EXPECT_EQ(line.find('\n'), std::string::npos) << "a raw newline splits the protocol line";
  EXPECT_EQ(update.message, message);
}

TEST(ProgressReporter, ValidUtf8IsKeptAndInvalidBytesBecomeReplacementCharacters) {
  const std::string kFffd = "\xEF\xBF\xBD";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9D\x84\x9E", "h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9D\x84\x9E"},
      {"a\xFF" "b", "a" + kFffd + "b"},
      {"stray \x80 continuation", "stray " + kFffd + " continuation"},
      {"overlong \xC0\xAF", "overlong " + kFffd + kFffd},
      {"overlong3 \xE0\x80\xAF", "overlong3 " + kFffd + kFffd + kFffd},
      {"surrogate \xED\xA0\x80", "surrogate " + kFffd + kFffd + kFffd},
      {"past U+10FFFF \xF4\x90\x80\x80", "past U+10FFFF " + kFffd + kFffd + kFffd + kFffd},
      {"cut short \xE2\x9C", "cut short " + kFffd + kFffd},
      {std::string("nul \0 inside", 12), "nul " + kFffd + " inside"},
  };
  for (const auto& [input, expected] : cases) {
    const auto [line, update] = oneLine([&](auto& r) { return r.report(1, input); });
    EXPECT_EQ(update.message, expected) << line;
  }
}

TEST(ProgressReporter, LongMessagesAreCutAtACharacterBoundaryAndStayUnderTheLineLimit) {
  std::string accents;
  for (int i = 0; i < 50000; ++i) accents += "\xC3\xA9";  // 100,000 bytes of é
  const auto [line, update] = oneLine([&](auto& r) { return r.report(1, "x" + accents); });
  ASSERT_TRUE(update.message.has_value()) << "the parser rejected the line";
  EXPECT_LE(update.message->size(), collectord::detail::kMaxTextBytes);
  EXPECT_GT(update.message->size(), collectord::detail::kMaxTextBytes - 8);
  EXPECT_EQ(update.message->substr(update.message->size() - 3), "...");
  EXPECT_EQ(update.message->substr(0, 3), "x\xC3\xA9");

  // Worst case for escaping: every byte becomes six.
  const std::string controls(100000, '\x01');
  const auto worst = oneLine([&](auto& r) { return r.fail(controls); });
  EXPECT_LT(worst.first.size(), collectord::kMaxProtocolLine);
  ASSERT_TRUE(worst.second.error.has_value());
  EXPECT_EQ(worst.second.error->substr(0, 4), "\x01\x01\x01\x01");
}

TEST(ProgressReporter, MessagesThatFitAreNotCut) {
  const std::string exact(collectord::detail::kMaxTextBytes, 'a');
  EXPECT_EQ(oneLine([&](auto& r) { return r.report(1, exact); }).second.message, exact);
}

TEST(ProgressReporter, CompleteAndFailCarryTheirStatus) {
  const auto done = oneLine([](auto& r) { return r.complete("Collected 12 devices"); });
  EXPECT_EQ(done.first,
            R"({"status": "completed", "progress": 100, "message": "Collected 12 devices"})");
  EXPECT_EQ(done.second.status, ReportedStatus::kCompleted);
  EXPECT_EQ(done.second.progress, 100);

  const auto failed = oneLine([](auto& r) { return r.fail("API returned 401"); });
  EXPECT_EQ(failed.first, R"({"status": "failed", "error": "API returned 401"})");
  EXPECT_EQ(failed.second.status, ReportedStatus::kFailed);
  EXPECT_EQ(failed.second.error, "API returned 401");
}

TEST(ProgressReporter, ReturnsFalseWhenTheDescriptorIsNotOpen) {
  Pipe pipe;
  const int fd = pipe.writeEnd();
  pipe.closeWriteEnd();
  collectord::ProgressReporter reporter(fd);
  EXPECT_FALSE(reporter.report(1, "nobody listens"));
}

// Sets COLLECTOR_PROGRESS_FD for one scope.
class ScopedProgressFd {
 public:
  explicit ScopedProgressFd(const char* value) {
    if (const char* old = std::getenv("COLLECTOR_PROGRESS_FD")) old_ = old;
    if (value) {
      ::setenv("COLLECTOR_PROGRESS_FD", value, 1);
    } else {
      ::unsetenv("COLLECTOR_PROGRESS_FD");
    }
  }
  ~ScopedProgressFd() {
    if (old_) {
      ::setenv("COLLECTOR_PROGRESS_FD", old_->c_str(), 1);
    } else {
      ::unsetenv("COLLECTOR_PROGRESS_FD");
    }
  }

 private:
  std::optional<std::string> old_;
};

TEST(ProgressReporter, WritesToTheDescriptorInCollectorProgressFd) {
  Pipe pipe;
  {
    ScopedProgressFd env(std::to_string(pipe.writeEnd()).c_str());
    collectord::ProgressReporter reporter;
    EXPECT_EQ(reporter.fd(), pipe.writeEnd());
    EXPECT_TRUE(reporter.report(70, "through the environment"));
  }
  const auto lines = pipe.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(parsed(lines[0]).message, "through the environment");
}

TEST(ProgressReporter, FallsBackToStderrWithoutAUsableCollectorProgressFd) {
  int closed;
  {
    Pipe pipe;
    closed = pipe.writeEnd();
  }
  const std::string closed_text = std::to_string(closed);
  for (const char* value : {static_cast<const char*>(nullptr), "", "three", "3x", "-1",
                            closed_text.c_str()}) {
    ScopedProgressFd env(value);
    EXPECT_EQ(collectord::ProgressReporter().fd(), STDERR_FILENO) << (value ? value : "(unset)");
  }
}

TEST(ProgressReporter, LinesFromSeveralThreadsNeverInterleave) {
  Pipe pipe;
  collectord::ProgressReporter reporter(pipe.writeEnd());
  // Lines longer than PIPE_BUF, which the kernel does not keep whole; the reporter's lock does.
  const std::string big(6000, 'm');
  std::vector<std::string> lines;
  std::thread drain([&pipe, &lines] { lines = pipe.linesUntilClosed(); });
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&reporter, &big, t] {
      for (int i = 0; i < 50; ++i) EXPECT_TRUE(reporter.report(i, std::to_string(t) + big));
    });
  }
  for (auto& w : writers) w.join();
  pipe.closeWriteEnd();
  drain.join();
  ASSERT_EQ(lines.size(), 200u);
  for (const auto& line : lines) {
    const ProgressUpdate update = parsed(line);
    ASSERT_TRUE(update.message.has_value());
    EXPECT_EQ(update.message->size(), big.size() + 1);
  }
}

// ---- Collector, Context, Progress through a fake host ----------------------------------------

struct FakeHost {
  std::vector<std::pair<int, std::optional<std::string>>> progress;
  std::vector<std::string> logs;
  int cancelled = 0;
  std::vector<collectord_kv> config;
  collectord_host_v1 host{};

  FakeHost() {
    host.abi_version = COLLECTORD_PLUGIN_ABI_VERSION;
    host.size = sizeof host;
    host.context = this;
    host.job_id = "sd_12345678";
    host.batch_id = "bc_87654321";
    host.collector_name = "sdk";
    host.progress = [](void* self, int percent, const char* message) {
      static_cast<FakeHost*>(self)->progress.emplace_back(
          percent, message ? std::optional<std::string>(message) : std::nullopt);
    };
    host.cancelled = [](void* self) { return static_cast<FakeHost*>(self)->cancelled; };
    host.log = [](void* self, const char* message) {
      static_cast<FakeHost*>(self)->logs.emplace_back(message);
    };
  }
  FakeHost(const FakeHost&) = delete;

  const collectord_host_v1* withConfig(std::vector<collectord_kv> entries) {
    config = std::move(entries);
    host.config = config.data();
    host.config_count = config.size();
    return &host;
  }
  std::vector<int> percents() const {
    std::vector<int> out;
    for (const auto& [percent, message] : progress) out.push_back(percent);
    return out;
  }
};

// Runs collector T as collectord_plugin_v1 would; returns its result and error text ("" when
// it succeeded).
template <typename T>
std::pair<int, std::string> runPlugin(FakeHost& fake, std::size_t error_size = 1024) {
  std::vector<char> error(error_size + 1, 'X');  // one guard byte past what the plugin may use
  const int result = collectord::detail::runCollector<T>(&fake.host, error.data(), error_size);
  EXPECT_EQ(error[error_size], 'X') << "wrote past error_size";
  // The ABI has an error only with a failure; the text must then be NUL-terminated in the buffer.
  if (result == 0 || error_size == 0) return {result, ""};
  return {result, std::string(error.data())};
}

struct Lambda : collectord::Collector {
  static inline std::function<void(collectord::Context&)> body;
  void run(collectord::Context& ctx) override { body(ctx); }
};

template <typename Body>
std::pair<int, std::string> runBody(FakeHost& fake, Body body, std::size_t error_size = 1024) {
  Lambda::body = body;
  return runPlugin<Lambda>(fake, error_size);
}

TEST(Context, GivesTheConfigValuesAndTheRunsIdentity) {
  FakeHost fake;
  fake.withConfig({{"ROOT", "/srv"}, {"EMPTY", ""}});
  const auto [result, error] = runBody(fake, [](collectord::Context& ctx) {
    EXPECT_EQ(ctx.config("ROOT"), "/srv");
    EXPECT_EQ(ctx.config("EMPTY"), "");
    EXPECT_EQ(ctx.config("ROO"), std::nullopt);
    EXPECT_EQ(ctx.config("ROOTS"), std::nullopt);
    EXPECT_EQ(ctx.job_id(), "sd_12345678");
    EXPECT_EQ(ctx.batch_id(), "bc_87654321");
    EXPECT_EQ(ctx.collector_name(), "sdk");
  });
  EXPECT_EQ(result, 0);
  EXPECT_EQ(error, "");
}

TEST(Context, PassesProgressAndLogLinesToTheHostAsCleanUtf8) {
  FakeHost fake;
  const auto [result, error] = runBody(fake, [](collectord::Context& ctx) {
    ctx.progress(30, "caf\xC3\xA9");
    ctx.progress(250, std::string("a\0b", 3));
    ctx.progress(-7);
    ctx.log("bad \xFF byte");
  });
  EXPECT_EQ(result, 0);
  ASSERT_EQ(fake.progress.size(), 3u);
  EXPECT_EQ(fake.progress[0], std::make_pair(30, std::optional<std::string>("caf\xC3\xA9")));
  EXPECT_EQ(fake.progress[1], std::make_pair(100, std::optional<std::string>("a\xEF\xBF\xBD" "b")));
  EXPECT_EQ(fake.progress[2], std::make_pair(-1, std::optional<std::string>()));
  EXPECT_EQ(fake.logs, std::vector<std::string>{"bad \xEF\xBF\xBD byte"});
}

TEST(Collector, AnExceptionEscapingRunFailsTheRunWithItsWhat) {
  FakeHost fake;
  const auto [result, error] = runBody(fake, [](collectord::Context&) {
    throw std::runtime_error("API returned 503: données indisponibles");
  });
  EXPECT_NE(result, 0);
  EXPECT_EQ(error, "API returned 503: données indisponibles");
}

TEST(Collector, AnErrorTooLongForTheBufferIsCutAtACharacterBoundary) {
  FakeHost fake;
  // Room for 7 bytes and the NUL: three é (6 bytes), never half of the fourth.
  const auto [result, error] =
      runBody(fake, [](collectord::Context&) { throw std::runtime_error("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"); }, 8);
  EXPECT_NE(result, 0);
  EXPECT_EQ(error, "\xC3\xA9\xC3\xA9\xC3\xA9");
  // No buffer at all: still a failure, and nothing written.
  EXPECT_NE(runBody(fake, [](collectord::Context&) { throw std::runtime_error("x"); }, 0).first, 0);
}

TEST(Collector, AnErrorWithInvalidUtf8ReachesTheHostAsCleanUtf8) {
  FakeHost fake;
  const auto [result, error] = runBody(fake, [](collectord::Context&) {
    throw std::runtime_error("bad \xFF byte, surrogate \xED\xA0\x80, end");
  });
  EXPECT_NE(result, 0);
  EXPECT_EQ(error, "bad \xEF\xBF\xBD byte, surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD, end");
}

TEST(Collector, AnExceptionThatIsNotAStdExceptionFailsWithAGenericError) {
  FakeHost fake;
  const auto [result, error] = runBody(fake, [](collectord::Context&) { throw 42; });
  EXPECT_NE(result, 0);
  EXPECT_EQ(error, "collector threw an exception that is not a std::exception");
}

TEST(Collector, AnExceptionWithAnEmptyMessageStillExplainsTheFailure) {
  FakeHost fake;
  const auto [result, error] = runBody(fake, [](collectord::Context&) { throw std::runtime_error(""); });
  EXPECT_NE(result, 0);
  EXPECT_EQ(error, "collector threw an exception with an empty message");
}

TEST(Collector, ThrowIfCancelledEndsTheRunOnceTheHostSaysStop) {
  FakeHost fake;
  int units = 0;
  const auto [result, error] = runBody(fake, [&](collectord::Context& ctx) {
    for (int i = 0; i < 1000; ++i) {
      ctx.throwIfCancelled();
      EXPECT_FALSE(ctx.cancelled());
      if (++units == 3) fake.cancelled = 1;  // as collector-host's SIGTERM handler does
    }
  });
  EXPECT_EQ(units, 3);
  EXPECT_NE(result, 0);
  EXPECT_EQ(error, "cancelled");
}

TEST(Collector, AHostOfAnotherAbiIsRefusedBeforeTheCollectorRuns) {
  bool ran = false;
  for (auto breakHost : {+[](collectord_host_v1& h) { h.abi_version = 2; },
                         +[](collectord_host_v1& h) { h.size = sizeof h - 1; }}) {
    FakeHost fake;
    breakHost(fake.host);
    const auto [result, error] = runBody(fake, [&ran](collectord::Context&) { ran = true; });
    EXPECT_NE(result, 0);
    EXPECT_NE(error.find("ABI version 1"), std::string::npos) << error;
  }
  EXPECT_FALSE(ran);
  char error[64];
  EXPECT_NE(collectord::detail::runCollector<Lambda>(nullptr, error, sizeof error), 0);
}

TEST(Progress, StepsReportOnlyTheWorkAlreadyDoneAndTheEndOfScopeFinishesTheLast) {
  FakeHost fake;
  runBody(fake, [&fake](collectord::Context& ctx) {
    collectord::Progress steps(ctx, 4);
    for (const char* step : {"a", "b", "c", "d"}) steps.next(step);
    EXPECT_EQ(fake.percents(), (std::vector<int>{0, 25, 50, 75})) << "none reports work not done";
  });
  EXPECT_EQ(fake.percents(), (std::vector<int>{0, 25, 50, 75, 100}));
  EXPECT_EQ(fake.progress[1].second, "b");
  EXPECT_EQ(fake.progress[4].second, std::nullopt) << "the last message stays";
}

TEST(Progress, StepsMapOntoTheirRangeRoundingDown) {
  FakeHost fake;
  runBody(fake, [](collectord::Context& ctx) {
    collectord::Progress steps(ctx, 3, 10, 90);
    for (int i = 0; i < 3; ++i) steps.next("step");
  });
  EXPECT_EQ(fake.percents(), (std::vector<int>{10, 36, 63, 90}));
}

TEST(Progress, LeftByAnExceptionOrWithStepsNotStartedItClaimsNothingMore) {
  FakeHost thrown;
  runBody(thrown, [](collectord::Context& ctx) {
    collectord::Progress steps(ctx, 2);
    steps.next("one");
    steps.next("two");
    throw std::runtime_error("step two failed");
  });
  EXPECT_EQ(thrown.percents(), (std::vector<int>{0, 50}));

  FakeHost stopped;
  runBody(stopped, [](collectord::Context& ctx) {
    collectord::Progress steps(ctx, 5);
    steps.next("one");  // and then the loop is left early, e.g. on cancelled()
  });
  EXPECT_EQ(stopped.percents(), (std::vector<int>{0}));
}

TEST(Progress, FinishReportsTheEndOnceAndExtraStepsChangeNothing) {
  FakeHost fake;
  runBody(fake, [](collectord::Context& ctx) {
    collectord::Progress steps(ctx, 2, 0, 80);
    steps.next("one");
    steps.next("two");
    steps.next("three, one too many");
    steps.finish("all done");
    EXPECT_EQ(steps.started(), 2u);
  });
  EXPECT_EQ(fake.percents(), (std::vector<int>{0, 40, 80, 80}));
  EXPECT_EQ(fake.progress.back().second, "all done");
}

TEST(Progress, NoStepsReportNothingAndNeverDivideByZero) {
  FakeHost fake;
  runBody(fake, [](collectord::Context& ctx) {
    collectord::Progress steps(ctx, 0);
    EXPECT_EQ(steps.percentAfter(0), 100);
  });
  EXPECT_TRUE(fake.progress.empty());
}

}  // namespace

// The macro itself, as a plugin uses it: at global scope, once per plugin.
class MacroCollector : public collectord::Collector {
 public:
  void run(collectord::Context& ctx) override {
    ctx.progress(60, "from the macro");
    if (ctx.config("FAIL")) throw std::runtime_error("asked to fail");
  }
};
COLLECTORD_PLUGIN(MacroCollector);

namespace {

TEST(CollectordPluginMacro, DefinesBothEntryPointsForTheNamedClass) {
  EXPECT_EQ(collectord_plugin_abi_version(), COLLECTORD_PLUGIN_ABI_VERSION);
  FakeHost fake;
  char error[256] = "untouched";
  EXPECT_EQ(collectord_plugin_v1(&fake.host, error, sizeof error), 0);
  EXPECT_EQ(fake.progress.at(0), std::make_pair(60, std::optional<std::string>("from the macro")));

  EXPECT_NE(collectord_plugin_v1(fake.withConfig({{"FAIL", "1"}}), error, sizeof error), 0);
  EXPECT_STREQ(error, "asked to fail");
}

}  // namespace
