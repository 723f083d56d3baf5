import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { deserializeError, type SerializedError, StoreUnavailableError } from '../../util/errors.ts';
import type {
  AttemptResult,
  AuditEntry,
  ClaimBatch,
  ClaimOptions,
  Environment,
  EventDetail,
  EventStatus,
  EventSummary,
  InboxStats,
  InboxStore,
  InsertResult,
  JobFilter,
  JobStatus,
  JobSummary,
  Lease,
  LeaseRequest,
  ListFilter,
  NewEvent,
  NewJob,
  ReplayOutcome,
  SecretUse,
  TransactionalStatement,
} from '../inbox-store.ts';
import {
  type BatchReply,
  type CommitReply,
  commitFailpoint,
  createWireEncoder,
  type InboxOperation,
  type OperationResult,
  type ReadOperation,
  type ReadReply,
  type ReadRequest,
  runBatch,
} from './protocol.ts';
import { SqliteConnection } from './sqlite-connection.ts';

export interface SqliteStoreOptions {
  /** File path, or `:memory:` (inline mode only). */
  path: string;
  /**
   * `thread` (default for servers): commits run on a writer thread with group commit, so fsyncs
   * never block the event loop. `inline`: run on the calling thread, for short CLI commands.
   */
  mode?: 'thread' | 'inline';
}

interface Pending {
  op: InboxOperation;
  args: unknown[];
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * The embedded store. An operation made while the writer thread is idle goes to it at once;
 * operations made while a commit is on disk go as one message per turn of the event loop, and the
 * writer commits everything that queued up meanwhile as one transaction (and answers it in one
 * message). So the number of fsyncs follows the disk's speed, not the request rate,
 * and neither thread waits for the other.
 */
export class SqliteStore implements InboxStore {
  readonly exclusive = true;
  readonly dialect = 'sqlite';
  readonly projectsAtInsert = true;
  readonly rehearses = true;
  private readonly path: string;
  private readonly mode: 'thread' | 'inline';
  private inbox: SqliteConnection | undefined;
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private queue: Pending[] = [];
  private inFlight: Map<number, Pending[]> = new Map();
  private nextBatchId = 1;
  private flushScheduled = false;
  private failure: Error | undefined;
  private closed = false;
  private readonly failpoint = commitFailpoint(process.env);
  private readonly wire = createWireEncoder();
  /** The reader thread (thread mode), started by the first read. */
  private reader: Promise<Worker> | undefined;
  private readonly reads = new Map<number, Pending>();
  private nextReadId = 1;

  constructor(options: SqliteStoreOptions) {
    this.path = options.path;
    this.mode = options.mode ?? 'thread';
  }

  migrate(): Promise<void> {
    return this.start();
  }

  private start(): Promise<void> {
    if (this.ready) return this.ready;
    if (this.mode === 'inline') {
      this.ready = Promise.resolve().then(() => {
        this.inbox = new SqliteConnection(this.path);
      });
      return this.ready;
    }
    this.ready = new Promise<void>((resolve, reject) => {
      const worker = this.spawn('writer-thread');
      this.worker = worker;
      worker.on(
        'message',
        (message: CommitReply | { ready: true } | { initError: string } | { closed: true }) => {
          if ('ready' in message) return resolve();
          if ('initError' in message)
            return reject(new StoreUnavailableError(`cannot open ${this.path}: ${message.initError}`));
          if ('closed' in message) return;
          for (const reply of message.replies) this.settle(reply);
        },
      );
      worker.on('error', (error) => {
        this.fail(
          new StoreUnavailableError(`SQLite writer thread failed: ${error.message}`, { cause: error }),
        );
        reject(error);
      });
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new StoreUnavailableError(`SQLite writer thread exited (code ${code})`));
      });
    });
    return this.ready;
  }

  private spawn(name: 'writer-thread' | 'reader-thread'): Worker {
    // From the TypeScript sources (tests, tsx), the thread needs the tsx loader too.
    const fromSource = import.meta.url.endsWith('.ts');
    const file = new URL(`./${name}.${fromSource ? 'ts' : 'js'}`, import.meta.url);
    return fromSource
      ? new Worker(
          `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}); })`,
          { eval: true, workerData: { path: this.path } },
        )
      : new Worker(file, { workerData: { path: this.path } });
  }

  /**
   * Runs a read on the reader thread, once the writer has opened (and migrated) the file. A
   * reader that failed is replaced at the next read.
   */
  private read<T>(op: ReadOperation, args: unknown[]): Promise<T> {
    if (this.mode === 'inline') return this.call(op, args);
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is closed'));
    this.reader ??= this.startReader();
    const reader = this.reader;
    return new Promise<T>((resolve, reject) => {
      const id = this.nextReadId++;
      this.reads.set(id, { op, args, resolve: resolve as (v: unknown) => void, reject });
      reader.then(
        (worker) => worker.postMessage({ id, op, args } satisfies ReadRequest),
        (error: unknown) => {
          this.reads.delete(id);
          reject(error as Error);
        },
      );
    });
  }

  private startReader(): Promise<Worker> {
    const starting: Promise<Worker> = this.start().then(
      () =>
        new Promise<Worker>((resolve, reject) => {
          const worker = this.spawn('reader-thread');
          let gone = false;
          // 'error' is followed by 'exit': the reader is lost once, and a newer one is left alone.
          const lost = (error: Error) => {
            if (gone) return;
            gone = true;
            if (this.reader === starting) this.reader = undefined;
            for (const p of this.reads.values()) p.reject(error);
            this.reads.clear();
            reject(error);
          };
          worker.on('message', (message: ReadReply | { ready: true } | { initError: string }) => {
            if ('ready' in message) return resolve(worker);
            if ('initError' in message)
              return lost(new StoreUnavailableError(`cannot read ${this.path}: ${message.initError}`));
            const pending = this.reads.get(message.id);
            this.reads.delete(message.id);
            deliver(pending, message.result);
          });
          worker.on('error', (error) =>
            lost(
              new StoreUnavailableError(`SQLite reader thread failed: ${error.message}`, { cause: error }),
            ),
          );
          worker.on('exit', (code) => {
            if (!this.closed) lost(new StoreUnavailableError(`SQLite reader thread exited (code ${code})`));
          });
        }),
    );
    return starting;
  }

  private call<T>(op: InboxOperation, args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is closed'));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, args, resolve: resolve as (v: unknown) => void, reject });
      // An idle writer starts a commit at once; while it is on disk, later operations queue up
      // and go as one batch per turn of the event loop (leader and followers of group commit).
      if (this.mode === 'thread' && this.inFlight.size === 0) {
        this.flush();
        return;
      }
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate, not a microtask: requests parsed in the same I/O phase join this batch.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const ops = batch.map((p): [InboxOperation, unknown[]] => [p.op, p.args]);
    if (this.mode === 'inline') {
      void this.start().then(
        () => {
          let results: OperationResult[];
          try {
            results = runBatch(this.inbox as SqliteConnection, ops, this.failpoint);
          } catch (error) {
            const e = new StoreUnavailableError(`SQLite commit failed: ${String(error)}`, { cause: error });
            for (const p of batch) p.reject(e);
            return;
          }
          for (const [i, r] of results.entries()) deliver(batch[i], r);
        },
        (error: unknown) => {
          for (const p of batch) p.reject(error as Error);
        },
      );
      return;
    }
    const id = this.nextBatchId++;
    this.inFlight.set(id, batch);
    void this.start().then(
      () => this.worker?.postMessage({ id, ops }),
      (error: unknown) => {
        this.inFlight.delete(id);
        for (const p of batch) p.reject(error as Error);
      },
    );
  }

  private settle(reply: BatchReply): void {
    const batch = this.inFlight.get(reply.id);
    this.inFlight.delete(reply.id);
    if (batch) {
      if ('fatal' in reply) {
        const error = new StoreUnavailableError(`SQLite commit failed: ${reply.fatal}`);
        for (const p of batch) p.reject(error);
      } else {
        for (const [i, r] of reply.results.entries()) deliver(batch[i], r);
      }
    }
  }

  private fail(error: Error): void {
    this.failure = error;
    for (const batch of this.inFlight.values()) for (const p of batch) p.reject(error);
    this.inFlight.clear();
    for (const p of this.queue) p.reject(error);
    this.queue = [];
  }

  async insertIfAbsent(event: NewEvent, lease?: LeaseRequest): Promise<InsertResult> {
    const sent = this.mode === 'thread' ? this.wire.event(event) : event;
    const result = await this.call<InsertResult>('insertIfAbsent', lease ? [sent, lease] : [sent]);
    if (result.claimed) result.claimed.rawBody = event.rawBody;
    return result;
  }
  claimDue(options: ClaimOptions): Promise<ClaimBatch> {
    return this.call('claimDue', [options]);
  }
  complete(
    lease: Lease,
    result: AttemptResult,
    statements?: readonly TransactionalStatement[],
  ): Promise<boolean> {
    const sent = this.mode === 'thread' ? this.wire.statements(statements) : statements;
    return this.call('complete', [lease, result, sent ?? []]);
  }
  markUnhandled(lease: Lease, result: AttemptResult, then: readonly NewJob[] = []): Promise<boolean> {
    return this.call('markUnhandled', [lease, result, then]);
  }
  markSkipped(lease: Lease, result: AttemptResult): Promise<boolean> {
    return this.call('markSkipped', [lease, result]);
  }
  scheduleRetry(lease: Lease, result: AttemptResult, runAt: number): Promise<boolean> {
    return this.call('scheduleRetry', [lease, result, runAt]);
  }
  deadLetter(lease: Lease, result: AttemptResult, then: readonly NewJob[] = []): Promise<boolean> {
    return this.call('deadLetter', [lease, result, then]);
  }
  release(lease: Lease, result: AttemptResult, runAt?: number): Promise<boolean> {
    return this.call('release', runAt === undefined ? [lease, result] : [lease, result, runAt]);
  }
  expireLeases(ownerPrefix?: string): Promise<number> {
    return this.call('expireLeases', ownerPrefix === undefined ? [] : [ownerPrefix]);
  }
  replay(id: string, maxAttempts: number, consumer?: string): Promise<ReplayOutcome> {
    return this.call('replay', consumer === undefined ? [id, maxAttempts] : [id, maxAttempts, consumer]);
  }
  discard(ids: readonly string[]): Promise<number> {
    return this.call('discard', [ids]);
  }
  get(id: string): Promise<EventDetail | null> {
    return this.read('get', [id]);
  }
  list(filter: ListFilter): Promise<EventSummary[]> {
    return this.read('list', [filter]);
  }
  countByStatus(): Promise<Record<EventStatus, number>> {
    return this.read('countByStatus', []);
  }
  countJobs(options?: {
    unfinished?: boolean;
  }): Promise<{ consumer: string; status: JobStatus; count: number }[]> {
    return this.read('countJobs', options ? [options] : []);
  }
  listJobs(filter: JobFilter): Promise<JobSummary[]> {
    return this.read('listJobs', [filter]);
  }
  nextDueAt(): Promise<number | null> {
    return this.call('nextDueAt', []);
  }
  oldestWaitingAt(environment?: Environment): Promise<number | null> {
    return this.read('oldestWaitingAt', environment === undefined ? [] : [environment]);
  }
  stats(options: { since: number; environment?: Environment | undefined }): Promise<InboxStats> {
    return this.read('stats', [options]);
  }
  recordSecretUse(uses: readonly SecretUse[]): Promise<void> {
    return this.call('recordSecretUse', [uses]);
  }
  secretUsage(): Promise<SecretUse[]> {
    return this.read('secretUsage', []);
  }
  audit(entry: AuditEntry): Promise<void> {
    return this.call('audit', [entry]);
  }
  auditLog(limit: number): Promise<AuditEntry[]> {
    return this.read('auditLog', [limit]);
  }
  purgeProcessed(olderThan: number, limit: number): Promise<number> {
    return this.call('purgeProcessed', [olderThan, limit]);
  }
  async ping(): Promise<void> {
    await this.call('nextDueAt', []);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Let queued and in-flight batches finish, so nothing acknowledged is cut off.
    while (this.queue.length > 0 || this.inFlight.size > 0 || this.reads.size > 0) {
      if (this.failure) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    this.closed = true;
    const reader = this.reader && (await this.reader.catch(() => undefined));
    if (reader) {
      await new Promise<void>((resolve) => {
        reader.once('exit', () => resolve());
        reader.postMessage({ close: true });
      });
    }
    if (this.inbox) this.inbox.close();
    const worker = this.worker;
    if (worker) {
      await new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage({ close: true });
      });
    }
  }
}

function deliver(pending: Pending | undefined, result: OperationResult): void {
  if (!pending) return;
  if (result.ok) pending.resolve(result.value);
  else pending.reject(rebuildError(result.error));
}

/** An operation's error as thrown on the writer thread: our classes and `SqliteError` keep their class. */
function rebuildError(parts: SerializedError): Error {
  if (parts.name === 'SqliteError' && parts.code !== undefined)
    return new Database.SqliteError(parts.message, parts.code);
  return deserializeError(parts);
}
