#include "sqlite_job_store.h"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/SessionPool.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Nullable.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "migration.h"
#include "sqlite_support.h"
#include "store_sql.h"
#include "time_format.h"

namespace collectord {

using namespace Poco::Data::Keywords;
using Poco::Data::Session;
using Poco::Data::Statement;
using sqlite::Durability;
using sqlite::guarded;
using sqlite::inTransaction;
using sqlite::openForWrite;
using sqlite::openSession;

namespace {

using store_sql::nullable;

// The statements of the read path.
const store_sql::ReadStatements& kSql = store_sql::readStatements();

}  // namespace

// A connection of the read path and the statements prepared on it. Preparing a statement
// costs more than running one of these indexed lookups, so readers and their statements are
// kept and reused; each is used by one thread at a time. Errors are std::runtime_error with
// SQLite's message; the store's methods turn them into StoreError.
class SqliteReader {
 public:
  explicit SqliteReader(const std::string& path) {
    const int rc =
        sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      const std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      throw std::runtime_error("cannot open " + path + ": " + message);
    }
    sqlite3_busy_timeout(db_, 10000);  // as the writer's sessions: 10 s for a lock
    // Nothing on this connection may ever write.
    if (sqlite3_exec(db_, "PRAGMA query_only = 1", nullptr, nullptr, nullptr) != SQLITE_OK) {
      const std::string message = sqlite3_errmsg(db_);
      sqlite3_close(db_);
      throw std::runtime_error(message);
    }
  }
  ~SqliteReader() {
    for (const auto& [sql, statement] : statements_) sqlite3_finalize(statement);
    sqlite3_close(db_);
  }
  SqliteReader(const SqliteReader&) = delete;
  SqliteReader& operator=(const SqliteReader&) = delete;

  // The prepared statement for `sql`, one of the constants above (they outlive every reader).
  sqlite3_stmt* statement(const std::string& sql) {
    const auto found = statements_.find(sql);
    if (found != statements_.end()) return found->second;
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &statement, nullptr) != SQLITE_OK) {
      fail();
    }
    statements_.emplace(sql, statement);
    return statement;
  }

  // Runs a statement without results (BEGIN, COMMIT).
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail();
  }
  // Ends a read transaction after a failure; the failure that matters is the one being thrown.
  void rollback() noexcept { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

  [[noreturn]] void fail() const { throw std::runtime_error(sqlite3_errmsg(db_)); }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string_view, sqlite3_stmt*> statements_;
};

namespace {

// One run of a reader's statement: binds, steps, reads columns, and resets the statement when
// it goes, which ends the read transaction (a statement left stepping would hold a WAL
// snapshot and stall checkpoints). Bound strings must outlive the query.
class Query {
 public:
  Query(SqliteReader& reader, const std::string& sql)
      : reader_(reader), statement_(reader.statement(sql)) {}
  ~Query() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int index, const std::string& value) {
    check(sqlite3_bind_text(statement_, index, value.data(), static_cast<int>(value.size()),
                            SQLITE_STATIC));
    return *this;
  }
  Query& bind(int index, int value) {
    check(sqlite3_bind_int(statement_, index, value));
    return *this;
  }
  // True while there is a row to read.
  bool next() {
    const int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    reader_.fail();
  }

  bool isNull(int column) const { return sqlite3_column_type(statement_, column) == SQLITE_NULL; }
  std::string text(int column) const {
    const auto* data = sqlite3_column_text(statement_, column);
    return data ? std::string(reinterpret_cast<const char*>(data),
                              static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)))
                : std::string();
  }
  std::optional<std::string> optText(int column) const {
    return isNull(column) ? std::nullopt : std::optional<std::string>(text(column));
  }
  Micros int64(int column) const { return sqlite3_column_int64(statement_, column); }
  std::optional<Micros> optInt64(int column) const {
    return isNull(column) ? std::nullopt : std::optional<Micros>(int64(column));
  }
  int int32(int column) const { return sqlite3_column_int(statement_, column); }
  std::optional<int> optInt32(int column) const {
    return isNull(column) ? std::nullopt : std::optional<int>(int32(column));
  }

 private:
  void check(int rc) const {
    if (rc != SQLITE_OK) reader_.fail();
  }

  SqliteReader& reader_;
  sqlite3_stmt* statement_;
};

JobStatus statusOf(const std::string& text) {
  const auto status = parseJobStatus(text);
  if (!status) throw StoreError("unknown status '" + text + "' in the store");
  return *status;
}

// A row of a job statement (store_sql::kJobColumns).
JobRecord jobFromRow(const Query& q) {
  JobRecord j;
  j.job_id = q.text(0);
  j.batch_id = q.text(1);
  j.collector = q.text(2);
  j.job_name = q.text(3);
  j.status = statusOf(q.text(4));
  j.progress_percent = q.optInt32(5);
  j.message = q.optText(6);
  j.error = q.optText(7);
  j.started_at = q.int64(8);
  j.updated_at = q.int64(9);
  j.ended_at = q.optInt64(10);
  j.attempt = q.int32(11);
  j.pid = q.optInt32(12);
  j.max_attempts = q.int32(13);
  j.next_attempt_at = q.optInt64(14);
  return j;
}

BatchRecord batchFromRow(const Query& q) {
  BatchRecord b;
  b.batch_id = q.text(0);
  b.status = statusOf(q.text(1));
  b.priority = parsePriority(q.text(2)).value_or(Priority::kNormal);
  b.progress_percent = q.int32(3);
  b.message = q.optText(4);
  b.error = q.optText(5);
  b.started_at = q.int64(6);
  b.updated_at = q.int64(7);
  b.ended_at = q.optInt64(8);
  b.estimated_completion = q.optInt64(9);
  return b;
}

std::vector<JobRecord> jobsOf(Query& q) {
  std::vector<JobRecord> jobs;
  while (q.next()) jobs.push_back(jobFromRow(q));
  return jobs;
}

std::optional<JobRecord> firstJobOf(Query& q) {
  if (!q.next()) return std::nullopt;
  return jobFromRow(q);
}

Poco::Nullable<double> durationOf(Micros started_at, std::optional<Micros> ended_at) {
  return nullable(durationSeconds(started_at, ended_at));
}

}  // namespace

std::vector<std::string> splitSqlStatements(const std::string& sql) {
  std::vector<std::string> statements;
  std::string current;
  std::size_t start = 0;
  while (start < sql.size()) {
    std::size_t end = sql.find('\n', start);
    if (end == std::string::npos) end = sql.size();
    std::string line = sql.substr(start, end - start);
    start = end + 1;
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line.compare(first, 2, "--") == 0) continue;
    current += line;
    current += '\n';
    const auto last = line.find_last_not_of(" \t\r");
    if (line[last] == ';') {
      statements.push_back(current);
      current.clear();
    }
  }
  if (current.find_first_not_of(" \t\r\n") != std::string::npos) statements.push_back(current);
  return statements;
}

SqliteJobStore::SqliteJobStore(const std::string& path, std::string owner)
    : path_(path), owner_(std::move(owner)) {
  guarded("cannot open the SQLite store", [&] {
    std::error_code ec;
    const auto folder = std::filesystem::path(path).parent_path();
    if (!folder.empty()) std::filesystem::create_directories(folder, ec);
    const std::string lock_path = path + ".lock";
    lock_.reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
    if (!lock_) throw StoreError("cannot open " + lock_path + ": " + std::strerror(errno));
    if (::flock(lock_.get(), LOCK_EX | LOCK_NB) == -1) {
      char pid[32] = {};
      const ssize_t n = ::pread(lock_.get(), pid, sizeof pid - 1, 0);
      throw StoreError("another collectord (pid " + std::string(pid, n > 0 ? static_cast<std::size_t>(n) : 0) +
                       ") is using " + path + "; one SQLite store serves one daemon");
    }
    const std::string me = std::to_string(::getpid());
    if (::ftruncate(lock_.get(), 0) == 0 && ::pwrite(lock_.get(), me.data(), me.size(), 0) < 0) {
      // The pid is only for the message above; the lock itself is what matters.
    }
    Poco::Data::SQLite::Connector::registerConnector();
    pool_ = std::make_unique<Poco::Data::SessionPool>("SQLite", path, 1, 64, 60);
    Session session = pool_->get();
    Statement(session) << "PRAGMA journal_mode=WAL", now;
    migrate();
  });
}

SqliteJobStore::~SqliteJobStore() = default;

void SqliteJobStore::migrate() {
  Session session = openSession(*pool_);
  session << "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
             "name TEXT NOT NULL, applied_at TEXT NOT NULL)",
      now;
  const int current = schemaVersion();
  for (const Migration& m : sqliteMigrations()) {
    if (m.version <= current) continue;
    inTransaction(session, [&] {
      for (const std::string& statement : splitSqlStatements(m.sql)) {
        Statement(session) << statement, now;
      }
      const std::string name = m.name;
      const std::string applied = formatTimestamp(nowMicros());
      int version = m.version;
      session << "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
          use(version), bind(name), bind(applied), now;
    });
  }
}

int SqliteJobStore::schemaVersion() {
  return guarded("cannot read the schema version", [&] {
    Session session = openSession(*pool_);
    Poco::Nullable<int> version;
    session << "SELECT MAX(version) FROM schema_migrations", into(version), now;
    return version.isNull() ? 0 : version.value();
  });
}

namespace {

void upsertBatch(Session& session, const BatchRecord& b) {
  session << "INSERT INTO job_batches (batch_id, status, priority, progress_percent, message, "
             "error, started_at, updated_at, ended_at, estimated_completion, duration_seconds) "
             "VALUES (?,?,?,?,?,?,?,?,?,?,?) "
             "ON CONFLICT (batch_id) DO UPDATE SET status = excluded.status, "
             "progress_percent = excluded.progress_percent, message = excluded.message, "
             "error = excluded.error, updated_at = excluded.updated_at, "
             "ended_at = excluded.ended_at, estimated_completion = excluded.estimated_completion, "
             "duration_seconds = excluded.duration_seconds",
      bind(b.batch_id), bind(std::string(toString(b.status))),
      bind(std::string(toString(b.priority))), bind(b.progress_percent), bind(nullable(b.message)),
      bind(nullable(b.error)), bind(b.started_at), bind(b.updated_at), bind(nullable(b.ended_at)),
      bind(nullable(b.estimated_completion)), bind(durationOf(b.started_at, b.ended_at)), now;
}

void insertJob(Session& session, const JobRecord& j, int position, const std::string& owner) {
  session << "INSERT INTO job_runs (job_id, batch_id, position, collector, job_name, status, "
             "progress_percent, message, error, started_at, updated_at, ended_at, "
             "duration_seconds, attempt, pid, max_attempts, next_attempt_at, owner) "
             "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      bind(j.job_id), bind(j.batch_id), bind(position), bind(j.collector), bind(j.job_name),
      bind(std::string(toString(j.status))), bind(nullable(j.progress_percent)),
      bind(nullable(j.message)), bind(nullable(j.error)), bind(j.started_at), bind(j.updated_at),
      bind(nullable(j.ended_at)), bind(durationOf(j.started_at, j.ended_at)), bind(j.attempt),
      bind(nullable(j.pid)), bind(j.max_attempts), bind(nullable(j.next_attempt_at)), bind(owner),
      now;
}

void updateJob(Session& session, const JobRecord& j, const std::string& owner) {
  session << "UPDATE job_runs SET status = ?, progress_percent = ?, message = ?, error = ?, "
             "updated_at = ?, ended_at = ?, duration_seconds = ?, attempt = ?, max_attempts = ?, "
             "pid = ?, next_attempt_at = ?, owner = ? WHERE job_id = ?",
      bind(std::string(toString(j.status))), bind(nullable(j.progress_percent)),
      bind(nullable(j.message)), bind(nullable(j.error)), bind(j.updated_at),
      bind(nullable(j.ended_at)), bind(durationOf(j.started_at, j.ended_at)), bind(j.attempt),
      bind(j.max_attempts), bind(nullable(j.pid)), bind(nullable(j.next_attempt_at)), bind(owner),
      bind(j.job_id), now;
}

void insertAttempt(Session& session, const std::string& job_id, const AttemptRecord& a) {
  session << "INSERT OR REPLACE INTO job_attempts (job_id, attempt, started_at, ended_at, error) "
             "VALUES (?,?,?,?,?)",
      bind(job_id), bind(a.attempt), bind(nullable(a.started_at)), bind(a.ended_at),
      bind(a.error), now;
}

// A retried write of the same state change inserts nothing: (event_id, endpoint) is unique.
void insertOutboxRow(Session& session, const WebhookOutboxRow& row) {
  session << "INSERT OR IGNORE INTO webhook_deliveries (event_id, endpoint, event_type, body, "
             "created_at, next_attempt_at) VALUES (?,?,?,?,?,?)",
      bind(row.event_id), bind(row.endpoint), bind(row.event_type), bind(row.body),
      bind(row.created_at), bind(row.created_at), now;
}

bool exists(Session& session, const char* table, const char* column, const std::string& id) {
  int count = 0;
  session << "SELECT COUNT(*) FROM " << table << " WHERE " << column << " = ?", bind(id),
      into(count), now;
  return count > 0;
}

}  // namespace

bool SqliteJobStore::insertBatch(const BatchRecord& batch, const std::vector<JobRecord>& jobs) {
  return guarded("cannot insert the batch", [&] {
    Session session = openForWrite(*pool_, Durability::kSynced);
    bool inserted = false;
    sqlite::inWriteTransaction(session, [&] {
      if (exists(session, "job_batches", "batch_id", batch.batch_id)) return;
      for (const JobRecord& j : jobs) {
        if (exists(session, "job_runs", "job_id", j.job_id)) return;
      }
      upsertBatch(session, batch);
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        insertJob(session, jobs[i], static_cast<int>(i), owner_);
      }
      inserted = true;
    });
    return inserted;
  });
}

void SqliteJobStore::save(const std::vector<JobRecord>& jobs,
                          const std::vector<BatchRecord>& batches,
                          const std::vector<std::pair<std::string, AttemptRecord>>& attempts,
                          const std::vector<WebhookOutboxRow>& outbox) {
  guarded("cannot save job state", [&] {
    Session session = openForWrite(*pool_, Durability::kOrdered);
    inTransaction(session, [&] {
      for (const BatchRecord& b : batches) upsertBatch(session, b);
      for (const JobRecord& j : jobs) updateJob(session, j, owner_);
      for (const auto& [job_id, attempt] : attempts) insertAttempt(session, job_id, attempt);
      for (const WebhookOutboxRow& row : outbox) insertOutboxRow(session, row);
    });
  });
}

template <typename Fn>
auto SqliteJobStore::withReader(const char* what, Fn&& fn) {
  return guarded(what, [&] {
    std::unique_ptr<SqliteReader> reader;
    {
      std::lock_guard lock(readers_mutex_);
      if (!idle_readers_.empty()) {
        reader = std::move(idle_readers_.back());
        idle_readers_.pop_back();
      }
    }
    if (!reader) reader = std::make_unique<SqliteReader>(path_);
    auto result = fn(*reader);  // a reader that failed is dropped, not reused
    std::lock_guard lock(readers_mutex_);
    if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(reader));
    return result;
  });
}

std::vector<AttemptRecord> SqliteJobStore::attemptsOf(const std::string& job_id) {
  return withReader("cannot read the job's attempts", [&](SqliteReader& reader) {
    Query q(reader, kSql.attempts_of);
    q.bind(1, job_id);
    std::vector<AttemptRecord> attempts;
    while (q.next()) {
      attempts.push_back(AttemptRecord{q.int32(0), q.optInt64(1), q.int64(2), q.text(3)});
    }
    return attempts;
  });
}

std::optional<BatchRecord> SqliteJobStore::findBatch(const std::string& batch_id) {
  return withReader("cannot read the batch", [&](SqliteReader& reader) {
    Query q(reader, kSql.find_batch);
    q.bind(1, batch_id);
    return q.next() ? std::optional<BatchRecord>(batchFromRow(q)) : std::nullopt;
  });
}

std::vector<JobRecord> SqliteJobStore::jobsOfBatch(const std::string& batch_id) {
  return withReader("cannot read the batch's jobs", [&](SqliteReader& reader) {
    Query q(reader, kSql.jobs_of_batch);
    q.bind(1, batch_id);
    return jobsOf(q);
  });
}

std::optional<std::pair<BatchRecord, std::vector<JobRecord>>> SqliteJobStore::batchWithJobs(
    const std::string& batch_id) {
  return withReader("cannot read the batch", [&](SqliteReader& reader) {
    // One read transaction: both statements read the same WAL snapshot.
    reader.exec("BEGIN");
    try {
      std::optional<std::pair<BatchRecord, std::vector<JobRecord>>> result;
      {
        Query batch(reader, kSql.find_batch);
        batch.bind(1, batch_id);
        if (batch.next()) result.emplace(batchFromRow(batch), std::vector<JobRecord>{});
      }
      if (result) {
        Query jobs(reader, kSql.jobs_of_batch);
        jobs.bind(1, batch_id);
        result->second = jobsOf(jobs);
      }
      reader.exec("COMMIT");
      return result;
    } catch (...) {
      reader.rollback();
      throw;
    }
  });
}

std::optional<JobRecord> SqliteJobStore::findJob(const std::string& job_id) {
  return withReader("cannot read the job", [&](SqliteReader& reader) {
    Query q(reader, kSql.find_job);
    q.bind(1, job_id);
    return firstJobOf(q);
  });
}

std::optional<JobRecord> SqliteJobStore::latestRun(const std::string& collector) {
  return withReader("cannot read the latest run", [&](SqliteReader& reader) {
    {
      Query active(reader, kSql.active_run);
      active.bind(1, collector);
      if (auto job = firstJobOf(active)) return job;
    }
    Query latest(reader, kSql.latest_run);
    latest.bind(1, collector);
    return firstJobOf(latest);
  });
}

std::optional<JobRecord> SqliteJobStore::lastFinishedRun(const std::string& collector) {
  return withReader("cannot read the last finished run", [&](SqliteReader& reader) {
    Query q(reader, kSql.last_finished_run);
    q.bind(1, collector);
    return firstJobOf(q);
  });
}

std::vector<JobRecord> SqliteJobStore::history(int limit) {
  return withReader("cannot read the history", [&](SqliteReader& reader) {
    Query q(reader, kSql.history);
    q.bind(1, limit);
    return jobsOf(q);
  });
}

std::vector<JobRecord> SqliteJobStore::activeJobs() {
  return withReader("cannot read the active jobs", [&](SqliteReader& reader) {
    Query q(reader, kSql.active_jobs);
    return jobsOf(q);
  });
}

}  // namespace collectord

namespace collectord {

std::optional<Micros> SqliteJobStore::lastScheduledRun(const std::string& collector) {
  return withReader("cannot read the schedule", [&](SqliteReader& reader) {
    Query q(reader, kSql.last_scheduled_run);
    q.bind(1, collector);
    return q.next() ? q.optInt64(0) : std::nullopt;
  });
}

void SqliteJobStore::recordScheduledRun(const std::string& collector, Micros at) {
  guarded("cannot record the schedule", [&] {
    Session session = openForWrite(*pool_, Durability::kSynced);
    session << "INSERT INTO schedules (collector, last_fired_at) VALUES (?, ?) "
               "ON CONFLICT (collector) DO UPDATE SET last_fired_at = excluded.last_fired_at",
        bind(collector), bind(at), now;
  });
}

void SqliteJobStore::ping() {
  withReader("the store does not answer", [&](SqliteReader& reader) {
    Query q(reader, kSql.ping);
    return q.next();
  });
}

}  // namespace collectord
