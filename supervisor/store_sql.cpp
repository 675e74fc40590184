#include "store_sql.h"

namespace collectord::store_sql {

namespace {

ReadStatements makeReadStatements() {
  const std::string select_jobs = std::string("SELECT ") + kJobColumns + " FROM job_runs ";
  ReadStatements s;
  s.find_job = select_jobs + "WHERE job_id = ?";
  s.jobs_of_batch = select_jobs + "WHERE batch_id = ? ORDER BY position";
  s.active_run = select_jobs +
                 "WHERE collector = ? AND status IN ('queued', 'running') "
                 "ORDER BY started_at DESC LIMIT 1";
  s.latest_run = select_jobs + "WHERE collector = ? ORDER BY started_at DESC LIMIT 1";
  s.last_finished_run = select_jobs +
                        "WHERE collector = ? AND status IN ('completed', 'failed', 'cancelled') "
                        "ORDER BY started_at DESC LIMIT 1";
  s.history = select_jobs + "ORDER BY started_at DESC, batch_id DESC, position LIMIT ?";
  s.active_jobs =
      select_jobs + "WHERE status IN ('queued', 'running') ORDER BY started_at, position";
  s.find_batch = std::string("SELECT ") + kBatchColumns + " FROM job_batches WHERE batch_id = ?";
  s.attempts_of =
      "SELECT attempt, started_at, ended_at, error FROM job_attempts WHERE job_id = ? "
      "ORDER BY attempt";
  s.last_scheduled_run = "SELECT MAX(last_fired_at) FROM schedules WHERE collector = ?";
  s.ping = "SELECT 1";
  return s;
}

}  // namespace

const ReadStatements& readStatements() {
  static const ReadStatements statements = makeReadStatements();
  return statements;
}

const ReadStatements& numberedReadStatements() {
  static const ReadStatements statements = [] {
    ReadStatements s = readStatements();
    for (std::string* sql : {&s.find_job, &s.jobs_of_batch, &s.active_run, &s.latest_run,
                             &s.last_finished_run, &s.history, &s.active_jobs, &s.find_batch,
                             &s.attempts_of, &s.last_scheduled_run, &s.ping}) {
      *sql = numberedParameters(*sql);
    }
    return s;
  }();
  return statements;
}

std::string numberedParameters(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 8);
  int next = 0;
  for (const char c : sql) {
    if (c == '?') {
      out += '$' + std::to_string(++next);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace collectord::store_sql
