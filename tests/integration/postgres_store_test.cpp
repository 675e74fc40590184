// PostgresJobStore against a real PostgreSQL server (scripts/test-postgres.sh), one empty
// database per test: the JobStore and WebhookStore contract as SqliteJobStore keeps it,
// migrations by several instances starting at once, and a server that stops or crashes and
// comes back under the same store object.
#include <gtest/gtest.h>

#include <chrono>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "migration.h"
#include "postgres_job_store.h"
#include "postgres_server.h"

namespace collectord {
namespace {

using namespace std::chrono_literals;
using test::createDatabase;
using test::PostgresServer;
using test::queryValue;
using test::sharedPostgres;

constexpr Micros kT0 = 1'700'000'000'000'000;  // 2023-11-14, in microseconds

BatchRecord batchAt(const std::string& id, Micros started_at) {
  BatchRecord b;
  b.batch_id = id;
  b.started_at = started_at;
  b.updated_at = started_at;
  return b;
}

JobRecord jobAt(const std::string& id, const std::string& batch_id, const std::string& collector,
                Micros started_at, JobStatus status = JobStatus::kQueued) {
  JobRecord j;
  j.job_id = id;
  j.batch_id = batch_id;
  j.collector = collector;
  j.job_name = collector + "-collector";
  j.status = status;
  j.started_at = started_at;
  j.updated_at = started_at;
  return j;
}

WebhookOutboxRow outboxRow(const std::string& event_id, const std::string& endpoint,
                           Micros created_at) {
  return WebhookOutboxRow{event_id, endpoint, "job.completed",
                          R"({"event_id":")" + event_id + R"(","emoji":"🎉"})", created_at};
}

std::vector<std::string> idsOf(const std::vector<JobRecord>& jobs) {
  std::vector<std::string> ids;
  for (const JobRecord& j : jobs) ids.push_back(j.job_id);
  return ids;
}

class PostgresStore : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (sharedPostgres()) return;
    try {
      server_ = new PostgresServer();
    } catch (const std::exception& e) {
      server_error_ = new std::string(e.what());
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete server_error_;
    server_error_ = nullptr;
  }

  void SetUp() override {
    // These tests stop and crash a server of their own; the run on the shared one adds nothing.
    if (sharedPostgres()) GTEST_SKIP() << "runs once, in the SQLite run, on a server of its own";
    ASSERT_NE(server_, nullptr) << "no PostgreSQL server: " << *server_error_;
    url_ = createDatabase(server_->url(), "store");
    store_ = std::make_unique<PostgresJobStore>(url_, "node-a");
  }

  std::string value(const std::string& sql) const { return queryValue(url_, sql); }

  // A batch of one queued job per collector, inserted; its jobs in trigger order.
  std::vector<JobRecord> insert(const std::string& batch_id, Micros started_at,
                                const std::vector<std::pair<std::string, std::string>>& jobs) {
    std::vector<JobRecord> records;
    for (const auto& [job_id, collector] : jobs) {
      records.push_back(jobAt(job_id, batch_id, collector, started_at));
    }
    EXPECT_TRUE(store_->insertBatch(batchAt(batch_id, started_at), records)) << batch_id;
    return records;
  }

  static PostgresServer* server_;
  static std::string* server_error_;
  std::string url_;
  std::unique_ptr<PostgresJobStore> store_;
};

PostgresServer* PostgresStore::server_ = nullptr;
std::string* PostgresStore::server_error_ = nullptr;

TEST_F(PostgresStore, AppliesItsMigrationsAndRecordsEachOnce) {
  EXPECT_EQ(store_->schemaVersion(), postgresMigrations().back().version);
  EXPECT_EQ(value("SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(postgresMigrations().size()));
  for (const char* table : {"job_batches", "job_runs", "job_attempts", "schedules",
                            "webhook_deliveries", "webhook_attempts"}) {
    EXPECT_EQ(value(std::string("SELECT to_regclass('") + table + "') IS NOT NULL"), "t") << table;
  }
  // The partial indexes are partial, as in SQLite.
  EXPECT_NE(
      value("SELECT indexdef FROM pg_indexes WHERE indexname = 'job_runs_active'").find("WHERE"),
      std::string::npos);

  PostgresJobStore again(url_);
  EXPECT_EQ(again.schemaVersion(), store_->schemaVersion());
  EXPECT_EQ(value("SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(postgresMigrations().size()));
}

TEST_F(PostgresStore, ABatchAndItsJobsReadBackInTriggerOrder) {
  BatchRecord batch = batchAt("bc_00000001", kT0);
  batch.priority = Priority::kHigh;
  const std::vector<JobRecord> jobs = {jobAt("zz_00000001", batch.batch_id, "zeta", kT0),
                                       jobAt("aa_00000001", batch.batch_id, "alpha", kT0),
                                       jobAt("mm_00000001", batch.batch_id, "mu", kT0)};
  ASSERT_TRUE(store_->insertBatch(batch, jobs));

  const auto found = store_->findBatch("bc_00000001");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->status, JobStatus::kQueued);
  EXPECT_EQ(found->priority, Priority::kHigh);
  EXPECT_EQ(found->started_at, kT0);
  EXPECT_EQ(idsOf(store_->jobsOfBatch("bc_00000001")),
            (std::vector<std::string>{"zz_00000001", "aa_00000001", "mm_00000001"}));
  const auto job = store_->findJob("aa_00000001");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->batch_id, "bc_00000001");
  EXPECT_EQ(job->collector, "alpha");
  EXPECT_EQ(job->job_name, "alpha-collector");
  EXPECT_EQ(value("SELECT owner FROM job_runs WHERE job_id = 'aa_00000001'"), "node-a");

  EXPECT_FALSE(store_->findBatch("bc_99999999"));
  EXPECT_FALSE(store_->findJob("zz_99999999"));
  EXPECT_TRUE(store_->jobsOfBatch("bc_99999999").empty());

  // The batch status endpoint's read: both in one statement, the same rows.
  const auto both = store_->batchWithJobs("bc_00000001");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->first.priority, Priority::kHigh);
  EXPECT_EQ(both->first.status, JobStatus::kQueued);
  EXPECT_EQ(idsOf(both->second),
            (std::vector<std::string>{"zz_00000001", "aa_00000001", "mm_00000001"}));
  EXPECT_EQ(both->second.at(1).job_name, "alpha-collector");
  EXPECT_FALSE(store_->batchWithJobs("bc_99999999"));
}

TEST_F(PostgresStore, ANulInAMessageOrErrorIsStoredAsAReplacementCharacterNotAFailedWrite) {
  std::vector<JobRecord> jobs = insert("bc_00000001", kT0, {{"ni_00000001", "ninja"}});
  JobRecord& job = jobs[0];
  job.status = JobStatus::kFailed;
  job.message = std::string("before") + '\0' + "after";
  job.error = std::string("exit") + '\0' + '\0';
  BatchRecord batch = batchAt("bc_00000001", kT0);
  batch.message = std::string("batch") + '\0';
  AttemptRecord attempt;
  attempt.attempt = 1;
  attempt.ended_at = kT0 + 5;
  attempt.error = std::string("first") + '\0';
  store_->save({job}, {batch}, {{job.job_id, attempt}});

  EXPECT_EQ(store_->findJob("ni_00000001")->message, "before\xEF\xBF\xBD" "after");
  EXPECT_EQ(store_->findJob("ni_00000001")->error, "exit\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(store_->findBatch("bc_00000001")->message, "batch\xEF\xBF\xBD");
  EXPECT_EQ(store_->attemptsOf("ni_00000001").at(0).error, "first\xEF\xBF\xBD");

  // A webhook attempt's error (an exception's text, whatever a receiver sent) likewise.
  store_->save({}, {}, {}, {outboxRow("ev_1", "ops", kT0)});
  const std::int64_t delivery = store_->dueWebhookDeliveries("ops", kT0, 1).at(0).delivery_id;
  const std::string error = std::string("bad") + '\0' + "reply";
  store_->recordWebhookAttempt(delivery, {1, kT0 + 1, 5, std::nullopt, error},
                               DeliveryState::kPending, kT0 + 1000);
  const auto recorded = store_->webhookDeliveries(1, std::nullopt).at(0);
  EXPECT_EQ(recorded.last_error, "bad\xEF\xBF\xBDreply");
  EXPECT_EQ(recorded.attempt_log.at(0).error, "bad\xEF\xBF\xBDreply");
}

TEST_F(PostgresStore, ASecondBatchWithATakenIdWritesNothing) {
  insert("bc_00000001", kT0, {{"ni_00000001", "ninja"}});

  EXPECT_FALSE(store_->insertBatch(batchAt("bc_00000001", kT0 + 1),
                                   {jobAt("ni_00000002", "bc_00000001", "ninja", kT0 + 1)}));
  EXPECT_FALSE(store_->findJob("ni_00000002"));
  EXPECT_EQ(store_->findBatch("bc_00000001")->started_at, kT0);

  // A new batch whose second job's ID is taken: not even its first job or the batch stays.
  EXPECT_FALSE(store_->insertBatch(batchAt("bc_00000002", kT0 + 2),
                                   {jobAt("ni_00000003", "bc_00000002", "ninja", kT0 + 2),
                                    jobAt("ni_00000001", "bc_00000002", "ninja", kT0 + 2)}));
  EXPECT_FALSE(store_->findBatch("bc_00000002"));
  EXPECT_FALSE(store_->findJob("ni_00000003"));
  EXPECT_EQ(value("SELECT COUNT(*) FROM job_runs"), "1");
  EXPECT_EQ(value("SELECT COUNT(*) FROM job_batches"), "1");
}

TEST_F(PostgresStore, OptionalFieldsRoundTripAsNullOrAsSet) {
  const std::string awkward = "it's \"quoted\", back\\slash, $1 and ? — ünïcödé 🎉\nsecond line";
  BatchRecord batch = batchAt("bc_00000001", kT0);
  batch.status = JobStatus::kFailed;
  batch.progress_percent = 100;
  batch.message = awkward;
  batch.error = "";
  batch.ended_at = kT0 + 1'500'000;
  batch.estimated_completion = 4'102'444'800'000'000;  // 2100-01-01
  JobRecord bare = jobAt("ba_00000001", batch.batch_id, "bare", kT0);
  JobRecord full = jobAt("fu_00000001", batch.batch_id, "full", kT0);
  ASSERT_TRUE(store_->insertBatch(batch, {bare, full}));
  full.status = JobStatus::kFailed;
  full.progress_percent = 0;
  full.message = awkward;
  full.error = "exit status 3 🎉";
  full.ended_at = kT0 + 1'500'000;
  full.updated_at = kT0 + 1'500'000;
  full.attempt = 3;
  full.max_attempts = 4;
  full.next_attempt_at = kT0 + 9'000'000;
  full.pid = 4'000'000;
  store_->save({full}, {});

  const auto b = store_->findBatch("bc_00000001");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->message, awkward);
  EXPECT_EQ(b->error, std::optional<std::string>(""));  // empty, not NULL
  EXPECT_EQ(b->ended_at, kT0 + 1'500'000);
  EXPECT_EQ(b->estimated_completion, 4'102'444'800'000'000);
  EXPECT_EQ(b->progress_percent, 100);
  EXPECT_EQ(value("SELECT duration_seconds FROM job_batches"), "1.5");

  const auto n = store_->findJob("ba_00000001");
  ASSERT_TRUE(n);
  EXPECT_FALSE(n->progress_percent);
  EXPECT_FALSE(n->message);
  EXPECT_FALSE(n->error);
  EXPECT_FALSE(n->ended_at);
  EXPECT_FALSE(n->next_attempt_at);
  EXPECT_FALSE(n->pid);
  EXPECT_EQ(value("SELECT COUNT(*) FROM job_runs WHERE job_id = 'ba_00000001' AND message IS "
                  "NULL AND duration_seconds IS NULL"),
            "1");

  const auto f = store_->findJob("fu_00000001");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->status, JobStatus::kFailed);
  EXPECT_EQ(f->progress_percent, 0);
  EXPECT_EQ(f->message, awkward);
  EXPECT_EQ(f->error, "exit status 3 🎉");
  EXPECT_EQ(f->ended_at, kT0 + 1'500'000);
  EXPECT_EQ(f->updated_at, kT0 + 1'500'000);
  EXPECT_EQ(f->attempt, 3);
  EXPECT_EQ(f->max_attempts, 4);
  EXPECT_EQ(f->next_attempt_at, kT0 + 9'000'000);
  EXPECT_EQ(f->pid, 4'000'000);
  // Stored as characters, not as bytes reinterpreted by some encoding on the way.
  EXPECT_EQ(value("SELECT length(error) FROM job_runs WHERE job_id = 'fu_00000001'"), "15");
}

TEST_F(PostgresStore, SaveWritesJobsBatchesAttemptsAndDeliveriesInOneTransaction) {
  auto jobs = insert("bc_00000001", kT0, {{"ni_00000001", "ninja"}});
  BatchRecord batch = batchAt("bc_00000001", kT0);
  batch.status = JobStatus::kCompleted;
  batch.progress_percent = 100;
  batch.updated_at = kT0 + 2'000'000;
  batch.ended_at = kT0 + 2'000'000;
  jobs[0].status = JobStatus::kCompleted;
  jobs[0].attempt = 2;
  jobs[0].updated_at = kT0 + 2'000'000;
  jobs[0].ended_at = kT0 + 2'000'000;
  const AttemptRecord first{1, kT0 + 100, kT0 + 900'000, "exit status 1"};
  const std::vector<WebhookOutboxRow> outbox = {outboxRow("ev_1", "ops", kT0 + 2'000'000),
                                                outboxRow("ev_1", "audit", kT0 + 2'000'000)};
  store_->save(jobs, {batch}, {{"ni_00000001", first}}, outbox);

  EXPECT_EQ(store_->findBatch("bc_00000001")->status, JobStatus::kCompleted);
  EXPECT_EQ(store_->findJob("ni_00000001")->attempt, 2);
  const auto attempts = store_->attemptsOf("ni_00000001");
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].started_at, kT0 + 100);
  EXPECT_EQ(attempts[0].ended_at, kT0 + 900'000);
  EXPECT_EQ(attempts[0].error, "exit status 1");
  EXPECT_EQ(value("SELECT COUNT(*) FROM webhook_deliveries"), "2");

  // The same write again (a retry after a lost acknowledgement): no second delivery.
  store_->save(jobs, {batch}, {{"ni_00000001", first}}, outbox);
  EXPECT_EQ(value("SELECT COUNT(*) FROM webhook_deliveries"), "2");
  EXPECT_EQ(value("SELECT COUNT(*) FROM job_attempts"), "1");

  // A write that fails part way (a job's progress beyond 100 breaks a CHECK) leaves nothing.
  BatchRecord failed = batch;
  failed.status = JobStatus::kFailed;
  jobs[0].progress_percent = 150;
  EXPECT_THROW(store_->save(jobs, {failed}, {}, {outboxRow("ev_2", "ops", kT0 + 3'000'000)}),
               StoreError);
  EXPECT_EQ(store_->findBatch("bc_00000001")->status, JobStatus::kCompleted);
  EXPECT_EQ(value("SELECT COUNT(*) FROM webhook_deliveries"), "2");
}

TEST_F(PostgresStore, AttemptsComeOldestFirstAndARewrittenAttemptReplacesItsRow) {
  insert("bc_00000001", kT0, {{"ni_00000001", "ninja"}});
  store_->save({}, {},
               {{"ni_00000001", AttemptRecord{2, std::nullopt, kT0 + 20, "timed out"}},
                {"ni_00000001", AttemptRecord{1, kT0 + 1, kT0 + 10, "exit status 1"}}});
  store_->save({}, {}, {{"ni_00000001", AttemptRecord{2, kT0 + 11, kT0 + 30, "killed"}}});

  const auto attempts = store_->attemptsOf("ni_00000001");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].attempt, 1);
  EXPECT_EQ(attempts[0].started_at, kT0 + 1);
  EXPECT_EQ(attempts[1].attempt, 2);
  EXPECT_EQ(attempts[1].started_at, kT0 + 11);
  EXPECT_EQ(attempts[1].error, "killed");
  EXPECT_TRUE(store_->attemptsOf("ni_99999999").empty());
}

TEST_F(PostgresStore, LatestRunIsTheActiveJobElseTheMostRecentAndLastFinishedSkipsActive) {
  auto old_jobs = insert("bc_00000001", kT0, {{"ni_00000001", "ninja"}});
  auto running = insert("bc_00000002", kT0 + 10, {{"ni_00000002", "ninja"}});
  auto newest = insert("bc_00000003", kT0 + 20, {{"ni_00000003", "ninja"}});
  old_jobs[0].status = JobStatus::kCompleted;
  running[0].status = JobStatus::kRunning;
  newest[0].status = JobStatus::kCancelled;
  store_->save({old_jobs[0], running[0], newest[0]}, {});

  EXPECT_EQ(store_->latestRun("ninja")->job_id, "ni_00000002");  // active beats newer
  EXPECT_EQ(store_->lastFinishedRun("ninja")->job_id, "ni_00000003");
  running[0].status = JobStatus::kFailed;
  store_->save({running[0]}, {});
  EXPECT_EQ(store_->latestRun("ninja")->job_id, "ni_00000003");
  EXPECT_FALSE(store_->latestRun("other"));
  EXPECT_FALSE(store_->lastFinishedRun("other"));
}

TEST_F(PostgresStore, HistoryIsNewestFirstThenByBatchThenTriggerOrderUpToTheLimit) {
  insert("bc_00000001", kT0, {{"ni_00000001", "ninja"}});
  insert("bc_00000002", kT0 + 10, {{"zz_00000002", "zeta"}, {"aa_00000002", "alpha"}});
  insert("bc_00000003", kT0 + 10, {{"ni_00000003", "ninja"}});  // same start: batch ID decides

  EXPECT_EQ(idsOf(store_->history(10)),
            (std::vector<std::string>{"ni_00000003", "zz_00000002", "aa_00000002", "ni_00000001"}));
  EXPECT_EQ(idsOf(store_->history(2)), (std::vector<std::string>{"ni_00000003", "zz_00000002"}));
  EXPECT_TRUE(store_->history(0).empty());
}

TEST_F(PostgresStore, ActiveJobsAreTheQueuedAndRunningOnesOldestFirst) {
  auto a = insert("bc_00000001", kT0 + 20, {{"ni_00000001", "ninja"}});
  auto b = insert("bc_00000002", kT0, {{"zz_00000002", "zeta"}, {"aa_00000002", "alpha"}});
  auto c = insert("bc_00000003", kT0 + 10, {{"ni_00000003", "ninja"}});
  b[1].status = JobStatus::kRunning;
  c[0].status = JobStatus::kCompleted;
  store_->save({b[1], c[0]}, {});

  EXPECT_EQ(idsOf(store_->activeJobs()),
            (std::vector<std::string>{"zz_00000002", "aa_00000002", "ni_00000001"}));
}

TEST_F(PostgresStore, ASchedulesLastFiringIsRememberedAndReplaced) {
  EXPECT_FALSE(store_->lastScheduledRun("ninja"));
  store_->recordScheduledRun("ninja", kT0);
  EXPECT_EQ(store_->lastScheduledRun("ninja"), kT0);
  store_->recordScheduledRun("ninja", kT0 + 60'000'000);
  EXPECT_EQ(store_->lastScheduledRun("ninja"), kT0 + 60'000'000);
  EXPECT_FALSE(store_->lastScheduledRun("zeta"));
  EXPECT_EQ(value("SELECT COUNT(*) FROM schedules"), "1");
}

TEST_F(PostgresStore, DueDeliveriesAreThePendingOnesLongestDueFirstUpToTheLimit) {
  insert("bc_00000001", kT0, {{"ni_00000001", "ninja"}});
  store_->save({}, {}, {},
               {outboxRow("ev_3", "ops", kT0 + 30), outboxRow("ev_1", "ops", kT0 + 10),
                outboxRow("ev_2", "ops", kT0 + 20), outboxRow("ev_1", "audit", kT0 + 10),
                outboxRow("ev_9", "ops", kT0 + 90)});

  const auto due = store_->dueWebhookDeliveries("ops", kT0 + 30, 2);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].event_id, "ev_1");
  EXPECT_EQ(due[1].event_id, "ev_2");
  EXPECT_EQ(due[0].endpoint, "ops");
  EXPECT_EQ(due[0].event_type, "job.completed");
  EXPECT_EQ(due[0].body, R"({"event_id":"ev_1","emoji":"🎉"})");
  EXPECT_EQ(due[0].created_at, kT0 + 10);
  EXPECT_EQ(due[0].next_attempt_at, kT0 + 10);
  EXPECT_EQ(due[0].state, DeliveryState::kPending);
  EXPECT_EQ(due[0].attempts, 0);
  EXPECT_FALSE(due[0].last_error);
  EXPECT_FALSE(due[0].last_status);
  EXPECT_FALSE(due[0].finished_at);
  EXPECT_EQ(store_->dueWebhookDeliveries("ops", kT0 + 30, 10).size(), 3u);
  EXPECT_TRUE(store_->dueWebhookDeliveries("ops", kT0, 10).empty());
  EXPECT_EQ(store_->nextWebhookDue("ops"), kT0 + 10);
  EXPECT_FALSE(store_->nextWebhookDue("nobody"));
  EXPECT_EQ(store_->pendingWebhookEndpoints(), (std::vector<std::string>{"audit", "ops"}));
}

TEST_F(PostgresStore, AnAttemptMovesADeliveryOnAndAnEndedOneStaysEndedUnlessDelivered) {
  store_->save({}, {}, {},
               {outboxRow("ev_1", "ops", kT0), outboxRow("ev_2", "ops", kT0),
                outboxRow("ev_3", "audit", kT0)});
  const auto due = store_->dueWebhookDeliveries("ops", kT0, 10);
  ASSERT_EQ(due.size(), 2u);
  const std::int64_t first = due[0].delivery_id, second = due[1].delivery_id;

  store_->recordWebhookAttempt(first, {1, kT0 + 1, 250, 503, "HTTP 503"}, DeliveryState::kPending,
                               kT0 + 5'000'000);
  EXPECT_EQ(store_->nextWebhookDue("ops"), kT0);  // the second is still due at once
  store_->recordWebhookAttempt(first, {2, kT0 + 5'000'000, 40, 200, std::nullopt},
                               DeliveryState::kDelivered, 0);
  // The endpoint was removed: its pending delivery ends failed, and a late "failed" attempt
  // does not bring it back, but a late success does.
  EXPECT_EQ(store_->abandonWebhookDeliveries("ops", "endpoint removed", kT0 + 6'000'000), 1);
  EXPECT_EQ(store_->abandonWebhookDeliveries("ops", "endpoint removed", kT0 + 6'000'000), 0);
  store_->recordWebhookAttempt(second, {1, kT0 + 5'500'000, 10, std::nullopt, "refused"},
                               DeliveryState::kPending, kT0 + 9'000'000);
  EXPECT_FALSE(store_->nextWebhookDue("ops"));
  EXPECT_EQ(store_->pendingWebhookEndpoints(), (std::vector<std::string>{"audit"}));

  const auto all = store_->webhookDeliveries(10, std::nullopt);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].event_id, "ev_3");  // newest first
  EXPECT_TRUE(all[0].attempt_log.empty());
  const WebhookDeliveryRecord& delivered = all[2];
  EXPECT_EQ(delivered.delivery_id, first);
  EXPECT_EQ(delivered.state, DeliveryState::kDelivered);
  EXPECT_EQ(delivered.attempts, 2);
  EXPECT_EQ(delivered.last_status, 200);
  EXPECT_FALSE(delivered.last_error);
  EXPECT_EQ(delivered.finished_at, kT0 + 5'000'000 + 40'000);
  ASSERT_EQ(delivered.attempt_log.size(), 2u);  // oldest first
  EXPECT_EQ(delivered.attempt_log[0].attempt, 1);
  EXPECT_EQ(delivered.attempt_log[0].http_status, 503);
  EXPECT_EQ(delivered.attempt_log[0].error, "HTTP 503");
  EXPECT_EQ(delivered.attempt_log[0].duration_ms, 250);
  EXPECT_EQ(delivered.attempt_log[1].started_at, kT0 + 5'000'000);
  EXPECT_FALSE(delivered.attempt_log[1].error);
  const WebhookDeliveryRecord& abandoned = all[1];
  EXPECT_EQ(abandoned.state, DeliveryState::kFailed);
  EXPECT_EQ(abandoned.last_error, "endpoint removed");
  EXPECT_EQ(abandoned.finished_at, kT0 + 6'000'000);
  EXPECT_EQ(abandoned.attempt_log.size(), 1u);  // the late attempt is logged all the same

  store_->recordWebhookAttempt(second, {2, kT0 + 7'000'000, 10, 204, std::nullopt},
                               DeliveryState::kDelivered, 0);
  const auto failed = store_->webhookDeliveries(10, DeliveryState::kFailed);
  EXPECT_TRUE(failed.empty());
  const auto delivered_only = store_->webhookDeliveries(1, DeliveryState::kDelivered);
  ASSERT_EQ(delivered_only.size(), 1u);
  EXPECT_EQ(delivered_only[0].delivery_id, second);
  EXPECT_EQ(delivered_only[0].attempt_log.size(), 2u);
}

TEST_F(PostgresStore, PruningDeletesFinishedDeliveriesAndTheirAttemptsOnly) {
  store_->save({}, {}, {},
               {outboxRow("ev_1", "ops", kT0), outboxRow("ev_2", "ops", kT0),
                outboxRow("ev_3", "ops", kT0)});
  const auto due = store_->dueWebhookDeliveries("ops", kT0, 10);
  ASSERT_EQ(due.size(), 3u);
  store_->recordWebhookAttempt(due[0].delivery_id, {1, kT0, 10, 200, std::nullopt},
                               DeliveryState::kDelivered, 0);
  store_->recordWebhookAttempt(due[1].delivery_id, {1, kT0 + 60'000'000, 10, 200, std::nullopt},
                               DeliveryState::kDelivered, 0);

  EXPECT_EQ(store_->pruneWebhookDeliveries(kT0 + 1'000'000), 1);
  EXPECT_EQ(store_->pruneWebhookDeliveries(kT0 + 1'000'000), 0);
  EXPECT_EQ(value("SELECT COUNT(*) FROM webhook_deliveries"), "2");  // the later and the pending
  EXPECT_EQ(value("SELECT COUNT(*) FROM webhook_attempts"), "1");
  EXPECT_EQ(store_->pendingWebhookEndpoints(), (std::vector<std::string>{"ops"}));
}

TEST_F(PostgresStore, ThreeInstancesStartingTogetherApplyEachMigrationOnce) {
  const std::string url = createDatabase(server_->url(), "together");
  std::latch start(3);
  std::vector<std::unique_ptr<PostgresJobStore>> stores(3);
  std::vector<std::string> errors(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      try {
        stores[i] = std::make_unique<PostgresJobStore>(url, "node-" + std::to_string(i));
      } catch (const StoreError& e) {
        errors[i] = e.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();

  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(errors[i], "") << "instance " << i;
    EXPECT_EQ(stores[i]->schemaVersion(), postgresMigrations().back().version);
  }
  EXPECT_EQ(queryValue(url, "SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(postgresMigrations().size()));
  EXPECT_EQ(queryValue(url, "SELECT COUNT(DISTINCT version) FROM schema_migrations"),
            std::to_string(postgresMigrations().size()));
}

TEST_F(PostgresStore, AnUnreachableServerIsAStoreErrorNamingItButNotThePassword) {
  const auto started = std::chrono::steady_clock::now();
  try {
    PostgresJobStore store("postgresql://collectord:s3cret-pw@127.0.0.1:1/nowhere");
    FAIL() << "connected to nothing";
  } catch (const StoreError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("127.0.0.1:1/nowhere"), std::string::npos) << message;
    EXPECT_EQ(message.find("s3cret-pw"), std::string::npos) << message;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 15s);

  try {
    PostgresJobStore store("postgresql://collectord:s3cret-pw@localhost:port/db");
    FAIL() << "a port that is no number";
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()).find("s3cret-pw"), std::string::npos) << e.what();
  }
}

// Uses the store's reads and writes, both of which keep connections between calls.
void useStore(PostgresJobStore& store, const std::string& batch_id, Micros at) {
  try {
    ASSERT_TRUE(store.insertBatch(batchAt(batch_id, at),
                                  {jobAt("ni" + batch_id.substr(2), batch_id, "ninja", at)}));
    EXPECT_TRUE(store.findBatch(batch_id));
    EXPECT_EQ(store.jobsOfBatch(batch_id).size(), 1u);
    store.recordScheduledRun("ninja", at);
    store.ping();
  } catch (const StoreError& e) {
    ADD_FAILURE() << batch_id << ": " << e.what();
  }
}

// useStore on four threads at once (batches PREFIX0 to PREFIX3), so that each of the store's
// pools keeps several connections.
void useOnThreads(PostgresJobStore& store, const std::string& prefix, Micros at) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back(
        [&store, &prefix, at, i] { useStore(store, prefix + std::to_string(i), at); });
  }
  for (std::thread& t : threads) t.join();
}

// Calls each kind of method while the server is away: each must throw StoreError, quickly.
void expectStoreErrors(PostgresJobStore& store) {
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(store.findJob("ni_00000001"), StoreError);
  EXPECT_THROW(store.ping(), StoreError);
  EXPECT_THROW(store.insertBatch(batchAt("bc_0000000x", kT0), {}), StoreError);
  EXPECT_THROW(store.save({}, {}, {}, {outboxRow("ev_x", "ops", kT0)}), StoreError);
  EXPECT_THROW(store.webhookDeliveries(10, std::nullopt), StoreError);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST_F(PostgresStore, WhileTheServerIsStoppedCallsFailAndTheSameStoreWorksWhenItIsBack) {
  useOnThreads(*store_, "bc_0000001", kT0);
  server_->stop();
  expectStoreErrors(*store_);
  server_->start();
  // The connections that the stop closed are still in the store's pools: none fails a call.
  useOnThreads(*store_, "bc_0000002", kT0 + 1);
  EXPECT_EQ(store_->history(10).size(), 8u);
}

TEST_F(PostgresStore, AStatementWaitingForALockHeldElsewhereFailsAfterTheStatementTimeout) {
  std::vector<JobRecord> jobs = insert("bc_00000001", kT0, {{"ni_00000001", "ninja"}});
  // The URL's own statement timeout (collectord's default is 30 s), as an operator may set it.
  PostgresJobStore impatient(url_ + "?options=-cstatement_timeout%3D300", "node-b");
  jobs[0].status = JobStatus::kRunning;
  {
    const test::OpenTransaction admin(url_, "LOCK TABLE job_runs IN ACCESS EXCLUSIVE MODE");
    const auto started = std::chrono::steady_clock::now();
    EXPECT_THROW(impatient.findJob("ni_00000001"), StoreError);  // a read (libpq)
    EXPECT_THROW(impatient.save({jobs[0]}, {}), StoreError);      // a write (Poco)
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s) << "the timeout did not apply";
  }
  impatient.save({jobs[0]}, {});
  EXPECT_EQ(impatient.findJob("ni_00000001")->status, JobStatus::kRunning);
}

TEST_F(PostgresStore, AfterTheServerCrashesAndRestartsTheFirstCallsWork) {
  useOnThreads(*store_, "bc_0000001", kT0);
  // The test server commits asynchronously: a crash loses what is not yet in the WAL on disk,
  // here even the schema. A checkpoint first, so that the crash tests the connections only.
  value("CHECKPOINT");
  server_->kill();
  server_->start();

  // No call fails for the connections that the crash left behind in the store's pools.
  useOnThreads(*store_, "bc_0000002", kT0 + 1);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(store_->findBatch("bc_0000001" + std::to_string(i)));
    store_->save({}, {}, {}, {outboxRow("ev_" + std::to_string(i), "ops", kT0)});
  }
  EXPECT_EQ(store_->history(10).size(), 8u);
  EXPECT_EQ(value("SELECT COUNT(*) FROM webhook_deliveries"), "4");
}

}  // namespace
}  // namespace collectord
