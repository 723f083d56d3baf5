-- One job per (event, consumer). A consumer is the event's handlers (`handlers`) or one route
-- (`route:NAME`); each job has its own status, attempts, lease (fencing token = its attempt
-- number), retry schedule and dead letter. The event row keeps the receipt and a summary of its
-- jobs (status, attempts, next attempt, last error), written in the same transaction as each job
-- change.
CREATE TABLE jobs (
  event_id         TEXT    NOT NULL,
  consumer         TEXT    NOT NULL,
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
  PRIMARY KEY (event_id, consumer)
) STRICT, WITHOUT ROWID;

CREATE INDEX jobs_due ON jobs (consumer, run_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE status = 'processing';
CREATE INDEX jobs_ordered ON jobs (consumer, order_key)
  WHERE order_key IS NOT NULL AND status IN ('pending', 'processing', 'retrying');

-- Every event a handler took, or was to take, becomes its handlers job, with its state and budget.
-- Events stored as `unhandled` or `invalid` had no job; one marked `unhandled` by a worker did.
INSERT INTO jobs (event_id, consumer, status, attempts, max_attempts, run_at, lease_owner, leased_at,
  lease_expires_at, last_error, finished_at, updated_at)
SELECT id, 'handlers', status, attempts, max_attempts, run_at, lease_owner, leased_at, lease_expires_at,
  last_error, CASE WHEN status = 'processed' THEN processed_at WHEN status IN ('dead', 'unhandled') THEN updated_at END,
  updated_at
FROM events
WHERE status IN ('pending', 'processing', 'retrying', 'processed', 'dead')
   OR (status = 'unhandled' AND attempts > 0);

-- Attempts now belong to a job: the consumer joins the key.
CREATE TABLE job_attempts (
  event_id      TEXT    NOT NULL,
  consumer      TEXT    NOT NULL,
  number        INTEGER NOT NULL,
  worker        TEXT,
  started_at    INTEGER NOT NULL,
  finished_at   INTEGER,
  duration_ms   INTEGER,
  outcome       TEXT    NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'timed_out', 'interrupted', 'aborted', 'skipped')),
  error_message TEXT,
  error_stack   TEXT,
  PRIMARY KEY (event_id, consumer, number)
) STRICT;

INSERT INTO job_attempts (event_id, consumer, number, worker, started_at, finished_at, duration_ms, outcome,
  error_message, error_stack)
SELECT event_id, 'handlers', number, worker, started_at, finished_at, duration_ms, outcome, error_message, error_stack
FROM attempts;

DROP TABLE attempts;
ALTER TABLE job_attempts RENAME TO attempts;
CREATE INDEX attempts_finished_at ON attempts (finished_at);

-- Leases live on jobs now.
DROP INDEX events_due;
DROP INDEX events_leased;
ALTER TABLE events DROP COLUMN lease_owner;
ALTER TABLE events DROP COLUMN leased_at;
ALTER TABLE events DROP COLUMN lease_expires_at;
