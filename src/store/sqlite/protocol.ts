import type { SqliteInbox } from './sqlite-inbox.ts';

/** Methods of `SqliteInbox` that may be called through `SqliteStore`. */
export const INBOX_OPERATIONS = [
  'insertIfAbsent',
  'claimDue',
  'complete',
  'markUnhandled',
  'scheduleRetry',
  'deadLetter',
  'release',
  'expireLeases',
  'replay',
  'discard',
  'get',
  'list',
  'countByStatus',
  'nextDueAt',
] as const satisfies readonly (keyof SqliteInbox)[];

export type InboxOperation = (typeof INBOX_OPERATIONS)[number];

export type OperationResult =
  | { ok: true; value: unknown }
  | { ok: false; error: { name: string; message: string } };

export interface BatchRequest {
  id: number;
  ops: [InboxOperation, unknown[]][];
}

export type BatchReply = { id: number; results: OperationResult[] } | { id: number; fatal: string };

const allowed = new Set<string>(INBOX_OPERATIONS);

/**
 * Runs a batch of operations in one transaction: one commit, so one fsync, for all of them (group
 * commit). Each operation runs in its own savepoint, so one that fails rolls back alone.
 */
export function runBatch(inbox: SqliteInbox, ops: BatchRequest['ops']): OperationResult[] {
  const runOne = inbox.db.transaction((name: InboxOperation, args: unknown[]) => {
    if (!allowed.has(name)) throw new Error(`unknown inbox operation ${name}`);
    return (inbox[name] as (...a: unknown[]) => unknown).apply(inbox, args);
  });
  const runAll = inbox.db.transaction(() =>
    ops.map(([name, args]): OperationResult => {
      try {
        return { ok: true, value: runOne(name, args) };
      } catch (error) {
        const e = error instanceof Error ? error : new Error(String(error));
        return { ok: false, error: { name: e.name, message: e.message } };
      }
    }),
  );
  // IMMEDIATE takes the write lock up front, so a concurrent CLI writer makes this wait (busy
  // timeout) rather than fail half-way with SQLITE_BUSY on lock upgrade.
  return runAll.immediate();
}
