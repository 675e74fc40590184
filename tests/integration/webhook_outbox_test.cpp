// The webhook outbox under the supervisor, without HTTP: a real SQLite store whose writes of
// webhook events fail on demand (before the commit, or after it as a lost acknowledgement would),
// real child processes. However often the write of a terminal state is retried, each event is in
// the outbox once. And the store with a second writer beside the supervisor, as the sender is.
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include "sqlite_job_store.h"
#include "supervisor.h"
#include "time_format.h"

namespace collectord {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The real store, whose writes that carry webhook deliveries fail while `failures` is above 0.
class FlakyStore final : public JobStore {
 public:
  explicit FlakyStore(const std::string& path) : real(path) {}
  bool insertBatch(const BatchRecord& b, const std::vector<JobRecord>& j) override {
    return real.insertBatch(b, j);
  }
  void save(const std::vector<JobRecord>& j, const std::vector<BatchRecord>& b,
            const std::vector<std::pair<std::string, AttemptRecord>>& a = {},
            const std::vector<WebhookOutboxRow>& o = {}) override {
    if (!o.empty() && failures > 0) {
      --failures;
      ++failed_writes;
      if (!after_commit) throw StoreError("cannot save job state: disk I/O error");
      real.save(j, b, a, o);
      throw StoreError("cannot save job state: the commit's answer was lost");
    }
    real.save(j, b, a, o);
  }
  std::vector<AttemptRecord> attemptsOf(const std::string& id) override {
    return real.attemptsOf(id);
  }
  std::optional<BatchRecord> findBatch(const std::string& id) override {
    return real.findBatch(id);
  }
  std::vector<JobRecord> jobsOfBatch(const std::string& id) override {
    return real.jobsOfBatch(id);
  }
  std::optional<JobRecord> findJob(const std::string& id) override { return real.findJob(id); }
  std::optional<JobRecord> latestRun(const std::string& c) override { return real.latestRun(c); }
  std::vector<JobRecord> history(int limit) override { return real.history(limit); }
  std::optional<JobRecord> lastFinishedRun(const std::string& c) override {
    return real.lastFinishedRun(c);
  }
  std::vector<JobRecord> activeJobs() override { return real.activeJobs(); }
  void ping() override { real.ping(); }
  std::optional<Micros> lastScheduledRun(const std::string& c) override {
    return real.lastScheduledRun(c);
  }
  void recordScheduledRun(const std::string& c, Micros at) override {
    real.recordScheduledRun(c, at);
  }

  SqliteJobStore real;
  std::atomic<int> failures{0};
  std::atomic<int> failed_writes{0};
  std::atomic<bool> after_commit{false};
};

class WebhookOutbox : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/collectord-outbox-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    config_.logs_directory = (dir_ / "logs").string();
    config_.shutdown_grace = 2000ms;
    for (const char* name : {"quick", "broken"}) {
      CollectorConfig c;
      c.name = name;
      c.job_name = std::string(name) + "-collector";
      c.command = "/bin/sh";
      c.args = {"-c", std::string(name) == "quick" ? "exit 0" : "exit 1"};
      c.working_directory = dir_.string();
      config_.collectors.push_back(c);
    }
    WebhookEndpoint all;
    all.name = "all";
    all.url = "http://127.0.0.1:9/";
    all.secret = "s";
    all.events = (1u << kWebhookEventTypeCount) - 1;
    WebhookEndpoint failures = all;
    failures.name = "failures";
    failures.events = 1u << static_cast<int>(WebhookEventType::kJobFailed);
    config_.webhooks.endpoints = {all, failures};
    store_ = std::make_unique<FlakyStore>((dir_ / "jobs.db").string());
  }
  void TearDown() override {
    supervisor_.reset();
    store_.reset();
    if (!::getenv("COLLECTORD_KEEP_TEST_DIRS")) fs::remove_all(dir_);
  }

  void start() {
    SupervisorOptions options{50ms};
    options.webhook_payload = [](const WebhookEvent& e) { return "{\"id\":\"" + e.id + "\"}"; };
    supervisor_ = std::make_unique<Supervisor>(config_, *store_, options);
    supervisor_->start();
  }

  // Waits until the batch is terminal in the store.
  bool waitForBatch(const std::string& batch_id) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto batch = store_->findBatch(batch_id);
      if (batch && isTerminal(batch->status)) return true;
      std::this_thread::sleep_for(20ms);  // polling the store for a state change
    }
    return false;
  }

  // (event ID, endpoint) -> how many outbox rows.
  std::map<std::pair<std::string, std::string>, int> outbox() {
    std::map<std::pair<std::string, std::string>, int> rows;
    for (const auto& d : store_->real.webhookDeliveries(1000, std::nullopt)) {
      ++rows[{d.event_id, d.endpoint}];
      EXPECT_EQ(d.body, "{\"id\":\"" + d.event_id + "\"}");
      EXPECT_EQ(d.state, DeliveryState::kPending);
    }
    return rows;
  }

  // Runs quick and broken in one batch and checks that the outbox holds each event once.
  void eachEventIsWrittenOnce() {
    start();
    const TriggerResult t = supervisor_->trigger({"quick", "broken"}, Priority::kNormal);
    ASSERT_TRUE(waitForBatch(t.batch.batch_id));
    const std::string quick = t.jobs[0].job_id;
    const std::string broken = t.jobs[1].job_id;
    const std::map<std::pair<std::string, std::string>, int> expected = {
        {{"job.completed:" + quick, "all"}, 1},
        {{"job.failed:" + broken, "all"}, 1},
        {{"job.failed:" + broken, "failures"}, 1},
        {{"batch.failed:" + t.batch.batch_id, "all"}, 1},
    };
    EXPECT_EQ(outbox(), expected);
    supervisor_->stop();
    EXPECT_EQ(outbox(), expected) << "stopping writes nothing again";
  }

  fs::path dir_;
  Config config_;
  std::unique_ptr<FlakyStore> store_;
  std::unique_ptr<Supervisor> supervisor_;
};

TEST_F(WebhookOutbox, EachTerminalJobAndBatchGivesOneDeliveryPerEndpointThatWantsIt) {
  eachEventIsWrittenOnce();
  EXPECT_EQ(store_->failed_writes, 0);
}

TEST_F(WebhookOutbox, AWriteThatFailsIsRetriedWithItsEventsWrittenOnce) {
  store_->failures = 2;
  eachEventIsWrittenOnce();
  EXPECT_EQ(store_->failed_writes, 2) << "the events came with the retried writes";
}

TEST_F(WebhookOutbox, AWriteRetriedAfterItsCommitWasNotAcknowledgedAddsNoSecondDelivery) {
  store_->failures = 2;
  store_->after_commit = true;
  eachEventIsWrittenOnce();
  EXPECT_EQ(store_->failed_writes, 2);
}

TEST_F(WebhookOutbox, WithoutEndpointsNothingIsWritten) {
  config_.webhooks.endpoints.clear();
  start();
  const TriggerResult t = supervisor_->trigger({"quick"}, Priority::kNormal);
  ASSERT_TRUE(waitForBatch(t.batch.batch_id));
  EXPECT_TRUE(outbox().empty());
}

// The webhook sender writes from threads of its own, so the supervisor's writes can meet
// another writer. A trigger's insert reads (are the IDs free?) before it writes; in a deferred
// transaction SQLite then answers "database is locked" at once instead of waiting.
TEST(SqliteStoreWriters, InsertingABatchWaitsForAnotherWriterInsteadOfFailing) {
  char pattern[] = "/tmp/collectord-writers-XXXXXX";
  const fs::path dir = ::mkdtemp(pattern);
  const std::string path = (dir / "jobs.db").string();
  SqliteJobStore store(path);
  Poco::Data::Session other("SQLite", path);
  other << "BEGIN IMMEDIATE", Poco::Data::Keywords::now;
  other << "UPDATE webhook_deliveries SET attempts = attempts + 1", Poco::Data::Keywords::now;

  BatchRecord batch;
  batch.batch_id = "bc_12345678";
  batch.started_at = batch.updated_at = nowMicros();
  JobRecord job;
  job.job_id = "ni_12345678";
  job.batch_id = batch.batch_id;
  job.collector = "ninja";
  job.job_name = "ninja-collector";
  job.started_at = job.updated_at = batch.started_at;
  auto inserted = std::async(std::launch::async, [&] { return store.insertBatch(batch, {job}); });
  // Long enough for an insert that does not wait to have failed already.
  const bool ended_early = inserted.wait_for(300ms) == std::future_status::ready;
  other << "COMMIT", Poco::Data::Keywords::now;
  EXPECT_FALSE(ended_early) << "the insert waits while the other writer holds the lock";
  bool ok = false;
  EXPECT_NO_THROW(ok = inserted.get());
  EXPECT_TRUE(ok);
  EXPECT_TRUE(store.findBatch(batch.batch_id));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace collectord
