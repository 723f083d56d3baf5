import { join } from 'node:path';
import type { InboxStore } from '../../src/store/inbox-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { StoreUnavailableError } from '../../src/util/errors.ts';
import { tempDir } from './index.ts';

/** The writes that finish a job: what a worker, a route lane or the projections runner records. */
export const FINISHING_WRITES = [
  'complete',
  'markSkipped',
  'markUnhandled',
  'scheduleRetry',
  'deadLetter',
  'release',
];

/** A simulated outage: on while `now` is true; `refused` counts the refused calls by method. */
export interface Outage {
  now: boolean;
  refused: Record<string, number>;
}

export const outage = (now: boolean): Outage => ({ now, refused: {} });

/** Calls of `method` refused so far (all methods when none is named). */
export function refusedCalls(down: Outage, method?: string): number {
  if (method !== undefined) return down.refused[method] ?? 0;
  return Object.values(down.refused).reduce((a, b) => a + b, 0);
}

/**
 * `store`, whose `methods` fail as an unreachable database does (StoreUnavailableError) while
 * `down.now` is true; everything else goes through to the real store.
 */
export function refusingWhileDown(
  store: InboxStore,
  down: Outage,
  methods: readonly string[] = FINISHING_WRITES,
): InboxStore {
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      if (!methods.includes(String(key))) return value.bind(target);
      return (...args: unknown[]) => {
        if (!down.now) return value.apply(target, args);
        down.refused[String(key)] = (down.refused[String(key)] ?? 0) + 1;
        return Promise.reject(new StoreUnavailableError('PostgreSQL is unreachable: connect ECONNREFUSED'));
      };
    },
  });
}

/** A migrated SQLite store in a folder of its own, for a test to wrap; `dispose` closes and removes it. */
export async function migratedStore(): Promise<{
  inner: SqliteStore;
  path: string;
  dispose: () => Promise<void>;
}> {
  const tmp = tempDir();
  const path = join(tmp.dir, 'inbox.db');
  const inner = new SqliteStore({ path });
  await inner.migrate();
  return {
    inner,
    path,
    dispose: async () => {
      await inner.close();
      tmp.cleanup();
    },
  };
}
