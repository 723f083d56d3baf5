-- The inbox: one row per ProcureIQ event id. The primary key is the dedupe key and is kept
-- forever; the statuses the application may write are fixed here.
CREATE TABLE events (
  id               TEXT    PRIMARY KEY,
  type             TEXT    NOT NULL,
  environment      TEXT    NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status           TEXT    NOT NULL CHECK (status IN ('pending', 'processing', 'retrying', 'processed', 'unhandled', 'invalid', 'dead')),
  created          INTEGER NOT NULL,
  raw_body         BLOB,
  body_sha256      TEXT    NOT NULL,
  delivery_id      TEXT,
  timestamp_header TEXT,
  received_at      INTEGER NOT NULL,
  validation_error TEXT,
  attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
  run_at           INTEGER,
  lease_owner      TEXT,
  lease_expires_at INTEGER,
  last_error       TEXT,
  processed_at     INTEGER,
  discarded_at     INTEGER,
  updated_at       INTEGER NOT NULL
) STRICT;

CREATE INDEX events_due ON events (run_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX events_leased ON events (lease_expires_at) WHERE status = 'processing';
CREATE INDEX events_received ON events (received_at DESC, id DESC);
CREATE INDEX events_status_received ON events (status, received_at DESC, id DESC);

-- Every accepted delivery, duplicates included: which delivery ids carried an event, and when.
CREATE TABLE deliveries (
  seq              INTEGER PRIMARY KEY,
  event_id         TEXT    NOT NULL,
  delivery_id      TEXT,
  received_at      INTEGER NOT NULL,
  duplicate        INTEGER NOT NULL CHECK (duplicate IN (0, 1)),
  body_sha256      TEXT    NOT NULL,
  timestamp_header TEXT,
  secret_index     INTEGER NOT NULL,
  source_address   TEXT
) STRICT;

CREATE INDEX deliveries_event ON deliveries (event_id);

-- Every processing attempt, kept apart from the receipt.
CREATE TABLE attempts (
  event_id      TEXT    NOT NULL,
  number        INTEGER NOT NULL,
  worker        TEXT,
  started_at    INTEGER NOT NULL,
  finished_at   INTEGER,
  duration_ms   INTEGER,
  outcome       TEXT    NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'timed_out', 'interrupted', 'aborted')),
  error_message TEXT,
  error_stack   TEXT,
  PRIMARY KEY (event_id, number)
) STRICT;
