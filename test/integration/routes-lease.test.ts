// An HTTP route's batch and its leases: a batch goes out 16 requests at a time, each allowed the
// destination's timeout, so a lease must outlive every wave of the batch. With a lease of the
// timeout plus a minute, a batch of 250 to an endpoint answering in 5 s outlived its leases, and
// its jobs were claimed and sent again while the first sends were still going.
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { examplePayloads } from '../../src/events/examples.ts';
import { resolveRoutes } from '../../src/routes/config.ts';
import { createRouteDispatcher } from '../../src/routes/dispatcher.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { tempDir, waitFor } from '../helpers/index.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const TIMEOUT_MS = 2000;

describe('HTTP route batches and leases', () => {
  const tmp = tempDir();
  const path = join(tmp.dir, 'inbox.db');
  let store: SqliteStore;
  const held: ServerResponse[] = [];
  let answering = false;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (answering) res.end();
      else held.push(res);
    });
  });

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    store = new SqliteStore({ path, mode: 'thread' });
    await store.migrate();
    const example = examplePayloads['order.created'];
    for (let i = 0; i < 100; i++) {
      const id = `evt_lease_${i}`;
      await store.insertIfAbsent({
        id,
        type: 'order.created',
        environment: 'production',
        status: 'pending',
        created: 1_780_000_000,
        rawBody: Buffer.from(JSON.stringify({ ...example, id })),
        deliveryId: null,
        timestampHeader: null,
        receivedAt: Date.now(),
        validationError: null,
        maxAttempts: 1,
        jobs: [{ consumer: 'route:orders', maxAttempts: 5 }],
        secretIndex: 0,
        sourceAddress: null,
      });
    }
  });
  after(async () => {
    for (const res of held) res.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    await store.close();
    tmp.cleanup();
  });

  it('claims at most 4 waves of 16, leased for every wave at the full timeout plus a minute', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
    const dispatcher = createRouteDispatcher({
      store,
      logger,
      routes: resolveRoutes({
        destinations: { sink: { type: 'http', url, timeout: `${TIMEOUT_MS}ms` } },
        routes: [{ name: 'orders', match: { types: ['order.*'] }, to: 'sink' }],
      }),
      defaultRetryScheduleMs: [1000],
      pollIntervalMs: 100,
      roundsPerLane: 1,
    });
    await dispatcher.start();
    try {
      // The first wave of the one batch in flight is at the sink, unanswered.
      await waitFor(() => held.length === 16, { what: 'the first wave of 16 requests held' });
      const db = new Database(path, { readonly: true });
      try {
        const leases = db
          .prepare(
            `SELECT lease_expires_at - leased_at AS ms, COUNT(*) AS n FROM jobs
              WHERE status = 'processing' GROUP BY ms`,
          )
          .all();
        assert.deepEqual(leases, [{ ms: 4 * TIMEOUT_MS + 60_000, n: 64 }]);
      } finally {
        db.close();
      }
      answering = true;
      for (const res of held.splice(0)) res.end();
      await waitFor(
        async () => {
          const counts = await store.countJobs();
          return counts.find((c) => c.status === 'processed')?.count === 100;
        },
        { what: 'all 100 route jobs processed' },
      );
    } finally {
      await dispatcher.stop();
    }
  });
});
