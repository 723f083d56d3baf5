import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  type AttemptResult,
  type AuditEntry,
  type ClaimBatch,
  type ClaimOptions,
  type Environment,
  EVENT_STATUSES,
  type EventDetail,
  type EventStatus,
  type EventSummary,
  type InboxStats,
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
import { migrate } from './migrate.ts';

const EMPTY = new Uint8Array(0);

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
    // Hot statements bind positionally: cheaper than named parameters, once per event.
    this.stmt = {
      insertEvent:
        db.prepare(`INSERT INTO events (id, type, environment, status, created, raw_body, body_sha256,
          delivery_id, timestamp_header, received_at, secret_index, source_address, validation_error, attempts,
          max_attempts, run_at, lease_owner, leased_at, lease_expires_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO NOTHING`),
      insertDuplicate:
        db.prepare(`INSERT INTO duplicate_deliveries (event_id, delivery_id, received_at, body_sha256,
          timestamp_header, secret_index, source_address) VALUES (?, ?, ?, ?, ?, ?, ?)`),
      interruptExpired: db.prepare(`INSERT OR REPLACE INTO attempts
          (event_id, number, worker, started_at, finished_at, duration_ms, outcome, error_message)
        SELECT id, attempts, lease_owner, leased_at, @now, @now - leased_at, 'interrupted', '${INTERRUPTED}'
        FROM events WHERE status = 'processing' AND lease_expires_at <= @now`),
      recoverExpired: db.prepare(`UPDATE events SET
          status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'retrying' END,
          run_at = CASE WHEN attempts >= max_attempts THEN NULL ELSE @now END,
          lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, last_error = '${INTERRUPTED}', updated_at = @now
        WHERE status = 'processing' AND lease_expires_at <= @now
        RETURNING id, type, status, attempts`),
      claim: db.prepare(`UPDATE events SET status = 'processing', attempts = attempts + 1, lease_owner = ?,
          leased_at = ?, lease_expires_at = ?, run_at = NULL, updated_at = ?
        WHERE id IN (SELECT id FROM events WHERE status IN ('pending', 'retrying') AND run_at <= ?
          ORDER BY run_at LIMIT ?)
        RETURNING id, type, environment, raw_body, received_at, delivery_id, attempts, max_attempts`),
      recordAttempt: db.prepare(`INSERT OR REPLACE INTO attempts
          (event_id, number, worker, started_at, finished_at, duration_ms, outcome, error_message, error_stack)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      // Every finishing write checks the fencing token: still processing, still this attempt.
      markProcessed: db.prepare(`UPDATE events SET status = 'processed', processed_at = ?, lease_owner = NULL,
          leased_at = NULL, lease_expires_at = NULL, last_error = NULL, updated_at = ?
        WHERE id = ? AND status = 'processing' AND attempts = ?`),
      markUnhandled: db.prepare(`UPDATE events SET status = 'unhandled',
          lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND status = 'processing' AND attempts = @attempt`),
      markRetrying: db.prepare(`UPDATE events SET status = 'retrying', run_at = @runAt, last_error = @error,
          lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND status = 'processing' AND attempts = @attempt`),
      markDead: db.prepare(`UPDATE events SET status = 'dead', last_error = @error,
          lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND status = 'processing' AND attempts = @attempt`),
      release:
        db.prepare(`UPDATE events SET status = 'retrying', run_at = @now, max_attempts = max_attempts + 1,
          lease_owner = NULL, leased_at = NULL, lease_expires_at = NULL, updated_at = @now
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
      duplicatesOf: db.prepare('SELECT * FROM duplicate_deliveries WHERE event_id = ? ORDER BY seq'),
      countByStatus: db.prepare('SELECT status, COUNT(*) AS n FROM events GROUP BY status'),
      nextDue: db.prepare(`SELECT MIN(run_at) FROM events WHERE status IN ('pending', 'retrying')`).pluck(),
      nextLeaseExpiry: db
        .prepare(`SELECT MIN(lease_expires_at) FROM events WHERE status = 'processing'`)
        .pluck(),
    };
  }

  insertIfAbsent(event: NewEvent, lease?: LeaseRequest): InsertResult {
    const body = Buffer.from(event.rawBody.buffer, event.rawBody.byteOffset, event.rawBody.byteLength);
    // Hashed here, on the writer thread, to keep it off the request path.
    const sha256 = createHash('sha256').update(body).digest('hex');
    const now = event.receivedAt;
    const claim = lease !== undefined && event.status === 'pending';
    const inserted =
      this.stmt.insertEvent.run(
        event.id,
        event.type,
        event.environment,
        claim ? 'processing' : event.status,
        event.created,
        body,
        sha256,
        event.deliveryId,
        event.timestampHeader,
        now,
        event.secretIndex,
        event.sourceAddress,
        event.validationError,
        claim ? 1 : 0,
        event.maxAttempts,
        event.status === 'pending' && !claim ? now : null,
        claim ? lease.owner : null,
        claim ? now : null,
        claim ? now + lease.leaseMs : null,
        now,
      ).changes === 1;
    if (!inserted) {
      this.stmt.insertDuplicate.run(
        event.id,
        event.deliveryId,
        now,
        sha256,
        event.timestampHeader,
        event.secretIndex,
        event.sourceAddress,
      );
      return { outcome: 'duplicate', claimed: null };
    }
    if (!claim) return { outcome: 'inserted', claimed: null };
    return {
      outcome: 'inserted',
      claimed: {
        id: event.id,
        type: event.type,
        environment: event.environment,
        // The caller has the body already; SqliteStore puts it back rather than copy it across threads.
        rawBody: EMPTY,
        receivedAt: now,
        deliveryId: event.deliveryId,
        attempt: 1,
        maxAttempts: event.maxAttempts,
        owner: lease.owner,
      },
    };
  }

  claimDue(options: ClaimOptions, now = Date.now()): ClaimBatch {
    this.stmt.interruptExpired.run({ now });
    const recovered = this.stmt.recoverExpired.all({ now }) as {
      id: string;
      type: string;
      status: EventStatus;
      attempts: number;
    }[];
    const rows = this.stmt.claim.all(options.owner, now, now + options.leaseMs, now, now, options.limit) as {
      id: string;
      type: string;
      environment: 'production' | 'sandbox';
      raw_body: Uint8Array;
      received_at: number;
      delivery_id: string | null;
      attempts: number;
      max_attempts: number;
    }[];
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
        owner: options.owner,
      })),
      deadLettered: recovered
        .filter((r) => r.status === 'dead')
        .map((r) => ({ id: r.id, type: r.type, attempts: r.attempts })),
    };
  }

  complete(lease: Lease, result: AttemptResult, statements: readonly TransactionalStatement[] = []): boolean {
    const now = result.finishedAt;
    const finish = () => {
      if (this.stmt.markProcessed.run(now, now, lease.id, lease.attempt).changes !== 1) return false;
      // The handler's own statements commit, or roll back, together with the processed mark.
      for (const statement of statements)
        this.db.prepare(statement.sql).run(...(statement.params as unknown[]));
      this.recordAttempt(lease, result);
      return true;
    };
    // A handler's statement may fail on its own: a savepoint keeps that failure from leaving the
    // event half-finished. Without statements, each write is a single atomic statement.
    return statements.length > 0 ? this.db.transaction(finish)() : finish();
  }

  markUnhandled(lease: Lease, result: AttemptResult): boolean {
    if (
      this.stmt.markUnhandled.run({ id: lease.id, attempt: lease.attempt, now: result.finishedAt })
        .changes !== 1
    )
      return false;
    this.recordAttempt(lease, result);
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
    this.recordAttempt(lease, result);
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
    this.recordAttempt(lease, result);
    return true;
  }

  release(lease: Lease, result: AttemptResult): boolean {
    if (this.stmt.release.run({ id: lease.id, attempt: lease.attempt, now: result.finishedAt }).changes !== 1)
      return false;
    this.recordAttempt(lease, result);
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
    const row = this.stmt.get.get(id) as InboxRow | undefined;
    if (!row) return null;
    return toDetail(
      row,
      this.stmt.attemptsOf.all(id) as AttemptRow[],
      this.stmt.duplicatesOf.all(id) as DeliveryRow[],
    );
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
      // Keyset pagination on the insertion order (rowid): the cursor's row, found by its id.
      where.push('rowid < (SELECT rowid FROM events WHERE id = @beforeId)');
      params.beforeId = filter.before;
    }
    const sql = `SELECT ${SUMMARY_COLUMNS} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY rowid DESC LIMIT @limit`;
    return (this.db.prepare(sql).all(params) as InboxRow[]).map(toSummary);
  }

  countByStatus(): Record<EventStatus, number> {
    const counts = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<EventStatus, number>;
    for (const row of this.stmt.countByStatus.all() as { status: EventStatus; n: number }[])
      counts[row.status] = row.n;
    return counts;
  }

  stats(options: { since: number; environment?: Environment | undefined }): InboxStats {
    const env = options.environment ?? null;
    const envClause = 'AND (@env IS NULL OR environment = @env)';
    const params = { since: options.since, env };
    const byType = this.db
      .prepare(
        `SELECT type, status, COUNT(*) AS count FROM events WHERE received_at >= @since ${envClause}
         GROUP BY type, status ORDER BY type, status`,
      )
      .all(params) as InboxStats['byType'];
    const byStatus = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<EventStatus, number>;
    const statusRows = this.db
      .prepare(
        `SELECT status, COUNT(*) AS n FROM events WHERE @env IS NULL OR environment = @env GROUP BY status`,
      )
      .all({ env }) as { status: EventStatus; n: number }[];
    for (const row of statusRows) byStatus[row.status] = row.n;
    const oldestWaitingAt = this.db
      .prepare(
        `SELECT MIN(received_at) FROM events WHERE status IN ('pending', 'retrying') ${envClause.replace('AND', 'AND')}`,
      )
      .pluck()
      .get({ env }) as number | null;
    const receivedPerMinute = this.db
      .prepare(
        `SELECT (received_at / 60000) * 60000 AS minute, type, COUNT(*) AS count FROM events
         WHERE received_at >= @since ${envClause} GROUP BY minute, type ORDER BY minute`,
      )
      .all(params) as InboxStats['receivedPerMinute'];
    const failedAttemptsPerMinute = this.db
      .prepare(
        `SELECT (a.finished_at / 60000) * 60000 AS minute, COUNT(*) AS count FROM attempts a
         JOIN events e ON e.id = a.event_id
         WHERE a.finished_at >= @since AND a.outcome IN ('failed', 'timed_out', 'interrupted')
           AND (@env IS NULL OR e.environment = @env)
         GROUP BY minute ORDER BY minute`,
      )
      .all(params) as InboxStats['failedAttemptsPerMinute'];
    return { byStatus, byType, oldestWaitingAt, receivedPerMinute, failedAttemptsPerMinute };
  }

  recordSecretUse(uses: readonly SecretUse[]): void {
    const upsert =
      this.db.prepare(`INSERT INTO secret_usage (environment, secret_index, last_verified_at) VALUES (?, ?, ?)
      ON CONFLICT (environment, secret_index) DO UPDATE SET
        last_verified_at = MAX(last_verified_at, excluded.last_verified_at)`);
    for (const use of uses) upsert.run(use.environment, use.secretIndex, use.lastVerifiedAt);
  }

  secretUsage(): SecretUse[] {
    const rows = this.db
      .prepare(
        'SELECT environment, secret_index, last_verified_at FROM secret_usage ORDER BY environment, secret_index',
      )
      .all() as { environment: Environment; secret_index: number; last_verified_at: number }[];
    return rows.map((r) => ({
      environment: r.environment,
      secretIndex: r.secret_index,
      lastVerifiedAt: r.last_verified_at,
    }));
  }

  audit(entry: AuditEntry): void {
    this.db
      .prepare('INSERT INTO audit_log (at, actor, action, details) VALUES (?, ?, ?, ?)')
      .run(entry.at, entry.actor, entry.action, JSON.stringify(entry.details));
  }

  auditLog(limit: number): AuditEntry[] {
    const rows = this.db
      .prepare('SELECT at, actor, action, details FROM audit_log ORDER BY seq DESC LIMIT ?')
      .all(limit) as {
      at: number;
      actor: string;
      action: string;
      details: string;
    }[];
    return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
  }

  purgeProcessed(olderThan: number, limit: number): number {
    const ids = this.db
      .prepare(
        `SELECT id FROM events WHERE status = 'processed' AND raw_body IS NOT NULL AND processed_at < ?
         ORDER BY processed_at LIMIT ?`,
      )
      .pluck()
      .all(olderThan, limit) as string[];
    const dropBody = this.db.prepare('UPDATE events SET raw_body = NULL WHERE id = ?');
    const dropAttempts = this.db.prepare('DELETE FROM attempts WHERE event_id = ?');
    for (const id of ids) {
      dropBody.run(id);
      dropAttempts.run(id);
    }
    return ids.length;
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

  private recordAttempt(lease: Lease, result: AttemptResult): void {
    this.stmt.recordAttempt.run(
      lease.id,
      lease.attempt,
      lease.owner,
      result.startedAt,
      result.finishedAt,
      result.finishedAt - result.startedAt,
      result.outcome,
      result.errorMessage ?? null,
      result.errorStack ?? null,
    );
  }
}
