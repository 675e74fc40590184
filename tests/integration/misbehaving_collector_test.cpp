// The misbehaving-collector matrix: real programs that crash, hang, lie, flood or escape, run by
// the real daemon. Each row checks what an admin sees (the job's final status and error, the job
// log) and that the daemon itself is unaffected: /healthz keeps answering promptly while the row
// runs (and so does GET /api/collectors, answered by the thread that reads the collector's
// pipes), and the daemon's peak memory grows by less than kMaxDaemonGrowthKib.
//
// Rows that other suites already cover are not repeated here; docs/reliability.md lists every
// behaviour with the test that covers it:
//   exit 0 without progress lines, exit N, reported completed then exit N, death by SIGKILL,
//   SIGTERM or a sent SIGSEGV                       collector_outcome_test.cpp
//   garbage lines, invalid UTF-8, progress < 0, > 100 or a string, an unknown status
//                                                   collector_protocol_test.cpp
//   hangs past `timeout`, stops reporting (`stall_timeout`), never writes a valid line,
//   ignores SIGTERM                                 supervision_timeout_test.cpp
//   runs past `cpu_limit`                           supervision_process_limits_test.cpp
//   cancelled with a grandchild ignoring SIGTERM    supervision_cancel_test.cpp

#include <gtest/gtest.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;
using Poco::JSON::Object;

// How much the daemon's peak resident memory may grow while one row runs.
#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer keeps freed memory in quarantine (256 MiB by default) to catch use after free,
// so the daemon's footprint there says nothing about ours; the plain build checks the bound.
constexpr long kMaxDaemonGrowthKib = 512 * 1024;
#else
constexpr long kMaxDaemonGrowthKib = 20 * 1024;
#endif
// How long /healthz and GET /api/collectors may take to answer while a row runs.
constexpr auto kPromptAnswer = 1000ms;

// A "Name:   123 kB" line of /proc/PID/status, in KiB; -1 when absent.
long statusKib(pid_t pid, const std::string& name) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(name + ":", 0) == 0) return std::stol(line.substr(name.size() + 1));
  }
  return -1;
}

// Watches a running daemon from the moment it is built. A thread asks, every 50 ms, /healthz
// (served by the HTTP threads alone) and GET /api/collectors (answered on the supervision
// thread, the one reading the collector's pipes), and keeps the slowest answer. The daemon's
// peak RSS (VmHWM) is reset first, so that peakGrowthKib() tells how far above its resident
// memory at the start the daemon went.
class DaemonWatch {
 public:
  explicit DaemonWatch(const Daemon& daemon) : pid_(daemon.pid()), client_(daemon.client()) {
    // "5" resets VmHWM to the current RSS (proc(5), clear_refs), so the peak is this row's.
    std::ofstream("/proc/" + std::to_string(pid_) + "/clear_refs") << "5\n";
    start_rss_kib_ = statusKib(pid_, "VmRSS");
    thread_ = std::thread([this] { poll(); });
  }
  ~DaemonWatch() { stop(); }
  DaemonWatch(const DaemonWatch&) = delete;
  DaemonWatch& operator=(const DaemonWatch&) = delete;

  // Stops the polling thread (idempotent); the figures below are final afterwards.
  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  long peakGrowthKib() const { return statusKib(pid_, "VmHWM") - start_rss_kib_; }
  std::chrono::milliseconds slowestAnswer() const { return slowest_.load(); }

  // Stops, then checks the daemon answered every request promptly, kept its memory, and is
  // still running.
  ::testing::AssertionResult daemonUnaffected() {
    stop();
    if (!processAlive(pid_)) return ::testing::AssertionFailure() << "the daemon died";
    if (failures_ > 0 || answers_ == 0) {
      return ::testing::AssertionFailure() << failures_ << " of " << answers_ + failures_
                                           << " requests failed (" << first_failure_ << ")";
    }
    if (slowestAnswer() > kPromptAnswer) {
      return ::testing::AssertionFailure()
             << slowest_path_ << " took " << slowestAnswer().count() << " ms to answer";
    }
    if (peakGrowthKib() >= kMaxDaemonGrowthKib) {
      return ::testing::AssertionFailure() << "the daemon's peak RSS grew by " << peakGrowthKib()
                                           << " KiB (from " << start_rss_kib_ << " KiB)";
    }
    return ::testing::AssertionSuccess();
  }

 private:
  void poll() {
    while (!done_) {
      for (const char* path : {"/healthz", "/api/collectors"}) {
        const auto sent = std::chrono::steady_clock::now();
        std::string failure;
        try {
          const HttpResponse response = client_.get(path);
          if (response.status != 200) failure = std::string(path) + ": " + response.describe();
        } catch (const std::exception& e) {
          failure = std::string(path) + ": " + e.what();
        }
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - sent);
        const std::lock_guard<std::mutex> lock(mutex_);
        if (took > slowest_.load()) {
          slowest_ = took;
          slowest_path_ = path;
        }
        if (failure.empty()) {
          ++answers_;
        } else if (failures_++ == 0) {
          first_failure_ = failure;
        }
      }
      std::this_thread::sleep_for(50ms);  // a pacing interval, not a synchronisation
    }
  }

  pid_t pid_;
  HttpClient client_;
  long start_rss_kib_ = 0;
  std::atomic<bool> done_{false};
  std::atomic<std::chrono::milliseconds> slowest_{0ms};
  std::mutex mutex_;  // guards the fields below while the thread runs; read after stop()
  std::string slowest_path_;
  int answers_ = 0;
  int failures_ = 0;
  std::string first_failure_;
  std::thread thread_;
};

// Triggers `collector` alone and returns its job's final JSON (bounded by `timeout`), after
// checking its shape.
Object::Ptr runToEnd(const HttpClient& client, const std::string& collector, std::string& job_id,
                     std::chrono::milliseconds timeout = 15s) {
  const Triggered run = triggerOrThrow(client, {collector});
  job_id = run.job_ids[0];
  const HttpResponse job = waitForJobTerminal(client, job_id, timeout);
  EXPECT_TRUE(IsJsonResponse(job, 200)) << job.describe();
  if (!job.object()) return new Object;
  EXPECT_TRUE(HasJobStatusShape(*job.object()));
  return job.object();
}

// How many times `needle` occurs in `text`.
std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// The table: one collector per row, and what the admin must see once its job has ended.

struct Row {
  std::string name;     // the test's name: what the collector does, then what happens
  std::string script;   // the collector (a "#!/bin/sh" script unless it names another shebang)
  Keys keys;            // extra [collector] keys
  std::string status;   // the final job status
  std::string error;    // the exact final error, or "" for none (JSON null)
  std::string message;  // the exact final message, or "" for none (JSON null)
  std::vector<std::string> log_lines;  // whole lines the job log must hold
};

std::ostream& operator<<(std::ostream& out, const Row& row) { return out << row.name; }

const Row kRows[] = {
    {"ExitCode1FailsWithExitCode1",
     "echo 'cannot reach the API' >&2\nexit 1\n",
     {},
     "failed",
     "exit code 1",
     "",
     {"cannot reach the API", "[collectord] exit code 1; job failed: exit code 1"}},

    {"ExitCode255FailsWithExitCode255",
     "exit 255\n",
     {},
     "failed",
     "exit code 255",
     "",
     {"[collectord] exit code 255; job failed: exit code 255"}},

    // A real invalid memory access, not a signal sent with kill (collector_outcome_test).
    {"ASegmentationFaultFailsNamingSigsegv",
     "#!/usr/bin/python3\n"
     "import ctypes, os, resource\n"
     "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
     "os.write(3, b'{\"progress\": 10, \"message\": \"parsing\"}\\n')\n"
     "ctypes.string_at(0)\n",
     {},
     "failed",
     "killed by signal 11 (SIGSEGV)",
     "parsing",
     {"[collectord] killed by signal 11 (SIGSEGV); job failed: killed by signal 11 (SIGSEGV)"}},

    // abort(): a failed assert, an uncaught C++ exception, glibc's heap checks.
    {"AnAbortFailsNamingSigabrt",
     "#!/usr/bin/python3\n"
     "import os, resource\n"
     "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
     "os.abort()\n",
     {},
     "failed",
     "killed by signal 6 (SIGABRT)",
     "",
     {"[collectord] killed by signal 6 (SIGABRT); job failed: killed by signal 6 (SIGABRT)"}},

    // The protocol knows running, completed and failed; a collector cannot end its job
    // cancelled (only an operator can), so the whole line is ignored, its message too.
    {"ReportingStatusCancelledIsAWarningAndTheExitCodeDecides",
     R"sh(
printf '{"progress": 40, "message": "half way"}\n' >&3
printf '{"status": "cancelled", "message": "giving up"}\n' >&3
exit 0
)sh",
     {},
     "completed",
     "",
     "half way",
     {"[collectord] protocol warning: line 2: \"status\" must be running, completed or failed, "
      "not \"cancelled\" at byte 23"}},

    // A raw NUL is a control character: JSON forbids it in a string and after the object.
    // The lines around it still count, and the API renders an escaped one as \u0000.
    {"NulBytesInALineMakeItAWarningAndTheNextLinesStillCount",
     R"sh(
printf '{"progress": 20, "message": "before\000after"}\n' >&3
printf '{"progress": 30}\000\n' >&3
printf '\000\000\000\n' >&3
printf '{"progress": 60, "message": "escaped \\u0000 is kept"}\n' >&3
exit 0
)sh",
     {},
     "completed",
     "",
     std::string("escaped ") + '\0' + " is kept",  // an escaped NUL is valid JSON: kept as is
     {"[collectord] protocol warning: line 1: control character in a string at byte 36",
      "[collectord] protocol warning: line 2: unexpected text after the JSON object at byte 17",
      "[collectord] protocol warning: line 3: not a JSON object at byte 1"}},

    // Closing fd 3 is how a collector says it has nothing to report; it is no failure.
    {"ClosingTheProgressFdAtOnceThenExitingZeroCompletes",
     "exec 3>&-\necho 'working without reporting'\nsleep 0.2\necho done\nexit 0\n",
     {},
     "completed",
     "",
     "Collection completed",
     {"working without reporting", "done", "[collectord] exit code 0; job completed"}},
};

class MisbehavingCollector : public ::testing::TestWithParam<Row> {};

TEST_P(MisbehavingCollector, EndsAsAnAdminExpectsAndLeavesTheDaemonUnaffected) {
  const Row& row = GetParam();
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", row.script, row.keys);
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  DaemonWatch watch(daemon);

  std::string job_id;
  const Object::Ptr job = runToEnd(client, "ninja", job_id);

  EXPECT_EQ(jsonOf(*job, "status"), jsonString(row.status));
  EXPECT_EQ(jsonOf(*job, "error"), row.error.empty() ? "null" : jsonString(row.error));
  std::string message = row.message;
  if (config.onPostgres()) {
    // PostgreSQL's text holds no NUL: the store keeps U+FFFD in its place.
    for (auto at = message.find('\0'); at != std::string::npos; at = message.find('\0', at)) {
      message.replace(at, 1, "\xEF\xBF\xBD");
    }
  }
  EXPECT_EQ(jsonOf(*job, "message"), message.empty() ? "null" : jsonString(message));
  const std::vector<std::string> log = readLines(config.jobLogPath(job_id));
  for (const std::string& line : row.log_lines) {
    EXPECT_NE(std::find(log.begin(), log.end(), line), log.end())
        << "no line \"" << line << "\" in the job log:\n"
        << readFile(config.jobLogPath(job_id)).value_or("(none)");
  }
  EXPECT_TRUE(waitUntil([&] { return processesOfJob(job_id).empty(); }))
      << "processes of the job are left";
  EXPECT_TRUE(watch.daemonUnaffected());
}

INSTANTIATE_TEST_SUITE_P(Rows, MisbehavingCollector, ::testing::ValuesIn(kRows),
                         [](const ::testing::TestParamInfo<Row>& param) {
                           return param.param.name;
                         });

// ---------------------------------------------------------------------------------------------
// Rows that need more than the table: floods, processes left behind, limits.

// The session ID of process `pid` (field 6 of /proc/PID/stat), or -1.
pid_t sessionOf(pid_t pid) {
  const std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat").value_or("");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string state;
  pid_t ppid = 0, pgrp = 0, session = -1;
  fields >> state >> ppid >> pgrp >> session;
  return session;
}

TEST(MisbehavingCollectorFlood, OneGibOfStdoutEndsInACappedLogAndTheDaemonBuffersNone) {
  TempDir dir;
  DaemonConfig config(dir);
  // dd with 1 MiB blocks is the fastest writer there is: the daemon is the bottleneck.
  config.addCollector("flood", R"sh(
printf '{"progress": 10, "message": "flooding"}\n' >&3
dd if=/dev/zero bs=1M count=1024 status=none
printf '{"progress": 90, "message": "flooded"}\n' >&3
)sh");
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  DaemonWatch watch(daemon);

  const auto started = std::chrono::steady_clock::now();
  std::string job_id;
  const Object::Ptr job = runToEnd(client, "flood", job_id, 60s);
  const auto took = std::chrono::steady_clock::now() - started;

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*job, "error"), "null");
  EXPECT_EQ(jsonOf(*job, "message"), jsonString("flooded"));
  // The default logs.max_bytes_per_job (10 MiB) holds: the newest output behind a marker that
  // counts what was dropped, and the daemon's own closing line.
  const std::string log = readFile(config.jobLogPath(job_id)).value_or("");
  EXPECT_LE(log.size(), 10u * 1024 * 1024 + 1024) << "the job log is not capped";
  const std::string marker_start = "[collectord] ";
  const std::string marker_end = " earlier bytes of output were dropped (logs.max_bytes_per_job)";
  ASSERT_EQ(log.rfind(marker_start, 0), 0u) << log.substr(0, 200);
  const auto newline = log.find('\n');
  ASSERT_NE(newline, std::string::npos);
  ASSERT_EQ(log.substr(newline - marker_end.size(), marker_end.size()), marker_end);
  const std::uint64_t dropped = std::stoull(log.substr(marker_start.size()));
  EXPECT_GT(dropped, (1024u - 10u) * 1024 * 1024) << "the marker must count the dropped output";
  EXPECT_LE(dropped, 1024u * 1024 * 1024) << "the marker counts more than was written";
  // The output ends without a newline, so the daemon's closing line follows on the same line.
  const std::string closing = "[collectord] exit code 0; job completed\n";
  EXPECT_EQ(log.substr(log.size() - std::min(log.size(), closing.size())), closing);
  EXPECT_TRUE(watch.daemonUnaffected());
  std::cout << "[ measured ] 1 GiB flood ran in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
            << " ms; slowest answer " << watch.slowestAnswer().count()
            << " ms; daemon peak RSS growth " << watch.peakGrowthKib() << " KiB\n";
}

TEST(MisbehavingCollectorFlood, ATenMibProtocolLineIsDroppedAndTheNextLineCounts) {
  TempDir dir;
  DaemonConfig config(dir);
  // Line 1: 10 MiB of 'x' and then, on the same line, a valid object: the line as a whole is
  // over the 64 KiB limit, so the object in it is swallowed too. Line 2 is valid.
  config.addCollector("longline", R"sh(
printf '{"progress": 10, "message": "' >&3
dd if=/dev/zero bs=1M count=10 status=none | tr '\0' x >&3
printf '"}{"progress": 50, "message": "swallowed"}\n' >&3
printf '{"progress": 70, "message": "after the long line"}\n' >&3
exit 0
)sh");
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  DaemonWatch watch(daemon);

  std::string job_id;
  const Object::Ptr job = runToEnd(client, "longline", job_id);

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*job, "error"), "null");
  EXPECT_EQ(jsonOf(*job, "message"), jsonString("after the long line"));
  const std::string log = readFile(config.jobLogPath(job_id)).value_or("");
  EXPECT_EQ(count(log, "protocol warning"), 1u) << log;
  EXPECT_NE(log.find("\n[collectord] protocol warning: line 1: longer than 65536 bytes; ignored\n"),
            std::string::npos)
      << log;
  EXPECT_TRUE(watch.daemonUnaffected());
}

TEST(MisbehavingCollectorLeftovers, AGrandchildHoldingThePipesAndIgnoringSigtermDiesWithTheJob) {
  TempDir dir;
  DaemonConfig config(dir);
  // The grandchild inherits stdout, stderr and fd 3 and ignores SIGTERM (an ignored signal
  // stays ignored across exec); the collector exits 0 at once.
  config.addCollector("orphaner", R"sh(
sh -c 'trap "" TERM; echo $$ > "$GRANDCHILD.tmp" && mv "$GRANDCHILD.tmp" "$GRANDCHILD"; exec sleep 60' &
while [ ! -s "$GRANDCHILD" ]; do sleep 0.01; done
printf '{"progress": 50, "message": "parent done"}\n' >&3
exit 0
)sh",
                      {{"env.GRANDCHILD", dir.file("grandchild.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  DaemonWatch watch(daemon);
  ProcessReaper reaper;

  std::string job_id;
  const Object::Ptr job = runToEnd(client, "orphaner", job_id);
  const pid_t grandchild = waitForPidFile(dir.file("grandchild.pid"));
  reaper.add(grandchild);

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*job, "error"), "null");
  EXPECT_EQ(jsonOf(*job, "message"), jsonString("parent done"));
  EXPECT_LT(job->getValue<double>("duration_seconds"), 5.0)
      << "the pipes the grandchild holds must not keep the job running";
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(waitUntilGone(grandchild)) << "the grandchild survived its job";
  EXPECT_TRUE(waitUntil([&] { return processesOfJob(job_id).empty(); }));
  const std::vector<std::string> log = readLines(config.jobLogPath(job_id));
  EXPECT_NE(std::find(log.begin(), log.end(),
                      "[collectord] killed processes left in the job's process group"),
            log.end());
  EXPECT_TRUE(watch.daemonUnaffected());
}

// A child that calls setsid is in another session and process group: signals to the job's
// group miss it, so only its COLLECTOR_JOB_ID and COLLECTOR_BATCH_ID give it away. It ignores
// SIGTERM, writes its pid to $ESCAPEE, and takes `redirections` (to let go of the job's pipes).
std::string startEscapee(const std::string& redirections) {
  return "setsid sh -c 'trap \"\" TERM; echo $$ > \"$ESCAPEE.tmp\" && "
         "mv \"$ESCAPEE.tmp\" \"$ESCAPEE\"; exec sleep 60' " +
         redirections +
         " &\n"
         "while [ ! -s \"$ESCAPEE\" ]; do sleep 0.01; done\n";
}

TEST(MisbehavingCollectorLeftovers, AChildInItsOwnSessionDiesWhenTheJobCompletes) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector(
      "escaper",
      startEscapee("") +
          "printf '{\"progress\": 50, \"message\": \"left a child behind\"}\\n' >&3\n"
          "exit 0\n",
      {{"env.ESCAPEE", dir.file("escapee.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  DaemonWatch watch(daemon);
  ProcessReaper reaper;

  std::string job_id;
  const Object::Ptr job = runToEnd(client, "escaper", job_id);
  const pid_t escapee = waitForPidFile(dir.file("escapee.pid"));
  reaper.add(escapee);

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*job, "error"), "null");
  EXPECT_EQ(jsonOf(*job, "message"), jsonString("left a child behind"));
  ASSERT_GT(escapee, 0);
  EXPECT_TRUE(waitUntilGone(escapee))
      << "the child in its own session (" << sessionOf(escapee) << ") survived its job";
  EXPECT_TRUE(waitUntil([&] { return processesOfJob(job_id).empty(); }));
  const std::vector<std::string> log = readLines(config.jobLogPath(job_id));
  EXPECT_NE(std::find(log.begin(), log.end(),
                      "[collectord] killed 1 process the job left outside its process group"),
            log.end())
      << readFile(config.jobLogPath(job_id)).value_or("");
  EXPECT_TRUE(watch.daemonUnaffected());
}

TEST(MisbehavingCollectorLeftovers, AChildInItsOwnSessionDiesWhenTheJobTimesOut) {
  TempDir dir;
  DaemonConfig config(dir);
  // This one lets go of the pipes too: nothing but its environment ties it to the job.
  config.addBlockingCollector(
      "escaper", startEscapee("</dev/null >/dev/null 2>&1 3>&-") + "wait_for_release never\n",
      {{"timeout", "1s"}, {"kill_grace", "1s"}, {"env.ESCAPEE", dir.file("escapee.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  DaemonWatch watch(daemon);
  ProcessReaper reaper;

  std::string job_id;
  const Object::Ptr job = runToEnd(client, "escaper", job_id);
  const pid_t escapee = waitForPidFile(dir.file("escapee.pid"));
  reaper.add(escapee);

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("timed out after 1s"));
  ASSERT_GT(escapee, 0);
  EXPECT_TRUE(waitUntilGone(escapee)) << "the child in its own session survived its job";
  EXPECT_TRUE(waitUntil([&] { return processesOfJob(job_id).empty(); }));
  const std::vector<std::string> log = readLines(config.jobLogPath(job_id));
  EXPECT_NE(std::find(log.begin(), log.end(),
                      "[collectord] killed 1 process the job left outside its process group"),
            log.end())
      << readFile(config.jobLogPath(job_id)).value_or("");
  EXPECT_TRUE(watch.daemonUnaffected());
}

// memory_limit is RLIMIT_AS: the kernel refuses the allocation and sends no signal, so how the
// run ends is the program's own choice (Python raises MemoryError and exits 1; C++ throws
// bad_alloc and aborts; C code may crash on NULL). The daemon cannot tell that apart from any
// other failure, so the error names the exit and the job log holds the program's own words.
TEST(MisbehavingCollectorLimits, ExhaustingMemoryLimitFailsWithTheProgramsOwnExitAndMessage) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("hungry", R"py(#!/usr/bin/python3
import os
os.write(3, b'{"progress": 10, "message": "loading everything into memory"}\n')
everything = bytearray(1 << 30)
os.write(3, b'{"progress": 90, "message": "loaded"}\n')
)py",
                      {{"memory_limit", "256M"}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  DaemonWatch watch(daemon);

  std::string job_id;
  const Object::Ptr job = runToEnd(client, "hungry", job_id);

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("exit code 1"));
  EXPECT_EQ(jsonOf(*job, "message"), jsonString("loading everything into memory"));
  const std::vector<std::string> log = readLines(config.jobLogPath(job_id));
  EXPECT_NE(std::find(log.begin(), log.end(), "MemoryError"), log.end())
      << readFile(config.jobLogPath(job_id)).value_or("");
  EXPECT_TRUE(watch.daemonUnaffected());
}

}  // namespace
}  // namespace collectord::test
