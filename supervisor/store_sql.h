#pragma once

// What the SQLite and the PostgreSQL store share, both running on the same schema: the columns
// rows are read with, the statements of the read path, and the binding of optional values.
// Statements mark parameters with "?", as SQLite takes them; PostgreSQL takes them numbered
// ($1, $2, ...), which numberedParameters() makes of them.

#include <Poco/Nullable.h>

#include <optional>
#include <string>
#include <string_view>

namespace collectord::store_sql {

// The columns of a job and of a batch, in the order the stores' row readers take them.
inline constexpr const char* kJobColumns =
    "job_id, batch_id, collector, job_name, status, progress_percent, message, error, "
    "started_at, updated_at, ended_at, attempt, pid, max_attempts, next_attempt_at, owner";
inline constexpr const char* kBatchColumns =
    "batch_id, status, priority, progress_percent, message, error, started_at, updated_at, "
    "ended_at, estimated_completion";
// The columns of a webhook delivery, in the order the stores' row readers take them.
inline constexpr const char* kDeliveryColumns =
    "delivery_id, event_id, endpoint, event_type, body, created_at, next_attempt_at, attempts, "
    "state, last_error, last_status, finished_at";

// The statements of the read path, each prepared once per read connection (the stores key
// prepared statements by the statement's address, so these strings live as long as the
// program). The statuses are literals, not parameters, so that the planners can use the
// partial index on active runs.
struct ReadStatements {
  std::string find_job;           // job_id
  std::string jobs_of_batch;      // batch_id
  std::string active_run;         // collector
  std::string latest_run;         // collector
  std::string last_finished_run;  // collector
  std::string history;            // limit
  std::string active_jobs;
  std::string find_batch;  // batch_id
  std::string attempts_of;  // job_id
  std::string last_scheduled_run;  // collector
  std::string ping;
};

// With "?" parameters (SQLite).
const ReadStatements& readStatements();
// With numbered parameters (PostgreSQL).
const ReadStatements& numberedReadStatements();

// `sql` with each "?" replaced by $1, $2, ... in order. For statements with no "?" inside a
// literal, as every statement of the stores is.
std::string numberedParameters(std::string_view sql);

// An optional value as Poco::Data binds it: nullopt is SQL NULL.
template <typename T>
Poco::Nullable<T> nullable(const std::optional<T>& v) {
  return v ? Poco::Nullable<T>(*v) : Poco::Nullable<T>();
}

}  // namespace collectord::store_sql
