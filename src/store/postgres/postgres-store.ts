import { createHash } from 'node:crypto';
import pg from 'pg';
import { inboxSchema } from '../../config/database-url.ts';
import { defaults } from '../../config/defaults.ts';
import { parseDuration } from '../../config/duration.ts';
import type { Logger } from '../../logging/logger.ts';
import { MigrationsBehindError, StoreUnavailableError, toError } from '../../util/errors.ts';
import {
  type AttemptResult,
  type AuditEntry,
  type ClaimBatch,
  type ClaimedEvent,
  type ClaimOptions,
  type Environment,
  type EventDetail,
  type EventStatus,
  type EventSummary,
  HANDLERS,
  type InboxStats,
  type InboxStore,
  type InsertResult,
  type JobFilter,
  type JobKind,
  type JobStatus,
  type JobSummary,
  type Lease,
  type LeaseRequest,
  type ListFilter,
  type NewEvent,
  type NewJob,
  PROJECTIONS,
  type ReplayOutcome,
  type SecretUse,
  type TransactionalStatement,
} from '../inbox-store.ts';
import {
  type AttemptRow,
  type ClaimedEventRow,
  countsByStatus,
  type DeliveryRow,
  errorText,
  INTERRUPTED,
  type InboxRow,
  type JobRow,
  type JobSummaryRow,
  jobsOf,
  toClaimed,
  toDetail,
  toJobSummary,
  toSummary,
} from '../rows.ts';
import { Batcher } from './batcher.ts';
import { currentVersion, LATEST_MIGRATION, migrate } from './migrate.ts';
import * as plan from './plans.ts';

// bigint columns hold epoch milliseconds, well inside a double's exact range.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

const CONNECT_TIMEOUT_MS = parseDuration(defaults.postgresConnectTimeout);
const LISTEN_RECONNECT_MIN_MS = parseDuration(defaults.listenReconnectMin);
const LISTEN_RECONNECT_MAX_MS = parseDuration(defaults.listenReconnectMax);

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

/** A processed mark with statements that commit, or roll back, together with it. */
interface Completion {
  lease: Lease;
  result: AttemptResult;
  statements: readonly TransactionalStatement[];
}

/** A fenced finishing write: the event's new status and the attempt to record. */
interface Finish {
  lease: Lease;
  result: AttemptResult;
  status: 'processed' | 'skipped' | 'unhandled' | 'retrying' | 'dead';
  /** For `retrying`: when (epoch ms); `'now'` on the database clock. */
  runAt: number | 'now' | null;
  /** Attempts granted back (1 when a lease is given back unused). */
  extraAttempts: number;
  /** Jobs the event gets if the lease held (InboxStore.deadLetter's `then`). */
  then?: readonly NewJob[] | undefined;
}

/**
 * The inbox on PostgreSQL, for several instances side by side. Concurrent deliveries are inserted
 * together: each event-loop turn's inserts become one multi-row statement (one commit), and
 * several such statements run at once on the pool. Workers claim with `FOR UPDATE SKIP LOCKED`
 * under leases timed by the database's clock, and wake on `LISTEN/NOTIFY`.
 */
export class PostgresStore implements InboxStore {
  readonly exclusive = false;
  readonly dialect = 'postgres';
  /** Inserts are one multi-row statement per batch: projections keep their job. */
  readonly projectsAtInsert = false;
  readonly rehearses = true;
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
  private readonly completions = new Batcher<Completion, boolean | pg.DatabaseError>(
    (c) => c.lease.id,
    (batch) => this.completeMany(batch),
  );
  private closed = false;
  private notifying = false;
  private notifyAll = false;
  private readonly notifyKinds = new Set<JobKind>();

  constructor(options: PostgresStoreOptions) {
    this.options = options;
    this.schema = inboxSchema(options.schema);
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? defaults.poolSize,
      // Fail fast while the database is down, so deliveries get 503 rather than hang.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: parseDuration(defaults.postgresIdleTimeout),
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
      const client = await this.pool.connect();
      // A connection lost while checked out (a transaction in flight) is emitted on the client,
      // and an unheard 'error' event ends the process; the query in flight rejects as well, and
      // that is what reports it (503, retried). The pool hears its idle clients itself.
      if (!heard.has(client)) {
        heard.add(client);
        client.on('error', () => {});
      }
      return client;
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
    // Answered at once. Rehearsed in a rolled-back transaction instead, a service at 2,000/s on one
    // CPU promoted more to V8's old generation afterwards, not less (0.85 MB per scavenge against
    // 0.52, twice the full GCs), unlike SQLite's writer (see receiver/warm-up.ts).
    if (event.rehearsal) return Promise.resolve({ outcome: 'inserted', claimed: null });
    return this.inserts.push({ event, lease });
  }

  private async insertMany(batch: PendingInsert[]): Promise<InsertResult[]> {
    // A lost connection arrives as StoreUnavailableError (503, retried); any other error is the
    // database refusing this batch's content, which is not an outage.
    const inserted = await this.insertBatch(batch);
    const due = new Set<JobKind>();
    const results = batch.map(({ event, lease }): InsertResult => {
      if (!inserted.has(event.id)) return { outcome: 'duplicate', claimed: null };
      const leased = lease !== undefined && inserted.get(event.id) != null;
      for (const job of jobsOf(event))
        if (!(leased && job.consumer === HANDLERS)) due.add(jobKind(job.consumer));
      if (leased) return { outcome: 'inserted', claimed: claimedFrom(event, lease.owner) };
      return { outcome: 'inserted', claimed: null };
    });
    // Other instances' workers, routes and projections wake for the jobs no local worker leased.
    if (due.size > 0) this.notify(due);
    return results;
  }

  /**
   * Wakes the subscribers of every instance (LISTEN/NOTIFY) for `kinds` of job, or for any. Sent
   * after the write commits, apart from it: a notifying commit takes a lock that serialises every
   * notifying commit on the server, which inserts must not wait for. One NOTIFY is in flight at a
   * time; kinds asked for meanwhile go out together in the next.
   */
  private notify(kinds?: ReadonlySet<JobKind>): void {
    if (kinds === undefined) this.notifyAll = true;
    else for (const kind of kinds) this.notifyKinds.add(kind);
    if (this.notifying) return;
    this.notifying = true;
    void (async () => {
      while (this.notifyAll || this.notifyKinds.size > 0) {
        const payload = this.notifyAll ? '' : [...this.notifyKinds].sort().join(',');
        this.notifyAll = false;
        this.notifyKinds.clear();
        // A lost wake costs a subscriber no more than its next poll.
        await this.query(plan.NOTIFY, [payload]).catch(() => {});
      }
      this.notifying = false;
    })();
  }

  /** Inserts a batch in one statement; returns the ids inserted, each with its lease time if leased. */
  private async insertBatch(batch: PendingInsert[]): Promise<Map<string, number | null>> {
    const rows = batch.map((p) => {
      const jobs = jobsOf(p.event);
      const leased = p.lease !== undefined && jobs.some((job) => job.consumer === HANDLERS);
      return { ...p, jobs, leased };
    });
    const col = <T>(fn: (p: (typeof rows)[number]) => T) => rows.map(fn);
    const jobRows = rows.flatMap((r) => r.jobs.map((job) => ({ id: r.event.id, ...job })));
    const { rows: inserted } = await this.query<{ id: string; leased_at: number | null }>(
      plan.INSERT_EVENTS,
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
        col((p) => p.jobs.reduce((sum, job) => sum + job.maxAttempts, 0) || p.event.maxAttempts),
        col((p) => (p.leased ? (p.lease?.owner ?? null) : null)),
        col((p) => p.lease?.leaseMs ?? null),
        jobRows.map((j) => j.id),
        jobRows.map((j) => j.consumer),
        jobRows.map((j) => j.maxAttempts),
        jobRows.map((j) => j.orderKey ?? null),
        col((p) => p.jobs.length - (p.leased ? 1 : 0)),
      ],
    );
    return new Map(inserted.map((r) => [r.id, r.leased_at]));
  }

  async claimDue(options: ClaimOptions): Promise<ClaimBatch> {
    const consumers = [...(options.consumers ?? [HANDLERS])];
    const expired = await this.query<{ event_id: string }>(plan.ANY_EXPIRED, [consumers]);
    let followedUp = false;
    const recovered =
      expired.rowCount === 0
        ? []
        : await this.transaction(
            expired.rows.map((r) => r.event_id),
            async (client) => {
              const { rows } = await client.query<{
                event_id: string;
                consumer: string;
                type: string;
                status: JobStatus;
                attempts: number;
              }>(plan.RECOVER_EXPIRED, [INTERRUPTED, consumers]);
              // A handlers job dead at claim gives its event the follow-up jobs of its type.
              const added = rows.flatMap((r) =>
                r.status === 'dead' && r.consumer === HANDLERS
                  ? (options.deadLetterJobs?.[r.type] ?? []).map((job) => ({ id: r.event_id, job }))
                  : [],
              );
              followedUp = added.length > 0;
              await addJobs(client, added);
              return rows;
            },
          );
    // Other instances' projection runners wake for the jobs the dead letters got.
    if (followedUp) this.notify(new Set<JobKind>(['projections']));
    const claimed = await this.query<
      ClaimedEventRow & { consumer: string; attempts: number; max_attempts: number }
    >(plan.CLAIM_DUE, [options.owner, options.leaseMs, options.limit, consumers]);
    return {
      events: claimed.rows.map((row) => toClaimed(row, row, options.owner)),
      deadLettered: recovered
        .filter((r) => r.status === 'dead')
        .map((r) => ({ id: r.event_id, consumer: r.consumer, type: r.type, attempts: r.attempts })),
    };
  }

  /**
   * Runs `work` in a transaction that first locks the rows of events `ids`, then writes those
   * events' new summaries of their jobs before it commits.
   *
   * A transaction PostgreSQL aborts to break a deadlock changed nothing, and runs again (`work` is
   * run again with it). Thrown, a finishing write was lost: its job stayed `processing` until its
   * lease ran out (routes-cluster: 120 s), then was sent again.
   */
  private async transaction<T>(
    ids: readonly string[],
    work: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.transactionOnce(ids, work);
      } catch (error) {
        if (!(error instanceof pg.DatabaseError) || !isDeadlock(error)) throw error;
        if (tries >= DEADLOCK_TRIES) throw error;
        this.options.logger?.warn(
          { events: ids.length, tries, err: error.message },
          'PostgreSQL aborted a transaction to break a deadlock; running it again',
        );
      }
    }
  }

  private async transactionOnce<T>(
    ids: readonly string[],
    work: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    const client = await this.connect();
    // A connection that failed goes back to the pool destroyed, not as a dead client whose next
    // query would wait forever.
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query(plan.LOCK_EVENTS, [ids]);
      const result = await work(client);
      await client.query(plan.SUMMARISE_EVENTS, [ids]);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = toError(rollbackError);
      });
      if (error instanceof pg.DatabaseError && !isConnectionError(error)) throw error;
      broken = toError(error);
      if (error instanceof StoreUnavailableError) throw error;
      throw new StoreUnavailableError(`PostgreSQL is unreachable: ${toError(error).message}`, {
        cause: error,
      });
    } finally {
      client.release(broken);
    }
  }

  /** The fenced finishing write of each job in `batch`; returns which leases held. */
  private async finishJobs(client: pg.ClientBase, batch: readonly Finish[]): Promise<Set<string>> {
    const col = <T>(fn: (f: Finish) => T) => batch.map(fn);
    const { rows } = await client.query<{ event_id: string; consumer: string }>(plan.FINISH_JOBS, [
      col((f) => f.lease.id),
      col((f) => f.lease.consumer),
      col((f) => f.lease.attempt),
      col((f) => f.lease.owner),
      col((f) => f.result.startedAt),
      col((f) => f.result.finishedAt),
      col((f) => f.result.outcome),
      // An error's text may quote what a destination or a handler got (U+0000 included).
      col((f) => errorText(f.result.errorMessage)),
      col((f) => errorText(f.result.errorStack)),
      col((f) => f.status),
      col((f) => (typeof f.runAt === 'number' ? f.runAt : null)),
      col((f) => f.runAt === 'now'),
      col((f) => f.extraAttempts),
    ]);
    return new Set(rows.map((r) => jobKey(r.event_id, r.consumer)));
  }

  /** Finishing writes made in one turn go out as one transaction. */
  private async finishMany(batch: Finish[]): Promise<boolean[]> {
    const held = await this.transaction([...new Set(batch.map((f) => f.lease.id))], async (client) => {
      const held = await this.finishJobs(client, batch);
      const added = batch.flatMap((f) =>
        held.has(jobKey(f.lease.id, f.lease.consumer))
          ? (f.then ?? []).map((job) => ({ id: f.lease.id, job }))
          : [],
      );
      await addJobs(client, added);
      return held;
    });
    const done = batch.map((f) => held.has(jobKey(f.lease.id, f.lease.consumer)));
    if (batch.some((f, i) => f.runAt === 'now' && done[i])) this.notify();
    const due = new Set<JobKind>();
    batch.forEach((f, i) => {
      if (done[i]) for (const job of f.then ?? []) due.add(jobKind(job.consumer));
    });
    if (due.size > 0) this.notify(due);
    return done;
  }

  private finish(
    lease: Lease,
    result: AttemptResult,
    status: Finish['status'],
    runAt: Finish['runAt'],
    extraAttempts = 0,
    then?: readonly NewJob[],
  ) {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is closed'));
    return this.finishes.push({ lease, result, status, runAt, extraAttempts, then });
  }

  async complete(
    lease: Lease,
    result: AttemptResult,
    statements: readonly TransactionalStatement[] = [],
  ): Promise<boolean> {
    if (statements.length === 0) return this.finish(lease, result, 'processed', null);
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    const outcome = await this.completions.push({ lease, result, statements });
    if (outcome instanceof Error) throw outcome;
    return outcome;
  }

  /**
   * Completions made at once (a projections batch: up to 200) share one transaction on one pool
   * connection: one fenced finish for all of them, then each held one's statements. (One
   * transaction each took every connection of the pool, and stored events waited for one.) If a
   * statement fails, that transaction rolls back and the batch runs again with a savepoint per
   * completion, so the failure fails only its own completion.
   */
  private async completeMany(batch: Completion[]): Promise<(boolean | pg.DatabaseError)[]> {
    const ids = batch.map((c) => c.lease.id);
    const finishes = (c: Completion): Finish => ({
      lease: c.lease,
      result: c.result,
      status: 'processed',
      runAt: null,
      extraAttempts: 0,
    });
    try {
      return await this.transaction(ids, async (client) => {
        const held = await this.finishJobs(client, batch.map(finishes));
        const done = batch.map((c) => held.has(jobKey(c.lease.id, c.lease.consumer)));
        for (const [i, c] of batch.entries())
          if (done[i]) for (const s of c.statements) await client.query(s.sql, [...s.params]);
        return done;
      });
    } catch (error) {
      // A deadlock is no statement's fault: it was run again (transaction), and is the caller's now.
      if (!(error instanceof pg.DatabaseError) || isConnectionError(error) || isDeadlock(error)) throw error;
    }
    return this.transaction(ids, async (client) => {
      const outcomes: (boolean | pg.DatabaseError)[] = [];
      for (const c of batch) {
        await client.query('SAVEPOINT completion');
        try {
          const held = await this.finishJobs(client, [finishes(c)]);
          if (held.size > 0) for (const s of c.statements) await client.query(s.sql, [...s.params]);
          await client.query('RELEASE SAVEPOINT completion');
          outcomes.push(held.size > 0);
        } catch (error) {
          // A deadlock here reruns the whole transaction rather than fail this completion's attempt.
          if (!(error instanceof pg.DatabaseError) || isConnectionError(error) || isDeadlock(error))
            throw error;
          await client.query('ROLLBACK TO SAVEPOINT completion');
          outcomes.push(error);
        }
      }
      return outcomes;
    });
  }

  markUnhandled(lease: Lease, result: AttemptResult, then: readonly NewJob[] = []): Promise<boolean> {
    return this.finish(lease, result, 'unhandled', null, 0, then);
  }

  markSkipped(lease: Lease, result: AttemptResult): Promise<boolean> {
    return this.finish(lease, result, 'skipped', null);
  }

  scheduleRetry(lease: Lease, result: AttemptResult, runAt: number): Promise<boolean> {
    return this.finish(lease, result, 'retrying', runAt);
  }

  deadLetter(lease: Lease, result: AttemptResult, then: readonly NewJob[] = []): Promise<boolean> {
    return this.finish(lease, result, 'dead', null, 0, then);
  }

  /** Gives a lease back without spending an attempt: due again at `runAt` (else now), one more attempt allowed. */
  release(lease: Lease, result: AttemptResult, runAt?: number): Promise<boolean> {
    return this.finish(lease, result, 'retrying', runAt ?? 'now', 1);
  }

  async expireLeases(ownerPrefix?: string): Promise<number> {
    const result =
      ownerPrefix === undefined
        ? await this.query(plan.EXPIRE_ALL)
        : await this.query(plan.EXPIRE_OWNER, [ownerPrefix]);
    return result.rowCount ?? 0;
  }

  async replay(id: string, maxAttempts: number, consumer?: string): Promise<ReplayOutcome> {
    const outcome = await this.transaction([id], async (client): Promise<ReplayOutcome> => {
      const status = await client.query<{ status: EventStatus; replayable: boolean; purged: boolean }>(
        plan.REPLAYABLE_STATUS,
        [id],
      );
      const row = status.rows[0];
      if (!row) return 'not_found';
      if (row.purged) return 'purged';
      // One consumer's finished job is replayed whatever its siblings are doing; a whole event only
      // once it has settled.
      if (consumer === undefined && !row.replayable) return 'not_replayable';
      const onlyDead = consumer === undefined && row.status === 'dead';
      const reopened = await client.query(plan.REPLAY_JOBS, [id, maxAttempts, consumer ?? null, onlyDead]);
      // An event no handler took (unhandled, invalid) gets its handlers job: a handler may exist now.
      const addHandlers =
        consumer === undefined &&
        row.status !== 'dead' &&
        (await client.query(plan.HAS_HANDLERS_JOB, [id])).rowCount === 0;
      if (addHandlers) await client.query(plan.INSERT_HANDLERS_JOB, [id, maxAttempts]);
      if (reopened.rowCount === 0 && !addHandlers) return 'not_replayable';
      await client.query(plan.REOPEN_EVENT, [id]);
      return 'replayed';
    });
    if (outcome === 'replayed') await this.query(plan.NOTIFY, ['']);
    return outcome;
  }

  async discard(ids: readonly string[]): Promise<number> {
    const result = await this.query(plan.DISCARD, [[...ids]]);
    return result.rowCount ?? 0;
  }

  async get(id: string): Promise<EventDetail | null> {
    const { rows } = await this.query<InboxRow>(plan.GET_EVENT, [id]);
    const row = rows[0];
    if (!row) return null;
    const [jobs, attempts, duplicates] = await Promise.all([
      this.query<JobRow>(plan.JOBS_OF, [id]),
      this.query<AttemptRow>(plan.ATTEMPTS_OF, [id]),
      this.query<DeliveryRow>(plan.DUPLICATES_OF, [id]),
    ]);
    return toDetail(row, jobs.rows, attempts.rows, duplicates.rows);
  }

  async list(filter: ListFilter): Promise<EventSummary[]> {
    const { sql, params } = plan.listEventsPlan(filter);
    const { rows } = await this.query<InboxRow>(sql, params);
    return rows.map(toSummary);
  }

  async countByStatus(): Promise<Record<EventStatus, number>> {
    const { rows } = await this.query<{ status: EventStatus; n: number }>(plan.COUNT_BY_STATUS, [null]);
    return countsByStatus(rows);
  }

  async countJobs(
    options: { unfinished?: boolean } = {},
  ): Promise<{ consumer: string; status: JobStatus; count: number }[]> {
    const { rows } = await this.query<{ consumer: string; status: JobStatus; count: number }>(
      options.unfinished ? plan.COUNT_UNFINISHED_JOBS : plan.COUNT_JOBS,
    );
    return rows;
  }

  async listJobs(filter: JobFilter): Promise<JobSummary[]> {
    const { rows } = await this.query<JobSummaryRow>(plan.LIST_JOBS, [
      filter.consumer ?? null,
      filter.consumerPrefix ?? null,
      filter.status ?? null,
      filter.limit ?? 50,
    ]);
    return rows.map(toJobSummary);
  }

  async oldestWaitingAt(environment?: Environment): Promise<number | null> {
    const { rows } = await this.query<{ at: number | null }>(plan.OLDEST_WAITING, [environment ?? null]);
    return rows[0]?.at ?? null;
  }

  async stats(options: { since: number; environment?: Environment | undefined }): Promise<InboxStats> {
    const env = options.environment ?? null;
    const params = [options.since, env];
    const [byType, byStatus, oldestWaitingAt, perMinute, failures] = await Promise.all([
      this.query<{ type: string; status: EventStatus; count: number }>(plan.COUNT_BY_TYPE_AND_STATUS, params),
      this.query<{ status: EventStatus; n: number }>(plan.COUNT_BY_STATUS, [env]),
      this.oldestWaitingAt(options.environment),
      this.query<{ minute: number; type: string; count: number }>(plan.RECEIVED_PER_MINUTE, params),
      this.query<{ minute: number; count: number }>(plan.FAILED_ATTEMPTS_PER_MINUTE, params),
    ]);
    return {
      byStatus: countsByStatus(byStatus.rows),
      byType: byType.rows,
      oldestWaitingAt,
      receivedPerMinute: perMinute.rows,
      failedAttemptsPerMinute: failures.rows,
    };
  }

  async recordSecretUse(uses: readonly SecretUse[]): Promise<void> {
    if (uses.length === 0) return;
    await this.query(plan.RECORD_SECRET_USE, [
      uses.map((u) => u.environment),
      uses.map((u) => u.secretIndex),
      uses.map((u) => u.lastVerifiedAt),
    ]);
  }

  async secretUsage(): Promise<SecretUse[]> {
    const { rows } = await this.query<{
      environment: Environment;
      secret_index: number;
      last_verified_at: number;
    }>(plan.SECRET_USAGE);
    return rows.map((r) => ({
      environment: r.environment,
      secretIndex: r.secret_index,
      lastVerifiedAt: r.last_verified_at,
    }));
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.query(plan.AUDIT, [entry.at, entry.actor, entry.action, JSON.stringify(entry.details)]);
  }

  async auditLog(limit: number): Promise<AuditEntry[]> {
    const { rows } = await this.query<AuditEntry>(plan.AUDIT_LOG, [limit]);
    return rows;
  }

  async purgeProcessed(olderThan: number, limit: number): Promise<number> {
    const result = await this.query(plan.PURGE_PROCESSED, [olderThan, limit]);
    return result.rowCount ?? 0;
  }

  async nextDueAt(): Promise<number | null> {
    const { rows } = await this.query<{ due: number | null; expiry: number | null }>(plan.NEXT_DUE);
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
      throw new MigrationsBehindError(version, LATEST_MIGRATION);
    }
  }

  subscribe(onDue: (kinds?: ReadonlySet<JobKind>) => void): () => Promise<void> {
    let client: pg.Client | undefined;
    let stopped = false;
    let delay = LISTEN_RECONNECT_MIN_MS;
    let timer: NodeJS.Timeout | undefined;
    const log = this.options.logger;
    const connect = async () => {
      if (stopped) return;
      const c = new pg.Client({
        connectionString: this.options.connectionString,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      });
      client = c;
      // An insert names the kinds of job it left due; any other signal (a replay) wakes all.
      c.on('notification', (message) => onDue(dueKinds(message.payload)));
      // A dropped LISTEN connection is re-established; notifications sent meanwhile are lost,
      // so the worker is woken once on reconnect to catch up.
      c.on('error', (error) => {
        log?.warn({ err: error.message }, 'LISTEN connection lost; reconnecting');
        retry();
      });
      c.on('end', () => retry());
      try {
        await c.connect();
        await c.query(`LISTEN ${plan.CHANNEL}`);
        delay = LISTEN_RECONNECT_MIN_MS;
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
      delay = Math.min(delay * 2, LISTEN_RECONNECT_MAX_MS);
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
    // Let queued writes go out first: they may already be promised to a waiting request. And the
    // wake-ups they asked for, so none is sent by a store its caller thinks closed.
    while (this.inserts.busy || this.finishes.busy || this.completions.busy || this.notifying)
      await new Promise((r) => setTimeout(r, 2));
    this.closed = true;
    await this.pool.end();
  }
}

const JOB_KINDS: ReadonlySet<string> = new Set<JobKind>(['handlers', 'routes', 'projections']);

/** Gives events jobs they do not have yet (pending, due now), in the caller's transaction. */
async function addJobs(client: pg.ClientBase, added: readonly { id: string; job: NewJob }[]): Promise<void> {
  if (added.length === 0) return;
  await client.query(plan.ADD_JOBS, [
    added.map((a) => a.id),
    added.map((a) => a.job.consumer),
    added.map((a) => a.job.maxAttempts),
    added.map((a) => a.job.orderKey ?? null),
  ]);
}

function jobKind(consumer: string): JobKind {
  return consumer === HANDLERS ? 'handlers' : consumer === PROJECTIONS ? 'projections' : 'routes';
}

/** The kinds a notification's payload names (`routes,projections`), or undefined for all. */
function dueKinds(payload: string | undefined): ReadonlySet<JobKind> | undefined {
  if (!payload) return undefined;
  const kinds = payload.split(',');
  return kinds.every((kind) => JOB_KINDS.has(kind)) ? new Set(kinds as JobKind[]) : undefined;
}

function jobKey(eventId: string, consumer: string): string {
  return `${consumer}\u0000${eventId}`;
}

function claimedFrom(event: NewEvent, owner: string): ClaimedEvent {
  return {
    id: event.id,
    consumer: HANDLERS,
    type: event.type,
    environment: event.environment,
    rawBody: event.rawBody,
    created: event.created,
    receivedAt: event.receivedAt,
    deliveryId: event.deliveryId,
    attempt: 1,
    maxAttempts: event.maxAttempts,
    owner,
  };
}

/** SQLSTATE of a transaction aborted to break a deadlock. */
const DEADLOCK_DETECTED = '40P01';
/** Runs of one transaction before a deadlock is thrown to the caller. */
const DEADLOCK_TRIES = 5;

function isDeadlock(error: pg.DatabaseError): boolean {
  return error.code === DEADLOCK_DETECTED;
}

/** Clients given an 'error' listener of ours (once each: the pool reuses them). */
const heard = new WeakSet<pg.PoolClient>();

/** SQLSTATE classes that mean the server or the connection is gone, not that the query is wrong. */
function isConnectionError(error: pg.DatabaseError): boolean {
  const code = error.code ?? '';
  return code.startsWith('08') || code.startsWith('57P') || code === '53300';
}
