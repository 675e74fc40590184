#include "sqlite_job_store.h"

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/SessionPool.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Nullable.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "migration.h"
#include "time_format.h"

namespace collectord {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Session;
using Poco::Data::Statement;

namespace {

constexpr const char* kJobColumns =
    "job_id, batch_id, collector, job_name, status, progress_percent, message, error, "
    "started_at, updated_at, ended_at, attempt, pid, max_attempts, next_attempt_at";
constexpr const char* kBatchColumns =
    "batch_id, status, priority, progress_percent, message, error, started_at, updated_at, "
    "ended_at, estimated_completion";

template <typename T>
Poco::Nullable<T> nullable(const std::optional<T>& v) {
  return v ? Poco::Nullable<T>(*v) : Poco::Nullable<T>();
}

std::optional<std::string> optString(const Poco::Dynamic::Var& v) {
  if (v.isEmpty()) return std::nullopt;
  return v.convert<std::string>();
}
std::optional<Micros> optMicros(const Poco::Dynamic::Var& v) {
  if (v.isEmpty()) return std::nullopt;
  return v.convert<Poco::Int64>();
}
std::optional<int> optInt(const Poco::Dynamic::Var& v) {
  if (v.isEmpty()) return std::nullopt;
  return v.convert<int>();
}

JobStatus statusOf(const Poco::Dynamic::Var& v) {
  const auto status = parseJobStatus(v.convert<std::string>());
  if (!status) throw StoreError("unknown status '" + v.convert<std::string>() + "' in the store");
  return *status;
}

JobRecord jobFromRow(const RecordSet& rs, std::size_t row) {
  JobRecord j;
  j.job_id = rs.value(0, row).convert<std::string>();
  j.batch_id = rs.value(1, row).convert<std::string>();
  j.collector = rs.value(2, row).convert<std::string>();
  j.job_name = rs.value(3, row).convert<std::string>();
  j.status = statusOf(rs.value(4, row));
  j.progress_percent = optInt(rs.value(5, row));
  j.message = optString(rs.value(6, row));
  j.error = optString(rs.value(7, row));
  j.started_at = rs.value(8, row).convert<Poco::Int64>();
  j.updated_at = rs.value(9, row).convert<Poco::Int64>();
  j.ended_at = optMicros(rs.value(10, row));
  j.attempt = rs.value(11, row).convert<int>();
  j.pid = optInt(rs.value(12, row));
  j.max_attempts = rs.value(13, row).convert<int>();
  j.next_attempt_at = optMicros(rs.value(14, row));
  return j;
}

BatchRecord batchFromRow(const RecordSet& rs, std::size_t row) {
  BatchRecord b;
  b.batch_id = rs.value(0, row).convert<std::string>();
  b.status = statusOf(rs.value(1, row));
  b.priority = parsePriority(rs.value(2, row).convert<std::string>()).value_or(Priority::kNormal);
  b.progress_percent = rs.value(3, row).convert<int>();
  b.message = optString(rs.value(4, row));
  b.error = optString(rs.value(5, row));
  b.started_at = rs.value(6, row).convert<Poco::Int64>();
  b.updated_at = rs.value(7, row).convert<Poco::Int64>();
  b.ended_at = optMicros(rs.value(8, row));
  b.estimated_completion = optMicros(rs.value(9, row));
  return b;
}

Poco::Nullable<double> durationOf(Micros started_at, std::optional<Micros> ended_at) {
  return nullable(durationSeconds(started_at, ended_at));
}

// Runs `work` inside a transaction on `session`, rolling back when it throws.
template <typename Work>
void inTransaction(Session& session, Work&& work) {
  session.begin();
  try {
    work();
    session.commit();
  } catch (...) {
    // SQLite ends the transaction itself on some failures (SQLITE_FULL in a commit): a failing
    // rollback must not hide the error that matters.
    try {
      session.rollback();
    } catch (const Poco::Exception& e) {
      Poco::Logger::get("collectord.store").debug("rollback: %s", e.displayText());
    }
    throw;
  }
}

// Turns any Poco failure into the store's one error type; module edge for Poco::Data.
template <typename Fn>
auto guarded(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const StoreError&) {
    throw;
  } catch (const Poco::Exception& e) {
    throw StoreError(std::string(what) + ": " + e.displayText());
  } catch (const std::exception& e) {
    throw StoreError(std::string(what) + ": " + e.what());
  }
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

namespace {

Session open(Poco::Data::SessionPool& pool) {
  Session session = pool.get();
  session.setConnectionTimeout(10);  // seconds to wait for the write lock
  return session;
}

}  // namespace

void SqliteJobStore::migrate() {
  Session session = open(*pool_);
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
    Session session = open(*pool_);
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

bool exists(Session& session, const char* table, const char* column, const std::string& id) {
  int count = 0;
  session << "SELECT COUNT(*) FROM " << table << " WHERE " << column << " = ?", bind(id),
      into(count), now;
  return count > 0;
}

}  // namespace

bool SqliteJobStore::insertBatch(const BatchRecord& batch, const std::vector<JobRecord>& jobs) {
  return guarded("cannot insert the batch", [&] {
    Session session = open(*pool_);
    bool inserted = false;
    inTransaction(session, [&] {
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
                          const std::vector<std::pair<std::string, AttemptRecord>>& attempts) {
  guarded("cannot save job state", [&] {
    Session session = open(*pool_);
    inTransaction(session, [&] {
      for (const BatchRecord& b : batches) upsertBatch(session, b);
      for (const JobRecord& j : jobs) updateJob(session, j, owner_);
      for (const auto& [job_id, attempt] : attempts) insertAttempt(session, job_id, attempt);
    });
  });
}

std::vector<AttemptRecord> SqliteJobStore::attemptsOf(const std::string& job_id) {
  return guarded("cannot read the job's attempts", [&] {
    Session session = open(*pool_);
    Statement stmt(session);
    stmt << "SELECT attempt, started_at, ended_at, error FROM job_attempts WHERE job_id = ? "
            "ORDER BY attempt",
        bind(job_id), now;
    RecordSet rs(stmt);
    std::vector<AttemptRecord> attempts;
    for (std::size_t row = 0; row < rs.rowCount(); ++row) {
      attempts.push_back(AttemptRecord{rs.value(0, row).convert<int>(), optMicros(rs.value(1, row)),
                                       rs.value(2, row).convert<Poco::Int64>(),
                                       rs.value(3, row).convert<std::string>()});
    }
    return attempts;
  });
}

std::optional<BatchRecord> SqliteJobStore::findBatch(const std::string& batch_id) {
  return guarded("cannot read the batch", [&]() -> std::optional<BatchRecord> {
    Session session = open(*pool_);
    Statement stmt(session);
    stmt << "SELECT " << kBatchColumns << " FROM job_batches WHERE batch_id = ?", bind(batch_id),
        now;
    RecordSet rs(stmt);
    if (rs.rowCount() == 0) return std::nullopt;
    return batchFromRow(rs, 0);
  });
}

std::vector<JobRecord> SqliteJobStore::queryJobs(const std::string& where_and_order,
                                                 const std::string& arg, int limit) {
  Session session = open(*pool_);
  Statement stmt(session);
  stmt << "SELECT " << kJobColumns << " FROM job_runs " << where_and_order;
  if (!arg.empty()) stmt, bind(arg);
  if (limit > 0) stmt, bind(limit);
  stmt.execute();
  RecordSet rs(stmt);
  std::vector<JobRecord> jobs;
  jobs.reserve(rs.rowCount());
  for (std::size_t row = 0; row < rs.rowCount(); ++row) jobs.push_back(jobFromRow(rs, row));
  return jobs;
}

std::vector<JobRecord> SqliteJobStore::jobsOfBatch(const std::string& batch_id) {
  return guarded("cannot read the batch's jobs", [&] {
    return queryJobs("WHERE batch_id = ? ORDER BY position", batch_id, 0);
  });
}

std::optional<JobRecord> SqliteJobStore::firstJob(const std::string& where_and_order,
                                                  const std::string& arg) {
  auto jobs = queryJobs(where_and_order + " LIMIT ?", arg, 1);
  if (jobs.empty()) return std::nullopt;
  return std::move(jobs.front());
}

std::optional<JobRecord> SqliteJobStore::findJob(const std::string& job_id) {
  return guarded("cannot read the job", [&] { return firstJob("WHERE job_id = ?", job_id); });
}

std::optional<JobRecord> SqliteJobStore::latestRun(const std::string& collector) {
  return guarded("cannot read the latest run", [&] {
    auto active = firstJob(
        "WHERE collector = ? AND status IN ('queued', 'running') ORDER BY started_at DESC",
        collector);
    return active ? active : firstJob("WHERE collector = ? ORDER BY started_at DESC", collector);
  });
}

std::optional<JobRecord> SqliteJobStore::lastFinishedRun(const std::string& collector) {
  return guarded("cannot read the last finished run", [&] {
    return firstJob(
        "WHERE collector = ? AND status IN ('completed', 'failed', 'cancelled') "
        "ORDER BY started_at DESC",
        collector);
  });
}

std::vector<JobRecord> SqliteJobStore::history(int limit) {
  return guarded("cannot read the history", [&] {
    return queryJobs("ORDER BY started_at DESC, batch_id DESC, position LIMIT ?", "", limit);
  });
}

std::vector<JobRecord> SqliteJobStore::activeJobs() {
  return guarded("cannot read the active jobs", [&] {
    return queryJobs("WHERE status IN ('queued', 'running') ORDER BY started_at, position", "", 0);
  });
}

}  // namespace collectord

namespace collectord {

std::optional<Micros> SqliteJobStore::lastScheduledRun(const std::string& collector) {
  return guarded("cannot read the schedule", [&]() -> std::optional<Micros> {
    Session session = open(*pool_);
    Poco::Nullable<Poco::Int64> last;
    session << "SELECT MAX(last_fired_at) FROM schedules WHERE collector = ?", bind(collector),
        into(last), now;
    if (last.isNull()) return std::nullopt;
    return last.value();
  });
}

void SqliteJobStore::recordScheduledRun(const std::string& collector, Micros at) {
  guarded("cannot record the schedule", [&] {
    Session session = open(*pool_);
    session << "INSERT INTO schedules (collector, last_fired_at) VALUES (?, ?) "
               "ON CONFLICT (collector) DO UPDATE SET last_fired_at = excluded.last_fired_at",
        bind(collector), bind(at), now;
  });
}

void SqliteJobStore::ping() {
  guarded("the store does not answer", [&] {
    Session session = open(*pool_);
    int one = 0;
    session << "SELECT 1", into(one), now;
  });
}

}  // namespace collectord
