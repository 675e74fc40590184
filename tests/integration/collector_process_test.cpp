// The child process a collector runs as: its environment, file descriptors, process group,
// working directory, arguments, and where its stdout and stderr go.

#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

// The lines the collector itself wrote to its job log (the daemon's "[collectord] ..." lines
// left out).
std::vector<std::string> collectorLines(const DaemonConfig& config, const std::string& job_id) {
  std::vector<std::string> lines;
  std::istringstream text(readFile(config.jobLogPath(job_id)).value_or(""));
  for (std::string line; std::getline(text, line);) {
    if (line.rfind("[collectord]", 0) != 0) lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> sorted(std::vector<std::string> lines) {
  std::sort(lines.begin(), lines.end());
  return lines;
}

// Runs `collectors` as one batch and waits until it ends; expects it to complete.
Triggered runBatch(const HttpClient& client, const std::vector<std::string>& collectors) {
  auto run = triggerOrThrow(client, collectors);
  auto batch = waitForBatchTerminal(client, run.batch_id);
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.describe();
  return run;
}

TEST(CollectorProcess, ReceivesOnlyTheDocumentedEnvironment) {
  TempDir dir;
  DaemonConfig config(dir);
  // `env` is a bare name, so the daemon finds it on PATH; it prints exactly what it was given.
  config.addCollector("ninja", "",
                      {{"command", "env"},
                       {"env.NINJA_URL", "https://ninja.example/api?page=1&size=50"},
                       {"env.GREETING", "two words"}});
  DaemonOptions options;
  options.env = {{"PATH", "/usr/bin:/bin"},
                 {"HOME", dir.file("home")},
                 {"LANG", "C.UTF-8"},
                 {"COLLECTORD_TEST_SECRET", "must-not-leak"}};
  Daemon daemon(config, options);

  auto run = runBatch(daemon.client(), {"ninja"});

  EXPECT_EQ(sorted(collectorLines(config, run.job_ids[0])),
            sorted({"PATH=/usr/bin:/bin", "HOME=" + dir.file("home"), "LANG=C.UTF-8",
                    "COLLECTOR_PROGRESS_FD=3", "COLLECTOR_JOB_ID=" + run.job_ids[0],
                    "COLLECTOR_BATCH_ID=" + run.batch_id, "COLLECTOR_NAME=ninja",
                    "COLLECTOR_ATTEMPT=1", "NINJA_URL=https://ninja.example/api?page=1&size=50", "GREETING=two words"}));
}

TEST(CollectorProcess, GetsTheDefaultPathAndNoHomeOrLangWhenTheDaemonHasNone) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "", {{"command", "/usr/bin/env"}});
  DaemonOptions options;
  options.env = {{"PATH", std::nullopt}, {"HOME", std::nullopt}, {"LANG", std::nullopt}};
  Daemon daemon(config, options);

  auto run = runBatch(daemon.client(), {"ninja"});

  EXPECT_EQ(sorted(collectorLines(config, run.job_ids[0])),
            sorted({"PATH=/usr/local/bin:/usr/bin:/bin", "COLLECTOR_PROGRESS_FD=3",
                    "COLLECTOR_JOB_ID=" + run.job_ids[0], "COLLECTOR_BATCH_ID=" + run.batch_id,
                    "COLLECTOR_NAME=ninja", "COLLECTOR_ATTEMPT=1"}));
}

TEST(CollectorProcess, RunsInItsOwnProcessGroupWithOnlyStdioAndTheProgressPipe) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", R"py(#!/usr/bin/python3
import fcntl, json, os, stat
open_fds = {}
for fd in range(0, 1024):
    try:
        os.fstat(fd)
        open_fds[str(fd)] = os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        pass
print("FACTS " + json.dumps({
    "open_fds": sorted(int(fd) for fd in open_fds),
    "fd_targets": open_fds,
    "stdin": os.readlink("/proc/self/fd/0"),
    "stdout": os.readlink("/proc/self/fd/1"),
    "stderr": os.readlink("/proc/self/fd/2"),
    "stdout_is_pipe": stat.S_ISFIFO(os.fstat(1).st_mode),
    "stdout_stderr_same": os.readlink("/proc/self/fd/1") == os.readlink("/proc/self/fd/2"),
    "fd3_is_pipe": stat.S_ISFIFO(os.fstat(3).st_mode),
    "fd3_write_only": fcntl.fcntl(3, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY,
    "own_process_group": os.getpgid(0) == os.getpid(),
}), flush=True)
)py");
  Daemon daemon(config);

  auto run = runBatch(daemon.client(), {"ninja"});

  auto lines = collectorLines(config, run.job_ids[0]);
  ASSERT_EQ(lines.size(), 1u) << readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  ASSERT_EQ(lines[0].rfind("FACTS ", 0), 0u) << lines[0];
  Poco::JSON::Parser parser;
  auto facts = parser.parse(lines[0].substr(6)).extract<Object::Ptr>();
  EXPECT_EQ(jsonOf(*facts, "open_fds"), "[0,1,2,3]") << jsonOf(*facts, "fd_targets");
  EXPECT_EQ(jsonOf(*facts, "stdin"), jsonString("/dev/null"));
  // stdout and stderr share one pipe that collectord copies into the capped job log.
  EXPECT_EQ(jsonOf(*facts, "stdout_is_pipe"), "true");
  EXPECT_EQ(jsonOf(*facts, "stdout_stderr_same"), "true");
  EXPECT_EQ(jsonOf(*facts, "fd3_is_pipe"), "true");
  EXPECT_EQ(jsonOf(*facts, "fd3_write_only"), "true");
  EXPECT_EQ(jsonOf(*facts, "own_process_group"), "true");
}

// collectord ignores SIGPIPE and blocks every signal while it creates a collector (which shares
// its memory until exec); the collector itself starts with nothing blocked and SIGPIPE fatal.
TEST(CollectorProcess, StartsWithNoSignalBlockedAndSigpipeNotIgnored) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exec grep -E '^Sig(Blk|Ign):' /proc/self/status\n");
  Daemon daemon(config);

  auto run = runBatch(daemon.client(), {"ninja"});

  const auto lines = collectorLines(config, run.job_ids[0]);
  ASSERT_EQ(lines.size(), 2u) << readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  EXPECT_EQ(lines[0], "SigBlk:\t0000000000000000");
  ASSERT_EQ(lines[1].rfind("SigIgn:\t", 0), 0u) << lines[1];
  const unsigned long long ignored = std::stoull(lines[1].substr(8), nullptr, 16);
  EXPECT_EQ(ignored & (1ULL << (SIGPIPE - 1)), 0u) << lines[1];
}

TEST(CollectorProcess, WritesStdoutAndStderrToTheJobLogInOrder) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", R"sh(
echo "fetched 10 devices"
echo "warning: slow API" >&2
echo "saved 10 devices"
)sh");
  Daemon daemon(config);

  auto run = runBatch(daemon.client(), {"ninja"});

  EXPECT_EQ(
      collectorLines(config, run.job_ids[0]),
      (std::vector<std::string>{"fetched 10 devices", "warning: slow API", "saved 10 devices"}));
}

TEST(CollectorProcess, KeepsOneLogFilePerJob) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "echo \"run $COLLECTOR_JOB_ID\"\n");
  Daemon daemon(config);
  auto client = daemon.client();

  auto first = runBatch(client, {"ninja"});
  auto second = runBatch(client, {"ninja"});

  EXPECT_EQ(collectorLines(config, first.job_ids[0]),
            std::vector<std::string>{"run " + first.job_ids[0]});
  EXPECT_EQ(collectorLines(config, second.job_ids[0]),
            std::vector<std::string>{"run " + second.job_ids[0]});
}

TEST(CollectorProcess, RunsInTheCollectorFolderUnlessAWorkingDirectoryIsConfigured) {
  TempDir dir;
  DaemonConfig config(dir);
  writeFile(dir.file("absolute-work/.keep"), "");
  writeFile(dir.file("relative-work/.keep"), "");
  config.addCollector("default", "pwd -P\n")
      .addCollector("absolute", "pwd -P\n", {{"working_directory", dir.file("absolute-work")}})
      .addCollector("relative", "pwd -P\n", {{"working_directory", "../relative-work"}});
  Daemon daemon(config);

  auto run = runBatch(daemon.client(), {"default", "absolute", "relative"});

  EXPECT_EQ(collectorLines(config, run.job_ids[0]),
            std::vector<std::string>{canonicalPath(config.collectorsDir())});
  EXPECT_EQ(collectorLines(config, run.job_ids[1]),
            std::vector<std::string>{canonicalPath(dir.file("absolute-work"))});
  EXPECT_EQ(collectorLines(config, run.job_ids[2]),
            std::vector<std::string>{canonicalPath(dir.file("relative-work"))});
}

TEST(CollectorProcess, PassesArgsSplitWithShellStyleQuoting) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "for arg in \"$@\"; do printf '[%s]\\n' \"$arg\"; done\n",
                      {{"args", R"(--full "two words" 'single $HOME' a\ b "say \"hi\"" x"y"z)"}});
  Daemon daemon(config);

  auto run = runBatch(daemon.client(), {"ninja"});

  EXPECT_EQ(collectorLines(config, run.job_ids[0]),
            (std::vector<std::string>{"[--full]", "[two words]", "[single $HOME]", "[a b]",
                                      "[say \"hi\"]", "[xyz]"}));
}

TEST(CollectorProcess, RunsACommandGivenWithARelativePathFromTheCollectorFolder) {
  TempDir dir;
  DaemonConfig config(dir);
  writeExecutable(dir.file("tools/collect.sh"), "#!/bin/sh\necho \"tool ran with $1\"\n");
  config.addCollector("ninja", "", {{"command", "../tools/collect.sh"}, {"args", "--quick"}});
  Daemon daemon(config);

  auto run = runBatch(daemon.client(), {"ninja"});

  EXPECT_EQ(collectorLines(config, run.job_ids[0]),
            std::vector<std::string>{"tool ran with --quick"});
}

}  // namespace
}  // namespace collectord::test
