import { Option } from 'commander';
import { type DatabaseLocation, parseDatabaseUrl } from '../config/database-url.ts';
import { defaults } from '../config/defaults.ts';
import { parseDurationList } from '../config/duration.ts';
import type { InboxStore } from '../store/inbox-store.ts';
import { openStore } from '../store/open-store.ts';

/** `--db`, shared by every command that reads or changes the inbox. */
export const dbOption = () =>
  new Option('--db <url>', 'inbox database (default sqlite:./data/procureiq-webhooks.db)').env(
    'DATABASE_URL',
  );

/** `--retry-schedule`: a replay gets 1 + N fresh attempts. */
export const retryScheduleOption = () =>
  new Option(
    '--retry-schedule <durations>',
    'a replay gets 1 + one attempt per delay (default 30s,2m,10m)',
  ).env('RETRY_SCHEDULE');

/** `--retry-schedule` / `RETRY_SCHEDULE` (the default when unset), in milliseconds. */
export function retryScheduleMs(schedule: string | undefined): number[] {
  // Blank is unset, as `serve` reads it: a blank RETRY_SCHEDULE gave CLI replays 1 attempt.
  const given = schedule?.trim() ? schedule : defaults.retrySchedule;
  return parseDurationList(given, 'RETRY_SCHEDULE (--retry-schedule)');
}

export function replayBudget(schedule: string | undefined): number {
  return 1 + retryScheduleMs(schedule).length;
}

/** The inbox a command opens: `--db`/`DATABASE_URL`, blank counting as unset (as `serve` reads it). */
export function cliDatabase(db: string | undefined): DatabaseLocation {
  return parseDatabaseUrl(db?.trim() ? db : defaults.databaseUrl);
}

/** Opens the inbox for a short command, runs `fn`, and closes it. */
export async function withStore<T>(
  db: string | undefined,
  fn: (store: InboxStore) => Promise<T>,
): Promise<T> {
  const store = openStore(cliDatabase(db), { mode: 'inline', mustExist: true });
  try {
    await store.migrate();
    return await fn(store);
  } finally {
    await store.close();
  }
}
