-- When each signing secret last verified a delivery, per environment, so an operator knows when
-- an old secret is unused and safe to remove.
CREATE TABLE secret_usage (
  environment      text    NOT NULL,
  secret_index     integer NOT NULL,
  last_verified_at bigint  NOT NULL,
  PRIMARY KEY (environment, secret_index)
);

-- Every mutating admin call: who, what, when.
CREATE TABLE audit_log (
  seq     bigserial PRIMARY KEY,
  at      bigint NOT NULL,
  actor   text   NOT NULL,
  action  text   NOT NULL,
  details jsonb  NOT NULL
);

-- Retention finds old processed events without scanning the table.
CREATE INDEX events_processed_at ON events (processed_at) WHERE status = 'processed' AND raw_body IS NOT NULL;

-- Time windows: the admin API's time-range filters and the dashboard's per-minute charts.
CREATE INDEX events_received_at ON events (received_at);
CREATE INDEX attempts_finished_at ON attempts (finished_at);
