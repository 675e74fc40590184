#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config.h"

namespace collectord {
namespace {

namespace fs = std::filesystem;

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/collectord-config-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    fs::create_directories(dir_ / "collectors.d");
    write("collect.sh", "#!/bin/sh\nexit 0\n", 0755);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text, int mode = 0644) {
    std::ofstream(dir_ / name) << text;
    ::chmod((dir_ / name).c_str(), static_cast<mode_t>(mode));
  }
  // A main file; development settings (no credentials) unless the text has an [auth] section.
  void main(const std::string& text) {
    write("collectord.ini",
          text.find("[auth]") == std::string::npos ? text + "\n[auth]\nrequired = false\n" : text);
  }
  void collector(const std::string& name, const std::string& text) {
    write("collectors.d/" + name + ".ini", text);
  }
  ConfigResult load() { return loadConfig((dir_ / "collectord.ini").string()); }

  // The problem about `key`, or a failure listing what was found.
  ConfigProblem problemFor(const ConfigResult& result, const std::string& key) {
    std::string seen;
    for (const ConfigProblem& p : result.problems) {
      if (p.key == key) return p;
      seen += "\n  " + p.toString();
    }
    ADD_FAILURE() << "no problem about " << key << "; found:" << seen;
    return {};
  }

  fs::path dir_;
};

TEST_F(ConfigFiles, LoadsTheDesignExample) {
  write("api_keys", "# keys\n");
  main(R"(
[http]
address = 127.0.0.1
port = 8080
threads = 16
[store]
url = sqlite:collectord.db          ; or postgresql://...
[collectors]
directory = collectors.d            ; one NAME.ini per collector
max_concurrent = 8
[auth]
api_keys_file = api_keys
jwt_secret = s3cret
required = true
[ratelimit]
requests_per_minute = 60
[cors]
allowed_origins = https://dashboards.enersystems.com, http://localhost:3000, http://localhost:8080
[logs]
directory = logs
[docs]
directory = ../docs
)");
  collector("ninja", R"(
[collector]
job_name = ninja-collector
type = exec
command = ../collect.sh
args = --full "two words" 'single quoted' back\ slash
working_directory = .
env.NINJA_URL = https://example.invalid/api
timeout = 30m
stall_timeout = 5m
retries = 0
concurrency = 1
)");
  const ConfigResult result = load();
  ASSERT_TRUE(result.config.has_value()) << result.problems.front().toString();
  const Config& c = *result.config;
  EXPECT_EQ(c.http_port, 8080);
  EXPECT_EQ(c.sqlite_path, (dir_ / "collectord.db").string());
  EXPECT_EQ(c.logs_directory, (dir_ / "logs").string());
  EXPECT_EQ(c.allowed_origins.size(), 3u);
  ASSERT_EQ(c.collectors.size(), 1u);
  const CollectorConfig& n = c.collectors[0];
  EXPECT_EQ(n.name, "ninja");
  EXPECT_EQ(n.job_name, "ninja-collector");
  EXPECT_EQ(n.command, (dir_ / "collect.sh").string());
  EXPECT_EQ(n.args, (std::vector<std::string>{"--full", "two words", "single quoted", "back slash"}));
  EXPECT_EQ(n.working_directory, (dir_ / "collectors.d").string());
  ASSERT_EQ(n.env.size(), 1u);
  EXPECT_EQ(n.env[0].first, "NINJA_URL");
  EXPECT_EQ(n.env[0].second, "https://example.invalid/api");
  EXPECT_EQ(n.timeout, std::chrono::minutes(30));
  EXPECT_TRUE(c.not_in_effect.empty()) << "every documented key is in effect";
}

TEST_F(ConfigFiles, DefaultsApplyWhenKeysAreAbsent) {
  main("[http]\nport = 0\n");
  collector("threatlocker", "[collector]\ncommand = ../collect.sh\n");
  const ConfigResult result = load();
  ASSERT_TRUE(result.config.has_value());
  EXPECT_EQ(result.config->http_address, "127.0.0.1");
  EXPECT_EQ(result.config->collectors[0].job_name, "threatlocker-collector");
  EXPECT_EQ(result.config->collectors[0].type, CollectorConfig::Type::kExec);
}

TEST_F(ConfigFiles, BareCommandIsFoundOnPath) {
  main("");
  collector("shell", "[collector]\ncommand = sh\nargs = -c 'exit 0'\n");
  const ConfigResult result = load();
  ASSERT_TRUE(result.config.has_value());
  EXPECT_EQ(fs::path(result.config->collectors[0].command).filename(), "sh");
  EXPECT_TRUE(fs::path(result.config->collectors[0].command).is_absolute());
}

TEST_F(ConfigFiles, EveryProblemIsReportedWithFileAndKey) {
  main("[http]\nport = 99999\nthreads = many\nbogus = 1\n[nosuch]\nx = 1\n[store]\nurl = mysql://x\n");
  collector("ninja", R"(
[collector]
command = ../missing.sh
timeout = abc
stall_timeout = 0s
retries = -1
concurrency = 0
type = docker
args = "unterminated
colour = blue
env.1BAD = x
env.COLLECTOR_JOB_ID = x
)");
  const ConfigResult result = load();
  EXPECT_FALSE(result.config.has_value());
  const std::string main_file = (dir_ / "collectord.ini").string();
  const std::string ninja_file = (dir_ / "collectors.d/ninja.ini").string();
  EXPECT_EQ(problemFor(result, "http.port").file, main_file);
  problemFor(result, "http.threads");
  EXPECT_EQ(problemFor(result, "http.bogus").message, "unknown key");
  EXPECT_NE(problemFor(result, "nosuch").message.find("unknown section"), std::string::npos);
  problemFor(result, "store.url");
  EXPECT_EQ(problemFor(result, "collector.command").file, ninja_file);
  EXPECT_NE(problemFor(result, "collector.timeout").message.find("invalid duration 'abc'"),
            std::string::npos);
  problemFor(result, "collector.stall_timeout");
  problemFor(result, "collector.retries");
  problemFor(result, "collector.concurrency");
  problemFor(result, "collector.type");
  EXPECT_EQ(problemFor(result, "collector.args").message, "unterminated double quote");
  EXPECT_EQ(problemFor(result, "collector.colour").message, "unknown key");
  problemFor(result, "collector.env.1BAD");
  problemFor(result, "collector.env.COLLECTOR_JOB_ID");
  EXPECT_EQ(problemFor(result, "collector.timeout").toString(),
            ninja_file + ": collector.timeout: invalid duration 'abc' (use e.g. 90s, 5m, 1h)");
}

TEST_F(ConfigFiles, SupervisionKeysAreParsedAndChecked) {
  main("[collectors]\nshutdown_grace = 10s\n[logs]\nmax_bytes_per_job = 1M\nretention_days = 7\n");
  collector("ninja", R"(
[collector]
command = ../collect.sh
kill_grace = 2s
retries = 3
retry_backoff = 10s
retry_backoff_max = 1m
overlap = parallel
concurrency = 4
nice = 10
memory_limit = 512M
cpu_limit = 10m
max_open_files = 256
)");
  collector("skipper", "[collector]\ncommand = ../collect.sh\noverlap = skip\n");
  const ConfigResult result = load();
  ASSERT_TRUE(result.config.has_value()) << result.problems.front().toString();
  EXPECT_EQ(result.config->shutdown_grace, std::chrono::seconds(10));
  EXPECT_EQ(result.config->log_max_bytes_per_job, 1024u * 1024u);
  EXPECT_EQ(result.config->log_retention_days, 7);
  const CollectorConfig& n = result.config->collectors[0];
  EXPECT_EQ(n.kill_grace, std::chrono::seconds(2));
  EXPECT_EQ(n.retries, 3);
  EXPECT_EQ(n.retry_backoff, std::chrono::seconds(10));
  EXPECT_EQ(n.effectiveConcurrency(), 4);
  EXPECT_EQ(n.nice, 10);
  EXPECT_EQ(n.memory_limit, 512u << 20);
  EXPECT_EQ(n.cpu_limit, std::chrono::minutes(10));
  EXPECT_EQ(n.max_open_files, 256u);
  EXPECT_EQ(result.config->collectors[1].overlap, CollectorConfig::Overlap::kSkip);
  EXPECT_EQ(result.config->collectors[1].effectiveConcurrency(), 1);
}

TEST_F(ConfigFiles, SupervisionKeysRejectNonsense) {
  main("");
  collector("ninja", R"(
[collector]
command = ../collect.sh
overlap = sometimes
concurrency = 2
memory_limit = lots
nice = 40
retry_backoff = 1m
retry_backoff_max = 10s
user = no-such-user-here
)");
  const ConfigResult result = load();
  problemFor(result, "collector.overlap");
  EXPECT_NE(problemFor(result, "collector.concurrency").message.find("overlap = parallel"),
            std::string::npos);
  EXPECT_NE(problemFor(result, "collector.memory_limit").message.find("invalid size 'lots'"),
            std::string::npos);
  problemFor(result, "collector.nice");
  problemFor(result, "collector.retry_backoff_max");
  problemFor(result, "collector.user");
}

TEST_F(ConfigFiles, NonExecutableCommandIsAProblem) {
  main("");
  write("data.txt", "not a program", 0644);
  collector("ninja", "[collector]\ncommand = ../data.txt\n");
  const ConfigResult result = load();
  EXPECT_NE(problemFor(result, "collector.command").message.find("not an executable file"),
            std::string::npos);
}

TEST_F(ConfigFiles, ExecCollectorNeedsACommandAndPluginNeedsALibrary) {
  main("");
  collector("a1", "[collector]\n");
  collector("b2", "[collector]\ntype = plugin\n");
  const ConfigResult result = load();
  problemFor(result, "collector.command");
  problemFor(result, "collector.plugin");
}

TEST_F(ConfigFiles, InvalidCollectorFileNamesAreProblems) {
  main("");
  collector("bad name", "[collector]\ncommand = ../collect.sh\n");
  const ConfigResult result = load();
  ASSERT_EQ(result.problems.size(), 1u);
  EXPECT_NE(result.problems[0].message.find("not a valid collector name"), std::string::npos);
}

TEST_F(ConfigFiles, MissingMainFileIsAProblem) {
  const ConfigResult result = load();
  ASSERT_EQ(result.problems.size(), 1u);
  EXPECT_EQ(result.problems[0].message, "cannot read the file");
}

TEST_F(ConfigFiles, AuthCanOnlyBeOffOnLoopback) {
  main("[http]\naddress = 0.0.0.0\n[auth]\nrequired = false\n");
  EXPECT_NE(problemFor(load(), "auth.required").message.find("only allowed when http.address is a loopback"),
            std::string::npos);
}

TEST_F(ConfigFiles, AuthRequiredNeedsSomeCredentials) {
  main("[auth]\nrequired = true\n");
  EXPECT_NE(problemFor(load(), "auth.required").message.find("no credentials are configured"),
            std::string::npos);
}

TEST_F(ConfigFiles, HttpsNeedsBothCertificateAndKey) {
  write("cert.pem", "x");
  main("[http]\ntls_cert_file = cert.pem\n");
  problemFor(load(), "http.tls_key_file");
}

TEST_F(ConfigFiles, MissingCollectorsDirectoryIsAProblem) {
  main("[collectors]\ndirectory = nowhere\n");
  problemFor(load(), "collectors.directory");
}

TEST_F(ConfigFiles, CommentsAreStrippedButQuotedSemicolonsKept) {
  main("# a comment\n; another\n[http]\nport = 0 ; inline\n");
  collector("ninja",
            "[collector]\ncommand = ../collect.sh\nargs = \"a ; b\" c # note\nenv.Y = it's ok ; comment\n");
  const ConfigResult result = load();
  ASSERT_TRUE(result.config.has_value()) << result.problems.front().toString();
  EXPECT_EQ(result.config->http_port, 0);
  EXPECT_EQ(result.config->collectors[0].args, (std::vector<std::string>{"a ; b", "c"}));
  EXPECT_EQ(result.config->collectors[0].env.at(0).second, "it's ok");
}

TEST(ShellWords, SplitsLikeAShell) {
  std::string error;
  EXPECT_EQ(*splitShellWords(R"(a "b c" 'd e' f\ g "h\"i" '' "")", error),
            (std::vector<std::string>{"a", "b c", "d e", "f g", "h\"i", "", ""}));
  EXPECT_EQ(splitShellWords("  ", error)->size(), 0u);
  EXPECT_FALSE(splitShellWords("'open", error).has_value());
  EXPECT_EQ(error, "unterminated single quote");
  EXPECT_FALSE(splitShellWords("trailing\\", error).has_value());
}

}  // namespace
}  // namespace collectord

namespace collectord {
namespace {

TEST_F(ConfigFiles, ClusterKeysAreParsedWithDerivedDefaults) {
  main("[http]\nport = 8123\n[store]\nurl = postgresql://u@db/c\n[node]\nid = site-a.1\n"
       "tags = site-a, gpu\n[cluster]\nenabled = true\nlease_timeout = 9s\n");
  collector("vcenter", "[collector]\ncommand = ../collect.sh\nnodes = tag:site-a, site-b.2\n");
  const ConfigResult result = load();
  ASSERT_TRUE(result.config.has_value()) << result.problems.front().toString();
  const ClusterSettings& c = result.config->cluster;
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.node_id, "site-a.1");
  EXPECT_EQ(c.tags, (std::vector<std::string>{"site-a", "gpu"}));
  EXPECT_EQ(c.lease_timeout, std::chrono::seconds(9));
  EXPECT_EQ(c.heartbeat_interval, std::chrono::seconds(3));  // a third of the lease
  EXPECT_EQ(c.poll_interval, std::chrono::seconds(1));
  const CollectorConfig& vcenter = result.config->collectors.at(0);
  EXPECT_TRUE(vcenter.runsOn("any", {"gpu", "site-a"}));
  EXPECT_TRUE(vcenter.runsOn("site-b.2", {}));
  EXPECT_FALSE(vcenter.runsOn("site-b.1", {"site-b"}));
  EXPECT_FALSE(vcenter.runsOn("site-a", {}));  // a bare word is an id, not a tag
}

TEST_F(ConfigFiles, ANodeIdDefaultsToHostAndPortAndAnyNodeRunsAnUnrestrictedCollector) {
  main("[http]\nport = 8123\n");
  collector("ninja", "[collector]\ncommand = ../collect.sh\n");
  const ConfigResult result = load();
  ASSERT_TRUE(result.config.has_value());
  const std::string& id = result.config->cluster.node_id;
  EXPECT_FALSE(result.config->cluster.enabled);
  ASSERT_GT(id.size(), 5u);
  EXPECT_EQ(id.substr(id.size() - 5), ":8123");
  EXPECT_TRUE(result.config->collectors.at(0).runsOn("whatever", {}));
}

TEST_F(ConfigFiles, BadClusterKeysAreProblemsNamingTheKey) {
  main("[node]\nid = has space\ntags = ok, bad/tag\n[cluster]\nenabled = true\n"
       "lease_timeout = 500ms\nheartbeat_interval = 1m\n");
  collector("ninja", "[collector]\ncommand = ../collect.sh\nnodes = tag:, tag:fine, x y\n");
  const ConfigResult result = load();
  EXPECT_FALSE(result.config.has_value());
  EXPECT_NE(problemFor(result, "node.id").message.find("'has space' is not a node id"),
            std::string::npos);
  EXPECT_NE(problemFor(result, "node.tags").message.find("'bad/tag'"), std::string::npos);
  EXPECT_EQ(problemFor(result, "cluster.lease_timeout").message, "must be at least 1s");
  EXPECT_EQ(problemFor(result, "cluster.heartbeat_interval").message,
            "must be shorter than cluster.lease_timeout");
  // The default store is SQLite, which several nodes cannot share.
  EXPECT_NE(problemFor(result, "cluster.enabled").message.find("needs a PostgreSQL store"),
            std::string::npos);
  EXPECT_NE(problemFor(result, "collector.nodes").message.find("'tag:'"), std::string::npos);
}

}  // namespace
}  // namespace collectord
