import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../../logging/logger.ts';
import { ConfigError, StoreUnavailableError, toError } from '../../util/errors.ts';
import {
  type AttemptResult,
  type AuditEntry,
  type ClaimBatch,
  type ClaimedEvent,
  type ClaimOptions,
  type Environment,
  EVENT_STATUSES,
  type EventDetail,
  type EventStatus,
  type EventSummary,
  type InboxStats,
  type InboxStore,
  type InsertResult,
  type Lease,
  type LeaseRequest,
  type ListFilter,
  type NewEvent,
  REPLAYABLE_STATUSES,
  type ReplayOutcome,
  type SecretUse,
  type TransactionalStatement,
} from '../inbox-store.ts';
import {
  type AttemptRow,
  type DeliveryRow,
  INTERRUPTED,
  type InboxRow,
  SUMMARY_COLUMNS,
  toDetail,
  toSummary,
} from '../rows.ts';
import { Batcher } from './batcher.ts';
import { currentVersion, LATEST_MIGRATION, migrate } from './migrate.ts';

// bigint columns hold epoch milliseconds, well inside a double's exact range.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

const CHANNEL = 'procureiq_webhooks_due';
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export interface PostgresStoreOptions {
  connectionString: string;
  /** Schema for the inbox's tables. @defaultValue `procureiq_webhooks` */
  schema?: string;
  /** Connections in the pool. @defaultValue 10 */
  poolSize?: number;
  logger?: Logger;
}

interface PendingInsert {
  event: NewEvent;
  lease: LeaseRequest | undefined;
}

/** A fenced finishing write: the event's new status and the attempt to record. */
interface Finish {
  lease: Lease;
  result: AttemptResult;
  status: 'processed' | 'unhandled' | 'retrying' | 'dead';
  /** For `retrying`: when (epoch ms); `'now'` on the database clock. */
  runAt: number | 'now' | null;
  /** Extra attempts granted (1 when a lease is given back unused). */
  bump: number;
}

/**
 * The inbox on PostgreSQL, for several instances side by side. Concurrent deliveries are inserted
 * together: each event-loop turn's inserts become one multi-row statement (one commit), and
 * several such statements run at once on the pool. Workers claim with `FOR UPDATE SKIP LOCKED`
 * under leases timed by the database's clock, and wake on `LISTEN/NOTIFY`.
 */
export class PostgresStore implements InboxStore {
  readonly exclusive = false;
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly options: PostgresStoreOptions;
  private readonly inserts = new Batcher<PendingInsert, InsertResult>(
    (p) => p.event.id,
    (batch) => this.insertMany(batch),
  );
  private readonly finishes = new Batcher<Finish, boolean>(
    (f) => f.lease.id,
    (batch) => this.finishMany(batch),
  );
  private closed = false;

  constructor(options: PostgresStoreOptions) {
    this.options = options;
    this.schema = options.schema ?? 'procureiq_webhooks';
    if (!IDENTIFIER.test(this.schema)) {
      throw new ConfigError(
        `DATABASE_URL: schema "${this.schema}" must be a lower-case SQL identifier (a-z, 0-9, _)`,
      );
    }
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      // Fail fast while the database is down, so deliveries get 503 rather than hang.
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      // An acknowledged event is committed durably: never relax this per session.
      options: `-c search_path=${this.schema} -c synchronous_commit=on`,
    });
    // An idle connection dropped by the server must not crash the process.
    this.pool.on('error', (error) =>
      options.logger?.warn({ err: error.message }, 'PostgreSQL connection lost'),
    );
  }

  async migrate(): Promise<void> {
    const client = await this.connect();
    try {
      await migrate(client, this.schema);
    } finally {
      client.release();
    }
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      throw new StoreUnavailableError(`PostgreSQL is unreachable: ${toError(error).message}`, {
        cause: error,
      });
    }
  }

  private async query<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    try {
      return await this.pool.query<R>(sql, params);
    } catch (error) {
      if (error instanceof pg.DatabaseError && !isConnectionError(error)) throw error;
      throw new StoreUnavailableError(`PostgreSQL is unreachable: ${toError(error).message}`, {
        cause: error,
      });
    }
  }

  insertIfAbsent(event: NewEvent, lease?: LeaseRequest): Promise<InsertResult> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is closed'));
    return this.inserts.push({ event, lease });
  }

  private async insertMany(batch: PendingInsert[]): Promise<InsertResult[]> {
    let inserted: Map<string, number | null>;
    try {
      inserted = await this.insertBatch(batch);
    } catch (error) {
      throw error instanceof StoreUnavailableError
        ? error
        : new StoreUnavailableError(`could not store events: ${toError(error).message}`, { cause: error });
    }
    let notify = false;
    const results = batch.map(({ event, lease }): InsertResult => {
      if (!inserted.has(event.id)) return { outcome: 'duplicate', claimed: null };
      if (lease && event.status === 'pending' && inserted.get(event.id) != null) {
        return { outcome: 'inserted', claimed: claimedFrom(event, lease.owner) };
      }
      if (event.status === 'pending') notify = true;
      return { outcome: 'inserted', claimed: null };
    });
    // Other instances' workers wake for the pending events no local worker leased.
    if (notify) void this.notify();
    return results;
  }

  private notify(): Promise<void> {
    return this.query(`SELECT pg_notify('${CHANNEL}', '')`).then(
      () => {},
      () => {},
    );
  }

  /** Inserts a batch in one statement; returns the ids inserted, each with its lease time if leased. */
  private async insertBatch(batch: PendingInsert[]): Promise<Map<string, number | null>> {
    const col = <T>(fn: (p: PendingInsert) => T) => batch.map(fn);
    const { rows } = await this.query<{ id: string; leased_at: number | null }>(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::bytea[], $7::text[],
           $8::text[], $9::text[], $10::int8[], $11::int4[], $12::text[], $13::text[], $14::int4[], $15::text[], $16::int8[])
           AS t(id, type, environment, status, created, raw_body, body_sha256, delivery_id, timestamp_header,
                received_at, secret_index, source_address, validation_error, max_attempts, lease_owner, lease_ms)
       ), clock AS (SELECT piq_now_ms() AS ms),
       ins AS (
         INSERT INTO events (id, type, environment, status, created, raw_body, body_sha256, delivery_id,
           timestamp_header, received_at, secret_index, source_address, validation_error, attempts, max_attempts,
           run_at, lease_owner, leased_at, lease_expires_at, updated_at)
         SELECT i.id, i.type, i.environment,
           CASE WHEN i.status = 'pending' AND i.lease_owner IS NOT NULL THEN 'processing' ELSE i.status END,
           i.created, i.raw_body, i.body_sha256, i.delivery_id, i.timestamp_header, i.received_at, i.secret_index,
           i.source_address, i.validation_error,
           CASE WHEN i.status = 'pending' AND i.lease_owner IS NOT NULL THEN 1 ELSE 0 END, i.max_attempts,
           CASE WHEN i.status = 'pending' AND i.lease_owner IS NULL THEN i.received_at END,
           CASE WHEN i.status = 'pending' THEN i.lease_owner END,
           CASE WHEN i.status = 'pending' AND i.lease_owner IS NOT NULL THEN c.ms END,
           CASE WHEN i.status = 'pending' AND i.lease_owner IS NOT NULL THEN c.ms + i.lease_ms END,
           i.received_at
         FROM input i, clock c
         ON CONFLICT (id) DO NOTHING
         RETURNING id, leased_at
       ), dup AS (
         INSERT INTO duplicate_deliveries (event_id, delivery_id, received_at, body_sha256, timestamp_header,
           secret_index, source_address)
         SELECT i.id, i.delivery_id, i.received_at, i.body_sha256, i.timestamp_header, i.secret_index, i.source_address
         FROM input i WHERE i.id NOT IN (SELECT id FROM ins)
       )
       SELECT id, leased_at FROM ins`,
      [
        col((p) => p.event.id),
        col((p) => p.event.type),
        col((p) => p.event.environment),
        col((p) => p.event.status),
        col((p) => p.event.created),
        col((p) =>
          Buffer.from(p.event.rawBody.buffer, p.event.rawBody.byteOffset, p.event.rawBody.byteLength),
        ),
        col((p) => createHash('sha256').update(p.event.rawBody).digest('hex')),
        col((p) => p.event.deliveryId),
        col((p) => p.event.timestampHeader),
        col((p) => p.event.receivedAt),
        col((p) => p.event.secretIndex),
        col((p) => p.event.sourceAddress),
        col((p) => p.event.validationError),
        col((p) => p.event.maxAttempts),
        col((p) => p.lease?.owner ?? null),
        col((p) => p.lease?.leaseMs ?? null),
      ],
    );
    return new Map(rows.map((r) => [r.id, r.leased_at]));
  }

  async claimDue(options: ClaimOptions): Promise<ClaimBatch> {
    const recovered = await this.query<{ id: string; type: string; status: EventStatus; attempts: number }>(
      `WITH clock AS (SELECT piq_now_ms() AS ms),
       expired AS (
         SELECT e.id, e.attempts, e.lease_owner, e.leased_at FROM events e, clock c
         WHERE e.status = 'processing' AND e.lease_expires_at <= c.ms
         FOR UPDATE OF e SKIP LOCKED
       ), interrupted AS (
         INSERT INTO attempts (event_id, number, worker, started_at, finished_at, duration_ms, outcome, error_message)
         SELECT x.id, x.attempts, x.lease_owner, COALESCE(x.leased_at, c.ms), c.ms, c.ms - COALESCE(x.leased_at, c.ms),
           'interrupted', $1
         FROM expired x, clock c
         ON CONFLICT (event_id, number) DO NOTHING
       )
       UPDATE events e SET
         status = CASE WHEN e.attempts >= e.max_attempts THEN 'dead' ELSE 'retrying' END,
         run_at = CASE WHEN e.attempts >= e.max_attempts THEN NULL ELSE c.ms END,
         lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, last_error = $1, updated_at = c.ms
       FROM expired x, clock c WHERE e.id = x.id
       RETURNING e.id, e.type, e.status, e.attempts`,
      [INTERRUPTED],
    );
    const claimed = await this.query<{
      id: string;
      type: string;
      environment: 'production' | 'sandbox';
      raw_body: Buffer;
      received_at: number;
      delivery_id: string | null;
      attempts: number;
      max_attempts: number;
    }>(
      `WITH clock AS (SELECT piq_now_ms() AS ms),
       due AS (
         SELECT e.id FROM events e, clock c
         WHERE e.status IN ('pending', 'retrying') AND e.run_at <= c.ms
         ORDER BY e.run_at LIMIT $3
         FOR UPDATE OF e SKIP LOCKED
       )
       UPDATE events e SET status = 'processing', attempts = e.attempts + 1, lease_owner = $1, leased_at = c.ms,
         lease_expires_at = c.ms + $2, run_at = NULL, updated_at = c.ms
       FROM due, clock c WHERE e.id = due.id
       RETURNING e.id, e.type, e.environment, e.raw_body, e.received_at, e.delivery_id, e.attempts, e.max_attempts`,
      [options.owner, options.leaseMs, options.limit],
    );
    return {
      events: claimed.rows.map((r) => ({
        id: r.id,
        type: r.type,
        environment: r.environment,
        rawBody: r.raw_body,
        receivedAt: r.received_at,
        deliveryId: r.delivery_id,
        attempt: r.attempts,
        maxAttempts: r.max_attempts,
        owner: options.owner,
      })),
      deadLettered: recovered.rows
        .filter((r) => r.status === 'dead')
        .map((r) => ({ id: r.id, type: r.type, attempts: r.attempts })),
    };
  }

  /**
   * Finishing writes made in one turn go out as one statement: each event's fenced status change
   * (still processing, still this attempt) and, only where it held, its attempt record.
   */
  private async finishMany(batch: Finish[]): Promise<boolean[]> {
    const col = <T>(fn: (f: Finish) => T) => batch.map(fn);
    const { rows } = await this.query<{ event_id: string }>(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::int4[], $3::text[], $4::int8[], $5::int8[], $6::text[], $7::text[],
           $8::text[], $9::text[], $10::int8[], $11::bool[], $12::int4[])
           AS t(id, attempt, owner, started_at, finished_at, outcome, error_message, error_stack, status, run_at,
                run_now, bump)
       ), upd AS (
         UPDATE events e SET
           status = i.status,
           processed_at = CASE WHEN i.status = 'processed' THEN i.finished_at ELSE e.processed_at END,
           run_at = CASE WHEN i.run_now THEN piq_now_ms() ELSE i.run_at END,
           last_error = CASE WHEN i.status = 'processed' THEN NULL
                             WHEN i.status IN ('retrying', 'dead') AND i.bump = 0 THEN i.error_message
                             ELSE e.last_error END,
           max_attempts = e.max_attempts + i.bump,
           lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, updated_at = i.finished_at
         FROM input i
         WHERE e.id = i.id AND e.status = 'processing' AND e.attempts = i.attempt
         RETURNING e.id
       )
       INSERT INTO attempts (event_id, number, worker, started_at, finished_at, duration_ms, outcome, error_message, error_stack)
       SELECT i.id, i.attempt, i.owner, i.started_at, i.finished_at, i.finished_at - i.started_at, i.outcome,
         i.error_message, i.error_stack
       FROM input i JOIN upd u ON u.id = i.id
       ON CONFLICT (event_id, number) DO UPDATE SET finished_at = excluded.finished_at,
         duration_ms = excluded.duration_ms, outcome = excluded.outcome, error_message = excluded.error_message,
         error_stack = excluded.error_stack
       RETURNING event_id`,
      [
        col((f) => f.lease.id),
        col((f) => f.lease.attempt),
        col((f) => f.lease.owner),
        col((f) => f.result.startedAt),
        col((f) => f.result.finishedAt),
        col((f) => f.result.outcome),
        col((f) => f.result.errorMessage ?? null),
        col((f) => f.result.errorStack ?? null),
        col((f) => f.status),
        col((f) => (typeof f.runAt === 'number' ? f.runAt : null)),
        col((f) => f.runAt === 'now'),
        col((f) => f.bump),
      ],
    );
    const held = new Set(rows.map((r) => r.event_id));
    if (batch.some((f) => f.runAt === 'now' && held.has(f.lease.id))) void this.notify();
    return batch.map((f) => held.has(f.lease.id));
  }

  private finish(
    lease: Lease,
    result: AttemptResult,
    status: Finish['status'],
    runAt: Finish['runAt'],
    bump = 0,
  ) {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is closed'));
    return this.finishes.push({ lease, result, status, runAt, bump });
  }

  async complete(
    lease: Lease,
    result: AttemptResult,
    statements: readonly TransactionalStatement[] = [],
  ): Promise<boolean> {
    if (statements.length === 0) return this.finish(lease, result, 'processed', null);
    // The handler's own statements commit, or roll back, together with the processed mark.
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      const marked = await client.query(
        `UPDATE events SET status = 'processed', processed_at = $3, last_error = NULL, lease_owner = NULL,
           leased_at = NULL, lease_expires_at = NULL, updated_at = $3
         WHERE id = $1 AND status = 'processing' AND attempts = $2`,
        [lease.id, lease.attempt, result.finishedAt],
      );
      const held = marked.rowCount === 1;
      if (held) {
        for (const s of statements) await client.query(s.sql, [...s.params]);
        await client.query(
          `INSERT INTO attempts (event_id, number, worker, started_at, finished_at, duration_ms, outcome)
           VALUES ($1, $2, $3, $4, $5, $5 - $4, $6)
           ON CONFLICT (event_id, number) DO UPDATE SET finished_at = excluded.finished_at,
             duration_ms = excluded.duration_ms, outcome = excluded.outcome`,
          [lease.id, lease.attempt, lease.owner, result.startedAt, result.finishedAt, result.outcome],
        );
      }
      await client.query(held ? 'COMMIT' : 'ROLLBACK');
      return held;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  markUnhandled(lease: Lease, result: AttemptResult): Promise<boolean> {
    return this.finish(lease, result, 'unhandled', null);
  }

  scheduleRetry(lease: Lease, result: AttemptResult, runAt: number): Promise<boolean> {
    return this.finish(lease, result, 'retrying', runAt);
  }

  deadLetter(lease: Lease, result: AttemptResult): Promise<boolean> {
    return this.finish(lease, result, 'dead', null);
  }

  /** Gives a lease back without spending an attempt: due again now, one more attempt allowed. */
  release(lease: Lease, result: AttemptResult): Promise<boolean> {
    return this.finish(lease, result, 'retrying', 'now', 1);
  }

  async expireLeases(ownerPrefix?: string): Promise<number> {
    const result =
      ownerPrefix === undefined
        ? await this.query(`UPDATE events SET lease_expires_at = 0 WHERE status = 'processing'`)
        : await this.query(
            `UPDATE events SET lease_expires_at = 0 WHERE status = 'processing' AND starts_with(lease_owner, $1)`,
            [ownerPrefix],
          );
    return result.rowCount ?? 0;
  }

  async replay(id: string, maxAttempts: number): Promise<ReplayOutcome> {
    const statuses = REPLAYABLE_STATUSES.map((s) => `'${s}'`).join(', ');
    const result = await this.query(
      `UPDATE events SET status = 'pending', run_at = piq_now_ms(), max_attempts = attempts + $2, last_error = NULL,
         discarded_at = NULL, updated_at = piq_now_ms()
       WHERE id = $1 AND status IN (${statuses})`,
      [id, maxAttempts],
    );
    if (result.rowCount === 1) {
      await this.query(`SELECT pg_notify('${CHANNEL}', '')`);
      return 'replayed';
    }
    const exists = await this.query('SELECT 1 FROM events WHERE id = $1', [id]);
    return exists.rowCount === 0 ? 'not_found' : 'not_replayable';
  }

  async discard(ids: readonly string[]): Promise<number> {
    const result = await this.query(
      `UPDATE events SET discarded_at = piq_now_ms(), updated_at = piq_now_ms()
       WHERE id = ANY($1::text[]) AND status = 'dead' AND discarded_at IS NULL`,
      [[...ids]],
    );
    return result.rowCount ?? 0;
  }

  async get(id: string): Promise<EventDetail | null> {
    const { rows } = await this.query<InboxRow>('SELECT * FROM events WHERE id = $1', [id]);
    const row = rows[0];
    if (!row) return null;
    const attempts = await this.query<AttemptRow>(
      'SELECT * FROM attempts WHERE event_id = $1 ORDER BY number',
      [id],
    );
    const duplicates = await this.query<DeliveryRow>(
      'SELECT * FROM duplicate_deliveries WHERE event_id = $1 ORDER BY seq',
      [id],
    );
    return toDetail(row, attempts.rows, duplicates.rows);
  }

  async list(filter: ListFilter): Promise<EventSummary[]> {
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
    const { rows } = await this.query<InboxRow>(sql, params);
    return rows.map(toSummary);
  }

  async countByStatus(): Promise<Record<EventStatus, number>> {
    const counts = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<EventStatus, number>;
    const { rows } = await this.query<{ status: EventStatus; n: number }>(
      'SELECT status, COUNT(*)::int8 AS n FROM events GROUP BY status',
    );
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }

  async stats(options: { since: number; environment?: Environment | undefined }): Promise<InboxStats> {
    const env = options.environment ?? null;
    const params = [options.since, env];
    const byType = await this.query<{ type: string; status: EventStatus; count: number }>(
      `SELECT type, status, COUNT(*)::int8 AS count FROM events
       WHERE received_at >= $1 AND ($2::text IS NULL OR environment = $2)
       GROUP BY type, status ORDER BY type, status`,
      params,
    );
    const byStatus = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<EventStatus, number>;
    const statusRows = await this.query<{ status: EventStatus; n: number }>(
      `SELECT status, COUNT(*)::int8 AS n FROM events WHERE $1::text IS NULL OR environment = $1 GROUP BY status`,
      [env],
    );
    for (const r of statusRows.rows) byStatus[r.status] = r.n;
    const oldest = await this.query<{ at: number | null }>(
      `SELECT MIN(received_at) AS at FROM events WHERE status IN ('pending', 'retrying') AND ($1::text IS NULL OR environment = $1)`,
      [env],
    );
    const perMinute = await this.query<{ minute: number; type: string; count: number }>(
      `SELECT (received_at / 60000) * 60000 AS minute, type, COUNT(*)::int8 AS count FROM events
       WHERE received_at >= $1 AND ($2::text IS NULL OR environment = $2)
       GROUP BY 1, 2 ORDER BY 1`,
      params,
    );
    const failures = await this.query<{ minute: number; count: number }>(
      `SELECT (a.finished_at / 60000) * 60000 AS minute, COUNT(*)::int8 AS count FROM attempts a
       JOIN events e ON e.id = a.event_id
       WHERE a.finished_at >= $1 AND a.outcome IN ('failed', 'timed_out', 'interrupted')
         AND ($2::text IS NULL OR e.environment = $2)
       GROUP BY 1 ORDER BY 1`,
      params,
    );
    return {
      byStatus,
      byType: byType.rows,
      oldestWaitingAt: oldest.rows[0]?.at ?? null,
      receivedPerMinute: perMinute.rows,
      failedAttemptsPerMinute: failures.rows,
    };
  }

  async recordSecretUse(uses: readonly SecretUse[]): Promise<void> {
    if (uses.length === 0) return;
    await this.query(
      `INSERT INTO secret_usage (environment, secret_index, last_verified_at)
       SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[])
       ON CONFLICT (environment, secret_index) DO UPDATE SET
         last_verified_at = GREATEST(secret_usage.last_verified_at, excluded.last_verified_at)`,
      [uses.map((u) => u.environment), uses.map((u) => u.secretIndex), uses.map((u) => u.lastVerifiedAt)],
    );
  }

  async secretUsage(): Promise<SecretUse[]> {
    const { rows } = await this.query<{
      environment: Environment;
      secret_index: number;
      last_verified_at: number;
    }>(
      'SELECT environment, secret_index, last_verified_at FROM secret_usage ORDER BY environment, secret_index',
    );
    return rows.map((r) => ({
      environment: r.environment,
      secretIndex: r.secret_index,
      lastVerifiedAt: r.last_verified_at,
    }));
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.query('INSERT INTO audit_log (at, actor, action, details) VALUES ($1, $2, $3, $4)', [
      entry.at,
      entry.actor,
      entry.action,
      JSON.stringify(entry.details),
    ]);
  }

  async auditLog(limit: number): Promise<AuditEntry[]> {
    const { rows } = await this.query<AuditEntry>(
      'SELECT at, actor, action, details FROM audit_log ORDER BY seq DESC LIMIT $1',
      [limit],
    );
    return rows;
  }

  async purgeProcessed(olderThan: number, limit: number): Promise<number> {
    const result = await this.query(
      `WITH old AS (
         SELECT id FROM events WHERE status = 'processed' AND raw_body IS NOT NULL AND processed_at < $1
         ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED
       ), gone AS (DELETE FROM attempts WHERE event_id IN (SELECT id FROM old))
       UPDATE events SET raw_body = NULL FROM old WHERE events.id = old.id`,
      [olderThan, limit],
    );
    return result.rowCount ?? 0;
  }

  async nextDueAt(): Promise<number | null> {
    const { rows } = await this.query<{ due: number | null; expiry: number | null }>(
      `SELECT (SELECT MIN(run_at) FROM events WHERE status IN ('pending', 'retrying')) AS due,
              (SELECT MIN(lease_expires_at) FROM events WHERE status = 'processing') AS expiry`,
    );
    const { due, expiry } = rows[0] ?? { due: null, expiry: null };
    if (due === null || due === undefined) return expiry ?? null;
    if (expiry === null || expiry === undefined) return due;
    return Math.min(due, expiry);
  }

  async ping(): Promise<void> {
    const version = await currentVersion(this.pool).catch((error: unknown) => {
      throw new StoreUnavailableError(`PostgreSQL is unreachable: ${toError(error).message}`, {
        cause: error,
      });
    });
    if (version < LATEST_MIGRATION) {
      throw new StoreUnavailableError(
        `migrations are behind (${version} of ${LATEST_MIGRATION}); run "procureiq-webhooks migrate"`,
      );
    }
  }

  subscribe(onDue: () => void): () => Promise<void> {
    let client: pg.Client | undefined;
    let stopped = false;
    let delay = 500;
    let timer: NodeJS.Timeout | undefined;
    const log = this.options.logger;
    const connect = async () => {
      if (stopped) return;
      const c = new pg.Client({
        connectionString: this.options.connectionString,
        connectionTimeoutMillis: 5000,
      });
      client = c;
      c.on('notification', () => onDue());
      // A dropped LISTEN connection is re-established; notifications sent meanwhile are lost,
      // so the worker is woken once on reconnect to catch up.
      c.on('error', (error) => {
        log?.warn({ err: error.message }, 'LISTEN connection lost; reconnecting');
        retry();
      });
      c.on('end', () => retry());
      try {
        await c.connect();
        await c.query(`LISTEN ${CHANNEL}`);
        delay = 500;
        onDue();
      } catch (error) {
        log?.warn({ err: toError(error).message, retryInMs: delay }, 'cannot LISTEN for new events yet');
        retry();
      }
    };
    const retry = () => {
      if (stopped || timer) return;
      const old = client;
      client = undefined;
      old?.removeAllListeners();
      old?.on('error', () => {});
      void old?.end().catch(() => {});
      timer = setTimeout(() => {
        timer = undefined;
        void connect();
      }, delay);
      delay = Math.min(delay * 2, 10_000);
    };
    void connect();
    return async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      if (c) {
        c.removeAllListeners();
        c.on('error', () => {});
        await c.end().catch(() => {});
      }
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Let queued writes go out first: they may already be promised to a waiting request.
    while (this.inserts.busy || this.finishes.busy) await new Promise((r) => setTimeout(r, 2));
    this.closed = true;
    await this.pool.end();
  }
}

function claimedFrom(event: NewEvent, owner: string): ClaimedEvent {
  return {
    id: event.id,
    type: event.type,
    environment: event.environment,
    rawBody: event.rawBody,
    receivedAt: event.receivedAt,
    deliveryId: event.deliveryId,
    attempt: 1,
    maxAttempts: event.maxAttempts,
    owner,
  };
}

/** SQLSTATE classes that mean the server or the connection is gone, not that the query is wrong. */
function isConnectionError(error: pg.DatabaseError): boolean {
  const code = error.code ?? '';
  return code.startsWith('08') || code.startsWith('57P') || code === '53300';
}
