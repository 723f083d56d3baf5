import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { parseFilter } from '../ops/filters.ts';
import { parseJobStatus, routeReplayTargets } from '../ops/route-overview.ts';
import { loadRoutesFile } from '../routes/config.ts';
import { routeConsumer, routeMaxAttempts } from '../routes/route-jobs.ts';
import type { EventSummary, InboxStore, ListFilter, ReplayOutcome } from '../store/inbox-store.ts';
import { ConfigError } from '../util/errors.ts';
import { replayIds } from './events.ts';
import { dbOption, replayBudget, retryScheduleMs, retryScheduleOption, withStore } from './open-cli-store.ts';
import { routesOption } from './routes.ts';

export interface FilterFlags {
  status?: string;
  type?: string;
  environment?: string;
  since?: string;
  until?: string;
  q?: string;
}

const FILTER_KEYS = ['status', 'type', 'environment', 'since', 'until', 'q'] as const;

/**
 * Refuses a filter flag given an empty value (`--status "$STATUS"` with STATUS unset): the filter
 * dropped it, and a replay or export meant for some events took every one.
 */
export function checkFilterFlags(flags: FilterFlags): void {
  for (const key of FILTER_KEYS)
    if (flags[key] === '') throw new ConfigError(`--${key} is empty: give it a value, or leave it out`);
}

/** The same filters as the admin API, from CLI flags. */
export function filterFromFlags(flags: FilterFlags): ListFilter {
  checkFilterFlags(flags);
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    const value = flags[key];
    if (value !== undefined) params.set(key, value);
  }
  const { limit: _limit, ...filter } = parseFilter(params);
  return filter;
}

/** Pages through every event matching a filter, newest first. */
export async function* matching(
  store: InboxStore,
  filter: ListFilter,
  pageSize = 500,
): AsyncGenerator<EventSummary[]> {
  let before: string | undefined;
  for (;;) {
    const page = await store.list({ ...filter, limit: pageSize, before });
    if (page.length > 0) yield page;
    if (page.length < pageSize) return;
    before = page.at(-1)?.id;
  }
}

export function addFilterOptions(command: Command): Command {
  return command
    .option('--status <status>', 'pending, processing, retrying, processed, unhandled, invalid or dead')
    .option('--type <type>', "an event type, or a family: 'order.*'")
    .option('--environment <env>', 'production or sandbox')
    .option('--since <time>', 'received at or after: an ISO time, epoch ms, or a duration ago like 2h')
    .option('--until <time>', 'received before: same forms as --since')
    .option('--q <text>', 'text inside the payload, e.g. an order id');
}

export function registerReplay(program: Command): void {
  const command = program
    .command('replay')
    .description('replay events by filter, or by id (adds attempts; never duplicates events)')
    .option('--id <ids...>', 'replay these events')
    .option(
      '--route <name>',
      "re-send on this route only (its job's status is what --status matches: processed, skipped, unhandled or dead); with --routes FILE its jobs get the route's own retrySchedule budget",
    )
    .option('--dry-run', 'count what matches, replay nothing');
  addFilterOptions(command)
    .addOption(retryScheduleOption())
    .addOption(routesOption())
    .addOption(dbOption())
    .action(
      async (
        opts: FilterFlags & {
          id?: string[];
          route?: string;
          dryRun?: boolean;
          db?: string;
          retrySchedule?: string;
          routes?: string;
        },
      ) => {
        checkFilterFlags(opts);
        const byFilter = FILTER_KEYS.some((k) => k in opts);
        if (opts.id && byFilter) throw new ConfigError('replay: give --id, or filters, not both');
        const consumer = opts.route === undefined ? undefined : routeConsumer(opts.route);
        if (opts.id) {
          process.exitCode = await replayIds(opts.id, opts, consumer, await budgetFor(opts));
          return;
        }
        // On a route, no filter means every finished job of that route; a whole-inbox replay needs one.
        if (!byFilter && consumer === undefined)
          throw new ConfigError(
            "replay: give --id ID…, or filters such as --status dead --type 'order.*' --since 2h",
          );
        const budget = await budgetFor(opts);
        await withStore(opts.db, async (store) => {
          if (consumer === undefined) {
            const filter = filterFromFlags(opts);
            // Count first: the summary and the progress bar need a total, and --dry-run stops here.
            let total = 0;
            for await (const page of matching(store, filter)) total += page.length;
            await replayWithProgress(total, matching(store, filter), (id) => store.replay(id, budget), opts);
            return;
          }
          // On a route, --status is the route job's status (skipped is one), not the event's.
          const jobStatus = parseJobStatus(opts.status, '--status');
          const { status: _eventStatus, ...eventFlags } = opts;
          const filter = filterFromFlags(eventFlags);
          const targets = await routeReplayTargets(store, consumer, jobStatus, filter);
          await replayWithProgress(
            targets.length,
            pagesOf(targets),
            (id) => store.replay(id, budget, consumer),
            opts,
          );
        });
      },
    );
}

/**
 * The attempts a replay grants: on a route named in the routes file (`--routes` or `ROUTES`), its
 * own retrySchedule's (as the service gives its jobs); otherwise RETRY_SCHEDULE's.
 */
async function budgetFor(opts: { route?: string; routes?: string; retrySchedule?: string }): Promise<number> {
  if (opts.route !== undefined && opts.routes) {
    const route = (await loadRoutesFile(opts.routes)).routes.find((r) => r.name === opts.route);
    if (route) return routeMaxAttempts(route, retryScheduleMs(opts.retrySchedule));
  }
  return replayBudget(opts.retrySchedule);
}

async function* pagesOf<T>(items: readonly T[], size = 500): AsyncGenerator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** Replays every event of `pages` with a progress bar on stderr; Ctrl-C stops between events. */
async function replayWithProgress(
  total: number,
  pages: AsyncIterable<{ id: string }[]>,
  replayOne: (id: string) => Promise<ReplayOutcome>,
  opts: { dryRun?: boolean },
): Promise<void> {
  if (opts.dryRun || total === 0) {
    process.stdout.write(`${total} event(s) match${opts.dryRun ? '; dry run, nothing replayed' : ''}\n`);
    return;
  }
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Said at once, before the first write: a progress bar off a terminal only draws once a second.
  process.stderr.write(`replaying ${total} event(s); Ctrl-C stops after the one in flight\n`);
  const bar = new SingleBar({
    format: 'replaying [{bar}] {value}/{total} {eta_formatted} left',
    stream: process.stderr,
    noTTYOutput: true,
    notTTYSchedule: 1000,
  });
  bar.start(total, 0);
  const outcomes = { replayed: 0, skipped: 0 };
  // Each replay moves the event out of the filter's status (e.g. dead -> pending) as it
  // commits, so an interrupted run resumes where it stopped: nothing is replayed twice.
  outer: for await (const page of pages) {
    for (const event of page) {
      if (interrupted) break outer;
      const outcome = await replayOne(event.id);
      outcomes[outcome === 'replayed' ? 'replayed' : 'skipped']++;
      bar.increment();
    }
  }
  bar.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.stdout.write(
    `${interrupted ? 'interrupted: ' : ''}replayed ${outcomes.replayed} of ${total} matching event(s)` +
      `${outcomes.skipped ? `, ${outcomes.skipped} skipped (no longer replayable)` : ''}` +
      `${interrupted ? '; run the same command again to continue' : ''}\n`,
  );
  if (interrupted) process.exitCode = 130;
}
