import type { Command } from 'commander';
import { parseInteger } from '../config/resolve-config.ts';
import { detailJson, summaryJson } from '../ops/event-json.ts';
import { parseEnvironment } from '../ops/filters.ts';
import { REPLAYABLE_JOB_STATUSES } from '../ops/route-overview.ts';
import { EVENT_STATUSES, type EventStatus, REPLAYABLE_STATUSES } from '../store/inbox-store.ts';
import { ConfigError } from '../util/errors.ts';
import { printDetail, printTable } from './format.ts';
import { dbOption, replayBudget, retryScheduleOption, withStore } from './open-cli-store.ts';

export function parseStatus(value: string | undefined): EventStatus | undefined {
  if (value === undefined) return undefined;
  if ((EVENT_STATUSES as readonly string[]).includes(value)) return value as EventStatus;
  throw new ConfigError(`--status "${value}" is not a status; use one of ${EVENT_STATUSES.join(', ')}`);
}

export function registerEvents(program: Command): void {
  const events = program.command('events').description('inspect and replay stored events');

  events
    .command('list')
    .description('list events, newest first')
    .option('--status <status>', `only this status (${EVENT_STATUSES.join(', ')})`)
    .option('--type <type>', "only this type; a family with a wildcard, e.g. 'order.*'")
    .option('--environment <env>', 'production or sandbox')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print a JSON array')
    .addOption(dbOption())
    .action(
      async (opts: {
        status?: string;
        type?: string;
        environment?: string;
        limit: string;
        json?: boolean;
        db?: string;
      }) => {
        const status = parseStatus(opts.status);
        const limit = parseInteger(opts.limit, '--limit', 50, 1, 100_000);
        const environment = parseEnvironment(opts.environment ?? null);
        const list = await withStore(opts.db, (store) =>
          store.list({ status, type: opts.type, environment, limit }),
        );
        process.stdout.write(
          opts.json ? `${JSON.stringify(list.map(summaryJson), null, 2)}\n` : printTable(list),
        );
      },
    );

  events
    .command('show')
    .description('show one event: payload, deliveries and attempt history')
    .argument('<id>', 'event id')
    .option('--json', 'print JSON')
    .addOption(dbOption())
    .action(async (id: string, opts: { json?: boolean; db?: string }) => {
      const event = await withStore(opts.db, (store) => store.get(id));
      if (!event) {
        process.stderr.write(`no event with id ${id}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(
        opts.json ? `${JSON.stringify(detailJson(event), null, 2)}\n` : printDetail(event),
      );
    });

  events
    .command('replay')
    .description('run a processed, dead, invalid or unhandled event again (adds attempts, never a new event)')
    .argument('<ids...>', 'event ids')
    .addOption(retryScheduleOption())
    .addOption(dbOption())
    .action(async (ids: string[], opts: { db?: string; retrySchedule?: string }) => {
      process.exitCode = await replayIds(ids, opts);
    });
}

/**
 * Replays events by id and prints what happened to each; 1 if any could not be replayed. With
 * `consumer` (`route:NAME`), only that job is re-opened.
 */
export async function replayIds(
  ids: string[],
  opts: { db?: string; retrySchedule?: string; dryRun?: boolean },
  consumer?: string,
  budget = replayBudget(opts.retrySchedule),
): Promise<number> {
  let failures = 0;
  await withStore(opts.db, async (store) => {
    for (const id of ids) {
      if (opts.dryRun) {
        // Says what a replay would do, and changes nothing (it replayed for real before).
        const event = await store.get(id);
        const job = consumer === undefined ? undefined : event?.jobs.find((j) => j.consumer === consumer);
        const purged = event !== null && event.rawBody.byteLength === 0;
        const replayable =
          event !== null &&
          !purged &&
          (consumer === undefined
            ? REPLAYABLE_STATUSES.includes(event.status)
            : job !== undefined && REPLAYABLE_JOB_STATUSES.includes(job.status));
        if (replayable) {
          process.stdout.write(
            `would replay ${id}${consumer ? ` on ${consumer}` : ''}: ${budget} attempt(s) allowed (dry run)\n`,
          );
        } else {
          failures++;
          process.stderr.write(
            event === null
              ? `no event with id ${id}\n`
              : purged
                ? `cannot replay ${id}: its payload was purged by retention, so there is nothing to run\n`
                : `cannot replay ${id}${consumer ? ` on ${consumer}` : ''}: it is ${job?.status ?? event.status}\n`,
          );
        }
        continue;
      }
      if (consumer) {
        // The store would give an event without jobs a handlers job: check the route has one.
        const event = await store.get(id);
        if (event && !event.jobs.some((j) => j.consumer === consumer)) {
          failures++;
          process.stderr.write(
            `cannot replay ${id} on ${consumer}: it has no job there (the route did not match it when it was stored)\n`,
          );
          continue;
        }
      }
      const outcome = await store.replay(id, budget, consumer);
      if (outcome === 'replayed') {
        process.stdout.write(
          `replayed ${id}${consumer ? ` on ${consumer}` : ''}: due now, ${budget} attempt(s) allowed\n`,
        );
      } else {
        failures++;
        const event = outcome === 'not_replayable' ? await store.get(id) : null;
        process.stderr.write(
          outcome === 'not_found'
            ? `no event with id ${id}\n`
            : outcome === 'purged'
              ? `cannot replay ${id}: its payload was purged by retention, so there is nothing to run\n`
              : `cannot replay ${id}${consumer ? ` on ${consumer}` : ''}: it is ${event?.status} (only processed, dead, invalid or unhandled events are replayed, and only finished jobs)\n`,
        );
      }
    }
  });
  return failures > 0 ? 1 : 0;
}
