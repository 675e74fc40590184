// Supervision: process limits applied to a collector before it runs. nice, max_open_files
// (RLIMIT_NOFILE), memory_limit (RLIMIT_AS) and cpu_limit (RLIMIT_CPU), as the collector itself
// sees them.

#include <gtest/gtest.h>
#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

// The collector's "KEY=VALUE" lines from its job log.
std::string valueIn(const std::string& log, const std::string& key) {
  const std::string prefix = "\n" + key + "=";
  const auto at = log.find(prefix);
  if (at == std::string::npos) return "<missing>";
  const auto end = log.find('\n', at + 1);
  return log.substr(at + prefix.size(), end - at - prefix.size());
}

// The thread IDs of process `pid`.
std::vector<pid_t> threadsOf(pid_t pid) {
  std::vector<pid_t> tids;
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  if (DIR* d = ::opendir(task.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') tids.push_back(static_cast<pid_t>(std::stoi(e->d_name)));
    }
    ::closedir(d);
  }
  return tids;
}

constexpr const char* kPrintLimits = R"sh(
echo "nice=$(ps -o ni= -p $$ | tr -d ' ')"
echo "stat_nice=$(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f17)"
echo "nofile=$(ulimit -n)"
echo "as_kib=$(ulimit -v)"
echo "cpu=$(ulimit -t)"
)sh";

TEST(SupervisionProcessLimits, NiceOpenFilesAndMemoryLimitAreAppliedToTheCollector) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("limited", kPrintLimits,
                      {{"nice", "10"}, {"max_open_files", "64"}, {"memory_limit", "512M"}});
  config.addCollector("plain", kPrintLimits);
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"limited", "plain"});
  const HttpResponse batch = waitForBatchTerminal(client, run.batch_id);
  ASSERT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.describe();

  const std::string limited = readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  EXPECT_EQ(valueIn(limited, "nice"), "10") << limited;
  EXPECT_EQ(valueIn(limited, "stat_nice"), "10") << limited;
  EXPECT_EQ(valueIn(limited, "nofile"), "64") << limited;
  EXPECT_EQ(valueIn(limited, "as_kib"), "524288") << limited;

  const std::string plain = readFile(config.jobLogPath(run.job_ids[1])).value_or("");
  rlimit nofile{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &nofile), 0);
  EXPECT_EQ(valueIn(plain, "nice"), std::to_string(::getpriority(PRIO_PROCESS, 0))) << plain;
  EXPECT_EQ(valueIn(plain, "nofile"), std::to_string(nofile.rlim_cur)) << "the daemon's own";
  EXPECT_EQ(valueIn(plain, "as_kib"), "unlimited") << plain;
  EXPECT_EQ(valueIn(plain, "cpu"), "unlimited") << plain;
}

TEST(SupervisionProcessLimits, NiceIsAbsoluteEvenWhenTheDaemonRunsNiced) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("limited", kPrintLimits, {{"nice", "10"}});
  Daemon daemon(config);
  // The daemon runs 3 nicer than this test (every thread, the one starting collectors too), as
  // under a systemd unit with Nice=. `nice = 10` is the collector's niceness, not 10 more.
  const int base = ::getpriority(PRIO_PROCESS, 0);
  ASSERT_LE(base, 6) << "the test itself runs too niced for this check";
  int reniced = 0;
  for (pid_t tid : threadsOf(daemon.pid())) {
    reniced += ::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), base + 3) == 0;
  }
  ASSERT_GT(reniced, 0);
  const Triggered run = triggerOrThrow(daemon.client(), {"limited"});
  ASSERT_EQ(jsonOf(*waitForBatchTerminal(daemon.client(), run.batch_id).object(), "status"),
            jsonString("completed"));
  const std::string log = readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  EXPECT_EQ(valueIn(log, "nice"), "10") << log;
  EXPECT_EQ(valueIn(log, "stat_nice"), "10") << log;
}

TEST(SupervisionProcessLimits, CpuLimitStopsABusyLoopWithSigxcpu) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("spinner", "echo \"cpu=$(ulimit -t)\"\nwhile :; do :; done\n",
                      {{"cpu_limit", "1s"}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"spinner"});
  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0], std::chrono::seconds(20));
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job.object(), "error"),
            jsonString("cpu_limit of 1s exceeded (killed by signal 24 (SIGXCPU))"));
  const std::string log = readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  EXPECT_EQ(valueIn(log, "cpu"), "1") << log;
}

}  // namespace
}  // namespace collectord::test

namespace collectord::test {
namespace {

TEST(SupervisionProcessLimits, UserRunsTheCollectorAsThatAccountWithItsGroupsAndHome) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching accounts needs collectord to run as root";
  const passwd* pw = ::getpwnam("nobody");
  ASSERT_NE(pw, nullptr);
  int count = 64;
  std::vector<gid_t> groups(64);
  ASSERT_NE(::getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &count), -1);
  groups.resize(static_cast<std::size_t>(count));
  std::string expected_groups;
  std::sort(groups.begin(), groups.end());
  for (gid_t g : groups) expected_groups += (expected_groups.empty() ? "" : " ") + std::to_string(g);

  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);  // the account must reach its script
  DaemonConfig config(dir);
  ASSERT_EQ(::chmod(config.collectorsDir().c_str(), 0755), 0);
  config.addCollector("who",
                      "echo \"uid=$(id -u)\"\necho \"gid=$(id -g)\"\n"
                      "echo \"groups=$(id -G | tr ' ' '\\n' | sort -n | tr '\\n' ' ' | sed 's/ $//')\"\n"
                      "echo \"home=$HOME\"\n",
                      {{"user", "nobody"}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"who"});
  const HttpResponse job = waitForJobTerminal(client, run.job_ids[0]);
  ASSERT_EQ(jsonOf(*job.object(), "status"), jsonString("completed")) << job.describe();

  const std::string log = readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  EXPECT_EQ(valueIn(log, "uid"), std::to_string(pw->pw_uid)) << log;
  EXPECT_EQ(valueIn(log, "gid"), std::to_string(pw->pw_gid)) << log;
  EXPECT_EQ(valueIn(log, "groups"), expected_groups) << "the account's own groups, not root's";
  EXPECT_EQ(valueIn(log, "home"), pw->pw_dir) << "the account's home, not collectord's";

  // The child switched accounts while it shared the daemon's memory (clone with CLONE_VM); the
  // daemon keeps its own.
  const std::string status = readFile("/proc/" + std::to_string(daemon.pid()) + "/status").value_or("");
  for (const char* field : {"Uid:", "Gid:"}) {
    const auto at = status.find(field);
    ASSERT_NE(at, std::string::npos) << status;
    EXPECT_EQ(status.substr(at, status.find('\n', at) - at), std::string(field) + "\t0\t0\t0\t0")
        << "collectord's own credentials changed";
  }
}

}  // namespace
}  // namespace collectord::test
