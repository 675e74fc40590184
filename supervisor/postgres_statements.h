#pragma once

// Write statements of the PostgreSQL store that both of its write paths run: Poco's sessions
// (one collectord per database) and libpq in cluster mode (postgres_cluster.cpp). Poco 1.11's
// connector passes SQL through as it is, so both take PostgreSQL's $N placeholders. Internal to
// the store.

#include <string>

namespace collectord::postgres {

// $1 status, $2 progress_percent, $3 message, $4 error, $5 updated_at, $6 ended_at,
// $7 duration_seconds, $8 attempt, $9 max_attempts, $10 pid, $11 next_attempt_at, $12 owner,
// $13 job_id.
inline const std::string kUpdateJob =
    "UPDATE job_runs SET status = $1, progress_percent = $2, message = $3, error = $4, "
    "updated_at = $5, ended_at = $6, duration_seconds = $7, attempt = $8, max_attempts = $9, "
    "pid = $10, next_attempt_at = $11, owner = $12 WHERE job_id = $13";
// As SQLite's INSERT OR REPLACE: a rewritten attempt replaces the row.
inline const std::string kInsertAttempt =
    "INSERT INTO job_attempts (job_id, attempt, started_at, ended_at, error) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id, attempt) DO UPDATE SET "
    "started_at = excluded.started_at, ended_at = excluded.ended_at, error = excluded.error";
// A retried write of the same state change inserts nothing: (event_id, endpoint) is unique.
// $1 event_id, $2 endpoint, $3 event_type, $4 body, $5 created_at, $6 next_attempt_at (the
// same: Poco counts placeholders by their occurrences, so none may appear twice).
inline const std::string kInsertOutboxRow =
    "INSERT INTO webhook_deliveries (event_id, endpoint, event_type, body, created_at, "
    "next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id, endpoint) DO NOTHING";

}  // namespace collectord::postgres
