-- The inbox: one row per ProcureIQ event id. Times are epoch milliseconds (bigint), as in the
-- embedded store; lease times come from the database's clock (piq_now_ms) so instances with
-- drifting clocks agree on when a lease has expired.
CREATE FUNCTION piq_now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS
  $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

CREATE TABLE events (
  seq              bigserial UNIQUE,
  id               text    PRIMARY KEY,
  type             text    NOT NULL,
  environment      text    NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status           text    NOT NULL CHECK (status IN ('pending', 'processing', 'retrying', 'processed', 'unhandled', 'invalid', 'dead')),
  created          double precision NOT NULL,
  raw_body         bytea,
  body_sha256      text    NOT NULL,
  delivery_id      text,
  timestamp_header text,
  received_at      bigint  NOT NULL,
  secret_index     integer NOT NULL,
  source_address   text,
  validation_error text,
  attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
  run_at           bigint,
  lease_owner      text,
  leased_at        bigint,
  lease_expires_at bigint,
  last_error       text,
  processed_at     bigint,
  discarded_at     bigint,
  updated_at       bigint  NOT NULL
);

CREATE INDEX events_due ON events (run_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX events_leased ON events (lease_expires_at) WHERE status = 'processing';
CREATE INDEX events_status_seq ON events (status, seq DESC);

CREATE TABLE duplicate_deliveries (
  seq              bigserial PRIMARY KEY,
  event_id         text    NOT NULL,
  delivery_id      text,
  received_at      bigint  NOT NULL,
  body_sha256      text    NOT NULL,
  timestamp_header text,
  secret_index     integer NOT NULL,
  source_address   text
);

CREATE INDEX duplicate_deliveries_event ON duplicate_deliveries (event_id);

CREATE TABLE attempts (
  event_id      text    NOT NULL,
  number        integer NOT NULL,
  worker        text,
  started_at    bigint  NOT NULL,
  finished_at   bigint,
  duration_ms   bigint,
  outcome       text    NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'timed_out', 'interrupted', 'aborted')),
  error_message text,
  error_stack   text,
  PRIMARY KEY (event_id, number)
);
