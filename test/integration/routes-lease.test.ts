// An HTTP batch goes out 16 requests at a time, so a batch of 250 to a slow endpoint can take many
// timeouts. With leases of the timeout plus a margin, such a batch outlived its jobs' leases: the
// lane's other rounds took the jobs back and sent them again while the first sends were still
// going. A batch now stops starting sends halfway through the margin; the jobs it did not send are
// given back without spending an attempt, and the next round sends them.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { examplePayloads } from '../../src/events/examples.ts';
import { resolveRoutes } from '../../src/routes/config.ts';
import { createRouteDispatcher } from '../../src/routes/dispatcher.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { tempDir, waitFor } from '../helpers/index.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const EVENTS = 200;
/** The sink answers each request after this long: 200 jobs / 16 at a time take about 3.2 s. */
const ANSWER_MS = 250;
const TIMEOUT_MS = 1000;
/** Leases of 5 s: sends may start for the first 2 s of a batch, which needs 3.2 s for all 200. */
const MARGIN_MS = 4000;

describe('an HTTP batch slower than its leases', () => {
  const tmp = tempDir();
  let store: SqliteStore;
  const received = new Map<string, number>();
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const id = String(req.headers['idempotency-key']);
      received.set(id, (received.get(id) ?? 0) + 1);
      setTimeout(() => res.end(), ANSWER_MS);
    });
  });

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    store = new SqliteStore({ path: join(tmp.dir, 'inbox.db'), mode: 'thread' });
    await store.migrate();
    const example = examplePayloads['order.created'];
    for (let i = 0; i < EVENTS; i++) {
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
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await store.close();
    tmp.cleanup();
  });

  it('sends every job once: what the batch could not start in time is given back, not sent twice', async () => {
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
      leaseMarginMs: MARGIN_MS,
    });
    await dispatcher.start();
    try {
      await waitFor(
        async () => (await store.countJobs()).find((c) => c.status === 'processed')?.count === EVENTS,
        { what: `all ${EVENTS} route jobs processed`, timeoutMs: 30_000 },
      );
    } finally {
      await dispatcher.stop();
    }
    const twice = [...received].filter(([, n]) => n > 1).map(([id]) => id);
    assert.deepEqual(twice, [], 'no job sent twice');
    assert.equal(received.size, EVENTS);
    // The first batch took all 200 and could start only part of them in time: the rest were given
    // back (an `aborted` attempt, granted back) and went in a later round.
    // (Once, or more if the next round also reached its deadline before sending it.)
    const attempts = (await store.get(`evt_lease_${EVENTS - 1}`))?.attemptHistory.map((a) => a.outcome) ?? [];
    assert.equal(attempts[0], 'aborted', JSON.stringify(attempts));
    assert.deepEqual(
      attempts.filter((a) => a !== 'aborted'),
      ['succeeded'],
    );
  });
});
