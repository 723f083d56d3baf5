import type Database from 'better-sqlite3';
import { type SerializedError, serializeError } from '../../util/errors.ts';
import type { NewEvent, TransactionalStatement } from '../inbox-store.ts';
import { SavepointsNeeded, type SqliteConnection } from './sqlite-connection.ts';

/** Operations that only read: in thread mode they run on the reader thread (reader-thread.ts). */
export const READ_OPERATIONS = [
  'get',
  'list',
  'countByStatus',
  'countJobs',
  'listJobs',
  'stats',
  'oldestWaitingAt',
  'secretUsage',
  'auditLog',
] as const satisfies readonly (keyof SqliteConnection)[];

/** Methods of `SqliteConnection` that may be called through `SqliteStore`. */
export const INBOX_OPERATIONS = [
  'insertIfAbsent',
  'claimDue',
  'complete',
  'markUnhandled',
  'markSkipped',
  'scheduleRetry',
  'deadLetter',
  'release',
  'expireLeases',
  'replay',
  'discard',
  'recordSecretUse',
  'audit',
  'purgeProcessed',
  'nextDueAt',
  ...READ_OPERATIONS,
] as const satisfies readonly (keyof SqliteConnection)[];

export type InboxOperation = (typeof INBOX_OPERATIONS)[number];

export type ReadOperation = (typeof READ_OPERATIONS)[number];

export interface ReadRequest {
  id: number;
  op: ReadOperation;
  args: unknown[];
}

export interface ReadReply {
  id: number;
  result: OperationResult;
}

export type OperationResult = { ok: true; value: unknown } | { ok: false; error: SerializedError };

export interface BatchRequest {
  id: number;
  ops: [InboxOperation, unknown[]][];
}

export type BatchReply = { id: number; results: OperationResult[] } | { id: number; fatal: string };

/** What the writer sends after each commit: the answers to every batch the commit held. */
export interface CommitReply {
  replies: BatchReply[];
}

const allowed = new Set<string>(INBOX_OPERATIONS);

/**
 * What crosses to the writer thread is cloned on every request's path, so two things travel light:
 * a new event's body goes as a latin1 string (one char per byte, so the bytes come back exact),
 * which structured clone copies several times faster than a Uint8Array; and a named statement's
 * SQL text (a projection's upsert is several KB) goes once, then its name alone.
 */
export type WireEvent = Omit<NewEvent, 'rawBody'> & { rawBody: string };

/** The main thread's side: remembers which statement names the writer has been sent. */
export function createWireEncoder() {
  const sent = new Set<string>();
  const statements = (list: readonly TransactionalStatement[] | undefined) =>
    list?.map((statement) => {
      if (statement.name === undefined) return statement;
      if (sent.has(statement.name)) return { name: statement.name, sql: '', params: statement.params };
      sent.add(statement.name);
      return statement;
    });
  return {
    event(event: NewEvent): WireEvent {
      const body = event.rawBody;
      return {
        ...event,
        rawBody: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1'),
        projection: statements(event.projection),
      };
    },
    statements,
  };
}

/** The writer's side: turns a batch from the main thread back into what the connection takes. */
export function createWireDecoder() {
  const named = new Map<string, string>();
  const statements = (list: readonly TransactionalStatement[] | undefined) =>
    list?.map((statement) => {
      if (statement.name === undefined) return statement;
      // The first time, remember the text; after that, the remembered string (its hash is
      // computed once, which the statement cache's lookup by text needs).
      if (statement.sql !== '') named.set(statement.name, statement.sql);
      const sql = named.get(statement.name);
      if (sql === undefined) throw new Error(`unknown statement ${statement.name}`);
      return { sql, params: statement.params };
    });
  return (ops: BatchRequest['ops']): BatchRequest['ops'] => {
    for (const op of ops) {
      if (op[0] === 'insertIfAbsent') {
        const wire = op[1][0] as WireEvent;
        op[1][0] = {
          ...wire,
          rawBody: Buffer.from(wire.rawBody, 'latin1'),
          projection: statements(wire.projection),
        } satisfies NewEvent;
      } else if (op[0] === 'complete') {
        op[1][2] = statements(op[1][2] as TransactionalStatement[] | undefined);
      }
    }
    return ops;
  };
}

type BatchTransaction = Database.Transaction<
  (
    ops: BatchRequest['ops'],
    beforeCommit?: (ops: BatchRequest['ops']) => void,
    rollBack?: boolean,
  ) => OperationResult[]
>;

/** Thrown to roll back a batch that ran whole (rehearsals only), carrying its answers out. */
class RolledBack extends Error {
  constructor(readonly results: OperationResult[]) {
    super('rolled back');
  }
}

const isRehearsal = ([name, args]: BatchRequest['ops'][number]) =>
  name === 'insertIfAbsent' && (args[0] as NewEvent | undefined)?.rehearsal === true;
const batchTransactions = new WeakMap<SqliteConnection, BatchTransaction>();

/** The transaction that runs a batch on `inbox`, made once per connection. */
function batchTransaction(inbox: SqliteConnection): BatchTransaction {
  let run = batchTransactions.get(inbox);
  if (run === undefined) {
    run = inbox.db.transaction(
      (ops: BatchRequest['ops'], beforeCommit?: (ops: BatchRequest['ops']) => void, rollBack = false) => {
        const results = ops.map(([name, args]): OperationResult => {
          try {
            if (!allowed.has(name)) throw new Error(`unknown inbox operation ${name}`);
            const call = () => (inbox[name] as (...a: unknown[]) => unknown).apply(inbox, args);
            // Run again after a failure, each operation has a savepoint of its own.
            return { ok: true, value: inbox.trusting ? call() : inbox.db.transaction(call)() };
          } catch (error) {
            if (error instanceof SavepointsNeeded || !inbox.db.inTransaction) throw error;
            // A failed operation may have written part of its work (an event row, not yet its
            // jobs), which the commit would keep: an event acknowledged as failed, then refused as
            // a duplicate and never processed. The batch runs again with a savepoint per operation,
            // so the failed one leaves nothing.
            if (inbox.trusting) throw new SavepointsNeeded(error);
            // Name and code travel with the message so the calling thread can rebuild the class.
            return { ok: false, error: serializeError(error) };
          }
        });
        if (rollBack) throw new RolledBack(results);
        beforeCommit?.(ops);
        return results;
      },
    );
    batchTransactions.set(inbox, run);
  }
  return run;
}

/**
 * Runs a batch of operations in one transaction: one commit, so one fsync, for all of them (group
 * commit). Each statement is atomic on its own. The first run trusts statements (projection
 * writes, a handler's SQL) and every operation to succeed, and gives them no savepoint; if one
 * fails, the batch rolls back and runs again with a savepoint per operation, so that operation
 * fails alone and leaves nothing of its work. If SQLite rolled the whole transaction back (I/O
 * error, disk full), the batch fails as a whole, so no operation is reported durable that is not. A batch of rehearsals alone (the
 * warm-up's) runs, then rolls back instead of committing: no WAL write, no fsync.
 */
export function runBatch(
  inbox: SqliteConnection,
  ops: BatchRequest['ops'],
  beforeCommit?: (ops: BatchRequest['ops']) => void,
): OperationResult[] {
  // IMMEDIATE takes the write lock up front, so a concurrent CLI writer makes this wait (busy
  // timeout) rather than fail half-way with SQLITE_BUSY on lock upgrade.
  const transaction = batchTransaction(inbox).immediate;
  const rollBack = ops.length > 0 && ops.every(isRehearsal);
  const run = () => {
    try {
      return transaction(ops, beforeCommit, rollBack);
    } catch (error) {
      if (error instanceof RolledBack) return error.results;
      throw error;
    }
  };
  inbox.trusting = true;
  try {
    return run();
  } catch (error) {
    if (!(error instanceof SavepointsNeeded)) throw error;
  } finally {
    inbox.trusting = false;
  }
  return run();
}

/**
 * Test-only failpoint: with `PROCUREIQ_WEBHOOKS_FAILPOINT=fail-commit:PREFIX` in the environment,
 * a commit that would store an event whose id starts with PREFIX fails as a failed COMMIT does
 * (everything in it rolls back), so tests can prove that no caller of that commit is told its
 * write is durable. Unset in production; then this returns undefined and costs nothing.
 */
export function commitFailpoint(env: NodeJS.ProcessEnv): ((ops: BatchRequest['ops']) => void) | undefined {
  const spec = env.PROCUREIQ_WEBHOOKS_FAILPOINT;
  if (!spec?.startsWith('fail-commit:')) return undefined;
  const prefix = spec.slice('fail-commit:'.length);
  return (ops) => {
    for (const op of ops) {
      // A rehearsal is never committed, so it never fails a commit.
      if (op[0] !== 'insertIfAbsent' || isRehearsal(op)) continue;
      const event = op[1][0] as { id?: unknown } | undefined;
      if (typeof event?.id === 'string' && event.id.startsWith(prefix))
        throw new Error(`failpoint: commit of ${event.id} fails`);
    }
  };
}
