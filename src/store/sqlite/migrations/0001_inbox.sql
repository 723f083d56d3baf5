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
  -- The first delivery; repeats are in duplicate_deliveries.
  delivery_id      TEXT,
  timestamp_header TEXT,
  received_at      INTEGER NOT NULL,
  secret_index     INTEGER NOT NULL,
  source_address   TEXT,
  validation_error TEXT,
  attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
  run_at           INTEGER,
  lease_owner      TEXT,
  leased_at        INTEGER,
  lease_expires_at INTEGER,
  last_error       TEXT,
  processed_at     INTEGER,
  discarded_at     INTEGER,
  updated_at       INTEGER NOT NULL
) STRICT;

-- Lists run newest first in insertion order (rowid), so they need no index of their own; the
-- status index carries the rowid, which serves "newest dead letters first" and keyset pages.
CREATE INDEX events_due ON events (run_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX events_leased ON events (lease_expires_at) WHERE status = 'processing';
CREATE INDEX events_status ON events (status);

-- Deliveries of an event id already stored: which delivery ids repeated it, and when.
CREATE TABLE duplicate_deliveries (
  seq              INTEGER PRIMARY KEY,
  event_id         TEXT    NOT NULL,
  delivery_id      TEXT,
  received_at      INTEGER NOT NULL,
  body_sha256      TEXT    NOT NULL,
  timestamp_header TEXT,
  secret_index     INTEGER NOT NULL,
  source_address   TEXT
) STRICT;

CREATE INDEX duplicate_deliveries_event ON duplicate_deliveries (event_id);

-- Every finished processing attempt, kept apart from the receipt. A running attempt is the
-- event row itself (status 'processing', leased_at, lease_owner).
CREATE TABLE attempts (
  event_id      TEXT    NOT NULL,
  number        INTEGER NOT NULL,
  worker        TEXT,
  started_at    INTEGER NOT NULL,
  finished_at   INTEGER,
  duration_ms   INTEGER,
  outcome       TEXT    NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'timed_out', 'interrupted', 'aborted')),
  error_message TEXT,
  error_stack   TEXT,
  PRIMARY KEY (event_id, number)
) STRICT;
