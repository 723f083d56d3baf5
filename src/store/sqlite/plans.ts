// Every SQL statement of the embedded store, in SQLite's dialect, side by side with
// ../postgres/plans.ts. Each rule is written once here: the fenced finish, the event summary, the
// list filter, the stats. The store class (sqlite-connection.ts) only binds values and calls these.
import type Database from 'better-sqlite3';
import { HANDLERS, type ListFilter, PROJECTIONS } from '../inbox-store.ts';
import { INTERRUPTED, SUMMARY_COLUMNS } from '../rows.ts';

/**
 * An event's receipt number (`events.seq`), by its id: jobs and attempts are keyed by it (migration
 * 0005), so a lookup by event id goes through events' unique index first.
 */
const seqOf = (param: string) => `(SELECT seq FROM events WHERE id = ${param})`;

/** A job's fencing condition: its lease still holds only while it is processing this attempt. */
const FENCED = `event_seq = ${seqOf('@id')} AND consumer = @consumer AND status = 'processing' AND attempts = @attempt`;

/** The jobs a claim may take: `@consumers` is a JSON array of consumer names. */
const OF_CONSUMERS = 'consumer IN (SELECT value FROM json_each(@consumers))';

/**
 * For job `j` with an order key: an unfinished job of the same consumer and key whose event came
 * first (created, then receipt). While one exists, `j` waits.
 */
const EARLIER_IN_ORDER = `SELECT 1 FROM jobs p JOIN events pe ON pe.seq = p.event_seq, events me
  WHERE me.seq = j.event_seq AND p.consumer = j.consumer AND p.order_key = j.order_key
    AND p.status IN ('pending', 'processing', 'retrying')
    AND (pe.created < me.created OR (pe.created = me.created AND pe.seq < me.seq))`;

/** The event's status from its jobs (an aggregate over them); see SUMMARISE_EVENT. */
const SUMMARY_STATUS = `CASE WHEN SUM(status = 'dead') > 0 THEN 'dead'
         WHEN SUM(consumer <> '${PROJECTIONS}' AND status <> 'unhandled') = 0 THEN 'unhandled'
         WHEN SUM(status = 'processing') > 0 THEN 'processing'
         WHEN SUM(status = 'retrying') > 0 THEN 'retrying'
         WHEN SUM(status = 'pending') > 0 THEN 'pending'
         WHEN SUM(status IN ('processed', 'skipped')) > 0 THEN 'processed'
         ELSE 'unhandled' END`;

/**
 * An event's summary of its jobs: dead if any job is dead; else unhandled when no job but
 * the projections job took it (a handlers job, if any, found no handler); else processing,
 * retrying or pending while any is; else processed once every job is processed or skipped;
 * unhandled when every job declined it. Events without jobs (stored `invalid` or `unhandled`)
 * keep their status. One row-value assignment from one aggregate
 * over the event's jobs, in one pass (no derived table); the last error is looked up (a sort) only
 * when an unfinished job has one. It runs at every claim recovery and every finished job: 20% less
 * than the aggregate as a derived table, which was itself 17% cheaper than UPDATE … FROM.
 */
const SUMMARISE_EVENT = `UPDATE events SET
    (status, attempts, max_attempts, run_at, last_error, processed_at, updated_at) = (
      SELECT ${SUMMARY_STATUS},
        -- The event's attempts are its handlers' and routes' (projection writes are bookkeeping).
        SUM(CASE WHEN consumer <> '${PROJECTIONS}' THEN attempts ELSE 0 END),
        MAX(1, SUM(CASE WHEN consumer <> '${PROJECTIONS}' THEN max_attempts ELSE 0 END)),
        MIN(CASE WHEN status IN ('pending', 'retrying') THEN run_at END),
        CASE WHEN SUM(status NOT IN ('processed', 'skipped') AND last_error IS NOT NULL) > 0 THEN
          (SELECT j.last_error FROM jobs j WHERE j.event_seq = events.seq AND j.status NOT IN ('processed', 'skipped')
            AND j.last_error IS NOT NULL ORDER BY j.updated_at DESC LIMIT 1) END,
        CASE WHEN ${SUMMARY_STATUS} = 'processed' THEN MAX(finished_at) ELSE events.processed_at END,
        @now
      FROM jobs WHERE event_seq = events.seq
    )
  WHERE id = @id AND EXISTS (SELECT 1 FROM jobs WHERE event_seq = events.seq)`;

/** The part of a prepared better-sqlite3 statement the store uses. */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

function prepareAll(db: Database.Database) {
  const prepare = (sql: string, pluck = false): SqliteStatement => {
    const statement = db.prepare(sql);
    return pluck ? statement.pluck() : statement;
  };
  return {
    // Hot statements bind positionally: cheaper than named parameters, once per event.
    insertEvent: prepare(`INSERT INTO events (id, type, environment, status, created, raw_body, body_sha256,
        delivery_id, timestamp_header, received_at, secret_index, source_address, validation_error, attempts,
        max_attempts, run_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO NOTHING`),
    insertJob: prepare(`INSERT INTO jobs (event_seq, event_id, consumer, status, attempts, max_attempts,
        run_at, lease_owner, leased_at, lease_expires_at, order_key, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    // A job an event gets after its insert (a projections job once its handler gave up), if absent.
    addJob: prepare(`INSERT INTO jobs (event_seq, event_id, consumer, status, attempts, max_attempts, run_at,
        order_key, updated_at)
      SELECT seq, id, @consumer, 'pending', 0, @maxAttempts, @now, @orderKey, @now FROM events WHERE id = @id
      ON CONFLICT (event_seq, consumer) DO NOTHING`),
    seqOf: prepare('SELECT seq FROM events WHERE id = ?', true),
    // A rehearsal's insert is taken back (SqliteConnection.rehearse).
    rehearse: prepare('SAVEPOINT rehearsal'),
    rollBackRehearsal: prepare('ROLLBACK TO rehearsal'),
    releaseRehearsal: prepare('RELEASE rehearsal'),
    insertDuplicate: prepare(`INSERT INTO duplicate_deliveries (event_id, delivery_id, received_at,
        body_sha256, timestamp_header, secret_index, source_address) VALUES (?, ?, ?, ?, ?, ?, ?)`),

    // Claims. Expired leases first count their attempt as interrupted, then retry or go dead.
    interruptExpired: prepare(`INSERT OR REPLACE INTO attempts
        (event_seq, event_id, consumer, number, worker, started_at, finished_at, duration_ms, outcome, error_message)
      SELECT event_seq, event_id, consumer, attempts, lease_owner, leased_at, @now, @now - leased_at, 'interrupted', '${INTERRUPTED}'
      FROM jobs WHERE status = 'processing' AND lease_expires_at <= @now AND ${OF_CONSUMERS}`),
    recoverExpired: prepare(`UPDATE jobs SET
        status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'retrying' END,
        run_at = CASE WHEN attempts >= max_attempts THEN NULL ELSE @now END,
        finished_at = CASE WHEN attempts >= max_attempts THEN @now END,
        lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, last_error = '${INTERRUPTED}', updated_at = @now
      WHERE status = 'processing' AND lease_expires_at <= @now AND ${OF_CONSUMERS}
      RETURNING event_seq, event_id, consumer, status, attempts`),
    claim: prepare(`UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_owner = @owner,
        leased_at = @now, lease_expires_at = @now + @leaseMs, run_at = NULL, updated_at = @now
      WHERE (event_seq, consumer) IN (
        SELECT j.event_seq, j.consumer FROM jobs j
        WHERE j.status IN ('pending', 'retrying') AND j.run_at <= @now AND j.${OF_CONSUMERS}
          AND (j.order_key IS NULL OR NOT EXISTS (${EARLIER_IN_ORDER}))
        ORDER BY j.run_at LIMIT @limit)
      RETURNING event_seq, consumer, attempts, max_attempts`),
    claimedEvent: prepare(
      'SELECT id, type, environment, raw_body, created, received_at, delivery_id FROM events WHERE seq = ?',
    ),
    // A claimed job's event counts the attempt, and runs unless another job already made it dead.
    markEventProcessing: prepare(`UPDATE events SET
        attempts = attempts + CASE WHEN @consumer = '${PROJECTIONS}' THEN 0 ELSE 1 END,
        status = CASE WHEN status IN ('pending', 'retrying') THEN 'processing' ELSE status END, updated_at = @now
      WHERE seq = @seq`),

    /**
     * Every finishing write of a job (processed, unhandled, skipped, retrying, dead, or given back)
     * is this one fenced statement: it changes nothing once the lease has moved on.
     */
    finishJob: prepare(`UPDATE jobs SET status = @status, run_at = @runAt,
        last_error = CASE WHEN @status IN ('processed', 'skipped') THEN NULL
                          WHEN @status IN ('retrying', 'dead') AND @extraAttempts = 0 THEN @error
                          ELSE last_error END,
        max_attempts = max_attempts + @extraAttempts,
        finished_at = CASE WHEN @status IN ('processed', 'skipped', 'unhandled', 'dead') THEN @now END,
        lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE ${FENCED}`),
    recordAttempt: prepare(`INSERT OR REPLACE INTO attempts (event_seq, event_id, consumer, number, worker,
        started_at, finished_at, duration_ms, outcome, error_message, error_stack)
      VALUES (${seqOf('@id')}, @id, @consumer, @number, @worker, @startedAt, @finishedAt, @durationMs, @outcome,
        @errorMessage, @errorStack)`),
    summariseEvent: prepare(SUMMARISE_EVENT),

    expireAll: prepare(`UPDATE jobs SET lease_expires_at = 0 WHERE status = 'processing'`),
    expireOwner: prepare(`UPDATE jobs SET lease_expires_at = 0
      WHERE status = 'processing' AND substr(lease_owner, 1, length(@prefix)) = @prefix`),

    // Replay: every finished job of the event (or one consumer's) is due again with a fresh budget;
    // an event that never had a job (invalid, or unhandled at receipt) gets its handlers job. First
    // the event's status, and whether retention purged its payload (nothing left to replay).
    replayState: prepare('SELECT status, raw_body IS NULL AS purged FROM events WHERE id = ?'),
    replayJobs: prepare(`UPDATE jobs SET status = 'pending', run_at = @now, max_attempts = attempts + @budget,
        last_error = NULL, finished_at = NULL, updated_at = @now
      WHERE event_seq = ${seqOf('@id')} AND (@consumer IS NULL OR consumer = @consumer)
        AND status IN ('processed', 'skipped', 'unhandled', 'dead') AND (@onlyDead = 0 OR status = 'dead')`),
    hasHandlersJob: prepare(
      `SELECT 1 FROM jobs WHERE event_seq = ${seqOf('?')} AND consumer = '${HANDLERS}'`,
      true,
    ),
    reopenEvent: prepare(`UPDATE events SET discarded_at = NULL, last_error = NULL, updated_at = @now
      WHERE id = @id`),

    discard: prepare(`UPDATE events SET discarded_at = @now, updated_at = @now
      WHERE id = @id AND status = 'dead' AND discarded_at IS NULL`),

    get: prepare('SELECT * FROM events WHERE id = ?'),
    jobsOf: prepare(`SELECT * FROM jobs WHERE event_seq = ${seqOf('?')} ORDER BY consumer`),
    attemptsOf: prepare(
      `SELECT * FROM attempts WHERE event_seq = ${seqOf('?')} ORDER BY started_at, consumer, number`,
    ),
    duplicatesOf: prepare('SELECT * FROM duplicate_deliveries WHERE event_id = ? ORDER BY seq'),

    countByStatus: prepare(
      'SELECT status, COUNT(*) AS n FROM events WHERE @env IS NULL OR environment = @env GROUP BY status',
    ),
    countByTypeAndStatus: prepare(`SELECT type, status, COUNT(*) AS count FROM events
      WHERE received_at >= @since AND (@env IS NULL OR environment = @env)
      GROUP BY type, status ORDER BY type, status`),
    oldestWaiting: prepare(
      `SELECT MIN(received_at) FROM events
        WHERE status IN ('pending', 'retrying') AND (@env IS NULL OR environment = @env)`,
      true,
    ),
    receivedPerMinute: prepare(`SELECT (received_at / 60000) * 60000 AS minute, type, COUNT(*) AS count
      FROM events WHERE received_at >= @since AND (@env IS NULL OR environment = @env)
      GROUP BY minute, type ORDER BY minute`),
    failedAttemptsPerMinute: prepare(`SELECT (a.finished_at / 60000) * 60000 AS minute, COUNT(*) AS count
      FROM attempts a JOIN events e ON e.seq = a.event_seq
      WHERE a.finished_at >= @since AND a.outcome IN ('failed', 'timed_out', 'interrupted')
        AND (@env IS NULL OR e.environment = @env)
      GROUP BY minute ORDER BY minute`),

    recordSecretUse: prepare(`INSERT INTO secret_usage (environment, secret_index, last_verified_at)
      VALUES (?, ?, ?)
      ON CONFLICT (environment, secret_index) DO UPDATE SET
        last_verified_at = MAX(last_verified_at, excluded.last_verified_at)`),
    secretUsage: prepare(
      'SELECT environment, secret_index, last_verified_at FROM secret_usage ORDER BY environment, secret_index',
    ),
    audit: prepare('INSERT INTO audit_log (at, actor, action, details) VALUES (?, ?, ?, ?)'),
    auditLog: prepare('SELECT at, actor, action, details FROM audit_log ORDER BY seq DESC LIMIT ?'),

    purgeCandidates: prepare(
      `SELECT id FROM events WHERE status = 'processed' AND raw_body IS NOT NULL AND processed_at < ?
        ORDER BY processed_at LIMIT ?`,
      true,
    ),
    dropBody: prepare('UPDATE events SET raw_body = NULL WHERE id = ?'),
    dropAttempts: prepare(`DELETE FROM attempts WHERE event_seq = ${seqOf('?')}`),

    // Each half matches a partial index's WHERE (jobs_due, jobs_leased), so neither scans the history.
    countUnfinishedJobs: prepare(`SELECT consumer, status, COUNT(*) AS count FROM jobs
        WHERE status IN ('pending', 'retrying') GROUP BY consumer, status
      UNION ALL
      SELECT consumer, status, COUNT(*) AS count FROM jobs WHERE status = 'processing' GROUP BY consumer, status
      ORDER BY consumer, status`),
    countJobs: prepare(`SELECT consumer, status, COUNT(*) AS count FROM jobs GROUP BY consumer, status
      ORDER BY consumer, status`),
    listJobs: prepare(`SELECT j.*, e.type FROM jobs j JOIN events e ON e.seq = j.event_seq
      WHERE (@consumer IS NULL OR j.consumer = @consumer)
        AND (@prefix IS NULL OR substr(j.consumer, 1, length(@prefix)) = @prefix)
        AND (@status IS NULL OR j.status = @status)
      ORDER BY j.updated_at DESC, j.event_seq DESC, j.consumer LIMIT @limit`),
    nextDue: prepare(`SELECT MIN(run_at) FROM jobs WHERE status IN ('pending', 'retrying')`, true),
    nextLeaseExpiry: prepare(`SELECT MIN(lease_expires_at) FROM jobs WHERE status = 'processing'`, true),
  };
}

export type SqlitePlans = ReturnType<typeof prepareAll>;

/** Prepares every fixed statement once per connection. */
export function prepareSqlitePlans(db: Database.Database): SqlitePlans {
  return prepareAll(db);
}

/**
 * The list query for a filter, newest first in insertion order (seq). Its shape depends on which
 * filters are set, so it is built per call (and cached by better-sqlite3's statement text).
 */
export function listEventsPlan(filter: ListFilter): { sql: string; params: Record<string, unknown> } {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: filter.limit ?? 50 };
  if (filter.status) {
    where.push('status = @status');
    params.status = filter.status;
  }
  if (filter.type) {
    // `order.*` matches a family; GLOB, unlike LIKE, does not treat `_` as a wildcard.
    where.push(filter.type.includes('*') ? 'type GLOB @type' : 'type = @type');
    params.type = filter.type;
  }
  if (filter.environment) {
    where.push('environment = @environment');
    params.environment = filter.environment;
  }
  if (filter.since !== undefined) {
    where.push('received_at >= @since');
    params.since = filter.since;
  }
  if (filter.until !== undefined) {
    where.push('received_at < @until');
    params.until = filter.until;
  }
  if (filter.text) {
    // The raw body is bytes: search it as bytes, so any text (an order id) matches exactly.
    where.push('instr(raw_body, @text) > 0');
    params.text = Buffer.from(filter.text, 'utf8');
  }
  if (filter.excludeDiscarded) where.push('discarded_at IS NULL');
  if (filter.before) {
    // Keyset pagination on the insertion order (seq): the cursor's row, found by its id.
    where.push(`seq < ${seqOf('@beforeId')}`);
    params.beforeId = filter.before;
  }
  const sql = `SELECT ${SUMMARY_COLUMNS} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY seq DESC LIMIT @limit`;
  return { sql, params };
}
