-- The SQLite schema (schema/sqlite/001 to 004) in PostgreSQL's dialect, as one migration: the
-- same tables, columns, constraints and indexes. Timestamps are microseconds since the Unix
-- epoch (UTC) in BIGINT columns; the API formats them. SQLite's REAL is an 8-byte float, hence
-- DOUBLE PRECISION. Keys that results are ordered by (batch, job, collector and endpoint names)
-- compare as bytes (COLLATE "C"), as SQLite compares them, whatever the database's locale.
-- Poco's PostgreSQL connector counts every dollar sign followed by a digit as a placeholder,
-- even in a literal or a comment after a statement: a migration must hold none.
CREATE TABLE job_batches (
  batch_id             TEXT COLLATE "C" PRIMARY KEY,
  status               TEXT NOT NULL
                       CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  priority             TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('high', 'normal', 'low')),
  progress_percent     INTEGER NOT NULL DEFAULT 0 CHECK (progress_percent BETWEEN 0 AND 100),
  message              TEXT,
  error                TEXT,
  started_at           BIGINT NOT NULL,
  updated_at           BIGINT NOT NULL,
  ended_at             BIGINT,
  estimated_completion BIGINT,
  duration_seconds     DOUBLE PRECISION
);

-- owner: the instance that ran a job, for exact restart recovery. max_attempts and
-- next_attempt_at: how many attempts a job may make, and when a waiting retry is due.
CREATE TABLE job_runs (
  job_id           TEXT COLLATE "C" PRIMARY KEY,
  batch_id         TEXT COLLATE "C" NOT NULL REFERENCES job_batches (batch_id),
  position         INTEGER NOT NULL,
  collector        TEXT COLLATE "C" NOT NULL,
  job_name         TEXT NOT NULL,
  status           TEXT NOT NULL
                   CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  progress_percent INTEGER CHECK (progress_percent BETWEEN 0 AND 100),
  message          TEXT,
  error            TEXT,
  started_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  ended_at         BIGINT,
  duration_seconds DOUBLE PRECISION,
  attempt          INTEGER NOT NULL DEFAULT 1,
  pid              INTEGER,
  max_attempts     INTEGER NOT NULL DEFAULT 1,
  next_attempt_at  BIGINT,
  owner            TEXT
);

-- Batch status lists its jobs in trigger order.
CREATE INDEX job_runs_by_batch ON job_runs (batch_id, position);
-- Latest run of a collector.
CREATE INDEX job_runs_by_collector ON job_runs (collector, started_at DESC);
-- History, newest first.
CREATE INDEX job_runs_by_start ON job_runs (started_at DESC);
-- Active runs: latest per collector and restart recovery, without scanning finished rows.
CREATE INDEX job_runs_active ON job_runs (collector, started_at DESC)
  WHERE status IN ('queued', 'running');

-- Every earlier attempt's outcome of a retried job.
CREATE TABLE job_attempts (
  job_id     TEXT COLLATE "C" NOT NULL REFERENCES job_runs (job_id),
  attempt    INTEGER NOT NULL,
  started_at BIGINT,
  ended_at   BIGINT NOT NULL,
  error      TEXT NOT NULL,
  PRIMARY KEY (job_id, attempt)
);

-- When each scheduled collector last fired, so a restart neither repeats a slot nor runs
-- every slot it missed (one catch-up run at most).
CREATE TABLE schedules (
  collector     TEXT COLLATE "C" PRIMARY KEY,
  last_fired_at BIGINT NOT NULL
);

-- The webhook outbox. A row per event and endpoint, written in the same transaction as the
-- batch or job state that caused it, so an event is never lost across a crash or restart and
-- never written twice (UNIQUE: a retried write inserts nothing new). `body` is the payload
-- exactly as it is signed and sent, on every attempt.
CREATE TABLE webhook_deliveries (
  delivery_id     BIGSERIAL PRIMARY KEY,
  event_id        TEXT NOT NULL,
  endpoint        TEXT COLLATE "C" NOT NULL,
  event_type      TEXT NOT NULL,
  body            TEXT NOT NULL,
  created_at      BIGINT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  state           TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'delivered', 'failed')),
  last_error      TEXT,
  last_status     INTEGER,
  finished_at     BIGINT,
  UNIQUE (event_id, endpoint)
);

-- What each endpoint's sender picks next, without scanning finished rows.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint, next_attempt_at)
  WHERE state = 'pending';

-- Every attempt of a delivery: when, how long, and the HTTP status or the error.
CREATE TABLE webhook_attempts (
  delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries (delivery_id),
  attempt     INTEGER NOT NULL,
  started_at  BIGINT NOT NULL,
  duration_ms BIGINT NOT NULL,
  http_status INTEGER,
  error       TEXT,
  PRIMARY KEY (delivery_id, attempt)
);
