import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../../logging/logger.ts';
import { ConfigError, StoreUnavailableError, toError } from '../../util/errors.ts';
import {
  type AttemptRecord,
  type AttemptResult,
  type ClaimBatch,
  type ClaimedEvent,
  type ClaimOptions,
  type DeliveryRecord,
  EVENT_STATUSES,
  type EventDetail,
  type EventStatus,
  type EventSummary,
  type InboxStore,
  type InsertResult,
  type Lease,
  type LeaseRequest,
  type ListFilter,
  type NewEvent,
  REPLAYABLE_STATUSES,
  type ReplayOutcome,
  type TransactionalStatement,
} from '../inbox-store.ts';
import { currentVersion, LATEST_MIGRATION, migrate } from './migrate.ts';

// bigint columns hold epoch milliseconds, well inside a double's exact range.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

const CHANNEL = 'procureiq_webhooks_due';
const INTERRUPTED = 'interrupted: the worker stopped or crashed during this attempt (lease expired)';
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
  resolve: (result: InsertResult) => void;
  reject: (error: Error) => void;
}

interface EventRow {
  id: string;
  type: string;
  environment: 'production' | 'sandbox';
  status: EventStatus;
  created: number;
  raw_body: Buffer | null;
  body_sha256: string;
  delivery_id: string | null;
  timestamp_header: string | null;
  received_at: number;
  secret_index: number;
  source_address: string | null;
  validation_error: string | null;
  attempts: number;
  max_attempts: number;
  run_at: number | null;
  lease_owner: string | null;
  leased_at: number | null;
  last_error: string | null;
  processed_at: number | null;
  discarded_at: number | null;
}

const SUMMARY_COLUMNS =
  'id, type, environment, status, attempts, received_at, created, delivery_id, run_at, last_error';

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
  private queue: PendingInsert[] = [];
  private flushScheduled = false;
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
    return new Promise((resolve, reject) => {
      this.queue.push({ event, lease, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushInserts());
      }
    });
  }

  /** Sends the inserts queued this turn as one statement; a repeated id waits for the next one. */
  private flushInserts(): void {
    this.flushScheduled = false;
    const batch: PendingInsert[] = [];
    const later: PendingInsert[] = [];
    const ids = new Set<string>();
    for (const p of this.queue) {
      if (ids.has(p.event.id)) later.push(p);
      else {
        ids.add(p.event.id);
        batch.push(p);
      }
    }
    this.queue = later;
    if (later.length > 0) {
      this.flushScheduled = true;
      setImmediate(() => this.flushInserts());
    }
    if (batch.length === 0) return;
    void this.insertBatch(batch).then(
      (inserted) => {
        let notify = false;
        for (const p of batch) {
          const e = p.event;
          if (!inserted.has(e.id)) {
            p.resolve({ outcome: 'duplicate', claimed: null });
            continue;
          }
          const leasedAt = inserted.get(e.id);
          if (p.lease && e.status === 'pending' && leasedAt !== null && leasedAt !== undefined) {
            p.resolve({ outcome: 'inserted', claimed: claimedFrom(e, p.lease.owner) });
          } else {
            if (e.status === 'pending') notify = true;
            p.resolve({ outcome: 'inserted', claimed: null });
          }
        }
        if (notify) void this.query(`SELECT pg_notify('${CHANNEL}', '')`).catch(() => {});
      },
      (error: unknown) => {
        const e =
          error instanceof StoreUnavailableError
            ? error
            : new StoreUnavailableError(`could not store events: ${toError(error).message}`, {
                cause: error,
              });
        for (const p of batch) p.reject(e);
      },
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
    const recovered = await this.query<{ id: string; type: string; status: EventStatus }>(
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
       RETURNING e.id, e.type, e.status`,
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
        .map((r) => ({ id: r.id, type: r.type })),
    };
  }

  /**
   * One statement: the fenced status change and, only if it held, the attempt record. `set` is a
   * fixed SQL fragment from this file; values are parameters from $5 on.
   */
  private finishSql(set: string): string {
    return `WITH upd AS (
        UPDATE events SET ${set}, lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, updated_at = $4
        WHERE id = $1 AND status = 'processing' AND attempts = $2
        RETURNING id
      )
      INSERT INTO attempts (event_id, number, worker, started_at, finished_at, duration_ms, outcome, error_message, error_stack)
      SELECT $1, $2, $3, $5, $4, $4 - $5, $6, $7, $8 FROM upd
      ON CONFLICT (event_id, number) DO UPDATE SET finished_at = excluded.finished_at, duration_ms = excluded.duration_ms,
        outcome = excluded.outcome, error_message = excluded.error_message, error_stack = excluded.error_stack`;
  }

  private finishParams(lease: Lease, result: AttemptResult, ...extra: unknown[]): unknown[] {
    return [
      lease.id,
      lease.attempt,
      lease.owner,
      result.finishedAt,
      result.startedAt,
      result.outcome,
      result.errorMessage ?? null,
      result.errorStack ?? null,
      ...extra,
    ];
  }

  async complete(
    lease: Lease,
    result: AttemptResult,
    statements: readonly TransactionalStatement[] = [],
  ): Promise<boolean> {
    const sql = this.finishSql(`status = 'processed', processed_at = $4, last_error = NULL`);
    const params = this.finishParams(lease, result);
    if (statements.length === 0) return (await this.query(sql, params)).rowCount === 1;
    // The handler's own statements commit, or roll back, together with the processed mark.
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      const held = (await client.query(sql, params)).rowCount === 1;
      if (held) for (const s of statements) await client.query(s.sql, [...s.params]);
      await client.query(held ? 'COMMIT' : 'ROLLBACK');
      return held;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async markUnhandled(lease: Lease, result: AttemptResult): Promise<boolean> {
    const sql = this.finishSql(`status = 'unhandled'`);
    return (await this.query(sql, this.finishParams(lease, result))).rowCount === 1;
  }

  async scheduleRetry(lease: Lease, result: AttemptResult, runAt: number): Promise<boolean> {
    const sql = this.finishSql(`status = 'retrying', run_at = $9, last_error = $7`);
    return (await this.query(sql, this.finishParams(lease, result, runAt))).rowCount === 1;
  }

  async deadLetter(lease: Lease, result: AttemptResult): Promise<boolean> {
    const sql = this.finishSql(`status = 'dead', last_error = $7`);
    return (await this.query(sql, this.finishParams(lease, result))).rowCount === 1;
  }

  async release(lease: Lease, result: AttemptResult): Promise<boolean> {
    const sql = this.finishSql(`status = 'retrying', run_at = piq_now_ms(), max_attempts = max_attempts + 1`);
    const held = (await this.query(sql, this.finishParams(lease, result))).rowCount === 1;
    if (held) await this.query(`SELECT pg_notify('${CHANNEL}', '')`);
    return held;
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
    const { rows } = await this.query<EventRow>('SELECT * FROM events WHERE id = $1', [id]);
    const row = rows[0];
    if (!row) return null;
    const attempts = await this.query<{
      number: number;
      worker: string | null;
      started_at: number;
      finished_at: number | null;
      duration_ms: number | null;
      outcome: AttemptRecord['outcome'];
      error_message: string | null;
      error_stack: string | null;
    }>('SELECT * FROM attempts WHERE event_id = $1 ORDER BY number', [id]);
    const duplicates = await this.query<{
      delivery_id: string | null;
      received_at: number;
      timestamp_header: string | null;
      secret_index: number;
      source_address: string | null;
    }>('SELECT * FROM duplicate_deliveries WHERE event_id = $1 ORDER BY seq', [id]);
    const history: AttemptRecord[] = attempts.rows.map((a) => ({
      number: a.number,
      startedAt: a.started_at,
      finishedAt: a.finished_at,
      durationMs: a.duration_ms,
      outcome: a.outcome,
      errorMessage: a.error_message,
      errorStack: a.error_stack,
      worker: a.worker,
    }));
    if (row.status === 'processing' && row.leased_at !== null) {
      history.push({
        number: row.attempts,
        startedAt: row.leased_at,
        finishedAt: null,
        durationMs: null,
        outcome: 'running',
        errorMessage: null,
        errorStack: null,
        worker: row.lease_owner,
      });
    }
    const deliveries: DeliveryRecord[] = [
      {
        deliveryId: row.delivery_id,
        receivedAt: row.received_at,
        duplicate: false,
        timestampHeader: row.timestamp_header,
        secretIndex: row.secret_index,
        sourceAddress: row.source_address,
      },
      ...duplicates.rows.map((d) => ({
        deliveryId: d.delivery_id,
        receivedAt: d.received_at,
        duplicate: true,
        timestampHeader: d.timestamp_header,
        secretIndex: d.secret_index,
        sourceAddress: d.source_address,
      })),
    ];
    return {
      ...toSummary(row),
      rawBody: row.raw_body ?? new Uint8Array(),
      bodySha256: row.body_sha256,
      timestampHeader: row.timestamp_header,
      validationError: row.validation_error,
      maxAttempts: row.max_attempts,
      processedAt: row.processed_at,
      discardedAt: row.discarded_at,
      attemptHistory: history,
      deliveries,
    };
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
    if (filter.excludeDiscarded) where.push('discarded_at IS NULL');
    if (filter.before) where.push(`seq < (SELECT seq FROM events WHERE id = ${param(filter.before)})`);
    const sql = `SELECT ${SUMMARY_COLUMNS} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY seq DESC LIMIT ${param(filter.limit ?? 50)}`;
    const { rows } = await this.query<EventRow>(sql, params);
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
    // Let queued inserts go out first: they may already be promised to a waiting request.
    while (this.queue.length > 0 || this.flushScheduled) await new Promise((r) => setImmediate(r));
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

function toSummary(row: EventRow): EventSummary {
  return {
    id: row.id,
    type: row.type,
    environment: row.environment,
    status: row.status,
    attempts: row.attempts,
    receivedAt: row.received_at,
    created: row.created,
    deliveryId: row.delivery_id,
    nextAttemptAt: row.status === 'pending' || row.status === 'retrying' ? row.run_at : null,
    lastError: row.last_error,
  };
}

/** SQLSTATE classes that mean the server or the connection is gone, not that the query is wrong. */
function isConnectionError(error: pg.DatabaseError): boolean {
  const code = error.code ?? '';
  return code.startsWith('08') || code.startsWith('57P') || code === '53300';
}
