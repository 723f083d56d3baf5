// What the broker-outage tests share: a real `serve` with one route taking every event to one
// destination, retried often enough to outlast an outage (the breaker out of the way, so the retry
// schedule alone bridges it), a load of unique orders against it, and the route's jobs counted
// from the inbox as the outage plays out.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type CliProcess, postOrders, startServer, waitFor } from '../helpers/index.ts';

export interface RoutedLoad {
  server: CliProcess & { url: string; port: number };
  /** The route's jobs processed so far. */
  processed(): number;
  /** The route's attempts that failed so far. */
  failedAttempts(): number;
  /** Resolves once every event was answered 200 and every route job is processed; the counts. */
  settled(): Promise<{ failedJobs: number; retried: number }>;
  close(): void;
}

/**
 * Starts `serve` in `dir` with route `route` sending every event to `destination` (a destinations
 * entry named `destinationName`), retrying every `retryMs`, then posts `ids` from `senders` at once.
 */
export async function startRoutedLoad(options: {
  dir: string;
  route: string;
  destinationName: string;
  destination: Record<string, unknown>;
  retryMs: number;
  ids: readonly string[];
  senders: number;
}): Promise<RoutedLoad> {
  const { dir, route, destinationName, ids } = options;
  const routesFile = join(dir, 'routes.json');
  writeFileSync(
    routesFile,
    JSON.stringify({
      destinations: { [destinationName]: options.destination },
      routes: [{ name: route, match: { types: ['*'] }, to: destinationName }],
    }),
  );
  const server = await startServer(dir, {
    ROUTES: routesFile,
    RETRY_SCHEDULE: Array(60).fill(`${options.retryMs}ms`).join(','),
    BREAKER_THRESHOLD: '1000',
    LOG_LEVEL: 'warn',
  });
  const db = new Database(join(dir, 'inbox.db'), { readonly: true });
  const count = (sql: string) => db.prepare(sql).pluck().get() as number;
  const consumer = `route:${route}`;
  const processed = () =>
    count(`SELECT COUNT(*) FROM jobs WHERE consumer = '${consumer}' AND status = 'processed'`);
  const load = postOrders(server.url, ids, options.senders);
  return {
    server,
    processed,
    failedAttempts: () =>
      count(`SELECT COUNT(*) FROM attempts WHERE consumer = '${consumer}' AND outcome = 'failed'`),
    async settled() {
      const statuses = await load;
      assert.equal(statuses.filter((s) => s === 200).length, ids.length, 'the receiver took every event');
      await waitFor(() => processed() === ids.length || undefined, {
        what: 'every route job processed',
        timeoutMs: 120_000,
        intervalMs: 200,
      });
      return {
        failedJobs: count(
          `SELECT COUNT(DISTINCT event_id) FROM attempts WHERE consumer = '${consumer}' AND outcome = 'failed'`,
        ),
        retried: count(
          `SELECT COUNT(*) FROM jobs WHERE consumer = '${consumer}' AND status = 'processed' AND attempts > 1`,
        ),
      };
    },
    close: () => db.close(),
  };
}
