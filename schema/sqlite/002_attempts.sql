-- Retries: how many attempts a job may make, when a waiting retry is due, and every earlier
-- attempt's outcome. The instance that ran a job, for exact restart recovery.
ALTER TABLE job_runs ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE job_runs ADD COLUMN next_attempt_at BIGINT;
ALTER TABLE job_runs ADD COLUMN owner TEXT;

CREATE TABLE job_attempts (
  job_id     TEXT NOT NULL REFERENCES job_runs (job_id),
  attempt    INTEGER NOT NULL,
  started_at BIGINT,
  ended_at   BIGINT NOT NULL,
  error      TEXT NOT NULL,
  PRIMARY KEY (job_id, attempt)
);
