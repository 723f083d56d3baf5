import type { Command } from 'commander';
import { parseInteger } from '../config/resolve-config.ts';
import { deliveryJson } from '../ops/event-json.ts';
import { parseJobStatus } from '../ops/route-overview.ts';
import { ROUTE_PREFIX, routeConsumer } from '../routes/route-jobs.ts';
import { JOB_STATUSES } from '../store/inbox-store.ts';
import { printJobs } from './format.ts';
import { dbOption, withStore } from './open-cli-store.ts';

export function registerDeliveries(program: Command): void {
  const deliveries = program
    .command('deliveries')
    .description("route jobs: each event's delivery on each route");

  deliveries
    .command('list')
    .description('route jobs, most recently changed first')
    .option('--route <name>', 'only this route')
    .option('--status <status>', `only this status (${JOB_STATUSES.join(', ')})`)
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print a JSON array')
    .addOption(dbOption())
    .action(async (opts: { route?: string; status?: string; limit: string; json?: boolean; db?: string }) => {
      const status = parseJobStatus(opts.status, '--status');
      const limit = parseInteger(opts.limit, '--limit', 50, 1, 100_000);
      const jobs = await withStore(opts.db, (store) =>
        store.listJobs({
          ...(opts.route !== undefined
            ? { consumer: routeConsumer(opts.route) }
            : { consumerPrefix: ROUTE_PREFIX }),
          status,
          limit,
        }),
      );
      const list = jobs.map(deliveryJson);
      process.stdout.write(opts.json ? `${JSON.stringify(list, null, 2)}\n` : printJobs(list));
    });
}
