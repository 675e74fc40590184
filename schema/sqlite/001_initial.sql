-- Batches and runs. Timestamps are microseconds since the Unix epoch (UTC); the API formats them.
CREATE TABLE job_batches (
  batch_id             TEXT PRIMARY KEY,
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
  duration_seconds     REAL
);

CREATE TABLE job_runs (
  job_id           TEXT PRIMARY KEY,
  batch_id         TEXT NOT NULL REFERENCES job_batches (batch_id),
  position         INTEGER NOT NULL,
  collector        TEXT NOT NULL,
  job_name         TEXT NOT NULL,
  status           TEXT NOT NULL
                   CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  progress_percent INTEGER CHECK (progress_percent BETWEEN 0 AND 100),
  message          TEXT,
  error            TEXT,
  started_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  ended_at         BIGINT,
  duration_seconds REAL,
  attempt          INTEGER NOT NULL DEFAULT 1,
  pid              INTEGER
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
