#include "postgres_job_store.h"

#include <Poco/Data/PostgreSQL/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/SessionPool.h>
#include <Poco/Data/Statement.h>
#include <Poco/Nullable.h>


#include "migration.h"
#include "postgres_cluster.h"
#include "postgres_statements.h"
#include "postgres_support.h"
#include "store_sql.h"
#include "time_format.h"

namespace collectord {

using namespace Poco::Data::Keywords;
using Poco::Data::Session;
using Poco::Data::Statement;
using postgres::guarded;
using postgres::inTransaction;
using postgres::PgConnection;
using postgres::limitText;
using postgres::PgResult;
using postgres::storable;
using postgres::jobFromRow;
using postgres::batchFromRow;

namespace {

// The key of the advisory lock under which migrations run: any fixed number, the same for
// every collectord ("collectd" in ASCII). Advisory locks are per database, so instances on
// different databases of one server do not wait for each other.
constexpr Poco::Int64 kMigrationLockKey = 0x636f6c6c65637464;
// The key of holdExclusiveUse()'s lock: the next number. A lone collectord takes it exclusively,
// each node of a cluster shared, so neither kind starts beside the other.
const std::string kTakeExclusiveUse = "SELECT pg_try_advisory_lock(7165064744983032933)";
const std::string kTakeSharedUse = "SELECT pg_try_advisory_lock_shared(7165064744983032933)";

// Poco 1.11's PostgreSQL connector passes SQL to the server as it is: placeholders are $1, $2...
// (it does not translate '?'), and each statement is prepared on its own, so a migration is
// split into statements.
using store_sql::nullable;

// The statements of the read path.
const store_sql::ReadStatements& kSql = store_sql::numberedReadStatements();
const std::string kSchemaVersion = "SELECT MAX(version) FROM schema_migrations";

// "a.x, a.y, ..." for the columns "x, y, ...".
std::string qualified(std::string_view columns, const std::string& alias) {
  std::string out;
  std::size_t start = 0;
  while (start < columns.size()) {
    std::size_t end = columns.find(',', start);
    if (end == std::string_view::npos) end = columns.size();
    std::string_view column = columns.substr(start, end - start);
    while (!column.empty() && column.front() == ' ') column.remove_prefix(1);
    out += (out.empty() ? "" : ", ") + alias + "." + std::string(column);
    start = end + 1;
  }
  return out;
}

// A batch and its jobs in one statement, so in one snapshot (batchWithJobs): the batch's
// columns (kBatchColumns) then a job's (kJobColumns) on each row, a job per row in trigger order.
constexpr int kBatchColumnCount = 10;
const std::string kBatchWithJobs =
    "SELECT " + qualified(store_sql::kBatchColumns, "b") + ", " +
    qualified(store_sql::kJobColumns, "j") +
    " FROM job_batches b LEFT JOIN job_runs j ON j.batch_id = b.batch_id WHERE b.batch_id = $1 "
    "ORDER BY j.position";

Poco::Nullable<double> durationOf(Micros started_at, std::optional<Micros> ended_at) {
  return nullable(durationSeconds(started_at, ended_at));
}

// The jobs of a read. A cluster's jobs show their node (`owner`), none while queued; a lone
// collectord's none at all (its `owner` names an instance, not a node).
JobRecord shown(JobRecord j, bool cluster) {
  if (!cluster) {
    j.node_id.reset();
  } else if (j.status == JobStatus::kQueued || !j.node_id) {
    j.node_id = "";
  }
  return j;
}

std::vector<JobRecord> jobsOf(const PgResult& q, bool cluster) {
  std::vector<JobRecord> jobs;
  jobs.reserve(static_cast<std::size_t>(q.rows()));
  for (int r = 0; r < q.rows(); ++r) jobs.push_back(shown(jobFromRow(q, r), cluster));
  return jobs;
}

std::optional<JobRecord> firstJobOf(const PgResult& q, bool cluster) {
  if (q.rows() == 0) return std::nullopt;
  return shown(jobFromRow(q, 0), cluster);
}


// Returns how many rows the statement wrote.
std::size_t upsertBatch(Session& session, const BatchRecord& b, bool update) {
  Statement insert(session);
  insert << "INSERT INTO job_batches (batch_id, status, priority, progress_percent, message, "
            "error, started_at, updated_at, ended_at, estimated_completion, duration_seconds) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
         << (update ? "ON CONFLICT (batch_id) DO UPDATE SET status = excluded.status, "
                      "progress_percent = excluded.progress_percent, message = excluded.message, "
                      "error = excluded.error, updated_at = excluded.updated_at, "
                      "ended_at = excluded.ended_at, "
                      "estimated_completion = excluded.estimated_completion, "
                      "duration_seconds = excluded.duration_seconds"
                    : "ON CONFLICT DO NOTHING"),
      bind(b.batch_id), bind(std::string(toString(b.status))),
      bind(std::string(toString(b.priority))), bind(b.progress_percent), bind(storable(b.message)),
      bind(storable(b.error)), bind(b.started_at), bind(b.updated_at), bind(nullable(b.ended_at)),
      bind(nullable(b.estimated_completion)), bind(durationOf(b.started_at, b.ended_at));
  return insert.execute();
}

// Returns how many rows the statement wrote: none when the job's ID is taken.
std::size_t insertJob(Session& session, const JobRecord& j, int position,
                      const std::string& owner) {
  Statement insert(session);
  insert << "INSERT INTO job_runs (job_id, batch_id, position, collector, job_name, status, "
            "progress_percent, message, error, started_at, updated_at, ended_at, "
            "duration_seconds, attempt, pid, max_attempts, next_attempt_at, owner) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
            "$18) ON CONFLICT DO NOTHING",
      bind(j.job_id), bind(j.batch_id), bind(position), bind(j.collector), bind(j.job_name),
      bind(std::string(toString(j.status))), bind(nullable(j.progress_percent)),
      bind(storable(j.message)), bind(storable(j.error)), bind(j.started_at), bind(j.updated_at),
      bind(nullable(j.ended_at)), bind(durationOf(j.started_at, j.ended_at)), bind(j.attempt),
      bind(nullable(j.pid)), bind(j.max_attempts), bind(nullable(j.next_attempt_at)), bind(owner);
  return insert.execute();
}

void updateJob(Session& session, const JobRecord& j, const std::string& owner) {
  session << postgres::kUpdateJob, bind(std::string(toString(j.status))),
      bind(nullable(j.progress_percent)), bind(storable(j.message)), bind(storable(j.error)),
      bind(j.updated_at), bind(nullable(j.ended_at)), bind(durationOf(j.started_at, j.ended_at)),
      bind(j.attempt), bind(j.max_attempts), bind(nullable(j.pid)),
      bind(nullable(j.next_attempt_at)), bind(owner), bind(j.job_id), now;
}

void insertAttempt(Session& session, const std::string& job_id, const AttemptRecord& a) {
  session << postgres::kInsertAttempt, bind(job_id), bind(a.attempt), bind(nullable(a.started_at)),
      bind(a.ended_at), bind(storable(a.error)), now;
}

void insertOutboxRow(Session& session, const WebhookOutboxRow& row) {
  session << postgres::kInsertOutboxRow, bind(row.event_id), bind(row.endpoint),
      bind(row.event_type), bind(row.body), bind(row.created_at), bind(row.created_at), now;
}

}  // namespace

PostgresJobStore::PostgresJobStore(const std::string& url, std::string owner)
    : owner_(std::move(owner)) {
  settings_ = std::make_unique<postgres::ConnectionSettings>(url);
  guarded(*settings_, "cannot open the PostgreSQL store", [&] {
    Poco::Data::PostgreSQL::Connector::registerConnector();  // counted: a second call is harmless
    pool_ = std::make_unique<Poco::Data::SessionPool>(
        "PostgreSQL", settings_->pocoConnectionString(), 1, kMaxWriteSessions, 60);
    migrate();
  });
}

PostgresJobStore::~PostgresJobStore() = default;

void PostgresJobStore::holdExclusiveUse(bool as_cluster_node) {
  bool taken = false;
  guarded(*settings_, "cannot take the PostgreSQL store", [&] {
    auto connection = std::make_unique<PgConnection>(*settings_);
    taken = connection->run(as_cluster_node ? kTakeSharedUse : kTakeExclusiveUse).text(0, 0) == "t";
    if (taken) exclusive_use_ = std::move(connection);
  });
  if (taken) return;
  if (as_cluster_node) {
    throw StoreError("a collectord without cluster mode is using the PostgreSQL database " +
                     settings_->where() +
                     "; stop it, or enable [cluster] on it too, before starting cluster nodes");
  }
  throw StoreError("another collectord is using the PostgreSQL database " + settings_->where() +
                   "; one database serves one collectord unless every one of them runs as a "
                   "cluster node ([cluster] enabled, docs/cluster.md)");
}

void PostgresJobStore::migrate() {
  // A session of its own, not a pooled one: the advisory lock belongs to the connection, and
  // closing the connection releases it whatever happened.
  postgres::requireReachable(*settings_);  // Poco leaks a connection that fails
  Session session("PostgreSQL", settings_->pocoConnectionString());
  postgres::logNotices(session);  // "relation already exists, skipping"
  // A migration may wait for another instance's, and may build an index on many rows: no
  // statement timeout here.
  session << "SET statement_timeout = 0", now;
  Poco::Int64 key = kMigrationLockKey;
  session << "SELECT pg_advisory_lock($1)", bind(key), now;
  // Under the lock: two CREATE TABLE IF NOT EXISTS at once can both try to create the table.
  session << "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
             "name TEXT NOT NULL, applied_at TEXT NOT NULL)",
      now;
  Poco::Nullable<int> applied;
  session << "SELECT MAX(version) FROM schema_migrations", into(applied), now;
  const int current = applied.isNull() ? 0 : applied.value();
  for (const Migration& m : postgresMigrations()) {
    if (m.version <= current) continue;
    session.begin();
    try {
      for (const std::string& statement : splitSqlStatements(m.sql)) {
        Statement(session) << statement, now;
      }
      int version = m.version;
      session << "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
          use(version), bind(std::string(m.name)), bind(formatTimestamp(nowMicros())), now;
      session.commit();
    } catch (const Poco::Exception& e) {
      try {
        session.rollback();
      } catch (const Poco::Exception& rollback) {
        Poco::Logger::get("collectord.store").debug("rollback: %s", rollback.displayText());
      }
      throw StoreError(std::string("migration ") + m.name + " failed on PostgreSQL " +
                       settings_->where() + ": " + settings_->scrub(e.displayText()));
    }
  }
  session << "SELECT pg_advisory_unlock($1)", bind(key), now;
}

int PostgresJobStore::schemaVersion() {
  int version = 0;
  withReader("cannot read the schema version", [&](PgConnection& c) {
    const PgResult q = c.run(kSchemaVersion);
    version = q.rows() == 0 ? 0 : q.optInt32(0, 0).value_or(0);
  });
  return version;
}

bool PostgresJobStore::insertBatch(const BatchRecord& batch, const std::vector<JobRecord>& jobs) {
  return guarded(*settings_, "cannot insert the batch", [&] {
    bool inserted = false;
    // ON CONFLICT DO NOTHING rather than catching SQLSTATE 23505: Poco reports it only inside
    // its message text, and a failed statement would abort the transaction. A taken ID writes
    // no row, and the transaction is rolled back.
    inTransaction(*pool_, *settings_, [&](Session& session) {
      if (upsertBatch(session, batch, false) == 0) return false;
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        if (insertJob(session, jobs[i], static_cast<int>(i), owner_) == 0) return false;
      }
      // Every node looks for work when this commits, and shows the new jobs (listen()).
      if (cluster_) {
        std::string ids;
        for (const JobRecord& j : jobs) ids += (ids.empty() ? "" : ",") + j.job_id;
        Poco::Int64 sent = 0;
        session << "SELECT COUNT(*) FROM (SELECT pg_notify('collectord_jobs', id) FROM "
                   "unnest(string_to_array($1, ',')) AS id) AS sent",
            bind(ids), into(sent), now;
        session << "NOTIFY collectord_work", now;
      }
      inserted = true;
      return true;
    });
    return inserted;
  });
}

void PostgresJobStore::save(const std::vector<JobRecord>& jobs,
                            const std::vector<BatchRecord>& batches,
                            const std::vector<std::pair<std::string, AttemptRecord>>& attempts,
                            const std::vector<WebhookOutboxRow>& outbox) {
  if (cluster_) return saveAsNode(jobs, attempts, outbox);
  guarded(*settings_, "cannot save job state", [&] {
    inTransaction(*pool_, *settings_, [&](Session& session) {
      for (const BatchRecord& b : batches) upsertBatch(session, b, true);
      for (const JobRecord& j : jobs) updateJob(session, j, owner_);
      for (const auto& [job_id, attempt] : attempts) insertAttempt(session, job_id, attempt);
      for (const WebhookOutboxRow& row : outbox) insertOutboxRow(session, row);
      return true;
    });
  });
}

void PostgresJobStore::withReader(const char* what, const std::function<void(PgConnection&)>& fn) {
  guarded(*settings_, what, [&] {
    std::unique_ptr<PgConnection> reader;
    {
      std::lock_guard lock(readers_mutex_);
      while (!idle_readers_.empty() && !reader) {
        reader = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        if (!reader->usable()) reader.reset();  // closed by the server meanwhile
      }
    }
    if (reader) {
      try {
        fn(*reader);
      } catch (const std::runtime_error& e) {
        // The server went away after the check above: reads are safe to run again.
        if (!reader->broken()) throw;
        Poco::Logger::get("collectord.store")
            .debug("dropping a dead read connection: %s", std::string(e.what()));
        reader.reset();
      }
    }
    if (!reader) {
      reader = std::make_unique<PgConnection>(*settings_);
      fn(*reader);  // a reader that failed is dropped, not reused
    }
    std::lock_guard lock(readers_mutex_);
    if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(reader));
  });
}

std::vector<AttemptRecord> PostgresJobStore::attemptsOf(const std::string& job_id) {
  std::vector<AttemptRecord> attempts;
  withReader("cannot read the job's attempts", [&](PgConnection& c) {
    const PgResult q = c.run(kSql.attempts_of, {job_id});
    attempts.clear();
    for (int r = 0; r < q.rows(); ++r) {
      attempts.push_back(
          AttemptRecord{q.int32(r, 0), q.optInt64(r, 1), q.int64(r, 2), q.text(r, 3)});
    }
  });
  return attempts;
}

std::optional<BatchRecord> PostgresJobStore::findBatch(const std::string& batch_id) {
  std::optional<BatchRecord> batch;
  withReader("cannot read the batch", [&](PgConnection& c) {
    const PgResult q = c.run(kSql.find_batch, {batch_id});
    if (q.rows() == 0) return;
    batch = batchFromRow(q, 0);
  });
  return batch;
}

std::vector<JobRecord> PostgresJobStore::jobsOfBatch(const std::string& batch_id) {
  std::vector<JobRecord> jobs;
  withReader("cannot read the batch's jobs", [&](PgConnection& c) {
    jobs = jobsOf(c.run(kSql.jobs_of_batch, {batch_id}), cluster_ != nullptr);
  });
  return jobs;
}

std::optional<std::pair<BatchRecord, std::vector<JobRecord>>> PostgresJobStore::batchWithJobs(
    const std::string& batch_id) {
  std::optional<std::pair<BatchRecord, std::vector<JobRecord>>> result;
  withReader("cannot read the batch", [&](PgConnection& c) {
    const PgResult q = c.run(kBatchWithJobs, {batch_id});
    result.reset();
    if (q.rows() == 0) return;
    result.emplace(batchFromRow(q, 0), std::vector<JobRecord>{});
    for (int r = 0; r < q.rows(); ++r) {
      if (q.isNull(r, kBatchColumnCount)) continue;  // a batch without jobs
      result->second.push_back(shown(jobFromRow(q, r, kBatchColumnCount), cluster_ != nullptr));
    }
  });
  return result;
}

std::optional<JobRecord> PostgresJobStore::findJob(const std::string& job_id) {
  std::optional<JobRecord> job;
  withReader("cannot read the job", [&](PgConnection& c) {
    job = firstJobOf(c.run(kSql.find_job, {job_id}), cluster_ != nullptr);
  });
  return job;
}

std::optional<JobRecord> PostgresJobStore::latestRun(const std::string& collector) {
  std::optional<JobRecord> job;
  withReader("cannot read the latest run", [&](PgConnection& c) {
    job = firstJobOf(c.run(kSql.active_run, {collector}), cluster_ != nullptr);
    if (!job) job = firstJobOf(c.run(kSql.latest_run, {collector}), cluster_ != nullptr);
  });
  return job;
}

std::optional<JobRecord> PostgresJobStore::lastFinishedRun(const std::string& collector) {
  std::optional<JobRecord> job;
  withReader("cannot read the last finished run", [&](PgConnection& c) {
    job = firstJobOf(c.run(kSql.last_finished_run, {collector}), cluster_ != nullptr);
  });
  return job;
}

std::vector<JobRecord> PostgresJobStore::history(int limit) {
  std::vector<JobRecord> jobs;
  withReader("cannot read the history", [&](PgConnection& c) {
    jobs = jobsOf(c.run(kSql.history, {limitText(limit)}), cluster_ != nullptr);
  });
  return jobs;
}

std::vector<JobRecord> PostgresJobStore::activeJobs() {
  std::vector<JobRecord> jobs;
  withReader("cannot read the active jobs",
             [&](PgConnection& c) { jobs = jobsOf(c.run(kSql.active_jobs), cluster_ != nullptr); });
  return jobs;
}

std::optional<Micros> PostgresJobStore::lastScheduledRun(const std::string& collector) {
  std::optional<Micros> at;
  withReader("cannot read the schedule", [&](PgConnection& c) {
    const PgResult q = c.run(kSql.last_scheduled_run, {collector});
    at = q.rows() == 0 ? std::nullopt : q.optInt64(0, 0);
  });
  return at;
}

void PostgresJobStore::recordScheduledRun(const std::string& collector, Micros at) {
  guarded(*settings_, "cannot record the schedule", [&] {
    inTransaction(*pool_, *settings_, [&](Session& session) {
      session << "INSERT INTO schedules (collector, last_fired_at) VALUES ($1, $2) "
                 "ON CONFLICT (collector) DO UPDATE SET last_fired_at = excluded.last_fired_at",
          bind(collector), bind(at), now;
      return true;
    });
  });
}

void PostgresJobStore::ping() {
  withReader("the store does not answer", [&](PgConnection& c) { c.run(kSql.ping); });
}

}  // namespace collectord
