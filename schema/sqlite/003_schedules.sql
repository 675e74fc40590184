-- When each scheduled collector last fired, so a restart neither repeats a slot nor runs
-- every slot it missed (one catch-up run at most).
CREATE TABLE schedules (
  collector     TEXT PRIMARY KEY,
  last_fired_at BIGINT NOT NULL
);
