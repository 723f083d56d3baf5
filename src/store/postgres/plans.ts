// Every SQL statement of the PostgreSQL store, side by side with ../sqlite/plans.ts. Each rule is
// written once here: the fenced finish, the event summary, the list filter, the stats. The store
// class (postgres-store.ts) only binds values, batches and runs transactions. Times are epoch
// milliseconds; lease times come from the database's clock (piq_now_ms) so instances agree.
import { HANDLERS, type ListFilter, PROJECTIONS, REPLAYABLE_STATUSES } from '../inbox-store.ts';
import { SUMMARY_COLUMNS } from '../rows.ts';

/** The LISTEN/NOTIFY channel that wakes workers of every instance. */
export const CHANNEL = 'procureiq_webhooks_due';
/** `$1`: the kinds of job made due (`routes,projections`, see JobKind), or '' for any. */
export const NOTIFY = `SELECT pg_notify('${CHANNEL}', $1)`;

/**
 * For job `j` with an order key: an unfinished job of the same consumer and key whose event came
 * first (created, then receipt). While one exists, `j` waits.
 */
const EARLIER_IN_ORDER = `SELECT 1 FROM jobs p JOIN events pe ON pe.id = p.event_id, events me
  WHERE me.id = j.event_id AND p.consumer = j.consumer AND p.order_key = j.order_key
    AND p.status IN ('pending', 'processing', 'retrying')
    AND (pe.created < me.created OR (pe.created = me.created AND pe.seq < me.seq))`;

const REPLAYABLE = REPLAYABLE_STATUSES.map((s) => `'${s}'`).join(', ');

/**
 * Stores a batch of events in one statement (one commit), with the jobs of each new pending event
 * (`$17`–`$20`, one row per job); a row with a lease owner has its handlers job leased at once. Repeats of stored ids become delivery
 * records. Returns the ids inserted, each with its lease time if leased.
 */
export const INSERT_EVENTS = `WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::bytea[], $7::text[],
      $8::text[], $9::text[], $10::int8[], $11::int4[], $12::text[], $13::text[], $14::int4[], $15::text[], $16::int8[],
      $21::int4[])
      AS t(id, type, environment, status, created, raw_body, body_sha256, delivery_id, timestamp_header,
           received_at, secret_index, source_address, validation_error, max_attempts, lease_owner, lease_ms,
           unleased_jobs)
  ), clock AS (SELECT piq_now_ms() AS ms),
  ins AS (
    INSERT INTO events (id, type, environment, status, created, raw_body, body_sha256, delivery_id,
      timestamp_header, received_at, secret_index, source_address, validation_error, attempts, max_attempts,
      run_at, updated_at)
    SELECT i.id, i.type, i.environment,
      CASE WHEN i.lease_owner IS NOT NULL THEN 'processing' ELSE i.status END,
      i.created, i.raw_body, i.body_sha256, i.delivery_id, i.timestamp_header, i.received_at, i.secret_index,
      i.source_address, i.validation_error,
      CASE WHEN i.lease_owner IS NOT NULL THEN 1 ELSE 0 END, i.max_attempts,
      CASE WHEN i.status = 'pending' AND i.unleased_jobs > 0 THEN i.received_at END,
      i.received_at
    FROM input i
    ON CONFLICT (id) DO NOTHING
    RETURNING id
  ), jobs_input AS (
    SELECT * FROM unnest($17::text[], $18::text[], $19::int4[], $20::text[])
      AS t(event_id, consumer, max_attempts, order_key)
  ), job AS (
    INSERT INTO jobs (event_id, consumer, status, attempts, max_attempts, run_at, lease_owner, leased_at,
      lease_expires_at, order_key, updated_at)
    SELECT j.event_id, j.consumer, CASE WHEN l.leased THEN 'processing' ELSE 'pending' END,
      CASE WHEN l.leased THEN 1 ELSE 0 END, j.max_attempts,
      CASE WHEN l.leased THEN NULL ELSE i.received_at END,
      CASE WHEN l.leased THEN i.lease_owner END,
      CASE WHEN l.leased THEN c.ms END,
      CASE WHEN l.leased THEN c.ms + i.lease_ms END,
      j.order_key, i.received_at
    FROM jobs_input j JOIN ins ON ins.id = j.event_id JOIN input i ON i.id = j.event_id, clock c,
      -- Only the handlers job is leased to the local worker at once; routes claim their own.
      LATERAL (SELECT j.consumer = 'handlers' AND i.lease_owner IS NOT NULL AS leased) l
    RETURNING event_id, consumer, leased_at
  ), dup AS (
    INSERT INTO duplicate_deliveries (event_id, delivery_id, received_at, body_sha256, timestamp_header,
      secret_index, source_address)
    SELECT i.id, i.delivery_id, i.received_at, i.body_sha256, i.timestamp_header, i.secret_index, i.source_address
    FROM input i WHERE i.id NOT IN (SELECT id FROM ins)
  )
  SELECT ins.id, job.leased_at FROM ins LEFT JOIN job ON job.event_id = ins.id AND job.consumer = 'handlers'`;

/** Jobs of consumers `$1` whose lease has expired (cheap check before recovering them). */
export const ANY_EXPIRED = `SELECT DISTINCT event_id FROM jobs
  WHERE status = 'processing' AND lease_expires_at <= piq_now_ms() AND consumer = ANY($1::text[])`;

/**
 * Recovers expired leases of consumers `$2` (run under the events' locks): the attempt counts as
 * interrupted, then the job is due again or dead when its attempts are used up.
 */
export const RECOVER_EXPIRED = `WITH clock AS (SELECT piq_now_ms() AS ms),
  expired AS (
    SELECT j.event_id, j.consumer, j.attempts, j.lease_owner, j.leased_at FROM jobs j, clock c
    WHERE j.status = 'processing' AND j.lease_expires_at <= c.ms AND j.consumer = ANY($2::text[])
    FOR UPDATE OF j SKIP LOCKED
  ), interrupted AS (
    INSERT INTO attempts (event_id, consumer, number, worker, started_at, finished_at, duration_ms, outcome, error_message)
    SELECT x.event_id, x.consumer, x.attempts, x.lease_owner, COALESCE(x.leased_at, c.ms), c.ms,
      c.ms - COALESCE(x.leased_at, c.ms), 'interrupted', $1
    FROM expired x, clock c
    ON CONFLICT (event_id, consumer, number) DO NOTHING
  )
  UPDATE jobs j SET
    status = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'retrying' END,
    run_at = CASE WHEN j.attempts >= j.max_attempts THEN NULL ELSE c.ms END,
    finished_at = CASE WHEN j.attempts >= j.max_attempts THEN c.ms END,
    lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, last_error = $1, updated_at = c.ms
  FROM expired x, clock c WHERE j.event_id = x.event_id AND j.consumer = x.consumer
  RETURNING j.event_id, j.consumer, j.status, j.attempts,
    (SELECT type FROM events WHERE id = j.event_id) AS type`;

/** Leases up to `$3` due jobs of consumers `$4` to `$1` for `$2` ms, in due order, with their events. */
export const CLAIM_DUE = `WITH clock AS (SELECT piq_now_ms() AS ms),
  due AS (
    SELECT j.event_id, j.consumer FROM jobs j, clock c
    WHERE j.status IN ('pending', 'retrying') AND j.run_at <= c.ms AND j.consumer = ANY($4::text[])
      AND (j.order_key IS NULL OR NOT EXISTS (${EARLIER_IN_ORDER}))
    ORDER BY j.run_at LIMIT $3
    FOR UPDATE OF j SKIP LOCKED
  ), claimed AS (
    UPDATE jobs j SET status = 'processing', attempts = j.attempts + 1, lease_owner = $1, leased_at = c.ms,
      lease_expires_at = c.ms + $2, run_at = NULL, updated_at = c.ms
    FROM due, clock c WHERE j.event_id = due.event_id AND j.consumer = due.consumer
    RETURNING j.event_id, j.consumer, j.attempts, j.max_attempts
  ), locked AS MATERIALIZED (
    -- The claimed jobs' events, locked in id order as every other writer of events takes them
    -- (LOCK_EVENTS); \`running\` only updates rows locked here. Updated in its join's order (a hash's),
    -- two claims of the same events for two routes, or a claim and a finishing write, deadlocked,
    -- and PostgreSQL aborted one of them.
    SELECT e.id FROM events e WHERE e.id IN (SELECT event_id FROM claimed) ORDER BY e.id FOR UPDATE
  ), running AS (
    -- A claimed job's event counts the attempt, and runs unless another job already made it dead.
    UPDATE events e SET attempts = e.attempts + n.jobs,
      status = CASE WHEN e.status IN ('pending', 'retrying') THEN 'processing' ELSE e.status END, updated_at = c.ms
    FROM (SELECT event_id, COUNT(*) FILTER (WHERE consumer <> '${PROJECTIONS}')::int4 AS jobs
          FROM claimed GROUP BY event_id) n, clock c
    WHERE e.id = n.event_id AND e.id IN (SELECT id FROM locked)
  )
  SELECT claimed.consumer, claimed.attempts, claimed.max_attempts, e.id, e.type, e.environment, e.raw_body, e.created,
    e.received_at, e.delivery_id
  FROM claimed JOIN events e ON e.id = claimed.event_id`;

/**
 * Takes the row locks of events `$1` in id order. Every write that changes an event's jobs and
 * then its summary holds them first, so two writers of one event's jobs see each other's commits
 * (READ COMMITTED takes a new snapshot per statement) and never race on the summary.
 */
export const LOCK_EVENTS = 'SELECT id FROM events WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE';

/**
 * Every finishing write of a batch of jobs is this one statement: each job's fenced change (still
 * processing, still this attempt) and, only where it held, its attempt record. Returns the jobs
 * whose lease held.
 */
export const FINISH_JOBS = `WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::int8[], $6::int8[], $7::text[],
      $8::text[], $9::text[], $10::text[], $11::int8[], $12::bool[], $13::int4[])
      AS t(id, consumer, attempt, owner, started_at, finished_at, outcome, error_message, error_stack, status,
           run_at, run_now, extra_attempts)
  ), upd AS (
    UPDATE jobs j SET
      status = i.status,
      run_at = CASE WHEN i.run_now THEN piq_now_ms() ELSE i.run_at END,
      last_error = CASE WHEN i.status IN ('processed', 'skipped') THEN NULL
                        WHEN i.status IN ('retrying', 'dead') AND i.extra_attempts = 0 THEN i.error_message
                        ELSE j.last_error END,
      max_attempts = j.max_attempts + i.extra_attempts,
      finished_at = CASE WHEN i.status IN ('processed', 'skipped', 'unhandled', 'dead') THEN i.finished_at END,
      lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, updated_at = i.finished_at
    FROM input i
    WHERE j.event_id = i.id AND j.consumer = i.consumer AND j.status = 'processing' AND j.attempts = i.attempt
    RETURNING j.event_id, j.consumer
  ), recorded AS (
    INSERT INTO attempts (event_id, consumer, number, worker, started_at, finished_at, duration_ms, outcome,
      error_message, error_stack)
    SELECT i.id, i.consumer, i.attempt, i.owner, i.started_at, i.finished_at, i.finished_at - i.started_at,
      i.outcome, i.error_message, i.error_stack
    FROM input i JOIN upd u ON u.event_id = i.id AND u.consumer = i.consumer
    ON CONFLICT (event_id, consumer, number) DO UPDATE SET finished_at = excluded.finished_at,
      duration_ms = excluded.duration_ms, outcome = excluded.outcome, error_message = excluded.error_message,
      error_stack = excluded.error_stack
  )
  SELECT event_id, consumer FROM upd`;

/**
 * Events `$1`'s summary of their jobs: dead if any job is dead; else unhandled when no job but
 * the projections job took it (a handlers job, if any, found no handler); else processing,
 * retrying or pending while any is; else processed once every job is processed or skipped;
 * unhandled when every job declined it. Events without jobs (stored `invalid` or `unhandled`)
 * keep their status.
 */
export const SUMMARISE_EVENTS = `UPDATE events e SET status = s.status, attempts = s.attempts,
    max_attempts = s.max_attempts, run_at = s.run_at, last_error = s.last_error,
    processed_at = CASE WHEN s.status = 'processed' THEN s.finished_at ELSE e.processed_at END,
    updated_at = piq_now_ms()
  FROM (
    SELECT j.event_id,
      CASE WHEN bool_or(j.status = 'dead') THEN 'dead'
           WHEN NOT bool_or(j.consumer <> '${PROJECTIONS}' AND j.status <> 'unhandled') THEN 'unhandled'
           WHEN bool_or(j.status = 'processing') THEN 'processing'
           WHEN bool_or(j.status = 'retrying') THEN 'retrying'
           WHEN bool_or(j.status = 'pending') THEN 'pending'
           WHEN bool_or(j.status IN ('processed', 'skipped')) THEN 'processed'
           ELSE 'unhandled' END AS status,
      -- The event's attempts are its handlers' and routes' (projection writes are bookkeeping).
      COALESCE(SUM(j.attempts) FILTER (WHERE j.consumer <> '${PROJECTIONS}'), 0)::int4 AS attempts,
      GREATEST(1, COALESCE(SUM(j.max_attempts) FILTER (WHERE j.consumer <> '${PROJECTIONS}'), 0))::int4 AS max_attempts,
      MIN(j.run_at) FILTER (WHERE j.status IN ('pending', 'retrying')) AS run_at,
      MAX(j.finished_at) AS finished_at,
      (array_agg(j.last_error ORDER BY j.updated_at DESC)
        FILTER (WHERE j.status NOT IN ('processed', 'skipped') AND j.last_error IS NOT NULL))[1] AS last_error
    FROM jobs j WHERE j.event_id = ANY($1::text[]) GROUP BY j.event_id
  ) AS s
  WHERE e.id = s.event_id`;

/** Jobs events get after their insert (a projections job once the handler gave up), if absent. */
export const ADD_JOBS = `INSERT INTO jobs (event_id, consumer, status, attempts, max_attempts, run_at, order_key, updated_at)
  SELECT t.id, t.consumer, 'pending', 0, t.max_attempts, piq_now_ms(), t.order_key, piq_now_ms()
  FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[]) AS t(id, consumer, max_attempts, order_key)
  ON CONFLICT (event_id, consumer) DO NOTHING`;

export const EXPIRE_ALL = `UPDATE jobs SET lease_expires_at = 0 WHERE status = 'processing'`;
export const EXPIRE_OWNER = `UPDATE jobs SET lease_expires_at = 0
  WHERE status = 'processing' AND starts_with(lease_owner, $1)`;

// Replay (under the event's lock): every finished job of the event, or one consumer's, is due
// again with a fresh budget; an event that never had a job (invalid, or unhandled at receipt)
// gets its handlers job.
export const REPLAYABLE_STATUS = `SELECT status, status IN (${REPLAYABLE}) AS replayable, raw_body IS NULL AS purged
  FROM events WHERE id = $1`;
export const REPLAY_JOBS = `UPDATE jobs SET status = 'pending', run_at = piq_now_ms(), max_attempts = attempts + $2,
    last_error = NULL, finished_at = NULL, updated_at = piq_now_ms()
  WHERE event_id = $1 AND ($3::text IS NULL OR consumer = $3)
    AND status IN ('processed', 'skipped', 'unhandled', 'dead') AND (NOT $4::bool OR status = 'dead')`;
export const HAS_HANDLERS_JOB = `SELECT 1 FROM jobs WHERE event_id = $1 AND consumer = '${HANDLERS}'`;
export const INSERT_HANDLERS_JOB = `INSERT INTO jobs (event_id, consumer, status, attempts, max_attempts, run_at, updated_at)
  VALUES ($1, 'handlers', 'pending', 0, $2, piq_now_ms(), piq_now_ms())`;
export const REOPEN_EVENT = `UPDATE events SET discarded_at = NULL, last_error = NULL, updated_at = piq_now_ms()
  WHERE id = $1`;

export const DISCARD = `UPDATE events SET discarded_at = piq_now_ms(), updated_at = piq_now_ms()
  WHERE id = ANY($1::text[]) AND status = 'dead' AND discarded_at IS NULL`;

export const GET_EVENT = 'SELECT * FROM events WHERE id = $1';
export const JOBS_OF = 'SELECT * FROM jobs WHERE event_id = $1 ORDER BY consumer';
export const ATTEMPTS_OF = 'SELECT * FROM attempts WHERE event_id = $1 ORDER BY started_at, consumer, number';
export const DUPLICATES_OF = 'SELECT * FROM duplicate_deliveries WHERE event_id = $1 ORDER BY seq';
export const EVENT_EXISTS = 'SELECT 1 FROM events WHERE id = $1';

export const COUNT_BY_STATUS = `SELECT status, COUNT(*)::int8 AS n FROM events
  WHERE $1::text IS NULL OR environment = $1 GROUP BY status`;
export const COUNT_BY_TYPE_AND_STATUS = `SELECT type, status, COUNT(*)::int8 AS count FROM events
  WHERE received_at >= $1 AND ($2::text IS NULL OR environment = $2)
  GROUP BY type, status ORDER BY type, status`;
export const OLDEST_WAITING = `SELECT MIN(received_at) AS at FROM events
  WHERE status IN ('pending', 'retrying') AND ($1::text IS NULL OR environment = $1)`;
export const RECEIVED_PER_MINUTE = `SELECT (received_at / 60000) * 60000 AS minute, type, COUNT(*)::int8 AS count
  FROM events WHERE received_at >= $1 AND ($2::text IS NULL OR environment = $2)
  GROUP BY 1, 2 ORDER BY 1`;
export const FAILED_ATTEMPTS_PER_MINUTE = `SELECT (a.finished_at / 60000) * 60000 AS minute, COUNT(*)::int8 AS count
  FROM attempts a JOIN events e ON e.id = a.event_id
  WHERE a.finished_at >= $1 AND a.outcome IN ('failed', 'timed_out', 'interrupted')
    AND ($2::text IS NULL OR e.environment = $2)
  GROUP BY 1 ORDER BY 1`;

export const RECORD_SECRET_USE = `INSERT INTO secret_usage (environment, secret_index, last_verified_at)
  SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[])
  ON CONFLICT (environment, secret_index) DO UPDATE SET
    last_verified_at = GREATEST(secret_usage.last_verified_at, excluded.last_verified_at)`;
export const SECRET_USAGE =
  'SELECT environment, secret_index, last_verified_at FROM secret_usage ORDER BY environment, secret_index';
export const AUDIT = 'INSERT INTO audit_log (at, actor, action, details) VALUES ($1, $2, $3, $4)';
export const AUDIT_LOG = 'SELECT at, actor, action, details FROM audit_log ORDER BY seq DESC LIMIT $1';

export const PURGE_PROCESSED = `WITH old AS (
    SELECT id FROM events WHERE status = 'processed' AND raw_body IS NOT NULL AND processed_at < $1
    ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED
  ), gone AS (DELETE FROM attempts WHERE event_id IN (SELECT id FROM old))
  UPDATE events SET raw_body = NULL FROM old WHERE events.id = old.id`;

// Each half matches a partial index's WHERE (jobs_due, jobs_leased), so neither scans the history.
export const COUNT_UNFINISHED_JOBS = `SELECT consumer, status, COUNT(*)::int8 AS count FROM jobs
    WHERE status IN ('pending', 'retrying') GROUP BY consumer, status
  UNION ALL
  SELECT consumer, status, COUNT(*)::int8 AS count FROM jobs WHERE status = 'processing' GROUP BY consumer, status
  ORDER BY consumer, status`;
export const COUNT_JOBS = `SELECT consumer, status, COUNT(*)::int8 AS count FROM jobs GROUP BY consumer, status
  ORDER BY consumer, status`;
export const LIST_JOBS = `SELECT j.*, e.type FROM jobs j JOIN events e ON e.id = j.event_id
  WHERE ($1::text IS NULL OR j.consumer = $1) AND ($2::text IS NULL OR starts_with(j.consumer, $2))
    AND ($3::text IS NULL OR j.status = $3)
  ORDER BY j.updated_at DESC, e.seq DESC, j.consumer LIMIT $4`;

export const NEXT_DUE = `SELECT (SELECT MIN(run_at) FROM jobs WHERE status IN ('pending', 'retrying')) AS due,
  (SELECT MIN(lease_expires_at) FROM jobs WHERE status = 'processing') AS expiry`;

/** The list query for a filter, newest first in insertion order (seq). */
export function listEventsPlan(filter: ListFilter): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.status) where.push(`status = ${param(filter.status)}`);
  if (filter.type) {
    // `order.*` matches a family; `_` and `%` in type names are literal.
    if (filter.type.includes('*')) {
      const pattern = filter.type.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%');
      where.push(`type LIKE ${param(pattern)}`);
    } else where.push(`type = ${param(filter.type)}`);
  }
  if (filter.environment) where.push(`environment = ${param(filter.environment)}`);
  if (filter.since !== undefined) where.push(`received_at >= ${param(filter.since)}`);
  if (filter.until !== undefined) where.push(`received_at < ${param(filter.until)}`);
  if (filter.text) where.push(`position(convert_to(${param(filter.text)}, 'UTF8') in raw_body) > 0`);
  if (filter.excludeDiscarded) where.push('discarded_at IS NULL');
  if (filter.before) where.push(`seq < (SELECT seq FROM events WHERE id = ${param(filter.before)})`);
  const sql = `SELECT ${SUMMARY_COLUMNS} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY seq DESC LIMIT ${param(filter.limit ?? 50)}`;
  return { sql, params };
}
