-- Jobs and attempts are keyed by their event's receipt number (`events.seq`) instead of its id.
--
-- ProcureIQ's event ids land anywhere in a B-tree keyed by text, so each job row written with an
-- event dirtied a page of its own, and every group commit wrote one WAL page per job on top of
-- the event's. Receipt numbers only grow: a batch's jobs now share the B-tree's last pages. (In a
-- better-sqlite3 loop of 100,000 events with two jobs each, in batches of 25 without fsync, the
-- jobs cost 26-37 µs per event keyed by id and 2-8 µs keyed by seq.) Attempts, written at every
-- delivery, stay a rowid table (their error stacks can be long) whose key index now grows at its
-- end too. `event_id` stays on both tables, unindexed, for readers; lookups by id go through
-- events' own unique index.
--
-- `seq` is declared INTEGER PRIMARY KEY, so it is the rowid that events already had (copied as
-- is, so insertion order is unchanged): declared, VACUUM may not renumber it. AUTOINCREMENT: a
-- number is never given twice, even after the newest events are deleted by hand, so no job or
-- attempt left behind by a deleted event can attach itself to a new one.

CREATE TABLE events_new (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  id               TEXT    NOT NULL UNIQUE,
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
  last_error       TEXT,
  processed_at     INTEGER,
  discarded_at     INTEGER,
  updated_at       INTEGER NOT NULL
) STRICT;

INSERT INTO events_new (seq, id, type, environment, status, created, raw_body, body_sha256, delivery_id,
  timestamp_header, received_at, secret_index, source_address, validation_error, attempts, max_attempts,
  run_at, last_error, processed_at, discarded_at, updated_at)
SELECT rowid, id, type, environment, status, created, raw_body, body_sha256, delivery_id,
  timestamp_header, received_at, secret_index, source_address, validation_error, attempts, max_attempts,
  run_at, last_error, processed_at, discarded_at, updated_at
FROM events;

DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_status ON events (status);
CREATE INDEX events_processed_at ON events (processed_at) WHERE status = 'processed' AND raw_body IS NOT NULL;
CREATE INDEX events_received_at ON events (received_at);

CREATE TABLE jobs_new (
  event_seq        INTEGER NOT NULL,
  consumer         TEXT    NOT NULL,
  event_id         TEXT    NOT NULL,
  status           TEXT    NOT NULL CHECK (status IN ('pending', 'processing', 'retrying', 'processed', 'skipped', 'unhandled', 'dead')),
  attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
  run_at           INTEGER,
  lease_owner      TEXT,
  leased_at        INTEGER,
  lease_expires_at INTEGER,
  last_error       TEXT,
  -- A route with orderBy: jobs with the same key go out one at a time, in order of the event's
  -- created, then receipt.
  order_key        TEXT,
  finished_at      INTEGER,
  updated_at       INTEGER NOT NULL,
  PRIMARY KEY (event_seq, consumer)
) STRICT, WITHOUT ROWID;

INSERT INTO jobs_new (event_seq, consumer, event_id, status, attempts, max_attempts, run_at, lease_owner,
  leased_at, lease_expires_at, last_error, order_key, finished_at, updated_at)
SELECT e.seq, j.consumer, j.event_id, j.status, j.attempts, j.max_attempts, j.run_at, j.lease_owner,
  j.leased_at, j.lease_expires_at, j.last_error, j.order_key, j.finished_at, j.updated_at
FROM jobs j JOIN events e ON e.id = j.event_id;

DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (consumer, run_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE status = 'processing';
CREATE INDEX jobs_ordered ON jobs (consumer, order_key)
  WHERE order_key IS NOT NULL AND status IN ('pending', 'processing', 'retrying');

CREATE TABLE attempts_new (
  event_seq     INTEGER NOT NULL,
  consumer      TEXT    NOT NULL,
  number        INTEGER NOT NULL,
  event_id      TEXT    NOT NULL,
  worker        TEXT,
  started_at    INTEGER NOT NULL,
  finished_at   INTEGER,
  duration_ms   INTEGER,
  outcome       TEXT    NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'timed_out', 'interrupted', 'aborted', 'skipped')),
  error_message TEXT,
  error_stack   TEXT,
  PRIMARY KEY (event_seq, consumer, number)
) STRICT;

INSERT INTO attempts_new (event_seq, consumer, number, event_id, worker, started_at, finished_at, duration_ms,
  outcome, error_message, error_stack)
SELECT e.seq, a.consumer, a.number, a.event_id, a.worker, a.started_at, a.finished_at, a.duration_ms,
  a.outcome, a.error_message, a.error_stack
FROM attempts a JOIN events e ON e.id = a.event_id;

DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;
CREATE INDEX attempts_finished_at ON attempts (finished_at);
