// collectorctl against the real daemon, run as a user runs it: each command, its output as
// tables and as the server's JSON, its exit codes, its settings (flags, environment,
// client.ini), `--wait` on a pipe (one timestamped line per change) and on a pseudo-terminal
// (bars redrawn in place), and `logs -f`.

#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <sstream>

#include "api_checks.h"
#include "daemon_harness.h"
#include "program_runner.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kKey = "ctl-test-key-0123456789abcdef";

// Reports two steps and completes; writes a line of output.
constexpr const char* kAlpha = R"sh(
printf '{"progress": 10, "message": "Fetching page 1/2"}\n' >&3
printf '{"progress": 50, "message": "Fetching page 2/2"}\n' >&3
printf '{"status": "completed", "progress": 100, "message": "Synced 2 pages"}\n' >&3
echo "alpha done"
)sh";

// Reports progress, then a failure, and exits 2.
constexpr const char* kBeta = R"sh(
printf '{"progress": 30, "message": "Fetching alerts"}\n' >&3
printf '{"status": "failed", "error": "API returned 401"}\n' >&3
exit 2
)sh";

// Waits for the test between its steps, so that a follower sees each one.
constexpr const char* kStepper = R"sh(
printf '{"progress": 10, "message": "Fetching page 1/2"}\n' >&3
wait_for_release 1
printf '{"progress": 50, "message": "Fetching page 2/2"}\n' >&3
wait_for_release 2
printf '{"status": "completed", "progress": 100, "message": "Synced 2 pages"}\n' >&3
)sh";

// Runs until released (or cancelled), writing a line before and after.
constexpr const char* kGamma = R"sh(
echo "gamma started"
printf '{"progress": 5, "message": "Waiting for the test"}\n' >&3
wait_for_release 1
echo "gamma finishing"
)sh";

// Takes about two seconds on its own: long enough for a poller to come back several times.
constexpr const char* kSlow = R"sh(
printf '{"progress": 10, "message": "Started"}\n' >&3
sleep 1
printf '{"progress": 60, "message": "Halfway"}\n' >&3
sleep 1
printf '{"status": "completed", "progress": 100, "message": "Done"}\n' >&3
)sh";

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> result;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    result.push_back(line);
  }
  return result;
}

Poco::JSON::Object::Ptr parseObject(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var value = parser.parse(text);
    if (value.type() == typeid(Poco::JSON::Object::Ptr)) {
      return value.extract<Poco::JSON::Object::Ptr>();
    }
  } catch (const Poco::Exception& e) {
    ADD_FAILURE() << "not JSON (" << e.displayText() << "): " << text;
  }
  return nullptr;
}

// Code points of UTF-8 text: the columns of a line without wide characters.
std::size_t codePoints(const std::string& text) {
  std::size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

// The redrawn lines of a terminal's output (those that erase their line first), as shown: without
// ANSI sequences, from their last carriage return.
std::vector<std::string> frameLines(const std::string& raw) {
  std::vector<std::string> result;
  std::istringstream in(raw);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\x1b[2K") == std::string::npos) continue;
    line = stripAnsi(line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (const auto cr = line.rfind('\r'); cr != std::string::npos) line = line.substr(cr + 1);
    result.push_back(line);
  }
  return result;
}

// A port nothing listens on: bound once by the kernel's choice, then closed.
int closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

class Collectorctl : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.addCollector("alpha", kAlpha);
    config_.addCollector("beta", kBeta);
    config_.addBlockingCollector("stepper", kStepper);
    config_.addBlockingCollector("gamma", kGamma);
    config_.addCollector("slow", kSlow);
  }

  Daemon& daemon() {
    if (!daemon_) daemon_ = std::make_unique<Daemon>(config_);
    return *daemon_;
  }
  HttpClient api() { return daemon().client(); }
  std::string url() { return "http://127.0.0.1:" + std::to_string(daemon().port()); }

  // The environment of a user with no settings of their own but COLLECTORD_URL.
  ProgramOptions options(bool terminal = false) {
    ProgramOptions o;
    o.env = {{"COLLECTORD_URL", url()},
             {"COLLECTORD_API_KEY", std::nullopt},
             {"COLLECTORD_CA_FILE", std::nullopt},
             {"HOME", home_.path()},
             {"XDG_CONFIG_HOME", std::nullopt},
             {"NO_COLOR", std::nullopt},
             {"COLUMNS", std::nullopt},
             {"TERM", "xterm-256color"},
             {"LANG", "C.UTF-8"},
             {"LC_ALL", std::nullopt},
             {"LC_CTYPE", std::nullopt}};
    o.terminal = terminal;
    return o;
  }

  RunResult ctl(std::vector<std::string> args, const ProgramOptions& o) {
    args.insert(args.begin(), COLLECTORCTL_BINARY);
    return runProgram(args, o);
  }
  RunResult ctl(std::vector<std::string> args) { return ctl(std::move(args), options()); }

  std::unique_ptr<Program> start(std::vector<std::string> args, const ProgramOptions& o) {
    args.insert(args.begin(), COLLECTORCTL_BINARY);
    return std::make_unique<Program>(args, o);
  }

  std::string completedRun(const std::string& collector) { return runOnce(api(), collector); }

  TempDir dir_;
  TempDir home_;
  DaemonConfig config_{dir_};
  std::unique_ptr<Daemon> daemon_;
};

// --- run --wait on a pipe -------------------------------------------------------------------

class CollectorctlFollowing : public Collectorctl,
                              public ::testing::WithParamInterface<const char*> {};

TEST_P(CollectorctlFollowing, RunWaitOnAPipePrintsOneTimestampedLinePerChangeAndExitsZero) {
  auto program = start({"run", "stepper", "--wait", "--interval", "100ms", GetParam()}, options());
  ASSERT_TRUE(program->waitForOutput("running 10% Fetching page 1/2")) << program->out();
  config_.release("stepper", 1);
  ASSERT_TRUE(program->waitForOutput("running 50% Fetching page 2/2")) << program->out();
  config_.release("stepper", 2);
  ASSERT_EQ(program->wait(), 0) << program->out() << program->err();

  const auto out = lines(program->out());
  ASSERT_GE(out.size(), 5u) << program->out();
  std::smatch header;
  ASSERT_TRUE(std::regex_match(out[0], header,
                               std::regex(R"(Batch (bc_\d{8}) started \(normal priority\):)")))
      << out[0];
  const std::string batch_id = header[1];
  std::smatch job;
  ASSERT_TRUE(
      std::regex_match(out[1], job, std::regex(R"(  (st_\d{8})  stepper-collector  queued)")))
      << out[1];
  const std::string job_id = job[1];

  const std::regex line_shape(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ )"
                              R"((stepper-collector st_\d{8}|batch bc_\d{8}) )"
                              R"((queued|running|completed) (-|\d{1,3}%)( .*)?)");
  std::vector<std::string> job_lines, batch_lines;
  for (std::size_t i = 2; i < out.size(); ++i) {
    EXPECT_TRUE(std::regex_match(out[i], line_shape)) << out[i];
    const std::string rest = out[i].substr(21);
    if (rest.starts_with("stepper-collector " + job_id + " ")) {
      job_lines.push_back(rest.substr(18 + job_id.size() + 1));
    } else if (rest.starts_with("batch " + batch_id + " ")) {
      batch_lines.push_back(rest.substr(6 + batch_id.size() + 1));
    } else {
      ADD_FAILURE() << "a line about something else: " << out[i];
    }
  }
  // One line per change: never the same state twice in a row.
  for (std::size_t i = 1; i < job_lines.size(); ++i) EXPECT_NE(job_lines[i], job_lines[i - 1]);
  for (std::size_t i = 1; i < batch_lines.size(); ++i) {
    EXPECT_NE(batch_lines[i], batch_lines[i - 1]);
  }
  // Each step the collector reported, in order, and the end with its duration.
  const std::vector<std::string> steps = {"running 10% Fetching page 1/2",
                                          "running 50% Fetching page 2/2"};
  auto at = job_lines.begin();
  for (const std::string& step : steps) {
    at = std::find(at, job_lines.end(), step);
    ASSERT_NE(at, job_lines.end()) << "missing '" << step << "' in\n" << program->out();
  }
  ASSERT_FALSE(job_lines.empty());
  EXPECT_TRUE(std::regex_match(job_lines.back(),
                               std::regex(R"(completed 100% Synced 2 pages \(\d+\.\ds\))")))
      << job_lines.back();
  ASSERT_FALSE(batch_lines.empty());
  EXPECT_TRUE(std::regex_match(
      batch_lines.back(), std::regex(R"(completed 100% 1 of 1 collector completed \(\d+\.\ds\))")))
      << batch_lines.back();
  EXPECT_EQ(program->out().find('\x1b'), std::string::npos) << "ANSI sequences on a pipe";
  EXPECT_EQ(program->err(), "");
  EXPECT_EQ(jobStatus(api(), job_id), "completed");
}

INSTANTIATE_TEST_SUITE_P(EventsOrPolling, CollectorctlFollowing,
                         ::testing::Values("--no-events", "--interval=100ms"),
                         [](const auto& param_info) {
                           return std::string(param_info.param) == "--no-events"
                                      ? "Polling"
                                      : "EventsWhenServed";
                         });

TEST_F(Collectorctl, RunWaitExitsOneWhenAJobFailsAndPrintsItsError) {
  const RunResult r = ctl({"run", "alpha", "beta", "--wait", "--interval", "100ms"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex(R"(beta-collector be_\d{8} failed 30% error: API returned 401 \()")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(alpha-collector al_\d{8} completed 100%)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex(R"(batch bc_\d{8} failed 100% 1 of 2 collectors failed)")))
      << r.out;
}

TEST_F(Collectorctl, RunWaitExitsOneWhenAJobIsCancelledWhileItWaits) {
  auto program = start({"run", "gamma", "--wait", "--interval", "100ms"}, options());
  ASSERT_TRUE(program->waitForOutput("running 5% Waiting for the test")) << program->out();
  std::smatch job;
  const std::string out = program->out();
  ASSERT_TRUE(std::regex_search(out, job, std::regex(R"(ga_\d{8})")));
  const HttpResponse cancel = api().del("/api/collectors/runs/job/" + job.str());
  ASSERT_TRUE(cancel.status == 200 || cancel.status == 202) << cancel.describe();
  EXPECT_EQ(program->wait(), 1) << program->out() << program->err();
  EXPECT_TRUE(std::regex_search(
      program->out(), std::regex(job.str() + R"( cancelled 5% error: cancelled by request)")))
      << program->out();
}

TEST_F(Collectorctl, RunWithoutWaitPrintsTheBatchAndJobIdsAndReturnsAtOnce) {
  const RunResult r = ctl({"run", "gamma", "alpha", "--priority", "high"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 3u) << r.out;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_match(out[0], m, std::regex(R"(Batch (bc_\d{8}) started \(high priority\):)")))
      << out[0];
  const HttpResponse batch = api().batch(m[1]);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_EQ(stringField(*batch.object(), "priority"), "high");
  const auto jobs = objectsOf(*batch.object(), "collectors");
  ASSERT_EQ(jobs.size(), 2u);
  // In request order, each with its ID, name and the status the trigger answered.
  EXPECT_EQ(out[1], "  " + stringField(*jobs[0], "job_id") + "  gamma-collector  queued");
  EXPECT_EQ(out[2], "  " + stringField(*jobs[1], "job_id") + "  alpha-collector  queued");
  config_.release("gamma");
}

TEST_F(Collectorctl, RunJsonPrintsTheServersAnswerAndWithWaitTheFinalBatch) {
  const RunResult plain = ctl({"--json", "run", "alpha"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const auto answer = parseObject(plain.out);
  ASSERT_TRUE(answer);
  EXPECT_TRUE(HasTriggerShape(*answer, {"alpha"}, {"alpha-collector"}));

  const RunResult waited = ctl({"run", "alpha", "--wait", "--json", "--interval", "100ms"});
  ASSERT_EQ(waited.exit_code, 0) << waited.err;
  ASSERT_EQ(lines(waited.out).size(), 1u) << waited.out;
  const auto batch = parseObject(waited.out);
  ASSERT_TRUE(batch);
  EXPECT_TRUE(HasBatchShape(*batch));
  EXPECT_EQ(stringField(*batch, "status"), "completed");
  // Exactly what the server says about the batch now that it has ended.
  EXPECT_EQ(waited.out, api().batch(stringField(*batch, "batch_id")).body + "\n");
}

TEST_F(Collectorctl, RunOfAnUnknownCollectorPrintsTheServersMessageAndExitsThree) {
  const RunResult r = ctl({"run", "alpha", "nosuch", "--wait"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "collectorctl: Unknown collectors: nosuch (400)\n");
  EXPECT_EQ(r.out, "");
}

TEST_F(Collectorctl, RunOfACollectorThatSkipsOverlapsFollowsItsActiveJob) {
  config_.addBlockingCollector("solo", kGamma, {{"overlap", "skip"}});
  const Triggered active = triggerOrThrow(api(), {"solo"});
  waitForJobStatus(api(), active.job_ids[0], "running");
  auto program = start({"run", "solo", "--wait", "--interval", "100ms"}, options());
  ASSERT_TRUE(program->waitForOutput(active.job_ids[0] + " running 5%")) << program->out();
  config_.release("solo");
  EXPECT_EQ(program->wait(), 0) << program->out() << program->err();
  const auto out = lines(program->out());
  ASSERT_GE(out.size(), 2u);
  EXPECT_EQ(out[0], "Nothing started: every collector already has an active run:");
  EXPECT_EQ(out[1], "  " + active.job_ids[0] +
                        "  solo-collector  running  skipped: already active in batch " +
                        active.batch_id);
  EXPECT_NE(program->out().find(active.job_ids[0] + " completed 100%"), std::string::npos)
      << program->out();
}

// --- run --wait on a terminal -----------------------------------------------------------------

TEST_F(Collectorctl, RunWaitOnATerminalRedrawsBarsInPlaceUntilTheyReach100Percent) {
  auto program = start({"run", "stepper", "--wait", "--interval", "100ms"}, options(true));
  ASSERT_TRUE(program->waitForOutput("Fetching page 1/2")) << program->out();
  config_.release("stepper", 1);
  ASSERT_TRUE(program->waitForOutput("Fetching page 2/2")) << program->out();
  config_.release("stepper", 2);
  ASSERT_EQ(program->wait(), 0) << program->out() << program->err();
  const std::string& raw = program->out();

  // Redrawn in place: back to the first bar (two lines up), each line erased and rewritten.
  EXPECT_NE(raw.find("\r\x1b[2A"), std::string::npos) << "no cursor-up redraw";
  EXPECT_NE(raw.find("\r\x1b[2K"), std::string::npos) << "no erase-line redraw";
  EXPECT_NE(raw.find("\x1b[32mcompleted"), std::string::npos) << "completed is not green";
  EXPECT_NE(raw.find("\u2588"), std::string::npos) << "no block bar in a UTF-8 locale";

  // The last frame: both bars full, at 100 %, completed; then the summary.
  const std::string text = stripAnsi(raw);
  const auto last_job = text.rfind("stepper-collector ");
  const auto last_batch = text.rfind("bc_");
  ASSERT_NE(last_job, std::string::npos) << text;
  ASSERT_NE(last_batch, std::string::npos) << text;
  const std::string job_line = text.substr(last_job, text.find('\n', last_job) - last_job);
  EXPECT_TRUE(
      std::regex_search(job_line, std::regex(R"(\[(?:█)+\] 100% completed .*Synced 2 pages)")))
      << job_line;
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(bc_\d{8} +\[(?:█)+\] 100% completed .*1 of 1 collector completed)")))
      << text;
  EXPECT_TRUE(std::regex_search(
      text,
      std::regex(R"(Batch bc_\d{8} completed in \d+\.\ds: 1 of 1 collector completed\r?\n$)")))
      << text;
  // Intermediate frames showed the steps with partial bars.
  EXPECT_TRUE(
      std::regex_search(text, std::regex(R"(\[(?:█)+(?:░)+\]  10% running .*Fetching page 1/2)")))
      << text;
  EXPECT_TRUE(
      std::regex_search(text, std::regex(R"(\[(?:█)+(?:░)+\]  50% running .*Fetching page 2/2)")))
      << text;
  // No line as wide as the terminal (100 columns): it would wrap and break the redraw.
  const auto frames = frameLines(raw);
  EXPECT_GE(frames.size(), 6u);
  for (const std::string& line : frames) EXPECT_LT(codePoints(line), 100u) << line;
}

TEST_F(Collectorctl, RunWaitOnANarrowAsciiTerminalKeepsEveryLineShorterThanTheWidth) {
  ProgramOptions o = options(true);
  o.columns = 40;
  o.env.push_back({"LANG", "C"});
  o.env.push_back({"NO_COLOR", "1"});
  const RunResult r = ctl({"run", "alpha", "beta", "--wait", "--interval", "100ms"}, o);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const std::string text = stripAnsi(r.out);
  EXPECT_EQ(r.out.find("\u2588"), std::string::npos) << "block characters in the C locale";
  EXPECT_EQ(r.out.find("m\x1b[0m"), std::string::npos) << "colours despite NO_COLOR";
  EXPECT_NE(r.out.find("\r\x1b[3A"), std::string::npos) << "no redraw in place";
  const auto frames = frameLines(r.out);
  EXPECT_GE(frames.size(), 3u);
  for (const std::string& line : frames) EXPECT_LT(line.size(), 40u) << line;
  EXPECT_NE(text.find("alpha-collector 100% completed"), std::string::npos) << text;
  EXPECT_NE(text.find("  beta-collector ("), std::string::npos) << text;
  EXPECT_NE(text.find("failed: API returned 401"), std::string::npos) << text;
}

TEST_F(Collectorctl, RunWaitOnAShortTerminalShowsOnlyTheBarsThatFitAndCountsTheOthers) {
  std::vector<std::string> args = {"run"};
  for (int i = 1; i <= 6; ++i) {
    const std::string name = "q" + std::to_string(i);
    config_.addCollector(name, kAlpha);
    args.push_back(name);
  }
  args.insert(args.end(), {"--wait", "--interval", "100ms"});
  ProgramOptions o = options(true);
  o.rows = 6;  // room for five lines: the batch, three jobs and the count of the others
  const RunResult r = ctl(args, o);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // Every redraw moves up over at most five lines, so it never reaches into the scrollback.
  const std::regex up(R"(\x1b\[(\d+)A)");
  int redraws = 0;
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), up); it != std::sregex_iterator();
       ++it, ++redraws) {
    EXPECT_LE(std::stoi((*it)[1]), 5) << (*it)[0];
  }
  EXPECT_GT(redraws, 0);
  EXPECT_NE(stripAnsi(r.out).find("+3 more jobs not shown (the terminal is 6 lines high)"),
            std::string::npos)
      << stripAnsi(r.out);
  EXPECT_TRUE(std::regex_search(
      stripAnsi(r.out),
      std::regex(R"(Batch bc_\d{8} completed in .*: 6 of 6 collectors completed)")))
      << stripAnsi(r.out);
}

TEST_F(Collectorctl, CtrlCWhileWaitingExits130AndLeavesTheRunGoing) {
  auto program = start({"run", "gamma", "--wait", "--interval", "100ms"}, options(true));
  ASSERT_TRUE(program->waitForOutput("Waiting for the test")) << program->out();
  program->signal(SIGINT);
  EXPECT_EQ(program->wait(), 130) << program->out() << program->err();
  std::smatch batch;
  const std::string err = program->err();
  ASSERT_TRUE(std::regex_search(
      err, batch,
      std::regex(
          R"(collectorctl: stopped waiting; the runs go on \(collectorctl status (bc_\d{8})\))")))
      << err;
  EXPECT_EQ(stringField(*api().batch(batch[1]).object(), "status"), "running");
  config_.release("gamma");
}

// --- the event stream -------------------------------------------------------------------------

// The rate-limited requests a command made: the budget left before and after it.
long budgetLeft(const HttpClient& client) {
  const HttpResponse r = client.get("/api/collectors/history?limit=1");
  return std::stol(r.header("X-RateLimit-Remaining").value_or("0"));
}

TEST_F(Collectorctl, RunWaitFollowsTheEventStreamWhenTheServerHasOneAndPollsOtherwise) {
  const HttpResponse probe = api().get("/api/collectors/runs/batch/bc_00000000/events");
  if (probe.status == 404 && probe.body.find("Batch not found") == std::string::npos) {
    GTEST_SKIP() << "this collectord has no event stream: " << probe.describe();
  }
  long before = budgetLeft(api());
  const RunResult streamed = ctl({"run", "slow", "--wait", "--interval", "100ms"});
  long after = budgetLeft(api());
  ASSERT_EQ(streamed.exit_code, 0) << streamed.out << streamed.err;
  EXPECT_NE(streamed.out.find("running 60% Halfway"), std::string::npos) << streamed.out;
  // A first look, the stream's opening request and maybe a last look: not one per 100 ms.
  EXPECT_LE(before - after - 1, 4) << streamed.out;

  before = budgetLeft(api());
  const RunResult polled = ctl({"run", "slow", "--wait", "--interval", "100ms", "--no-events"});
  after = budgetLeft(api());
  ASSERT_EQ(polled.exit_code, 0) << polled.out << polled.err;
  EXPECT_GE(before - after - 1, 10) << "polling every 100 ms for 2 s should take 10 requests";
}

// --- rate limits ----------------------------------------------------------------------------

TEST_F(Collectorctl, RunWaitSpacesItsPollsToStayWithinTheRateLimit) {
  config_.appendToMain("[ratelimit]\nrequests_per_minute = 20\n");
  // 20 a minute: the budget lasts when polls come every 3 s, whatever --interval asks. Polling
  // every 100 ms through the two seconds of `slow` would be refused after 20.
  const RunResult r = ctl({"run", "slow", "--wait", "--interval", "100ms", "--no-events"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("completed 100% Done"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("rate limited"), std::string::npos) << r.out;
  const HttpResponse left = api().get("/api/collectors/history?limit=1");
  ASSERT_EQ(left.status, 200) << left.describe();
  EXPECT_GE(std::stol(left.header("X-RateLimit-Remaining").value_or("0")), 15);
}

// --- status -----------------------------------------------------------------------------------

TEST_F(Collectorctl, StatusOfABatchShowsItsFieldsAndJobsAndJsonIsTheServersDocument) {
  const Triggered t = triggerOrThrow(api(), {"alpha", "beta"});
  const HttpResponse done = waitForBatchTerminal(api(), t.batch_id);
  const RunResult r = ctl({"status", t.batch_id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("Batch +" + t.batch_id + "\n"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Status +failed  100%)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Message +1 of 2 collectors failed)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Error +beta-collector: API returned 401)")))
      << r.out;
  EXPECT_TRUE(
      std::regex_search(r.out, std::regex(R"(JOB ID +NAME +STATUS +PROGRESS +DURATION +MESSAGE)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out,
      std::regex(t.job_ids[0] + R"( +alpha-collector +completed +100% +\d+\.\ds +Synced 2 pages)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out,
      std::regex(t.job_ids[1] + R"( +beta-collector +failed +30% +\d+\.\ds +API returned 401)")))
      << r.out;

  const RunResult json = ctl({"status", t.batch_id, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(json.out, done.body + "\n");
}

TEST_F(Collectorctl, StatusOfAJobShowsItsFieldsAndJsonIsTheServersDocument) {
  const std::string job_id = completedRun("alpha");
  const RunResult r = ctl({"status", job_id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("Job +" + job_id + "\n"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Name +alpha-collector \(collector alpha\))")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Status +completed  100%)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Attempt +1 of 1)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Duration +\d+\.\ds)"))) << r.out;

  const RunResult json = ctl({"--json", "status", job_id});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(json.out, api().job(job_id).body + "\n");
}

TEST_F(Collectorctl, StatusOfAnUnknownIdPrintsTheServersMessageAndExitsThree) {
  daemon();
  const RunResult job = ctl({"status", "zz_00000000"});
  EXPECT_EQ(job.exit_code, 3);
  EXPECT_EQ(job.err, "collectorctl: Job not found (404)\n");
  EXPECT_EQ(job.out, "");
  const RunResult batch = ctl({"status", "bc_00000000", "--wait"});
  EXPECT_EQ(batch.exit_code, 3);
  EXPECT_EQ(batch.err, "collectorctl: Batch not found (404)\n");
}

TEST_F(Collectorctl, AJobIdThatLooksLikeABatchIdIsStillFound) {
  // Job IDs start with the collector's first two letters: "bcm" gets bc_ IDs, like batches.
  config_.addCollector("bcm", "exit 0\n");
  const std::string job_id = completedRun("bcm");
  ASSERT_TRUE(job_id.starts_with("bc_")) << job_id;
  const RunResult r = ctl({"status", job_id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("Job +" + job_id + "\n"))) << r.out;
  const RunResult json = ctl({"status", job_id, "--json"});
  EXPECT_EQ(json.out, api().job(job_id).body + "\n");
  const RunResult cancel = ctl({"cancel", job_id});
  EXPECT_EQ(cancel.exit_code, 3);
  EXPECT_EQ(cancel.err, "collectorctl: Job " + job_id +
                            " is already completed; there is nothing to cancel (409)\n");
}

TEST_F(Collectorctl, StatusWaitFollowsARunningJobToItsEnd) {
  const Triggered t = triggerOrThrow(api(), {"gamma"});
  waitForJobStatus(api(), t.job_ids[0], "running");
  auto program = start({"status", t.job_ids[0], "--wait", "--interval", "100ms"}, options());
  ASSERT_TRUE(program->waitForOutput(t.job_ids[0] + " running 5%")) << program->out();
  config_.release("gamma");
  EXPECT_EQ(program->wait(), 0) << program->out() << program->err();
  EXPECT_NE(program->out().find(t.job_ids[0] + " completed 100% Waiting for the test"),
            std::string::npos)
      << program->out();
  EXPECT_NE(program->out().find("batch " + t.batch_id + " completed 100%"), std::string::npos)
      << program->out();
  // --json: the job's own final document.
  const RunResult json = ctl({"status", t.job_ids[0], "--wait", "--json"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(json.out, api().job(t.job_ids[0]).body + "\n");
}

// --- latest, history, collectors --------------------------------------------------------------

TEST_F(Collectorctl, LatestListsTheLatestRunOfEachCollectorOrOfTheNamedOnes) {
  const std::string alpha = completedRun("alpha");
  const std::string beta = completedRun("beta");
  const RunResult all = ctl({"latest"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  const auto out = lines(all.out);
  ASSERT_EQ(out.size(), 3u) << all.out;
  EXPECT_TRUE(std::regex_match(
      out[0],
      std::regex(R"(COLLECTOR +JOB ID +STATUS +PROGRESS +STARTED \(UTC\) +DURATION +MESSAGE)")))
      << out[0];
  EXPECT_TRUE(std::regex_match(
      out[1],
      std::regex("alpha +" + alpha +
                 R"( +completed +100% +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d+\.\ds +Synced 2 pages)")))
      << out[1];
  EXPECT_TRUE(std::regex_match(
      out[2], std::regex("beta +" + beta + R"( +failed +30% .* API returned 401)")))
      << out[2];

  const RunResult named = ctl({"latest", "beta", "--json"});
  ASSERT_EQ(named.exit_code, 0) << named.err;
  const auto body = parseObject(named.out);
  ASSERT_TRUE(body);
  EXPECT_TRUE(HasListEnvelope(*body, "latest_runs"));
  const auto runs = objectsOf(*body, "latest_runs");
  ASSERT_EQ(runs.size(), 1u) << named.out;
  EXPECT_TRUE(HasJobStatusShape(*runs[0]));
  EXPECT_EQ(stringField(*runs[0], "job_id"), beta);

  const RunResult unknown = ctl({"latest", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_EQ(unknown.err, "collectorctl: Unknown collectors: nosuch (400)\n");
}

TEST_F(Collectorctl, HistoryListsRunsNewestFirstAndHonoursTheLimit) {
  const std::string first = completedRun("alpha");
  const std::string second = completedRun("beta");
  const std::string third = completedRun("alpha");
  const RunResult table = ctl({"history"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  const auto out = lines(table.out);
  ASSERT_EQ(out.size(), 4u) << table.out;
  EXPECT_TRUE(std::regex_match(
      out[0], std::regex(R"(STARTED \(UTC\) +JOB ID +COLLECTOR +STATUS +DURATION +MESSAGE)")))
      << out[0];
  EXPECT_NE(out[1].find(third), std::string::npos) << table.out;
  EXPECT_NE(out[2].find(second), std::string::npos) << table.out;
  EXPECT_NE(out[3].find(first), std::string::npos) << table.out;
  EXPECT_TRUE(std::regex_search(out[2], std::regex(R"(beta +failed +\d+\.\ds +API returned 401)")))
      << out[2];

  const RunResult limited = ctl({"history", "-n", "2", "--json"});
  ASSERT_EQ(limited.exit_code, 0) << limited.err;
  const auto body = parseObject(limited.out);
  ASSERT_TRUE(body);
  EXPECT_TRUE(HasListEnvelope(*body, "collection_history"));
  const auto items = objectsOf(*body, "collection_history");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(stringField(*items[0], "job_id"), third);
  EXPECT_EQ(stringField(*items[1], "job_id"), second);

  const RunResult refused = ctl({"history", "--limit", "0"});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_EQ(refused.err, "collectorctl: 'limit' must be an integer from 1 to 1000 (400)\n");
}

TEST_F(Collectorctl, HistoryAndLatestSayWhenThereAreNoRunsYet) {
  daemon();
  const RunResult history = ctl({"history"});
  EXPECT_EQ(history.exit_code, 0);
  EXPECT_EQ(history.out, "No runs yet.\n");
  const RunResult latest = ctl({"latest"});
  EXPECT_EQ(latest.exit_code, 0);
  EXPECT_EQ(latest.out, "No runs yet.\n");
}

TEST_F(Collectorctl, CollectorsListsEveryConfiguredCollectorWithItsLastRun) {
  const std::string alpha = completedRun("alpha");
  const RunResult table = ctl({"collectors"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  const auto out = lines(table.out);
  ASSERT_EQ(out.size(), 6u) << table.out;
  EXPECT_TRUE(
      std::regex_match(out[0], std::regex(R"(NAME +TYPE +SCHEDULE +NEXT RUN +ACTIVE +LAST RUN)")))
      << out[0];
  EXPECT_TRUE(std::regex_match(
      out[1],
      std::regex(R"(alpha +exec +on request +- +- +completed \d+s ago \()" + alpha + R"(\))")))
      << out[1];
  EXPECT_TRUE(std::regex_match(out[2], std::regex(R"(beta +exec +on request +- +- +never)")))
      << out[2];

  const RunResult json = ctl({"collectors", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto body = parseObject(json.out);
  ASSERT_TRUE(body);
  std::vector<std::string> names;
  for (const auto& item : objectsOf(*body, "collectors"))
    names.push_back(stringField(*item, "name"));
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "beta", "gamma", "slow", "stepper"}));
  EXPECT_EQ(intField(*body, "total"), 5);
}

// --- cancel -----------------------------------------------------------------------------------

TEST_F(Collectorctl, CancelStopsARunningJobAndRefusesOneThatHasEnded) {
  const Triggered t = triggerOrThrow(api(), {"gamma"});
  waitForJobStatus(api(), t.job_ids[0], "running");
  const RunResult r = ctl({"cancel", t.job_ids[0]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Cancelling job " + t.job_ids[0] +
                       ": running jobs are being stopped; `collectorctl status " + t.job_ids[0] +
                       "` shows when they are cancelled\n");
  const HttpResponse job = waitForJobStatus(api(), t.job_ids[0], "cancelled");
  EXPECT_EQ(stringField(*job.object(), "status"), "cancelled") << job.describe();

  const RunResult again = ctl({"cancel", t.job_ids[0]});
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_EQ(again.err, "collectorctl: Job " + t.job_ids[0] +
                           " is already cancelled; there is nothing to cancel (409)\n");
}

TEST_F(Collectorctl, CancelOfAQueuedBatchEndsItAtOnce) {
  const Triggered running = triggerOrThrow(api(), {"gamma"});
  waitForJobStatus(api(), running.job_ids[0], "running");
  const Triggered queued = triggerOrThrow(api(), {"gamma"});  // waits behind the first
  const RunResult r = ctl({"cancel", queued.batch_id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Cancelled batch " + queued.batch_id + "\n");
  EXPECT_EQ(stringField(*api().batch(queued.batch_id).object(), "status"), "cancelled");

  const RunResult json = ctl({"cancel", running.batch_id, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto body = parseObject(json.out);
  ASSERT_TRUE(body);
  EXPECT_EQ(stringField(*body, "batch_id"), running.batch_id);
  EXPECT_TRUE(HasBatchShape(*body));
}

// --- logs -------------------------------------------------------------------------------------

TEST_F(Collectorctl, LogsPrintsTheWholeLogOrItsTail) {
  const std::string job_id = completedRun("alpha");
  const std::string log = readFile(config_.jobLogPath(job_id)).value_or("");
  ASSERT_NE(log.find("alpha done"), std::string::npos) << log;
  const RunResult whole = ctl({"logs", job_id});
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_EQ(whole.out, log);

  const RunResult tail = ctl({"logs", job_id, "--tail", "1"});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  const auto all = lines(log);
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(tail.out, all.back() + "\n");

  const RunResult unknown = ctl({"logs", "zz_00000000"});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_EQ(unknown.err, "collectorctl: Job not found (404)\n");
}

TEST_F(Collectorctl, LogsFollowPrintsWhatTheJobWritesUntilItEnds) {
  const Triggered t = triggerOrThrow(api(), {"gamma"});
  auto program = start({"logs", t.job_ids[0], "-f", "--interval", "100ms"}, options());
  ASSERT_TRUE(program->waitForOutput("gamma started")) << program->out();
  EXPECT_EQ(program->out().find("gamma finishing"), std::string::npos);
  config_.release("gamma");
  ASSERT_EQ(program->wait(), 0) << program->out() << program->err();
  EXPECT_NE(program->out().find("gamma finishing"), std::string::npos) << program->out();
  // Everything the job wrote, its final note included, exactly once.
  EXPECT_EQ(program->out(), readFile(config_.jobLogPath(t.job_ids[0])).value_or(""));
}

// --- usage --------------------------------------------------------------------------------------

TEST_F(Collectorctl, UsageErrorsPrintTheUsageAndExitTwo) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "collectorctl: no command given\n\nUsage: collectorctl [OPTIONS] COMMAND"},
      {{"frobnicate"},
       "collectorctl: unknown command 'frobnicate'\n\nUsage: collectorctl [OPTIONS]"},
      {{"run"},
       "collectorctl: 'run' needs at least one argument\n\nUsage: collectorctl run NAME..."},
      {{"run", "alpha", "--priority", "urgent"},
       "collectorctl: --priority must be high, normal or low, not 'urgent'\n\nUsage: collectorctl "
       "run"},
      {{"status", "a", "b"},
       "collectorctl: 'status' takes 1 argument\n\nUsage: collectorctl status"},
      {{"history", "--limit", "ten"},
       "collectorctl: --limit must be a whole number, not 'ten'\n\nUsage: collectorctl history"},
      {{"logs", "x", "--follow=yes"},
       "collectorctl: --follow takes no value\n\nUsage: collectorctl logs"},
      {{"collectors", "--wait"},
       "collectorctl: unknown option '--wait' for 'collectors'\n\nUsage: collectorctl collectors"},
      {{"run", "alpha", "--wait", "--interval", "5ms"},
       "collectorctl: --interval must be a duration of at least 100ms"},
      {{"latest", "--url"}, "collectorctl: --url needs a value (URL)"},
  };
  for (const auto& [args, expected] : cases) {
    const RunResult r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << expected;
    EXPECT_TRUE(r.err.starts_with(expected)) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(Collectorctl, HelpDescribesEveryCommand) {
  const RunResult overview = ctl({"--help"});
  ASSERT_EQ(overview.exit_code, 0);
  for (const char* command :
       {"run", "status", "latest", "history", "cancel", "logs", "collectors"}) {
    EXPECT_NE(overview.out.find("\n  " + std::string(command) + " "), std::string::npos) << command;
    const RunResult one = ctl({command, "--help"});
    EXPECT_EQ(one.exit_code, 0) << command;
    EXPECT_TRUE(one.out.starts_with("Usage: collectorctl " + std::string(command))) << one.out;
    EXPECT_EQ(ctl({"help", command}).out, one.out) << command;
  }
  EXPECT_NE(overview.out.find("3 the server refused"), std::string::npos) << overview.out;
  const RunResult version = ctl({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(std::regex_match(version.out, std::regex(R"(collectorctl \d+\.\d+\.\d+\n)")))
      << version.out;
}

// --- settings ---------------------------------------------------------------------------------

TEST_F(Collectorctl, TheUrlComesFromTheFlagThenTheEnvironmentThenClientIni) {
  const std::string good = url();
  const std::string bad = "http://127.0.0.1:" + std::to_string(closedPort());
  const std::string ini = home_.file(".config/collectord/client.ini");

  // client.ini alone (under $HOME/.config without XDG_CONFIG_HOME).
  writeFile(ini, "; collectorctl settings\nurl = " + good + "   ; the test daemon\n");
  ProgramOptions o = options();
  o.env.push_back({"COLLECTORD_URL", std::nullopt});
  EXPECT_EQ(ctl({"history"}, o).exit_code, 0);

  // The environment beats the file.
  writeFile(ini, "url = " + bad + "\n");
  o.env.push_back({"COLLECTORD_URL", good});
  EXPECT_EQ(ctl({"history"}, o).exit_code, 0);

  // The flag beats the environment.
  o.env.push_back({"COLLECTORD_URL", bad});
  const RunResult refused = ctl({"history"}, o);
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_EQ(refused.err, "collectorctl: cannot connect to " + bad +
                             ": connection refused (is collectord running there?)\n");
  EXPECT_EQ(ctl({"history", "--url", good}, o).exit_code, 0);
  EXPECT_EQ(ctl({"--url=" + good, "history"}, o).exit_code, 0);
}

TEST_F(Collectorctl, ClientIniIsReadFromXdgConfigHomeWhenItIsSet) {
  TempDir xdg;
  writeFile(home_.file(".config/collectord/client.ini"),
            "url = http://127.0.0.1:" + std::to_string(closedPort()) + "\n");
  writeFile(xdg.file("collectord/client.ini"), "[client]\nurl = \"" + url() + "\"\n");
  ProgramOptions o = options();
  o.env.push_back({"COLLECTORD_URL", std::nullopt});
  o.env.push_back({"XDG_CONFIG_HOME", xdg.path()});
  const RunResult r = ctl({"collectors"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(Collectorctl, AMistakeInClientIniIsAUsageErrorNamingTheFileAndLine) {
  const std::string ini = home_.file(".config/collectord/client.ini");
  writeFile(ini, "url = http://127.0.0.1:1\nuri = http://127.0.0.1:2\n");
  const RunResult r = ctl({"history"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "collectorctl: " + ini + ":2: unknown key 'uri' (known: url, api_key, ca_file)\n");

  const RunResult bad_url = ctl({"history", "--url", "ftp://example.com"});
  EXPECT_EQ(bad_url.exit_code, 2);
  EXPECT_TRUE(bad_url.err.starts_with("collectorctl: " + ini + ":2")) << bad_url.err;
  writeFile(ini, "");
  const RunResult scheme = ctl({"history", "--url", "ftp://example.com"});
  EXPECT_EQ(scheme.exit_code, 2);
  EXPECT_EQ(scheme.err,
            "collectorctl: the server URL must be http://HOST[:PORT] or https://HOST[:PORT], not "
            "'ftp://example.com'\n");
}

TEST_F(Collectorctl, TheApiKeyComesFromClientIniTheEnvironmentOrTheFlag) {
  writeFile(dir_.file("api_keys"), std::string(kKey) + " read,run ctl-test\n", 0600);
  config_.appendToMain("[auth]\nrequired = true\napi_keys_file = api_keys\n");
  daemon();

  const RunResult without = ctl({"history"});
  EXPECT_EQ(without.exit_code, 3);
  EXPECT_EQ(without.err,
            "collectorctl: Authentication required: send an X-API-Key header or Authorization: "
            "Bearer <token> (401)\n");

  const std::string ini = home_.file(".config/collectord/client.ini");
  writeFile(ini, "api_key = " + std::string(kKey) + "\n", 0600);
  const RunResult from_file = ctl({"run", "alpha", "--wait", "--interval", "100ms"});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(from_file.err, "");

  // A key others can read is used, with a warning.
  writeFile(ini, "api_key = " + std::string(kKey) + "\n", 0644);
  const RunResult readable = ctl({"history"});
  EXPECT_EQ(readable.exit_code, 0);
  EXPECT_EQ(readable.err, "collectorctl: warning: " + ini +
                              " holds an API key and other users can read it (chmod 600 " + ini +
                              ")\n");

  // The environment beats the file, and the flag the environment.
  writeFile(ini, "api_key = " + std::string(kKey) + "\n", 0600);
  ProgramOptions o = options();
  o.env.push_back({"COLLECTORD_API_KEY", "wrong-key-0123456789abcdef"});
  const RunResult wrong = ctl({"history"}, o);
  EXPECT_EQ(wrong.exit_code, 3);
  EXPECT_EQ(wrong.err, "collectorctl: Invalid credentials: invalid API key (401)\n");
  EXPECT_EQ(ctl({"history", "--api-key", kKey}, o).exit_code, 0);
}

// --- https ------------------------------------------------------------------------------------

TEST_F(Collectorctl, HttpsWorksWhenTheServersCertificateIsTrustedAndFailsClearlyOtherwise) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "the openssl command is not installed";
  }
  const std::string command =
      "timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1"
      " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
      dir_.file("key.pem") + " -out " + dir_.file("cert.pem") + " >" + dir_.file("openssl.log") +
      " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << readFile(dir_.file("openssl.log")).value_or("");
  config_.appendToMain("[http]\ntls_cert_file = cert.pem\ntls_key_file = key.pem\n");
  const std::string https = "https://127.0.0.1:" + std::to_string(daemon().port());

  const RunResult trusted = ctl({"--url", https, "--ca-file", dir_.file("cert.pem"), "collectors"});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
  EXPECT_TRUE(trusted.out.starts_with("NAME ")) << trusted.out;

  ProgramOptions o = options();
  o.env.push_back({"COLLECTORD_URL", https});
  o.env.push_back({"COLLECTORD_CA_FILE", dir_.file("cert.pem")});
  EXPECT_EQ(ctl({"history"}, o).exit_code, 0);

  const RunResult untrusted = ctl({"--url", https, "collectors"});
  EXPECT_EQ(untrusted.exit_code, 3);
  EXPECT_TRUE(untrusted.err.starts_with("collectorctl: TLS failure talking to " + https + ": "))
      << untrusted.err;
  EXPECT_TRUE(untrusted.err.ends_with(
      "(trust the server's certificate with --ca-file FILE, COLLECTORD_CA_FILE or ca_file)\n"))
      << untrusted.err;

  const RunResult plain =
      ctl({"--url", "http://127.0.0.1:" + std::to_string(daemon().port()), "collectors"});
  EXPECT_EQ(plain.exit_code, 3);
  EXPECT_TRUE(plain.err.ends_with(" without answering (does it expect https://?)\n")) << plain.err;
}

}  // namespace
}  // namespace collectord::test
