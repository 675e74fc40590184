// How a collector's exit (code, signal, reported status, failure to start) becomes its job's
// final status, message and error.

#include <gtest/gtest.h>

#include <ostream>
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

// One outcome: the script, and the fields of the job's final JSON as jsonOf renders them.
// `error_prefix`, when set, replaces an exact "error" for errors with a free-form tail.
struct Outcome {
  std::string name;  // the test's name
  std::string script;
  Keys expected;  // field -> jsonOf rendering
  std::string error_prefix;
};

std::ostream& operator<<(std::ostream& out, const Outcome& outcome) { return out << outcome.name; }

std::string quoted(const std::string& text) { return jsonString(text); }

const Outcome kOutcomes[] = {
    {"ExitZeroWithoutMessagesCompletesWithTheDefaultMessage",
     "exit 0\n",
     {{"status", quoted("completed")},
      {"progress_percent", "100"},
      {"message", quoted("Collection completed")},
      {"error", "null"}},
     ""},
    {"ExitZeroKeepsTheLastReportedMessageAndSetsProgressTo100",
     R"sh(
printf '{"progress": 20, "message": "Processing devices..."}\n' >&3
printf '{"progress": 80, "message": "Saving to database..."}\n' >&3
exit 0
)sh",
     {{"status", quoted("completed")},
      {"progress_percent", "100"},
      {"message", quoted("Saving to database...")},
      {"error", "null"}},
     ""},
    {"NonZeroExitFailsWithTheExitCode",
     "exit 3\n",
     {{"status", quoted("failed")},
      {"error", quoted("exit code 3")},
      {"batch_status", quoted("failed")},
      {"batch_progress_percent", "100"},
      {"batch_message", quoted("1 of 1 collector failed")}},
     ""},
    {"ReportedFailureWithExitZeroFailsWithTheReportedError",
     R"sh(
printf '{"progress": 30, "message": "Calling API"}\n' >&3
printf '{"status": "failed", "error": "API returned 401"}\n' >&3
exit 0
)sh",
     {{"status", quoted("failed")},
      {"error", quoted("API returned 401")},
      {"batch_status", quoted("failed")}},
     ""},
    {"ReportedFailureWithoutAnErrorFailsWithAGenericError",
     R"sh(
printf '{"status": "failed"}\n' >&3
exit 0
)sh",
     {{"status", quoted("failed")}, {"error", quoted("collector reported failure")}},
     ""},
    {"ReportedErrorWinsOverTheExitCode",
     R"sh(
printf '{"status": "failed", "error": "database is locked"}\n' >&3
exit 2
)sh",
     {{"status", quoted("failed")}, {"error", quoted("database is locked")}},
     ""},
    {"ReportedErrorWinsOverTheKillingSignal",
     R"sh(
printf '{"status": "failed", "error": "out of memory"}\n' >&3
kill -9 $$
)sh",
     {{"status", quoted("failed")}, {"error", quoted("out of memory")}},
     ""},
    {"NonZeroExitAfterReportingCompletedFails",
     R"sh(
printf '{"status": "completed", "progress": 100, "message": "Collection completed"}\n' >&3
exit 5
)sh",
     {{"status", quoted("failed")}, {"error", quoted("exit code 5")}},
     ""},
    {"DeathBySigkillFailsNamingTheSignal",
     "kill -9 $$\n",
     {{"status", quoted("failed")}, {"error", quoted("killed by signal 9 (SIGKILL)")}},
     ""},
    {"DeathBySigtermFailsNamingTheSignal",
     "kill -TERM $$\n",
     {{"status", quoted("failed")}, {"error", quoted("killed by signal 15 (SIGTERM)")}},
     ""},
    {"DeathBySigsegvFailsNamingTheSignal",
     "ulimit -c 0\nkill -SEGV $$\n",
     {{"status", quoted("failed")}, {"error", quoted("killed by signal 11 (SIGSEGV)")}},
     ""},
    // The file exists and is executable, so the config is valid; exec fails on the interpreter.
    {"CommandThatCannotBeExecutedFailsToStart",
     "#!/nonexistent/interpreter\nexit 0\n",
     {{"status", quoted("failed")}},
     "failed to start: "},
};

class CollectorOutcome : public ::testing::TestWithParam<Outcome> {};

TEST_P(CollectorOutcome, FinalJobFields) {
  const Outcome& outcome = GetParam();
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", outcome.script);
  Daemon daemon(config);

  auto job = runToEnd(daemon.client(), "ninja");

  for (const auto& [field, rendered] : outcome.expected) {
    EXPECT_EQ(jsonOf(*job, field), rendered) << field;
  }
  if (!outcome.error_prefix.empty()) {
    std::string error = stringField(*job, "error");
    EXPECT_EQ(error.rfind(outcome.error_prefix, 0), 0u) << error;
    EXPECT_GT(error.size(), outcome.error_prefix.size()) << "the reason is missing";
  }
}

INSTANTIATE_TEST_SUITE_P(Scripts, CollectorOutcome, ::testing::ValuesIn(kOutcomes),
                         [](const ::testing::TestParamInfo<Outcome>& param) {
                           return param.param.name;
                         });

TEST(CollectorOutcomeConfig, APluginThatIsNotASharedLibraryFailsToLoad) {
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
  const std::string error = stringField(*job, "error");
  EXPECT_EQ(error.rfind("cannot load plugin " + config.collectorsDir() + "/plugins/libninja.so: ", 0), 0u)
      << error;
}

}  // namespace
}  // namespace collectord::test
