// A route job whose outcome cannot be written because the store is unreachable (a database
// restart) is recorded once the store is back, with one attempt, rather than left `processing`
// until its lease expires (the destination's timeout plus a minute).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { resolveRoutes } from '../../src/routes/config.ts';
import { createRouteDispatcher } from '../../src/routes/dispatcher.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { tempDir, waitFor } from '../helpers/index.ts';
import { outage, refusedCalls, refusingWhileDown } from '../helpers/outage-store.ts';

describe('route dispatcher: outcomes while the store is unreachable', () => {
  it('records a delivered job once the store is back, as delivered, with one attempt', async () => {
    const tmp = tempDir();
    const received: string[] = [];
    const sink: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push(String(req.headers['idempotency-key']));
        res.end();
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
    await store.migrate();
    const down = outage(true);
    const dispatcher = createRouteDispatcher({
      store: refusingWhileDown(store, down),
      logger: silentLogger(),
      routes: resolveRoutes({
        destinations: {
          sink: { type: 'http', url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/` },
        },
        routes: [{ name: 'orders', match: { types: ['order.*'] }, to: 'sink' }],
      }),
      defaultRetryScheduleMs: [60_000],
      pollIntervalMs: 50,
    });
    const id = `evt_route_outage_${Date.now()}`;
    try {
      const raw = Buffer.from(JSON.stringify({ ...examplePayloads['order.created'], id }));
      await store.insertIfAbsent(
        newEvent(id, { rawBody: raw, jobs: [{ consumer: 'route:orders', maxAttempts: 2 }] }),
      );
      dispatcher.start();
      await waitFor(() => refusedCalls(down) >= 2 || undefined, { what: 'the completion refused twice' });
      assert.deepEqual(received, [id], 'sent once');
      down.now = false;
      await waitFor(
        async () =>
          (await store.get(id))?.jobs.find((j) => j.consumer === 'route:orders')?.status === 'processed',
        { what: 'the route job processed' },
      );
      const detail = await store.get(id);
      assert.deepEqual(
        detail?.attemptHistory.map((a) => [a.consumer, a.number, a.outcome]),
        [['route:orders', 1, 'succeeded']],
      );
      assert.deepEqual(received, [id], 'not sent again');
    } finally {
      await dispatcher.stop();
      await store.close();
      await new Promise<void>((r) => sink.close(() => r()));
      tmp.cleanup();
    }
  });
});
