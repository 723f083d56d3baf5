-- When each signing secret last verified a delivery, per environment, so an operator knows when
-- an old secret is unused and safe to remove.
CREATE TABLE secret_usage (
  environment      TEXT    NOT NULL,
  secret_index     INTEGER NOT NULL,
  last_verified_at INTEGER NOT NULL,
  PRIMARY KEY (environment, secret_index)
) STRICT;

-- Every mutating admin call: who, what, when.
CREATE TABLE audit_log (
  seq     INTEGER PRIMARY KEY,
  at      INTEGER NOT NULL,
  actor   TEXT    NOT NULL,
  action  TEXT    NOT NULL,
  details TEXT    NOT NULL
) STRICT;

-- Retention finds old processed events without scanning the table.
CREATE INDEX events_processed_at ON events (processed_at) WHERE status = 'processed' AND raw_body IS NOT NULL;

-- Time windows: the admin API's time-range filters and the dashboard's per-minute charts.
CREATE INDEX events_received_at ON events (received_at);
CREATE INDEX attempts_finished_at ON attempts (finished_at);
