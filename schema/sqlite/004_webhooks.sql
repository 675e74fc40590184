-- The webhook outbox. A row per event and endpoint, written in the same transaction as the
-- batch or job state that caused it, so an event is never lost across a crash or restart and
-- never written twice (UNIQUE: a retried write inserts nothing new). `body` is the payload
-- exactly as it is signed and sent, on every attempt.
CREATE TABLE webhook_deliveries (
  delivery_id     INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id        TEXT NOT NULL,
  endpoint        TEXT NOT NULL,
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
  delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (delivery_id),
  attempt     INTEGER NOT NULL,
  started_at  BIGINT NOT NULL,
  duration_ms INTEGER NOT NULL,
  http_status INTEGER,
  error       TEXT,
  PRIMARY KEY (delivery_id, attempt)
);
