import type { Command } from 'commander';
import { parseInteger } from '../config/resolve-config.ts';
import { summaryJson } from '../ops/event-json.ts';
import type { EventSummary, InboxStore } from '../store/inbox-store.ts';
import { ConfigError } from '../util/errors.ts';
import { replayIds } from './events.ts';
import { printTable } from './format.ts';
import { dbOption, retryScheduleOption, withStore } from './open-cli-store.ts';

/** Every dead letter not yet discarded, newest first, page by page. */
async function allDeadLetters(store: InboxStore): Promise<EventSummary[]> {
  const out: EventSummary[] = [];
  let before: string | undefined;
  for (;;) {
    const page = await store.list({ status: 'dead', excludeDiscarded: true, limit: 1000, before });
    out.push(...page);
    const last = page.at(-1);
    if (!last || page.length < 1000) return out;
    before = last.id;
  }
}

/**
 * Which consumers' jobs are dead, per event: `handlers`, `route:NAME`. An event is dead when any
 * of its jobs is; replaying it re-opens only those, so destinations that got it do not again.
 */
async function deadConsumers(
  store: InboxStore,
  events: readonly EventSummary[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const e of events) {
    const detail = await store.get(e.id);
    out.set(e.id, detail?.jobs.filter((j) => j.status === 'dead').map((j) => j.consumer) ?? []);
  }
  return out;
}

export function registerDeadLetter(program: Command): void {
  const dlq = program
    .command('dead-letter')
    .description('events whose attempts are used up: list, replay, discard');

  dlq
    .command('list')
    .description('list dead letters, newest first')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print a JSON array')
    .addOption(dbOption())
    .action(async (opts: { limit: string; json?: boolean; db?: string }) => {
      const limit = parseInteger(opts.limit, '--limit', 50, 1, 100_000);
      const { list, dead } = await withStore(opts.db, async (store) => {
        const list = await store.list({ status: 'dead', excludeDiscarded: true, limit });
        return { list, dead: await deadConsumers(store, list) };
      });
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(
              list.map((e) => ({ ...summaryJson(e), deadConsumers: dead.get(e.id) ?? [] })),
              null,
              2,
            )}\n`
          : printTable(list, dead),
      );
    });

  dlq
    .command('replay')
    .description('replay dead letters (only their dead jobs, e.g. one route): the given ids, or --all')
    .argument('[ids...]', 'event ids')
    .option('--all', 'replay every dead letter')
    .addOption(retryScheduleOption())
    .addOption(dbOption())
    .action(async (ids: string[], opts: { all?: boolean; db?: string; retrySchedule?: string }) => {
      if (opts.all && ids.length > 0)
        throw new ConfigError('dead-letter replay: give ids or --all, not both');
      if (!opts.all && ids.length === 0)
        throw new ConfigError('dead-letter replay: give event ids, or --all');
      const targets = opts.all ? (await withStore(opts.db, allDeadLetters)).map((e) => e.id) : ids;
      if (targets.length === 0) {
        process.stdout.write('no dead letters\n');
        return;
      }
      process.exitCode = await replayIds(targets, opts);
    });

  dlq
    .command('discard')
    .description('discard dead letters: kept for dedupe and audit, hidden from the dead-letter list')
    .argument('<ids...>', 'event ids')
    .addOption(dbOption())
    .action(async (ids: string[], opts: { db?: string }) => {
      const n = await withStore(opts.db, (store) => store.discard(ids));
      process.stdout.write(`discarded ${n} of ${ids.length} dead letter(s)\n`);
      if (n < ids.length) process.exitCode = 1;
    });
}
