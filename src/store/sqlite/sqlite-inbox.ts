import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  type AttemptRecord,
  type AttemptResult,
  type ClaimBatch,
  type ClaimOptions,
  type DeliveryRecord,
  EVENT_STATUSES,
  type EventDetail,
  type EventStatus,
  type EventSummary,
  type InsertOutcome,
  type Lease,
  type ListFilter,
  type NewEvent,
  REPLAYABLE_STATUSES,
  type ReplayOutcome,
  type TransactionalStatement,
} from '../inbox-store.ts';
import { migrate } from './migrate.ts';

/** Row of `events`, as SQLite returns it. */
interface InboxRow {
  id: string;
  type: string;
  environment: 'production' | 'sandbox';
  status: EventStatus;
  created: number;
  raw_body: Uint8Array | null;
  body_sha256: string;
  delivery_id: string | null;
  timestamp_header: string | null;
  received_at: number;
  validation_error: string | null;
  attempts: number;
  max_attempts: number;
  run_at: number | null;
  last_error: string | null;
  processed_at: number | null;
  discarded_at: number | null;
}

interface AttemptRow {
  number: number;
  worker: string | null;
  started_at: number;
  finished_at: number | null;
  duration_ms: number | null;
  outcome: AttemptRecord['outcome'];
  error_message: string | null;
  error_stack: string | null;
}

interface DeliveryRow {
  delivery_id: string | null;
  received_at: number;
  duplicate: number;
  timestamp_header: string | null;
  secret_index: number;
  source_address: string | null;
}

const SUMMARY_COLUMNS =
  'id, type, environment, status, attempts, received_at, created, delivery_id, run_at, last_error';
const INTERRUPTED = 'interrupted: the worker stopped or crashed during this attempt (lease expired)';

/**
 * The embedded inbox on one SQLite file, synchronous (better-sqlite3). `SqliteStore` runs it on a
 * writer thread, or inline for short-lived CLI commands.
 */
export class SqliteInbox {
  readonly db: Database.Database;
  private readonly stmt;

  constructor(path: string, options: { readonly?: boolean } = {}) {
    if (path !== ':memory:' && !options.readonly) mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, {
      readonly: options.readonly === true,
      fileMustExist: options.readonly === true,
    });
    // WAL lets readers (the CLI, the dashboard) work while the writer commits. In WAL mode
    // synchronous=NORMAL only fsyncs at checkpoints: a commit survives a process crash but not a
    // power loss. FULL fsyncs the WAL at every commit, so an acknowledged event survives both. The
    // cost is one fsync per transaction, which group commit shares among many requests.
    if (!options.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
    }
    this.db.pragma('busy_timeout = 5000');
    if (!options.readonly) migrate(this.db);

    const db = this.db;
    this.stmt = {
      insertEvent:
        db.prepare(`INSERT INTO events (id, type, environment, status, created, raw_body, body_sha256,
          delivery_id, timestamp_header, received_at, validation_error, max_attempts, run_at, updated_at)
        VALUES (@id, @type, @environment, @status, @created, @rawBody, @bodySha256, @deliveryId, @timestampHeader,
          @receivedAt, @validationError, @maxAttempts, @runAt, @receivedAt)
        ON CONFLICT (id) DO NOTHING`),
      insertDelivery:
        db.prepare(`INSERT INTO deliveries (event_id, delivery_id, received_at, duplicate, body_sha256,
          timestamp_header, secret_index, source_address)
        VALUES (@id, @deliveryId, @receivedAt, @duplicate, @bodySha256, @timestampHeader, @secretIndex, @sourceAddress)`),
      interruptExpiredAttempts: db.prepare(`UPDATE attempts SET outcome = 'interrupted', finished_at = @now,
          duration_ms = @now - started_at, error_message = '${INTERRUPTED}'
        WHERE outcome = 'running' AND (event_id, number) IN
          (SELECT id, attempts FROM events WHERE status = 'processing' AND lease_expires_at <= @now)`),
      recoverExpired: db.prepare(`UPDATE events SET
          status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'retrying' END,
          run_at = CASE WHEN attempts >= max_attempts THEN NULL ELSE @now END,
          lease_owner = NULL, lease_expires_at = NULL, last_error = '${INTERRUPTED}', updated_at = @now
        WHERE status = 'processing' AND lease_expires_at <= @now
        RETURNING id, type, status`),
      claim:
        db.prepare(`UPDATE events SET status = 'processing', attempts = attempts + 1, lease_owner = @owner,
          lease_expires_at = @now + @leaseMs, updated_at = @now
        WHERE id IN (SELECT id FROM events WHERE status IN ('pending', 'retrying') AND run_at <= @now
          ORDER BY run_at LIMIT @limit)
        RETURNING id, type, environment, raw_body, received_at, delivery_id, attempts, max_attempts`),
      startAttempt: db.prepare(`INSERT INTO attempts (event_id, number, worker, started_at, outcome)
        VALUES (?, ?, ?, ?, 'running')
        ON CONFLICT (event_id, number) DO UPDATE SET worker = excluded.worker, started_at = excluded.started_at,
          outcome = 'running', finished_at = NULL, duration_ms = NULL, error_message = NULL, error_stack = NULL`),
      finishAttempt: db.prepare(`UPDATE attempts SET finished_at = @finishedAt, duration_ms = @durationMs,
          outcome = @outcome, error_message = @errorMessage, error_stack = @errorStack
        WHERE event_id = @id AND number = @attempt`),
      markProcessed: db.prepare(`UPDATE events SET status = 'processed', processed_at = @now, run_at = NULL,
          lease_owner = NULL, lease_expires_at = NULL, last_error = NULL, updated_at = @now
        WHERE id = @id AND status = 'processing' AND attempts = @attempt`),
      markUnhandled: db.prepare(`UPDATE events SET status = 'unhandled', run_at = NULL,
          lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND status = 'processing' AND attempts = @attempt`),
      markRetrying: db.prepare(`UPDATE events SET status = 'retrying', run_at = @runAt, last_error = @error,
          lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND status = 'processing' AND attempts = @attempt`),
      markDead: db.prepare(`UPDATE events SET status = 'dead', run_at = NULL, last_error = @error,
          lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND status = 'processing' AND attempts = @attempt`),
      release:
        db.prepare(`UPDATE events SET status = 'retrying', run_at = @now, max_attempts = max_attempts + 1,
          lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND status = 'processing' AND attempts = @attempt`),
      expireAll: db.prepare(`UPDATE events SET lease_expires_at = 0 WHERE status = 'processing'`),
      expireOwner: db.prepare(
        `UPDATE events SET lease_expires_at = 0 WHERE status = 'processing' AND substr(lease_owner, 1, length(@prefix)) = @prefix`,
      ),
      replay:
        db.prepare(`UPDATE events SET status = 'pending', run_at = @now, max_attempts = attempts + @budget,
          last_error = NULL, discarded_at = NULL, updated_at = @now
        WHERE id = @id AND status IN (${REPLAYABLE_STATUSES.map((s) => `'${s}'`).join(', ')})`),
      statusOf: db.prepare('SELECT status FROM events WHERE id = ?').pluck(),
      discard: db.prepare(`UPDATE events SET discarded_at = @now, updated_at = @now
        WHERE id = @id AND status = 'dead' AND discarded_at IS NULL`),
      get: db.prepare('SELECT * FROM events WHERE id = ?'),
      attemptsOf: db.prepare('SELECT * FROM attempts WHERE event_id = ? ORDER BY number'),
      deliveriesOf: db.prepare('SELECT * FROM deliveries WHERE event_id = ? ORDER BY seq'),
      countByStatus: db.prepare('SELECT status, COUNT(*) AS n FROM events GROUP BY status'),
      nextDue: db.prepare(`SELECT MIN(run_at) FROM events WHERE status IN ('pending', 'retrying')`).pluck(),
      nextLeaseExpiry: db
        .prepare(`SELECT MIN(lease_expires_at) FROM events WHERE status = 'processing'`)
        .pluck(),
    };
  }

  insertIfAbsent(event: NewEvent): InsertOutcome {
    const row = {
      ...event,
      rawBody: Buffer.from(event.rawBody.buffer, event.rawBody.byteOffset, event.rawBody.byteLength),
      runAt: event.status === 'pending' ? event.receivedAt : null,
    };
    const inserted = this.stmt.insertEvent.run(row).changes === 1;
    this.stmt.insertDelivery.run({ ...row, duplicate: inserted ? 0 : 1 });
    return inserted ? 'inserted' : 'duplicate';
  }

  claimDue(options: ClaimOptions, now = Date.now()): ClaimBatch {
    this.stmt.interruptExpiredAttempts.run({ now });
    const recovered = this.stmt.recoverExpired.all({ now }) as {
      id: string;
      type: string;
      status: EventStatus;
    }[];
    const rows = this.stmt.claim.all({
      now,
      owner: options.owner,
      leaseMs: options.leaseMs,
      limit: options.limit,
    }) as {
      id: string;
      type: string;
      environment: 'production' | 'sandbox';
      raw_body: Uint8Array;
      received_at: number;
      delivery_id: string | null;
      attempts: number;
      max_attempts: number;
    }[];
    for (const row of rows) this.stmt.startAttempt.run(row.id, row.attempts, options.owner, now);
    return {
      events: rows.map((row) => ({
        id: row.id,
        type: row.type,
        environment: row.environment,
        rawBody: row.raw_body,
        receivedAt: row.received_at,
        deliveryId: row.delivery_id,
        attempt: row.attempts,
        maxAttempts: row.max_attempts,
      })),
      deadLettered: recovered.filter((r) => r.status === 'dead').map((r) => ({ id: r.id, type: r.type })),
    };
  }

  complete(lease: Lease, result: AttemptResult, statements: readonly TransactionalStatement[] = []): boolean {
    const now = result.finishedAt;
    if (this.stmt.markProcessed.run({ id: lease.id, attempt: lease.attempt, now }).changes !== 1)
      return false;
    // The handler's own statements commit, or roll back, together with the processed mark.
    for (const statement of statements)
      this.db.prepare(statement.sql).run(...(statement.params as unknown[]));
    this.finishAttempt(lease, result);
    return true;
  }

  markUnhandled(lease: Lease, result: AttemptResult): boolean {
    if (
      this.stmt.markUnhandled.run({ id: lease.id, attempt: lease.attempt, now: result.finishedAt })
        .changes !== 1
    )
      return false;
    this.finishAttempt(lease, result);
    return true;
  }

  scheduleRetry(lease: Lease, result: AttemptResult, runAt: number): boolean {
    const params = {
      id: lease.id,
      attempt: lease.attempt,
      now: result.finishedAt,
      runAt,
      error: result.errorMessage ?? null,
    };
    if (this.stmt.markRetrying.run(params).changes !== 1) return false;
    this.finishAttempt(lease, result);
    return true;
  }

  deadLetter(lease: Lease, result: AttemptResult): boolean {
    const params = {
      id: lease.id,
      attempt: lease.attempt,
      now: result.finishedAt,
      error: result.errorMessage ?? null,
    };
    if (this.stmt.markDead.run(params).changes !== 1) return false;
    this.finishAttempt(lease, result);
    return true;
  }

  release(lease: Lease, result: AttemptResult): boolean {
    if (this.stmt.release.run({ id: lease.id, attempt: lease.attempt, now: result.finishedAt }).changes !== 1)
      return false;
    this.finishAttempt(lease, result);
    return true;
  }

  expireLeases(ownerPrefix?: string): number {
    return ownerPrefix === undefined
      ? this.stmt.expireAll.run().changes
      : this.stmt.expireOwner.run({ prefix: ownerPrefix }).changes;
  }

  replay(id: string, maxAttempts: number, now = Date.now()): ReplayOutcome {
    if (this.stmt.replay.run({ id, budget: maxAttempts, now }).changes === 1) return 'replayed';
    return this.stmt.statusOf.get(id) === undefined ? 'not_found' : 'not_replayable';
  }

  discard(ids: readonly string[], now = Date.now()): number {
    let n = 0;
    for (const id of ids) n += this.stmt.discard.run({ id, now }).changes;
    return n;
  }

  get(id: string): EventDetail | null {
    const row = this.stmt.get.get(id) as (InboxRow & { updated_at: number }) | undefined;
    if (!row) return null;
    const attempts = this.stmt.attemptsOf.all(id) as AttemptRow[];
    const deliveries = this.stmt.deliveriesOf.all(id) as DeliveryRow[];
    return {
      ...toSummary(row),
      rawBody: row.raw_body ?? new Uint8Array(),
      bodySha256: row.body_sha256,
      timestampHeader: row.timestamp_header,
      validationError: row.validation_error,
      maxAttempts: row.max_attempts,
      processedAt: row.processed_at,
      discardedAt: row.discarded_at,
      attemptHistory: attempts.map((a) => ({
        number: a.number,
        startedAt: a.started_at,
        finishedAt: a.finished_at,
        durationMs: a.duration_ms,
        outcome: a.outcome,
        errorMessage: a.error_message,
        errorStack: a.error_stack,
        worker: a.worker,
      })),
      deliveries: deliveries.map(
        (d): DeliveryRecord => ({
          deliveryId: d.delivery_id,
          receivedAt: d.received_at,
          duplicate: d.duplicate === 1,
          timestampHeader: d.timestamp_header,
          secretIndex: d.secret_index,
          sourceAddress: d.source_address,
        }),
      ),
    };
  }

  list(filter: ListFilter): EventSummary[] {
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
    if (filter.excludeDiscarded) where.push('discarded_at IS NULL');
    if (filter.before) {
      where.push('(received_at, id) < (@beforeAt, @beforeId)');
      params.beforeAt = filter.before.receivedAt;
      params.beforeId = filter.before.id;
    }
    const sql = `SELECT ${SUMMARY_COLUMNS} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY received_at DESC, id DESC LIMIT @limit`;
    return (this.db.prepare(sql).all(params) as InboxRow[]).map(toSummary);
  }

  countByStatus(): Record<EventStatus, number> {
    const counts = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<EventStatus, number>;
    for (const row of this.stmt.countByStatus.all() as { status: EventStatus; n: number }[])
      counts[row.status] = row.n;
    return counts;
  }

  nextDueAt(): number | null {
    const due = this.stmt.nextDue.get() as number | null;
    const expiry = this.stmt.nextLeaseExpiry.get() as number | null;
    if (due === null) return expiry;
    if (expiry === null) return due;
    return Math.min(due, expiry);
  }

  close(): void {
    this.db.close();
  }

  private finishAttempt(lease: Lease, result: AttemptResult): void {
    this.stmt.finishAttempt.run({
      id: lease.id,
      attempt: lease.attempt,
      finishedAt: result.finishedAt,
      durationMs: result.finishedAt - result.startedAt,
      outcome: result.outcome,
      errorMessage: result.errorMessage ?? null,
      errorStack: result.errorStack ?? null,
    });
  }
}

function toSummary(row: InboxRow): EventSummary {
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
