-- Cluster mode ([cluster] enabled, docs/cluster.md): several collectord nodes share this
-- database. Each node registers itself and renews a heartbeat; a running job holds a lease that
-- its node renews, and `owner` names that node. Timestamps come from the database's clock, so
-- that nodes whose clocks disagree still agree on when a lease ran out.
CREATE TABLE nodes (
  node_id      TEXT COLLATE "C" PRIMARY KEY,
  tags         TEXT NOT NULL DEFAULT '',
  state        TEXT NOT NULL CHECK (state IN ('alive', 'stopped')),
  started_at   BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL
);

-- lease_expires_at: until when the owner's lease on a running job holds. cancel_requested: a
-- node other than the owner was asked to cancel it; the owner stops the run.
ALTER TABLE job_runs ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE job_runs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;

-- A node's running jobs (heartbeat, cancel requests, GET /api/nodes) and expired leases.
CREATE INDEX job_runs_running ON job_runs (owner, lease_expires_at) WHERE status = 'running';
