// The daemon on a PostgreSQL store (store.url = postgresql://...), against a real server of the
// test's own that the test stops and starts. While the database is away, running jobs go on,
// the API answers 503 JSON instead of a stale state, and once it is back the store catches up
// with nothing lost; a database that cannot be reached at start stops the start with a message
// that names it without its password.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "api_checks.h"
#include "daemon_harness.h"
#include "postgres_server.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;

class PostgresDaemon : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!sharedPostgres()) server_ = std::make_unique<PostgresServer>();
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override {
    // These tests start a server of their own; the run against the shared one adds nothing.
    if (!server_) GTEST_SKIP() << "runs once, in the SQLite run, on a server of its own";
  }

  // Points the daemon's store at a fresh database on this suite's server.
  static void useServer(DaemonConfig& config) { config.useStore(createDatabase(server_->url())); }

  static std::unique_ptr<PostgresServer> server_;
};

std::unique_ptr<PostgresServer> PostgresDaemon::server_;

// Reports, then waits for the test at each stage, so the test decides when the store sees
// writes.
constexpr const char* kSteadyScript = R"(
progress() { printf '{"progress": %s, "message": "%s"}\n' "$1" "$2" >&3; }
echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
progress 10 "before the restart"
wait_for_release 1
i=0
while [ $i -lt 20 ]; do i=$((i + 1)); progress $((20 + i)) "while the database is away $i"; done
wait_for_release 2
progress 100 "finished while the database was away"
)";

TEST_F(PostgresDaemon, ADatabaseRestartMidRunAnswers503ThenCatchesUpWithNothingLost) {
  TempDir dir;
  DaemonConfig config(dir);
  useServer(config);
  config.addBlockingCollector("steady", kSteadyScript, {{"env.PIDFILE", dir.file("steady.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();

  const Triggered run = triggerOrThrow(client, {"steady"});
  const std::string job_id = run.job_ids.front();
  ASSERT_EQ(waitForJob(client, job_id, [](const Poco::JSON::Object& job) {
              return stringField(job, "message") == "before the restart";
            }).status, 200);
  ProcessReaper reaper;
  const pid_t collector = waitForPidFile(dir.file("steady.pid"));
  ASSERT_GT(collector, 0);
  reaper.add(collector);

  server_->kill();  // as a crash of the database server: every connection drops at once
  config.release("steady", 1);  // twenty progress lines the store cannot take

  HttpResponse during;
  ASSERT_TRUE(waitUntil([&] { return (during = client.job(job_id)).status == 503; }, 15s))
      << during.describe();
  EXPECT_TRUE(IsErrorResponse(during, 503, "The job store is unavailable; try again shortly"));
  EXPECT_TRUE(IsErrorResponse(client.trigger({"steady"}), 503,
                              "The job store is unavailable; try again shortly"));
  EXPECT_EQ(client.get("/readyz").status, 503);
  EXPECT_TRUE(IsJsonResponse(client.get("/healthz"), 200)) << "alive all the same";

  // The run goes on and ends while the database is away.
  EXPECT_TRUE(processAlive(collector)) << "the collector was killed";
  config.release("steady", 2);
  EXPECT_TRUE(waitUntilGone(collector));

  // The database returns: the store catches up with the whole story, the run's end included.
  server_->start();
  const HttpResponse after = waitForJobTerminal(client, job_id, 20s);
  ASSERT_EQ(after.status, 200) << after.describe();
  const auto job = after.object();
  EXPECT_EQ(stringField(*job, "status"), "completed");
  EXPECT_EQ(intField(*job, "progress_percent"), 100);
  EXPECT_EQ(stringField(*job, "message"), "finished while the database was away");
  const HttpResponse batch = waitForBatchTerminal(client, run.batch_id);
  EXPECT_EQ(stringField(*batch.object(), "status"), "completed");
  EXPECT_TRUE(waitUntil([&] { return client.get("/readyz").status == 200; }, 10s));
  EXPECT_EQ(client.trigger({"steady"}).status, 201) << "triggers work again";
}

TEST_F(PostgresDaemon, ASecondCollectordOnTheSameDatabaseIsRefusedAndTheFirstRunsOn) {
  TempDir dir_a, dir_b;
  DaemonConfig a(dir_a), b(dir_b);
  useServer(a);
  b.useStore(a.storeUrl());
  a.addBlockingCollector("steady", "wait_for_release 1\n");
  Daemon first(a);
  const HttpClient client = first.client();
  const Triggered run = triggerOrThrow(client, {"steady"});
  ASSERT_EQ(waitForJob(client, run.job_ids.front(), [](const Poco::JSON::Object& job) {
              return stringField(job, "status") == "running";
            }).status, 200);

  const RunResult second = runCollectord({"--config=" + b.mainPath()});
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.err.find("another collectord is using the PostgreSQL database"),
            std::string::npos)
      << second.err;

  // The first one's run was left alone: it goes on and completes.
  a.release("steady", 1);
  const HttpResponse done = waitForJobTerminal(client, run.job_ids.front());
  ASSERT_EQ(done.status, 200) << done.describe();
  EXPECT_EQ(stringField(*done.object(), "status"), "completed");
}

TEST_F(PostgresDaemon, ClusterNodesAndALoneCollectordRefuseToShareADatabase) {
  TempDir dir_lone, dir_node, dir_other;
  DaemonConfig lone(dir_lone), node(dir_node), other(dir_other);
  useServer(node);
  lone.useStore(node.storeUrl());
  other.useStore(node.storeUrl());
  node.appendToMain("[node]\nid = n1\n[cluster]\nenabled = true\n");
  other.appendToMain("[node]\nid = n1\n[cluster]\nenabled = true\n");
  {
    Daemon first(node);
    // A lone collectord would take the cluster's running jobs for leftovers of a crash.
    const RunResult refused = runCollectord({"--config=" + lone.mainPath()});
    EXPECT_EQ(refused.exit_code, 73);
    EXPECT_NE(refused.err.find("another collectord is using the PostgreSQL database"),
              std::string::npos)
        << refused.err;
    // A second node under the same id would renew the first one's leases.
    const RunResult twin = runCollectord({"--config=" + other.mainPath()});
    EXPECT_EQ(twin.exit_code, 73);
    EXPECT_NE(twin.err.find("node id 'n1' is in use by another running collectord"),
              std::string::npos)
        << twin.err;
  }
  Daemon alone(lone);
  const RunResult node_refused = runCollectord({"--config=" + node.mainPath()});
  EXPECT_EQ(node_refused.exit_code, 73);
  EXPECT_NE(node_refused.err.find("a collectord without cluster mode is using the PostgreSQL"),
            std::string::npos)
      << node_refused.err;
}

TEST_F(PostgresDaemon, AnUnreachableDatabaseStopsTheStartNamingItWithoutThePassword) {
  TempDir dir;
  DaemonConfig config(dir);
  // Port 1 on loopback: nothing listens there.
  config.useStore("postgresql://collectord:s3cret-pw@127.0.0.1:1/collectord");

  const RunResult result = runCollectord({"--config=" + config.mainPath()});
  EXPECT_NE(result.exit_code, 0);
  const std::string output = result.out + result.err;
  EXPECT_NE(output.find("127.0.0.1"), std::string::npos) << output;
  EXPECT_EQ(output.find("s3cret-pw"), std::string::npos) << "the password leaked: " << output;
}

}  // namespace
}  // namespace collectord::test
