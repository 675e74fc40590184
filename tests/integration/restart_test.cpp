// The daemon's own lifecycle: the port file, SIGTERM/SIGINT with and without running jobs, a
// crash (kill -9) followed by a restart on the same folder, and what survives a restart.

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <regex>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

// A collector that records its pid, reports progress, and blocks until released.
constexpr const char* kRecordPidThenWait = R"sh(
echo $$ > "$PIDFILE"
printf '{"progress": 50, "message": "Processing page 5/10"}\n' >&3
wait_for_release 1
)sh";

// Kills a collector's process group if a failed test left it behind.
struct KillGroupOnExit {
  pid_t pid = 0;
  ~KillGroupOnExit() {
    if (pid > 0 && processAlive(pid)) ::kill(-pid, SIGKILL);
  }
};

pid_t readPid(const std::string& path) {
  pid_t pid = 0;
  waitUntil([&] {
    auto text = readFile(path);
    pid = text && !text->empty() && text->back() == '\n' ? std::stoi(*text) : 0;
    return pid > 0;
  });
  return pid;
}

// Every field of `after` equals the same field of `before`, and neither has fields the other lacks.
::testing::AssertionResult SameFields(const HttpResponse& before, const HttpResponse& after) {
  auto a = before.object();
  auto b = after.object();
  if (!a || !b) return ::testing::AssertionFailure() << "not JSON objects";
  auto failure = ::testing::AssertionFailure();
  bool same = true;
  for (const auto& object : {a, b}) {
    for (const auto& key : object->getNames()) {
      if (jsonOf(*a, key) != jsonOf(*b, key)) {
        same = false;
        failure << "\n  " << key << ": " << jsonOf(*a, key) << " became " << jsonOf(*b, key);
      }
    }
  }
  return same ? ::testing::AssertionSuccess() : failure;
}

bool isRunningWithMessage(const Object& job) {
  return stringField(job, "status") == "running" &&
         stringField(job, "message") == "Processing page 5/10";
}

TEST(DaemonLifecycle, ServesOnThePortItWritesAndExitsZeroOnSigterm) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);

  auto port_file = readFile(dir.file("port")).value_or("");
  EXPECT_TRUE(std::regex_match(port_file, std::regex("[1-9][0-9]*\n"))) << port_file;
  EXPECT_EQ(port_file, std::to_string(daemon.port()) + "\n");
  EXPECT_TRUE(IsJsonResponse(daemon.client().get("/api/collectors/history"), 200));

  EXPECT_EQ(daemon.stop(), 0) << daemon.logText();
}

// A connected TCP socket to 127.0.0.1:port that has sent `request`; -1 on failure.
int connectAndSend(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// Out of descriptors, accept(2) fails at once for every waiting connection: the daemon warns
// once, backs off instead of spinning, and serves again once it has descriptors.
TEST(DaemonLifecycle, OutOfDescriptorsItWarnsOnceBacksOffAndThenServesAgain) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  ASSERT_TRUE(IsJsonResponse(daemon.client().get("/api/collectors/history"), 200));

  rlimit before{};
  ASSERT_EQ(::prlimit(daemon.pid(), RLIMIT_NOFILE, nullptr, &before), 0);
  // Below every descriptor it has open but stdio: the next accept, whatever number it would
  // take, fails with EMFILE (descriptors open already stay valid).
  const rlimit tight{3, before.rlim_max};
  ASSERT_EQ(::prlimit(daemon.pid(), RLIMIT_NOFILE, &tight, nullptr), 0);

  const int waiting = connectAndSend(daemon.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_GE(waiting, 0);
  const auto warnings = [&] {
    const std::string log = daemon.logText();
    std::size_t n = 0;
    for (auto at = log.find("cannot accept connections"); at != std::string::npos;
         at = log.find("cannot accept connections", at + 1)) {
      ++n;
    }
    return n;
  };
  ASSERT_TRUE(waitUntil([&] { return warnings() > 0; })) << daemon.logText();
  // Failing 20 times a second (Poco's own loop) would write a warning each time; over a second
  // the back-off retries a handful of times and says so once.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(warnings(), 1u) << daemon.logText();

  ASSERT_EQ(::prlimit(daemon.pid(), RLIMIT_NOFILE, &before, nullptr), 0);
  // The connection that waited is reset rather than answered (not explained yet); new ones are
  // served.
  ::close(waiting);
  EXPECT_TRUE(IsJsonResponse(daemon.client().get("/api/collectors/history"), 200));
}

TEST(DaemonLifecycle, ExitsZeroOnSigint) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);

  EXPECT_EQ(daemon.stopWith(SIGINT), 0) << daemon.logText();
}

TEST(DaemonLifecycle, WritesItsPidToThePidfile) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  DaemonOptions options;
  options.extra_args = {"--pidfile=" + dir.file("collectord.pid")};
  Daemon daemon(config, options);

  auto text = readFile(dir.file("collectord.pid")).value_or("");
  EXPECT_TRUE(std::regex_match(text, std::regex("[1-9][0-9]*\n?"))) << text;
  EXPECT_EQ(std::atoi(text.c_str()), daemon.pid());
  EXPECT_EQ(daemon.stop(), 0) << daemon.logText();
}

TEST(DaemonLifecycle, WritesItsOwnLogInTheLogsDirectory) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  waitForBatchTerminal(daemon.client(), triggerOrThrow(daemon.client(), {"ninja"}).batch_id);
  daemon.stop();

  EXPECT_FALSE(readFile(config.logsDir() + "/collectord.log").value_or("").empty())
      << "no daemon log at " << config.logsDir() << "/collectord.log";
}

TEST(Shutdown, CancelsRunningJobsOnSigtermAndExitsZero) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("sophos", "exit 0\n");
  config.addBlockingCollector(
      "ninja",
      std::string("trap 'echo got SIGTERM > \"$MARK\"; exit 143' TERM\n") + kRecordPidThenWait,
      {{"env.PIDFILE", dir.file("ninja.pid")}, {"env.MARK", dir.file("ninja.mark")}});
  KillGroupOnExit guard;
  Triggered run;
  {
    Daemon daemon(config);
    auto client = daemon.client();
    run = triggerOrThrow(client, {"sophos", "ninja"});
    waitForJob(client, run.job_ids[0],
               [](const Object& j) { return stringField(j, "status") == "completed"; });
    auto running = waitForJob(client, run.job_ids[1], isRunningWithMessage);
    ASSERT_TRUE(isRunningWithMessage(*running.object())) << running.describe();
    guard.pid = readPid(dir.file("ninja.pid"));

    EXPECT_EQ(daemon.stop(), 0) << daemon.logText();
  }

  EXPECT_EQ(readFile(dir.file("ninja.mark")), std::string("got SIGTERM\n"))
      << "the collector's process group did not get SIGTERM";
  EXPECT_TRUE(waitUntil([&] { return !processAlive(guard.pid); })) << "collector still alive";

  Daemon restarted(config);
  auto client = restarted.client();
  auto job = client.job(run.job_ids[1]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  ASSERT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("supervisor shutting down"));
  EXPECT_NE(jsonOf(*job.object(), "ended_at"), "null");
  auto batch = client.batch(run.batch_id);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  ASSERT_TRUE(HasBatchShape(*batch.object()));
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*batch.object(), "message"), jsonString("1 of 2 collectors cancelled"));
  EXPECT_EQ(jsonOf(*batch.object(), "error"), "null");
  auto jobs = objectsOf(*batch.object(), "collectors");
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jsonOf(*jobs[0], "status"), jsonString("completed"));
}

TEST(Shutdown, KillsACollectorThatIgnoresSigtermAfterTheShutdownGrace) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nshutdown_grace = 2s\n");
  config.addBlockingCollector("ninja", std::string("trap '' TERM\n") + kRecordPidThenWait,
                              {{"env.PIDFILE", dir.file("ninja.pid")}});
  KillGroupOnExit guard;
  Triggered run;
  {
    Daemon daemon(config);
    auto client = daemon.client();
    run = triggerOrThrow(client, {"ninja"});
    auto running = waitForJob(client, run.job_ids[0], isRunningWithMessage);
    ASSERT_TRUE(isRunningWithMessage(*running.object())) << running.describe();
    guard.pid = readPid(dir.file("ninja.pid"));

    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(daemon.stop(std::chrono::seconds(20)), 0) << daemon.logText();
    auto waited = std::chrono::steady_clock::now() - start;

    EXPECT_GE(waited, std::chrono::milliseconds(1800)) << "SIGKILL came before the 2 s grace";
    EXPECT_LE(waited, std::chrono::seconds(8));
  }
  EXPECT_TRUE(waitUntil([&] { return !processAlive(guard.pid); })) << "collector still alive";

  Daemon restarted(config);
  auto job = restarted.client().job(run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  ASSERT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString("supervisor shutting down"));
}

TEST(Restart, FailsAJobThatWasRunningWhenThePreviousDaemonWasKilled) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", kRecordPidThenWait,
                              {{"env.PIDFILE", dir.file("ninja.pid")}});
  KillGroupOnExit guard;
  Triggered run;
  {
    Daemon daemon(config);
    auto client = daemon.client();
    run = triggerOrThrow(client, {"ninja"});
    auto running = waitForJob(client, run.job_ids[0], isRunningWithMessage);
    ASSERT_TRUE(isRunningWithMessage(*running.object())) << running.describe();
    guard.pid = readPid(dir.file("ninja.pid"));
    daemon.killHard();
  }
  // Whether the orphan survived the crash is the daemon's choice (e.g. PR_SET_PDEATHSIG); what
  // matters is that the next daemon fails the job and leaves no collector behind.

  Daemon restarted(config);
  auto client = restarted.client();
  auto batch = waitForBatchTerminal(client, run.batch_id);

  ASSERT_TRUE(IsJsonResponse(batch, 200));
  ASSERT_TRUE(HasBatchShape(*batch.object()));
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*batch.object(), "message"), jsonString("1 of 1 collector failed"));
  EXPECT_EQ(jsonOf(*batch.object(), "error"),
            jsonString("ninja-collector: supervisor restarted while the job was running"));
  auto job = client.job(run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  ASSERT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job.object(), "error"),
            jsonString("supervisor restarted while the job was running"));
  EXPECT_TRUE(waitUntil([&] { return !processAlive(guard.pid); }))
      << "the orphaned collector's process group was not killed";
}

TEST(Restart, KeepsFinishedRunsAsTheyWereAndGivesNewRunsNewIds) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "printf '{\"message\": \"Saved 42 devices\"}\\n' >&3\n")
      .addCollector("sophos", "exit 2\n");
  Triggered run;
  HttpResponse batch_before, history_before;
  std::vector<HttpResponse> jobs_before;
  {
    Daemon daemon(config);
    auto client = daemon.client();
    run = triggerOrThrow(client, {"ninja", "sophos"});
    batch_before = waitForBatchTerminal(client, run.batch_id);
    for (const auto& id : run.job_ids) jobs_before.push_back(client.job(id));
    history_before = client.get("/api/collectors/history");
    ASSERT_EQ(daemon.stop(), 0);
  }

  Daemon restarted(config);
  auto client = restarted.client();

  auto batch_after = client.batch(run.batch_id);
  ASSERT_TRUE(IsJsonResponse(batch_after, 200));
  ASSERT_TRUE(HasBatchShape(*batch_after.object()));
  EXPECT_TRUE(SameFields(batch_before, batch_after));
  for (std::size_t i = 0; i < run.job_ids.size(); ++i) {
    auto job_after = client.job(run.job_ids[i]);
    ASSERT_TRUE(IsJsonResponse(job_after, 200));
    EXPECT_TRUE(SameFields(jobs_before[i], job_after));
  }
  auto history_after = client.get("/api/collectors/history");
  ASSERT_TRUE(IsJsonResponse(history_after, 200));
  EXPECT_EQ(jsonOf(*history_after.object(), "collection_history"),
            jsonOf(*history_before.object(), "collection_history"));

  auto again = triggerOrThrow(client, {"ninja", "sophos"});
  EXPECT_NE(again.batch_id, run.batch_id);
  for (const auto& id : again.job_ids) {
    EXPECT_NE(id, run.job_ids[0]);
    EXPECT_NE(id, run.job_ids[1]);
  }
  EXPECT_EQ(jsonOf(*waitForBatchTerminal(client, again.batch_id).object(), "status"),
            jsonString("failed"));
}

}  // namespace
}  // namespace collectord::test
