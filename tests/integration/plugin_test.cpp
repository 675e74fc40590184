// Native collectors (type = plugin) end to end: the real daemon runs the real collector-host on
// the test plugins of tests/plugins/ (real shared libraries). Whatever a plugin does (complete,
// fail, carry the wrong ABI, crash, abort, throw, hang until cancelled), its job ends with a
// precise status and error, and the daemon goes on serving.

#include <sys/resource.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <ostream>
#include <string>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;
using Poco::JSON::Object;

// The test plugin for `behaviour`, as the collector file's plugin key resolves it.
std::string pluginPath(const std::string& behaviour) {
  return std::filesystem::path(COLLECTORD_TEST_PLUGIN_DIR "/test_plugin_" + behaviour + ".so")
      .lexically_normal()
      .string();
}

// Collector NAME of type plugin running the test plugin for `behaviour`, plus `extra` INI lines.
void addPlugin(DaemonConfig& config, const std::string& name, const std::string& behaviour,
               const std::string& extra = "") {
  config.addCollectorFile(name + ".ini", "[collector]\n"
                                         "type = plugin\n"
                                         "plugin = " + pluginPath(behaviour) + "\n" + extra);
}

std::string jobPath(const std::string& id) { return "/api/collectors/runs/job/" + id; }

// After each plugin, whatever it did: the daemon is alive and answers.
void expectDaemonServing(const Daemon& daemon) {
  EXPECT_TRUE(processAlive(daemon.pid())) << "the daemon died";
  EXPECT_EQ(daemon.client().get("/healthz").status, 200);
}

class Plugin : public ::testing::Test {
 protected:
  // Crashing plugins must not leave core files behind; the daemon and its children inherit this.
  static void SetUpTestSuite() {
    rlimit core{};
    if (::getrlimit(RLIMIT_CORE, &core) == 0) {
      core.rlim_cur = 0;
      ::setrlimit(RLIMIT_CORE, &core);
    }
  }

  // Runs collector `name` once and returns its job's final JSON, shape-checked.
  Object::Ptr runToEnd(const HttpClient& client, const std::string& name) {
    const Triggered run = triggerOrThrow(client, {name});
    job_id_ = run.job_ids[0];
    const HttpResponse batch = waitForBatchTerminal(client, run.batch_id);
    EXPECT_TRUE(IsJsonResponse(batch, 200));
    if (batch.object()) {
      EXPECT_TRUE(HasBatchShape(*batch.object()));
    }
    const HttpResponse job = client.job(job_id_);
    EXPECT_TRUE(IsJsonResponse(job, 200));
    if (!job.object()) return new Object;
    EXPECT_TRUE(HasJobStatusShape(*job.object()));
    return job.object();
  }

  std::string job_id_;
};

TEST_F(Plugin, AValidPluginCompletesWithItsProgressAndItsLogLine) {
  TempDir dir;
  DaemonConfig config(dir);
  addPlugin(config, "good", "good", "env.GREETING = hello\n");
  Daemon daemon(config);

  const auto job = runToEnd(daemon.client(), "good");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*job, "progress_percent"), "100");
  EXPECT_EQ(jsonOf(*job, "message"), jsonString("Processing page 5/5"));
  EXPECT_EQ(jsonOf(*job, "error"), "null");
  const std::string log = readFile(config.jobLogPath(job_id_)).value_or("");
  EXPECT_NE(log.find("plugin good for job " + job_id_ + "\n"), std::string::npos) << log;
  expectDaemonServing(daemon);
}

TEST_F(Plugin, ASdkPluginSeesItsConfigValueAndItsIdentity) {
  TempDir dir;
  DaemonConfig config(dir);
  addPlugin(config, "sdkgood", "sdk_good", "env.GREETING = Grüße aus der Konfiguration\n");
  Daemon daemon(config);

  const auto job = runToEnd(daemon.client(), "sdkgood");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*job, "progress_percent"), "100");
  EXPECT_EQ(jsonOf(*job, "message"), jsonString("Grüße aus der Konfiguration, done"));
  const std::string log = readFile(config.jobLogPath(job_id_)).value_or("");
  EXPECT_NE(log.find("sdk plugin sdk_good for job " + job_id_ + " of sdkgood\n"), std::string::npos)
      << log;
  expectDaemonServing(daemon);
}

// One way for a plugin to fail, and the job's error it must give.
struct Failure {
  std::string name;       // the test's name
  std::string behaviour;  // test_plugin_<behaviour>.so
  std::string error;      // "{path}" stands for the plugin's path
  bool ran = true;        // the plugin got as far as its first log line
};

std::ostream& operator<<(std::ostream& out, const Failure& f) { return out << f.name; }

const Failure kFailures[] = {
    {"AReturnedErrorIsTheJobsError", "fail", "API returned 401"},
    {"AWrongAbiVersionIsNamed", "wrong_abi",
     "{path} was built for plugin ABI version 2; this collector-host supports version 1", false},
    {"AMissingEntryPointIsNamed", "no_entry", "{path} does not export collectord_plugin_v1", false},
    {"ACrashIsKilledBySigsegv", "crash", "killed by signal 11 (SIGSEGV)"},
    {"AnAbortIsKilledBySigabrt", "abort", "killed by signal 6 (SIGABRT)"},
    // A C++ exception may not cross the C ABI: std::terminate, so SIGABRT, and nothing precise.
    {"AnExceptionThrownThroughTheCAbiIsKilledBySigabrt", "throw", "killed by signal 6 (SIGABRT)"},
    // collector.hpp's COLLECTORD_PLUGIN catches it at the boundary and passes its what() on.
    {"AnExceptionEscapingASdkPluginIsItsMessage", "sdk_throw",
     "inventory API answered 503: données indisponibles"},
    {"ANonStdExceptionEscapingASdkPluginIsNamedAsSuch", "sdk_throw_other",
     "collector threw an exception that is not a std::exception"},
};

class PluginFailure : public Plugin, public ::testing::WithParamInterface<Failure> {};

TEST_P(PluginFailure, FailsItsJobWithAPreciseErrorAndTheDaemonGoesOn) {
  const Failure& f = GetParam();
  TempDir dir;
  DaemonConfig config(dir);
  addPlugin(config, "plugin", f.behaviour);
  addPlugin(config, "good", "good");
  Daemon daemon(config);

  const auto job = runToEnd(daemon.client(), "plugin");

  std::string error = f.error;
  if (const auto at = error.find("{path}"); at != std::string::npos) {
    error.replace(at, 6, pluginPath(f.behaviour));
  }
  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString(error));
  EXPECT_EQ(jsonOf(*job, "batch_status"), jsonString("failed"));
  const std::string log = readFile(config.jobLogPath(job_id_)).value_or("");
  const bool logged =
      log.find("plugin " + f.behaviour + " for job " + job_id_) != std::string::npos;
  EXPECT_EQ(logged, f.ran) << log;
  expectDaemonServing(daemon);

  // And it still runs plugins.
  EXPECT_EQ(jsonOf(*runToEnd(daemon.client(), "good"), "status"), jsonString("completed"));
}

INSTANTIATE_TEST_SUITE_P(Behaviours, PluginFailure, ::testing::ValuesIn(kFailures),
                         [](const ::testing::TestParamInfo<Failure>& param) {
                           return param.param.name;
                         });

// A plugin that waits for cancelled(): cancelled over the API (202), it sees the flag, writes its
// line and returns by itself, long before kill_grace would have it killed.
struct Hang {
  std::string name;
  std::string behaviour;
  std::string saw_cancel_line;  // "{job}" stands for the job ID
};

std::ostream& operator<<(std::ostream& out, const Hang& h) { return out << h.name; }

const Hang kHangs[] = {
    // The C plugin's error "cancelled by the host" exists only once its loop saw cancelled().
    {"CPlugin", "hang", "collector-host: cancelled by the host\n"},
    {"SdkPlugin", "sdk_hang", "sdk plugin saw cancelled() for job {job}\n"},
};

class PluginCancel : public Plugin, public ::testing::WithParamInterface<Hang> {};

TEST_P(PluginCancel, CancelAnswers202AndThePluginSeesCancelledAndEndsCancelled) {
  const Hang& h = GetParam();
  TempDir dir;
  DaemonConfig config(dir);
  addPlugin(config, "hang", h.behaviour, "kill_grace = 60s\n");
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  ProcessReaper reaper;

  const Triggered run = triggerOrThrow(client, {"hang"});
  const std::string id = run.job_ids[0];
  const HttpResponse waiting = waitForJob(client, id, [](const Object& job) {
    return stringField(job, "message") == "waiting to be cancelled";
  });
  ASSERT_EQ(jsonOf(*waiting.object(), "progress_percent"), "20") << waiting.describe();
  for (pid_t pid : processesOfJob(id)) reaper.addGroup(pid);
  ASSERT_FALSE(processesOfJob(id).empty()) << "collector-host is not running";

  const auto cancelled_at = std::chrono::steady_clock::now();
  const HttpResponse accepted = client.del(jobPath(id));
  ASSERT_TRUE(IsJsonResponse(accepted, 202));
  EXPECT_EQ(jsonOf(*accepted.object(), "job_id"), jsonString(id));

  const HttpResponse ended = waitForJobTerminal(client, id);
  ASSERT_TRUE(IsJsonResponse(ended, 200));
  EXPECT_TRUE(HasJobStatusShape(*ended.object()));
  EXPECT_EQ(jsonOf(*ended.object(), "status"), jsonString("cancelled"));
  EXPECT_EQ(jsonOf(*ended.object(), "error"), jsonString("cancelled by request"));
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, 10s)
      << "the plugin did not stop by itself";
  EXPECT_TRUE(waitUntil([&] { return processesOfJob(id).empty(); }, 10s));

  std::string line = h.saw_cancel_line;
  if (const auto at = line.find("{job}"); at != std::string::npos) line.replace(at, 5, id);
  const std::string log = readFile(config.jobLogPath(id)).value_or("");
  EXPECT_NE(log.find(line), std::string::npos) << log;
  EXPECT_EQ(log.find("sending SIGKILL"), std::string::npos) << log;
  expectDaemonServing(daemon);
}

INSTANTIATE_TEST_SUITE_P(Plugins, PluginCancel, ::testing::ValuesIn(kHangs),
                         [](const ::testing::TestParamInfo<Hang>& param) {
                           return param.param.name;
                         });

}  // namespace
}  // namespace collectord::test
