// The SQLite file behind the API, opened directly: its tables, WAL mode, and rows that say what
// the API said.

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Nullable.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using namespace Poco::Data::Keywords;
using Poco::JSON::Object;

class Store : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Poco::Data::SQLite::Connector::registerConnector(); }
  void SetUp() override {
    if (config_.onPostgres()) {
      GTEST_SKIP() << "reads the SQLite file; PostgresStore tests the PostgreSQL store's rows";
    }
  }

  Poco::Data::Session open() const { return Poco::Data::Session("SQLite", config_.dbPath()); }

  // Column `column` of `table`, keyed by `key_column`; SQL NULL reads as "null", every other
  // value as its text (so 100 reads "100").
  std::map<std::string, std::string> column(const std::string& table, const std::string& key_column,
                                            const std::string& column_name) const {
    auto session = open();
    std::vector<std::string> keys;
    std::vector<Poco::Nullable<std::string>> values;
    session << "SELECT " + key_column + " FROM " + table + " ORDER BY " + key_column, into(keys),
        now;
    session << "SELECT " + column_name + " FROM " + table + " ORDER BY " + key_column, into(values),
        now;
    std::map<std::string, std::string> result;
    for (std::size_t i = 0; i < keys.size() && i < values.size(); ++i) {
      result[keys[i]] = values[i].isNull() ? "null" : values[i].value();
    }
    return result;
  }

  int rowCount(const std::string& table) const {
    auto session = open();
    int count = -1;
    session << "SELECT COUNT(*) FROM " + table, into(count), now;
    return count;
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
};

// How the store should hold an API field: strings as themselves, numbers as text, null as null.
std::string asStored(const Object& object, const std::string& key) {
  std::string json = jsonOf(object, key);
  return object.has(key) && object.get(key).isString() ? stringField(object, key) : json;
}

TEST_F(Store, KeepsRunsInAnSqliteFileInWalModeWithItsMigrations) {
  config_.addCollector("ninja", "exit 0\n");
  Daemon daemon(config_);
  waitForBatchTerminal(daemon.client(), triggerOrThrow(daemon.client(), {"ninja"}).batch_id);
  ASSERT_EQ(daemon.stop(), 0);

  auto session = open();
  std::vector<std::string> names;
  session << "SELECT name FROM sqlite_master WHERE type = 'table'", into(names), now;
  std::set<std::string> tables(names.begin(), names.end());
  EXPECT_EQ(tables.count("job_batches"), 1u);
  EXPECT_EQ(tables.count("job_runs"), 1u);
  EXPECT_EQ(tables.count("schema_migrations"), 1u);
  std::string mode;
  session << "PRAGMA journal_mode", into(mode), now;
  EXPECT_EQ(mode, "wal");
  EXPECT_GE(rowCount("schema_migrations"), 1);
  EXPECT_EQ(rowCount("job_batches"), 1);
  EXPECT_EQ(rowCount("job_runs"), 1);
}

TEST_F(Store, HoldsRowsThatSayWhatTheApiSaid) {
  config_.addCollector("ninja", "printf '{\"message\": \"Saved 42 devices\"}\\n' >&3\n")
      .addCollector("sophos", "exit 2\n");
  config_.addBlockingCollector("threatlocker", R"sh(
printf '{"progress": 50, "message": "Processing page 5/10"}\n' >&3
wait_for_release 1
)sh");
  Daemon daemon(config_);
  auto client = daemon.client();
  auto finished = triggerOrThrow(client, {"ninja", "sophos"});
  waitForBatchTerminal(client, finished.batch_id);
  auto running = triggerOrThrow(client, {"threatlocker"});
  waitForJob(client, running.job_ids[0],
             [](const Object& j) { return stringField(j, "message") == "Processing page 5/10"; });
  std::map<std::string, Object::Ptr> api_jobs;
  for (const auto& id : finished.job_ids) api_jobs[id] = client.job(id).object();
  auto api_batch = client.batch(finished.batch_id).object();
  ASSERT_TRUE(api_batch);
  ASSERT_EQ(daemon.stop(), 0);

  auto status = column("job_runs", "job_id", "status");
  auto batch_of = column("job_runs", "job_id", "batch_id");
  auto progress = column("job_runs", "job_id", "progress_percent");
  auto message = column("job_runs", "job_id", "message");
  auto error = column("job_runs", "job_id", "error");
  EXPECT_EQ(status.size(), 3u);
  for (const auto& [id, job] : api_jobs) {
    ASSERT_TRUE(job) << id;
    EXPECT_EQ(status[id], asStored(*job, "status")) << id;
    EXPECT_EQ(batch_of[id], asStored(*job, "batch_id")) << id;
    EXPECT_EQ(progress[id], asStored(*job, "progress_percent")) << id;
    EXPECT_EQ(message[id], asStored(*job, "message")) << id;
    EXPECT_EQ(error[id], asStored(*job, "error")) << id;
  }
  EXPECT_EQ(error[finished.job_ids[1]], "exit code 2");

  // The job that was running when the daemon stopped is stored as cancelled.
  const std::string& stopped = running.job_ids[0];
  EXPECT_EQ(status[stopped], "cancelled");
  EXPECT_EQ(batch_of[stopped], running.batch_id);
  EXPECT_EQ(error[stopped], "supervisor shutting down");

  auto batch_status = column("job_batches", "batch_id", "status");
  EXPECT_EQ(batch_status.size(), 2u);
  EXPECT_EQ(batch_status[finished.batch_id], asStored(*api_batch, "status"));
  EXPECT_EQ(batch_status[finished.batch_id], "failed");
  EXPECT_EQ(batch_status[running.batch_id], "cancelled");
}

TEST_F(Store, RefusedRequestsWriteNoRows) {
  config_.addCollector("ninja", "exit 0\n");
  Daemon daemon(config_);
  auto client = daemon.client();
  client.post("/api/collectors/run", "{\"collectors\": [\"ninja\", \"nope\"]}");
  client.post("/api/collectors/run", "{\"collectors\": [\"ninja\", \"ninja\"]}");
  client.post("/api/collectors/run", "{\"collectors\": [\"ninja\"], \"priority\": \"asap\"}");
  client.post("/api/collectors/run", "{\"collectors\": []}");
  client.post("/api/collectors/run", "not json");
  client.put("/api/collectors/run", "{\"collectors\": [\"ninja\"]}");
  client.get("/api/collectors/runs/batch/bc_00000000");
  client.get("/api/collectors/history?limit=0");
  ASSERT_EQ(daemon.stop(), 0);

  EXPECT_EQ(rowCount("job_batches"), 0);
  EXPECT_EQ(rowCount("job_runs"), 0);
}

}  // namespace
}  // namespace collectord::test
