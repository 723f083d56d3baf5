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
  type EventDetail,
  type EventStatus,
  type EventSummary,
  HANDLERS,
  type InboxStats,
  type InsertResult,
  type JobFilter,
  type JobStatus,
  type JobSummary,
  type Lease,
  type LeaseRequest,
  type ListFilter,
  type NewEvent,
  type NewJob,
  PROJECTIONS,
  REPLAYABLE_STATUSES,
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
  type InboxRow,
  type JobRow,
  type JobSummaryRow,
  jobsOf,
  toClaimed,
  toDetail,
  toJobSummary,
  toSummary,
} from '../rows.ts';
import { migrate } from './migrate.ts';
import { listEventsPlan, prepareSqlitePlans, type SqlitePlans } from './plans.ts';

const EMPTY = new Uint8Array(0);
const HANDLERS_ONLY = JSON.stringify([HANDLERS]);

/** How a fenced finishing write leaves a job. */
interface JobChange {
  status: Exclude<JobStatus, 'pending' | 'processing'>;
  /** For `retrying`: when it falls due (epoch ms). */
  runAt: number | null;
  /** Attempts granted back (1 when a lease is given back unused). */
  extraAttempts: number;
}

/**
 * Thrown by a statement that failed while `SqliteConnection.trusting` was set: the batch it is in
 * ran without a savepoint per completion, so it cannot take back the job's other writes alone. The
 * batch rolls back and runs again with savepoints (see runBatch).
 */
export class SavepointsNeeded extends Error {
  constructor(cause: unknown) {
    super(`a statement failed in a batch without savepoints: ${String(cause)}`, { cause });
    this.name = 'SavepointsNeeded';
  }
}

/**
 * The embedded inbox on one SQLite file, synchronous (better-sqlite3): every `InboxStore`
 * operation as a plain method on one connection. `SqliteStore` runs it on a writer thread, or
 * inline for short-lived CLI commands. Its SQL is in plans.ts.
 */
export class SqliteConnection {
  readonly db: Database.Database;
  private readonly plan: SqlitePlans;
  private readonly statementCache = new Map<string, Database.Statement>();
  /**
   * Set while a batch runs its first time (runBatch). Statements (projection writes, a handler's
   * SQL) then run without a savepoint each and a failing one throws SavepointsNeeded, which rolls
   * the batch back to run again with a savepoint per operation. They rarely fail, and a savepoint
   * and its release per completion made up a fifth of the writer's cost with projections on.
   */
  trusting = false;
  /** The savepoint-wrapped runs, made once: better-sqlite3 builds four functions per `transaction()`. */
  private readonly runStatementsAtomically: (statements: readonly TransactionalStatement[]) => void;
  private readonly finishWithStatements: (
    lease: Lease,
    result: AttemptResult,
    change: JobChange,
    statements: readonly TransactionalStatement[],
  ) => boolean;
  private readonly finishAndAdd: (
    lease: Lease,
    result: AttemptResult,
    change: JobChange,
    jobs: readonly NewJob[],
  ) => boolean;

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
    this.plan = prepareSqlitePlans(this.db);
    this.runStatementsAtomically = this.db.transaction((statements) => this.runStatements(statements));
    this.finishWithStatements = this.db.transaction((lease, result, change, statements) =>
      this.finishThenRun(lease, result, change, statements),
    );
    this.finishAndAdd = this.db.transaction((lease, result, change, jobs) => {
      if (!this.finish(lease, result, change)) return false;
      this.addJobs(lease.id, jobs, result.finishedAt);
      return true;
    });
  }

  private runStatement(statement: TransactionalStatement): void {
    this.prepared(statement.sql).run(...(statement.params as unknown[]));
  }

  /** Runs `statements` in order; while trusting, a failure throws SavepointsNeeded. */
  private runStatements(statements: readonly TransactionalStatement[]): void {
    try {
      for (const statement of statements) this.runStatement(statement);
    } catch (error) {
      throw this.trusting && this.db.inTransaction ? new SavepointsNeeded(error) : error;
    }
  }

  /** Finishes the job, then runs its statements; false (and no statement run) when the lease is lost. */
  private finishThenRun(
    lease: Lease,
    result: AttemptResult,
    change: JobChange,
    statements: readonly TransactionalStatement[],
  ): boolean {
    if (!this.finish(lease, result, change)) return false;
    this.runStatements(statements);
    return true;
  }

  /**
   * Readies a long-running writer before its first request. A commit that grows the WAL file pays
   * for a second sync of the file's size; one that overwrites space already there does not, so the
   * first thousands of commits after a start were the slowest (p99 7 ms against 0.7 ms in a test of
   * 5-row commits). This grows the WAL once to the size it cycles through (`wal_autocheckpoint`
   * pages) with a throwaway table, and checkpoints it, so commits start from its beginning.
   */
  growWal(): void {
    const pages = Number(this.db.pragma('wal_autocheckpoint', { simple: true }));
    const pageSize = Number(this.db.pragma('page_size', { simple: true }));
    if (!(pages > 0) || this.db.memory) return;
    this.db.transaction(() => {
      this.db.exec('CREATE TABLE procureiq_webhooks_wal_warmup (b BLOB)');
      this.db.prepare('INSERT INTO procureiq_webhooks_wal_warmup VALUES (zeroblob(?))').run(pages * pageSize);
      this.db.exec('DROP TABLE procureiq_webhooks_wal_warmup');
    })();
    this.db.pragma('wal_checkpoint(PASSIVE)');
  }

  insertIfAbsent(event: NewEvent, lease?: LeaseRequest): InsertResult {
    if (event.rehearsal) return this.rehearse(event);
    const body = Buffer.from(event.rawBody.buffer, event.rawBody.byteOffset, event.rawBody.byteLength);
    // Hashed here, on the writer thread, to keep it off the request path.
    const sha256 = createHash('sha256').update(body).digest('hex');
    const now = event.receivedAt;
    // Projected here, in this transaction, the event needs no projections job (kept as the
    // fallback should the writes fail).
    const projection = event.projection?.length ? event.projection : undefined;
    const allJobs = jobsOf(event);
    const fallback = projection && allJobs.find((job) => job.consumer === PROJECTIONS);
    const jobs = fallback ? allJobs.filter((job) => job !== fallback) : allJobs;
    // Only the handlers job is leased to the local worker at once; routes claim their own.
    const leased = lease !== undefined && jobs.some((job) => job.consumer === HANDLERS);
    const insert = this.plan.insertEvent.run(
      event.id,
      event.type,
      event.environment,
      leased ? 'processing' : event.status,
      event.created,
      body,
      sha256,
      event.deliveryId,
      event.timestampHeader,
      now,
      event.secretIndex,
      event.sourceAddress,
      event.validationError,
      leased ? 1 : 0,
      jobs.reduce((sum, job) => sum + job.maxAttempts, 0) || event.maxAttempts,
      jobs.length > (leased ? 1 : 0) ? now : null,
      now,
    );
    if (insert.changes !== 1) {
      this.plan.insertDuplicate.run(
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
    const seq = insert.lastInsertRowid;
    for (const job of jobs)
      this.insertJob(seq, event.id, job, now, leased && job.consumer === HANDLERS ? lease : undefined);
    const projectedAtInsert =
      fallback !== undefined && projection !== undefined && this.projectAtInsert(projection);
    if (fallback && !projectedAtInsert) {
      this.insertJob(seq, event.id, fallback, now);
      this.plan.summariseEvent.run({ id: event.id, now });
    }
    const projected = projectedAtInsert ? { projectedAtInsert } : {};
    if (!leased) return { outcome: 'inserted', claimed: null, ...projected };
    return {
      outcome: 'inserted',
      ...projected,
      claimed: toClaimed(
        {
          id: event.id,
          type: event.type,
          environment: event.environment,
          // The caller has the body already; SqliteStore puts it back rather than copy it across threads.
          raw_body: EMPTY,
          created: event.created,
          received_at: now,
          delivery_id: event.deliveryId,
        },
        { consumer: HANDLERS, attempts: 1, max_attempts: event.maxAttempts },
        lease.owner,
      ),
    };
  }

  /**
   * A rehearsal's insert (NewEvent.rehearsal): every statement a real one runs, under a savepoint
   * rolled back at once, so nothing is kept and nothing else in the batch is touched. (runBatch
   * rolls back a batch of rehearsals alone as a whole, which writes nothing to the WAL either.)
   */
  private rehearse(event: NewEvent): InsertResult {
    this.plan.rehearse.run();
    let result: InsertResult;
    try {
      result = this.insertIfAbsent({ ...event, rehearsal: false });
    } catch (error) {
      this.takeBackRehearsal();
      throw error;
    }
    this.takeBackRehearsal();
    return { ...result, outcome: 'inserted', claimed: null };
  }

  private takeBackRehearsal(): void {
    // Unless SQLite rolled the whole transaction back already (I/O error): then it is gone.
    if (!this.db.inTransaction) return;
    try {
      this.plan.rollBackRehearsal.run();
      this.plan.releaseRehearsal.run();
    } catch (error) {
      // Not taken back: nothing written with it may commit, so the whole batch goes.
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  private insertJob(
    seq: number | bigint,
    eventId: string,
    job: NewJob,
    now: number,
    lease?: LeaseRequest,
  ): void {
    this.plan.insertJob.run(
      seq,
      eventId,
      job.consumer,
      lease ? 'processing' : 'pending',
      lease ? 1 : 0,
      job.maxAttempts,
      lease ? null : now,
      lease?.owner ?? null,
      lease ? now : null,
      lease ? now + lease.leaseMs : null,
      job.orderKey ?? null,
      now,
    );
  }

  /**
   * Runs a new event's projection writes under a savepoint. False when one failed: they rolled
   * back alone, and the caller creates the projections job, whose attempts retry the write and
   * record its error.
   */
  private projectAtInsert(statements: readonly TransactionalStatement[]): boolean {
    const outer = this.db.inTransaction;
    try {
      // One statement is atomic on its own (a failure takes back nothing else, so it needs no
      // rerun of the batch); several need a savepoint to roll back together.
      if (statements.length === 1) this.runStatement(statements[0] as TransactionalStatement);
      else if (this.trusting && outer) this.runStatements(statements);
      else this.runStatementsAtomically(statements);
      return true;
    } catch (error) {
      // SQLite rolled back the whole transaction (I/O error, disk full): the insert is gone too.
      if (error instanceof SavepointsNeeded || (outer && !this.db.inTransaction)) throw error;
      return false;
    }
  }

  claimDue(options: ClaimOptions, now = Date.now()): ClaimBatch {
    const consumers = options.consumers ? JSON.stringify(options.consumers) : HANDLERS_ONLY;
    this.plan.interruptExpired.run({ now, consumers });
    const recovered = this.plan.recoverExpired.all({ now, consumers }) as {
      event_seq: number;
      event_id: string;
      consumer: string;
      status: JobStatus;
      attempts: number;
    }[];
    for (const job of recovered) this.plan.summariseEvent.run({ id: job.event_id, now });
    const jobs = this.plan.claim.all({
      owner: options.owner,
      now,
      leaseMs: options.leaseMs,
      consumers,
      limit: options.limit,
    }) as { event_seq: number; consumer: string; attempts: number; max_attempts: number }[];
    const events = jobs.map((job) => {
      this.plan.markEventProcessing.run({ seq: job.event_seq, consumer: job.consumer, now });
      const row = this.plan.claimedEvent.get(job.event_seq) as ClaimedEventRow;
      return toClaimed(row, job, options.owner);
    });
    const deadLettered = recovered
      .filter((job) => job.status === 'dead')
      .map((job) => ({
        id: job.event_id,
        consumer: job.consumer,
        type: (this.plan.claimedEvent.get(job.event_seq) as ClaimedEventRow).type,
        attempts: job.attempts,
      }));
    for (const dead of deadLettered) {
      const then = dead.consumer === HANDLERS ? options.deadLetterJobs?.[dead.type] : undefined;
      if (then?.length) this.addJobs(dead.id, then, now);
    }
    return { events, deadLettered };
  }

  complete(lease: Lease, result: AttemptResult, statements: readonly TransactionalStatement[] = []): boolean {
    const change: JobChange = { status: 'processed', runAt: null, extraAttempts: 0 };
    if (statements.length === 0) return this.finish(lease, result, change);
    if (this.trusting && this.db.inTransaction) return this.finishThenRun(lease, result, change, statements);
    // The handler's statements commit, or roll back, together with the processed mark: a
    // savepoint keeps one failing statement from leaving the job half-finished.
    return this.finishWithStatements(lease, result, change, statements);
  }

  markUnhandled(lease: Lease, result: AttemptResult, then: readonly NewJob[] = []): boolean {
    return this.finishThenAdd(lease, result, { status: 'unhandled', runAt: null, extraAttempts: 0 }, then);
  }

  markSkipped(lease: Lease, result: AttemptResult): boolean {
    return this.finish(lease, result, { status: 'skipped', runAt: null, extraAttempts: 0 });
  }

  scheduleRetry(lease: Lease, result: AttemptResult, runAt: number): boolean {
    return this.finish(lease, result, { status: 'retrying', runAt, extraAttempts: 0 });
  }

  deadLetter(lease: Lease, result: AttemptResult, then: readonly NewJob[] = []): boolean {
    return this.finishThenAdd(lease, result, { status: 'dead', runAt: null, extraAttempts: 0 }, then);
  }

  /** Gives an event the jobs it has none of yet (pending, due now), then sums its jobs up again. */
  private addJobs(id: string, jobs: readonly NewJob[], now: number): void {
    for (const job of jobs)
      this.plan.addJob.run({
        id,
        consumer: job.consumer,
        maxAttempts: job.maxAttempts,
        orderKey: job.orderKey ?? null,
        now,
      });
    this.plan.summariseEvent.run({ id, now });
  }

  /** A fenced finish that also gives the event `jobs` (if absent), atomically. */
  private finishThenAdd(
    lease: Lease,
    result: AttemptResult,
    change: JobChange,
    jobs: readonly NewJob[],
  ): boolean {
    if (jobs.length === 0) return this.finish(lease, result, change);
    return this.finishAndAdd(lease, result, change, jobs);
  }

  release(lease: Lease, result: AttemptResult, runAt?: number): boolean {
    return this.finish(lease, result, {
      status: 'retrying',
      runAt: runAt ?? result.finishedAt,
      extraAttempts: 1,
    });
  }

  expireLeases(ownerPrefix?: string): number {
    return ownerPrefix === undefined
      ? this.plan.expireAll.run().changes
      : this.plan.expireOwner.run({ prefix: ownerPrefix }).changes;
  }

  replay(id: string, maxAttempts: number, consumer?: string, now = Date.now()): ReplayOutcome {
    const found = this.plan.replayState.get(id) as { status: EventStatus; purged: number } | undefined;
    if (found === undefined) return 'not_found';
    if (found.purged === 1) return 'purged';
    const current = found.status;
    // One consumer's finished job is replayed whatever its siblings are doing; a whole event only
    // once it has settled.
    const status = consumer !== undefined || REPLAYABLE_STATUSES.includes(current) ? current : undefined;
    if (status === undefined) return 'not_replayable';
    const reopened = this.plan.replayJobs.run({
      id,
      consumer: consumer ?? null,
      onlyDead: consumer === undefined && status === 'dead' ? 1 : 0,
      budget: maxAttempts,
      now,
    });
    // An event no handler took (unhandled, invalid) gets its handlers job: a handler may exist now.
    const addHandlers =
      consumer === undefined && status !== 'dead' && this.plan.hasHandlersJob.get(id) === undefined;
    if (addHandlers)
      this.insertJob(this.plan.seqOf.get(id) as number, id, { consumer: HANDLERS, maxAttempts }, now);
    if (reopened.changes === 0 && !addHandlers) return 'not_replayable';
    this.plan.reopenEvent.run({ id, now });
    this.plan.summariseEvent.run({ id, now });
    return 'replayed';
  }

  discard(ids: readonly string[], now = Date.now()): number {
    let n = 0;
    for (const id of ids) n += this.plan.discard.run({ id, now }).changes;
    return n;
  }

  get(id: string): EventDetail | null {
    const row = this.plan.get.get(id) as InboxRow | undefined;
    if (!row) return null;
    return toDetail(
      row,
      this.plan.jobsOf.all(id) as JobRow[],
      this.plan.attemptsOf.all(id) as AttemptRow[],
      this.plan.duplicatesOf.all(id) as DeliveryRow[],
    );
  }

  list(filter: ListFilter): EventSummary[] {
    const { sql, params } = listEventsPlan(filter);
    return (this.db.prepare(sql).all(params) as InboxRow[]).map(toSummary);
  }

  countByStatus(): Record<EventStatus, number> {
    return countsByStatus(this.plan.countByStatus.all({ env: null }) as { status: EventStatus; n: number }[]);
  }

  countJobs(
    options: { unfinished?: boolean } = {},
  ): { consumer: string; status: JobStatus; count: number }[] {
    const plan = options.unfinished ? this.plan.countUnfinishedJobs : this.plan.countJobs;
    return plan.all() as { consumer: string; status: JobStatus; count: number }[];
  }

  listJobs(filter: JobFilter): JobSummary[] {
    const rows = this.plan.listJobs.all({
      consumer: filter.consumer ?? null,
      prefix: filter.consumerPrefix ?? null,
      status: filter.status ?? null,
      limit: filter.limit ?? 50,
    }) as JobSummaryRow[];
    return rows.map(toJobSummary);
  }

  oldestWaitingAt(environment?: Environment): number | null {
    return this.plan.oldestWaiting.get({ env: environment ?? null }) as number | null;
  }

  stats(options: { since: number; environment?: Environment | undefined }): InboxStats {
    const params = { since: options.since, env: options.environment ?? null };
    return {
      byStatus: countsByStatus(
        this.plan.countByStatus.all({ env: params.env }) as { status: EventStatus; n: number }[],
      ),
      byType: this.plan.countByTypeAndStatus.all(params) as InboxStats['byType'],
      oldestWaitingAt: this.oldestWaitingAt(options.environment),
      receivedPerMinute: this.plan.receivedPerMinute.all(params) as InboxStats['receivedPerMinute'],
      failedAttemptsPerMinute: this.plan.failedAttemptsPerMinute.all(
        params,
      ) as InboxStats['failedAttemptsPerMinute'],
    };
  }

  recordSecretUse(uses: readonly SecretUse[]): void {
    for (const use of uses)
      this.plan.recordSecretUse.run(use.environment, use.secretIndex, use.lastVerifiedAt);
  }

  secretUsage(): SecretUse[] {
    const rows = this.plan.secretUsage.all() as {
      environment: Environment;
      secret_index: number;
      last_verified_at: number;
    }[];
    return rows.map((r) => ({
      environment: r.environment,
      secretIndex: r.secret_index,
      lastVerifiedAt: r.last_verified_at,
    }));
  }

  audit(entry: AuditEntry): void {
    this.plan.audit.run(entry.at, entry.actor, entry.action, JSON.stringify(entry.details));
  }

  auditLog(limit: number): AuditEntry[] {
    const rows = this.plan.auditLog.all(limit) as {
      at: number;
      actor: string;
      action: string;
      details: string;
    }[];
    return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
  }

  purgeProcessed(olderThan: number, limit: number): number {
    const ids = this.plan.purgeCandidates.all(olderThan, limit) as string[];
    for (const id of ids) {
      this.plan.dropBody.run(id);
      this.plan.dropAttempts.run(id);
    }
    return ids.length;
  }

  nextDueAt(): number | null {
    const due = this.plan.nextDue.get() as number | null;
    const expiry = this.plan.nextLeaseExpiry.get() as number | null;
    if (due === null) return expiry;
    if (expiry === null) return due;
    return Math.min(due, expiry);
  }

  close(): void {
    this.db.close();
  }

  /**
   * Handlers' and projections' statements, prepared once: the same few texts come back for every
   * event. Bounded, so statements built per event cannot grow it without end.
   */
  private prepared(sql: string): Database.Statement {
    let statement = this.statementCache.get(sql);
    if (!statement) {
      if (this.statementCache.size >= 500) this.statementCache.clear();
      statement = this.db.prepare(sql);
      this.statementCache.set(sql, statement);
    }
    return statement;
  }

  /** The one fenced finishing write, its attempt record and the event's new summary. */
  private finish(lease: Lease, result: AttemptResult, change: JobChange): boolean {
    const now = result.finishedAt;
    const held =
      this.plan.finishJob.run({
        id: lease.id,
        consumer: lease.consumer,
        attempt: lease.attempt,
        status: change.status,
        runAt: change.runAt,
        extraAttempts: change.extraAttempts,
        error: errorText(result.errorMessage),
        now,
      }).changes === 1;
    if (!held) return false;
    this.plan.recordAttempt.run({
      id: lease.id,
      consumer: lease.consumer,
      number: lease.attempt,
      worker: lease.owner,
      startedAt: result.startedAt,
      finishedAt: now,
      durationMs: now - result.startedAt,
      outcome: result.outcome,
      errorMessage: errorText(result.errorMessage),
      errorStack: errorText(result.errorStack),
    });
    this.plan.summariseEvent.run({ id: lease.id, now });
    return true;
  }
}
