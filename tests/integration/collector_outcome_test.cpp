// How a collector's exit (code, signal, reported status, failure to start) becomes its job's
// final status, message and error.

#include <gtest/gtest.h>

#include <string>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

// Runs collector `name` (already configured) once and returns its job's final JSON, after
// checking the response and its shape.
Object::Ptr runToEnd(const HttpClient& client, const std::string& name) {
  auto run = triggerOrThrow(client, {name});
  auto batch = waitForBatchTerminal(client, run.batch_id);
  EXPECT_TRUE(IsJsonResponse(batch, 200));
  if (batch.object()) {
    EXPECT_TRUE(HasBatchShape(*batch.object()));
  }
  auto job = client.job(run.job_ids[0]);
  EXPECT_TRUE(IsJsonResponse(job, 200));
  if (!job.object()) return new Object;
  EXPECT_TRUE(HasJobStatusShape(*job.object()));
  return job.object();
}

TEST(CollectorOutcome, ExitZeroWithoutMessagesCompletesWithTheDefaultMessage) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*job, "progress_percent"), "100");
  EXPECT_EQ(jsonOf(*job, "message"), jsonString("Collection completed"));
  EXPECT_EQ(jsonOf(*job, "error"), "null");
}

TEST(CollectorOutcome, ExitZeroKeepsTheLastReportedMessageAndSetsProgressTo100) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", R"sh(
printf '{"progress": 20, "message": "Processing devices..."}\n' >&3
printf '{"progress": 80, "message": "Saving to database..."}\n' >&3
exit 0
)sh");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*job, "progress_percent"), "100");
  EXPECT_EQ(jsonOf(*job, "message"), jsonString("Saving to database..."));
  EXPECT_EQ(jsonOf(*job, "error"), "null");
}

TEST(CollectorOutcome, NonZeroExitFailsWithTheExitCode) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 3\n");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("exit code 3"));
  EXPECT_EQ(jsonOf(*job, "batch_status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "batch_progress_percent"), "100");
  EXPECT_EQ(jsonOf(*job, "batch_message"), jsonString("1 of 1 collector failed"));
}

TEST(CollectorOutcome, ReportedFailureWithExitZeroFailsWithTheReportedError) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", R"sh(
printf '{"progress": 30, "message": "Calling API"}\n' >&3
printf '{"status": "failed", "error": "API returned 401"}\n' >&3
exit 0
)sh");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("API returned 401"));
  EXPECT_EQ(jsonOf(*job, "batch_status"), jsonString("failed"));
}

TEST(CollectorOutcome, ReportedFailureWithoutAnErrorFailsWithAGenericError) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", R"sh(
printf '{"status": "failed"}\n' >&3
exit 0
)sh");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("collector reported failure"));
}

TEST(CollectorOutcome, ReportedErrorWinsOverTheExitCode) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", R"sh(
printf '{"status": "failed", "error": "database is locked"}\n' >&3
exit 2
)sh");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("database is locked"));
}

TEST(CollectorOutcome, ReportedErrorWinsOverTheKillingSignal) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", R"sh(
printf '{"status": "failed", "error": "out of memory"}\n' >&3
kill -9 $$
)sh");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("out of memory"));
}

TEST(CollectorOutcome, NonZeroExitAfterReportingCompletedFails) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", R"sh(
printf '{"status": "completed", "progress": 100, "message": "Collection completed"}\n' >&3
exit 5
)sh");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("exit code 5"));
}

TEST(CollectorOutcome, DeathBySigkillFailsNamingTheSignal) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "kill -9 $$\n");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("killed by signal 9 (SIGKILL)"));
}

TEST(CollectorOutcome, DeathBySigtermFailsNamingTheSignal) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "kill -TERM $$\n");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("killed by signal 15 (SIGTERM)"));
}

TEST(CollectorOutcome, DeathBySigsegvFailsNamingTheSignal) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "ulimit -c 0\nkill -SEGV $$\n");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("killed by signal 11 (SIGSEGV)"));
}

TEST(CollectorOutcome, CommandThatCannotBeExecutedFailsToStart) {
  TempDir dir;
  DaemonConfig config(dir);
  // The file exists and is executable, so the config is valid; exec fails on the interpreter.
  config.addCollector("ninja", "#!/nonexistent/interpreter\nexit 0\n");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  std::string error = stringField(*job, "error");
  EXPECT_EQ(error.rfind("failed to start: ", 0), 0u) << error;
  EXPECT_GT(error.size(), std::string("failed to start: ").size()) << "the reason is missing";
}

TEST(CollectorOutcome, PluginCollectorFailsAsNotSupportedYet) {
  TempDir dir;
  DaemonConfig config(dir);
  writeFile(config.collectorsDir() + "/plugins/libninja.so", "");
  config.addCollectorFile("ninja.ini",
                          "[collector]\n"
                          "type = plugin\n"
                          "plugin = plugins/libninja.so\n");
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  EXPECT_EQ(jsonOf(*job, "job_name"), jsonString("ninja-collector"));
  EXPECT_EQ(jsonOf(*job, "status"), jsonString("failed"));
  EXPECT_EQ(jsonOf(*job, "error"), jsonString("plugin collectors are not supported yet"));
}

}  // namespace
}  // namespace collectord::test
