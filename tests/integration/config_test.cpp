// `collectord --check-config` and `--help`, and how the daemon reads its INI files.
// Problems print as `FILE: SECTION.KEY: MESSAGE`, one a line on stderr, all of them, exit 1.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

// A throwaway RS256 public key (its private half was never kept): a file the auth keys can name.
constexpr const char* kTestPublicKey = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1RUlK3MJdRODB6RyQnB0
Z3B/aAACb4Ol8SC/+kr5n4XGmvCAwKpu/BH2XQjwlIFEgorZZ6xmuFIg/yCNagSy
sixRsBgGnikIiUdhWK38QjXlCmDwKFPRtIlxqQTOpruWinchyOz644Z25UXCz4Sn
hazxqh9Y/63llj91bXZBJSssp6Ph1A3j5FVs3aYU441IzVgbEs569uhKrhOtYw+w
bKyi0+kxgbgVR/zqS4/Pc7I/kHfQXqEFbXhrBUDH644RD2TzGaPiLE6+aFyGbKMg
p8lo0/0z6jyFHfZbrvcN8YfLkd0v6oI9Oh1clkCe9iP8SgYU7S9UvJ+8N4jAIZIQ
LQIDAQAB
-----END PUBLIC KEY-----
)";

RunResult checkConfig(const DaemonConfig& config) {
  return runCollectord({"--check-config", "--config=" + config.mainPath()});
}

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string describe(const RunResult& result) {
  return "exit " + std::to_string(result.exit_code) + "\nstdout:\n" + result.out + "stderr:\n" +
         result.err;
}

// The check passed: exit 0 and a stdout line `configuration OK: N collectors`.
::testing::AssertionResult SaysOk(const RunResult& result, int collectors) {
  auto lines = linesOf(result.out);
  const std::string ok = "configuration OK: " + std::to_string(collectors) + " collectors";
  if (result.exit_code == 0 && std::find(lines.begin(), lines.end(), ok) != lines.end()) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "expected exit 0 and '" << ok << "'; " << describe(result);
}

// The check failed (exit 1, no "configuration OK") and stderr has a line
// `FILE: LOCATION: MESSAGE` with a non-empty MESSAGE. Every unmet part is reported.
::testing::AssertionResult ReportsProblem(const RunResult& result, const std::string& file,
                                          const std::string& location) {
  const std::string prefix = file + ": " + location + ": ";
  bool named = false;
  for (const auto& line : linesOf(result.err)) {
    named = named || (line.rfind(prefix, 0) == 0 && line.size() > prefix.size());
  }
  bool said_ok = result.out.find("configuration OK") != std::string::npos;
  if (named && result.exit_code == 1 && !said_ok) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  if (!named) failure << "no stderr line starts with '" << prefix << "'; ";
  if (result.exit_code != 1) failure << "the exit code should be 1; ";
  if (said_ok) failure << "it said OK despite a problem; ";
  return failure << describe(result);
}

TEST(ConfigCheck, AcceptsAValidConfigAndCountsItsCollectors) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("alpha", "exit 0\n").addCollector("bravo", "exit 0\n");
  writeFile(config.collectorsDir() + "/README.txt", "not a collector: no .ini suffix\n");
  writeFile(config.collectorsDir() + "/notes.ini.bak", "[nonsense\n");

  auto result = checkConfig(config);

  EXPECT_TRUE(SaysOk(result, 2));
}

TEST(ConfigCheck, AcceptsEveryDocumentedKeyWithCommentsAndDurationForms) {
  TempDir dir;
  DaemonConfig config(dir);
  writeFile(dir.file("api_keys"), "sha256:" + std::string(64, 'a') + "\n");
  writeFile(dir.file("jwt_public.pem"), kTestPublicKey);
  writeFile(dir.file("docs/README.md"), "# docs\n");
  config.replaceMain(R"ini(; collectord, every section and key
# a hash comment line
[http]
address = 127.0.0.1   ; loopback only
port = 0              # ephemeral
threads = 4
[store]
url = sqlite:collectord.db
[collectors]
directory = collectors.d
max_concurrent = 8     ; accepted, not yet in effect
[auth]
api_keys_file = api_keys
jwt_secret = not-a-real-secret
jwt_public_key_file = jwt_public.pem
required = true
[ratelimit]
requests_per_minute = 60
[cors]
allowed_origins = https://dashboards.enersystems.com, http://localhost:3000
[logs]
directory = logs
[docs]
directory = docs
)ini");
  writeExecutable(config.collectorsDir() + "/ninja.py", "#!/bin/sh\nexit 0\n");
  writeFile(config.collectorsDir() + "/plugins/libninja.so", "");
  config.addCollectorFile("ninja.ini", R"ini([collector]
job_name = ninja-collector     ; shown by the API
type = exec                    # exec | plugin
command = ./ninja.py
args = --full "two words" 'and more'
plugin = plugins/libninja.so
working_directory = .
env.NINJA_URL = https://ninja.example/api
timeout = 1.5m
stall_timeout = 500ms
retries = 0
concurrency = 1
)ini");
  config.addCollector(
      "sophos", "exit 0\n",
      {{"timeout", "90s"}, {"stall_timeout", "30"}, {"retries", "2"}, {"concurrency", "3"},
       {"overlap", "parallel"}});
  config.addCollector("threatlocker", "exit 0\n", {{"timeout", "1h"}, {"stall_timeout", "5m"}});
  config.addCollectorFile("vendor.ini",
                          "[collector]\ntype = plugin\nplugin = plugins/libninja.so\n");

  auto result = checkConfig(config);

  EXPECT_TRUE(SaysOk(result, 4));
}

TEST(ConfigCheck, ReportsAnUnknownKeyInACollectorFile) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n", {{"colour", "blue"}});

  EXPECT_TRUE(
      ReportsProblem(checkConfig(config), config.collectorIni("ninja"), "collector.colour"));
}

TEST(ConfigCheck, ReportsAnUnknownKeyInTheMainFile) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  config.appendToMain("[http]\ncolour = blue\n");

  EXPECT_TRUE(ReportsProblem(checkConfig(config), config.mainPath(), "http.colour"));
}

TEST(ConfigCheck, ReportsABadDurationWithTheExactMessage) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n", {{"timeout", "abc"}, {"stall_timeout", "5x"}});

  auto result = checkConfig(config);

  EXPECT_EQ(result.exit_code, 1) << describe(result);
  auto lines = linesOf(result.err);
  const std::string file = config.collectorIni("ninja");
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      file + ": collector.timeout: invalid duration 'abc' (use e.g. 90s, 5m, 1h)"),
            lines.end())
      << describe(result);
  EXPECT_NE(
      std::find(lines.begin(), lines.end(),
                file + ": collector.stall_timeout: invalid duration '5x' (use e.g. 90s, 5m, 1h)"),
      lines.end())
      << describe(result);
}

TEST(ConfigCheck, ReportsAnExecCollectorWithoutACommand) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollectorFile("ninja.ini", "[collector]\ntype = exec\nargs = --full\n");

  EXPECT_TRUE(
      ReportsProblem(checkConfig(config), config.collectorIni("ninja"), "collector.command"));
}

TEST(ConfigCheck, ReportsACommandThatDoesNotExist) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollectorFile("ninja.ini", "[collector]\ncommand = ./missing.sh\n");
  config.addCollectorFile("sophos.ini", "[collector]\ncommand = no-such-program-on-path-x7\n");

  auto result = checkConfig(config);

  EXPECT_TRUE(ReportsProblem(result, config.collectorIni("ninja"), "collector.command"));
  EXPECT_TRUE(ReportsProblem(result, config.collectorIni("sophos"), "collector.command"));
}

TEST(ConfigCheck, ReportsACommandThatIsNotExecutable) {
  TempDir dir;
  DaemonConfig config(dir);
  writeFile(config.collectorsDir() + "/ninja.sh", "#!/bin/sh\nexit 0\n", 0644);
  config.addCollectorFile("ninja.ini", "[collector]\ncommand = ./ninja.sh\n");

  EXPECT_TRUE(
      ReportsProblem(checkConfig(config), config.collectorIni("ninja"), "collector.command"));
}

TEST(ConfigCheck, ReportsAnUnterminatedQuoteInArgs) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n", {{"args", "--name \"two words"}});
  config.addCollector("sophos", "exit 0\n", {{"args", "--name 'two words"}});

  auto result = checkConfig(config);

  EXPECT_TRUE(ReportsProblem(result, config.collectorIni("ninja"), "collector.args"));
  EXPECT_TRUE(ReportsProblem(result, config.collectorIni("sophos"), "collector.args"));
}

TEST(ConfigCheck, ReportsAnUnknownSection) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  config.appendToMain("[telemetry]\nenabled = true\n");
  config.addCollectorFile("sophos.ini",
                          "[collector]\ncommand = ./ninja.sh\n[schedule]\ncron = 0 * * * *\n");

  auto result = checkConfig(config);

  // The location is the section (or section.key): the contract names no key for a whole section.
  EXPECT_EQ(result.exit_code, 1) << describe(result);
  bool main_named = false, collector_named = false;
  for (const auto& line : linesOf(result.err)) {
    main_named = main_named || line.rfind(config.mainPath() + ": telemetry", 0) == 0;
    collector_named =
        collector_named || line.rfind(config.collectorIni("sophos") + ": schedule", 0) == 0;
  }
  EXPECT_TRUE(main_named) << describe(result);
  EXPECT_TRUE(collector_named) << describe(result);
}

TEST(ConfigCheck, ReportsBadNumbers) {
  TempDir dir;
  DaemonConfig config(dir);
  config.replaceMain(
      "[http]\nport = eighty\nthreads = many\n[store]\nurl = sqlite:collectord.db\n"
      "[logs]\ndirectory = logs\n[auth]\nrequired = false\n");
  config.addCollector("ninja", "exit 0\n", {{"retries", "-1"}, {"concurrency", "0"}});

  auto result = checkConfig(config);

  EXPECT_TRUE(ReportsProblem(result, config.mainPath(), "http.port"));
  EXPECT_TRUE(ReportsProblem(result, config.mainPath(), "http.threads"));
  EXPECT_TRUE(ReportsProblem(result, config.collectorIni("ninja"), "collector.retries"));
  EXPECT_TRUE(ReportsProblem(result, config.collectorIni("ninja"), "collector.concurrency"));
}

TEST(ConfigCheck, ReportsAWorkingDirectoryThatDoesNotExist) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n", {{"working_directory", dir.file("no-such-dir")}});

  EXPECT_TRUE(ReportsProblem(checkConfig(config), config.collectorIni("ninja"),
                             "collector.working_directory"));
}

TEST(ConfigCheck, ReportsACollectorFileWhoseNameIsNotACollectorName) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  config.addCollectorFile("bad name.ini", "[collector]\ncommand = ./ninja.sh\n");
  config.addCollectorFile("-dash.ini", "[collector]\ncommand = ./ninja.sh\n");

  auto result = checkConfig(config);

  EXPECT_EQ(result.exit_code, 1) << describe(result);
  for (const char* name : {"bad name.ini", "-dash.ini"}) {
    const std::string prefix = config.collectorsDir() + "/" + name + ": ";
    bool named = false;
    for (const auto& line : linesOf(result.err)) named = named || line.rfind(prefix, 0) == 0;
    EXPECT_TRUE(named) << "no line starts with '" << prefix << "'; " << describe(result);
  }
}

TEST(ConfigCheck, ListsEveryProblemNotOnlyTheFirst) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[http]\ncolour = blue\n");
  config.addCollector("alpha", "exit 0\n", {{"timeout", "soon"}});
  config.addCollector("bravo", "exit 0\n", {{"flavour", "mint"}, {"retries", "many"}});
  config.addCollectorFile("charlie.ini", "[collector]\nargs = --x\n");

  auto result = checkConfig(config);

  EXPECT_TRUE(ReportsProblem(result, config.mainPath(), "http.colour"));
  EXPECT_TRUE(ReportsProblem(result, config.collectorIni("alpha"), "collector.timeout"));
  EXPECT_TRUE(ReportsProblem(result, config.collectorIni("bravo"), "collector.flavour"));
  EXPECT_TRUE(ReportsProblem(result, config.collectorIni("bravo"), "collector.retries"));
  EXPECT_TRUE(ReportsProblem(result, config.collectorIni("charlie"), "collector.command"));
}

TEST(ConfigCheck, HelpListsTheOptionsAndExitsZero) {
  auto result = runCollectord({"--help"});

  EXPECT_EQ(result.exit_code, 0) << describe(result);
  const std::string text = result.out + result.err;
  for (const char* option : {"config", "port-file", "check-config", "daemon", "pidfile", "help"}) {
    EXPECT_NE(text.find(option), std::string::npos) << option << " missing; " << describe(result);
  }
}

TEST(ConfigFile, DaemonRefusesToStartWithAnInvalidConfig) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n", {{"timeout", "abc"}});

  auto result = runCollectord({"--config=" + config.mainPath(), "--port-file=" + dir.file("port")},
                              std::chrono::seconds(10));

  EXPECT_NE(result.exit_code, 0) << describe(result);
  EXPECT_FALSE(fileExists(dir.file("port"))) << "it listened despite the bad config";
}

TEST(ConfigFile, FallsBackToTheDocumentedDefaultsNextToTheMainFile) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "echo ran\n");
  // Only the port (and no auth): the store, collectors and logs folders take their defaults,
  // which resolve against the main file's folder, not the daemon's working directory.
  config.replaceMain("[http]\nport = 0\n[auth]\nrequired = false\n");
  Daemon daemon(config);
  auto client = daemon.client();

  auto run = triggerOrThrow(client, {"ninja"});
  auto batch = waitForBatchTerminal(client, run.batch_id);

  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.describe();
  EXPECT_TRUE(fileExists(config.dbPath())) << "no store at " << config.dbPath();
  auto log = linesOf(readFile(config.jobLogPath(run.job_ids[0])).value_or(""));
  EXPECT_NE(std::find(log.begin(), log.end(), "ran"), log.end())
      << "no job log at " << config.jobLogPath(run.job_ids[0]);
}

TEST(ConfigFile, StripsInlineCommentsFromValuesTheDaemonUses) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "echo \"$GREETING|$1|$2\"\n",
                      {{"job_name", "NinjaOne sync ; what dashboards show"},
                       {"env.GREETING", "hello world  # said to the log"},
                       {"args", "--full#not-a-comment two ; the real comment"}});
  Daemon daemon(config);
  auto client = daemon.client();

  auto run = triggerOrThrow(client, {"ninja"});
  waitForBatchTerminal(client, run.batch_id);
  auto job = client.job(run.job_ids[0]);

  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_EQ(jsonOf(*job.object(), "job_name"), jsonString("NinjaOne sync"));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("completed"));
  auto log = linesOf(readFile(config.jobLogPath(run.job_ids[0])).value_or(""));
  EXPECT_NE(std::find(log.begin(), log.end(), "hello world|--full#not-a-comment|two"), log.end())
      << readFile(config.jobLogPath(run.job_ids[0])).value_or("(no job log)");
}

}  // namespace
}  // namespace collectord::test
