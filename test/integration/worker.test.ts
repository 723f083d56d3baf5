import assert from 'node:assert/strict';
import { request, type Server } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Consumer, type ConsumerOptions, createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { sign } from '../../src/signature/sign.ts';
import type { InboxStore } from '../../src/store/inbox-store.ts';
import { SqliteConnection } from '../../src/store/sqlite/sqlite-connection.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { NonRetryableError } from '../../src/util/errors.ts';
import { postSigned, SECRET, startCollector, tempDir, waitFor } from '../helpers/index.ts';

describe('worker: handlers, retries, dead letters', () => {
  let tmp: ReturnType<typeof tempDir>;
  let consumer: Consumer | undefined;
  let url: string;
  let server: Server;

  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(async () => {
    await consumer?.close();
    consumer = undefined;
    tmp.cleanup();
  });

  async function start(options: Partial<ConsumerOptions>, register: (c: Consumer) => void) {
    consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: silentLogger(),
      retrySchedule: ['200ms', '400ms', '600ms'],
      ...options,
    });
    register(consumer);
    const listening = await consumer.listen({ port: 0, host: '127.0.0.1' });
    const { port } = listening;
    server = listening.server;
    url = `http://127.0.0.1:${port}/webhooks/procureiq`;
    return consumer;
  }

  /** Reads the inbox through a store of its own, once the consumer has closed it. */
  async function readClosedInbox<T>(read: (store: InboxStore) => Promise<T>): Promise<T> {
    const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db'), mode: 'inline' });
    try {
      await store.migrate();
      return await read(store);
    } finally {
      await store.close();
    }
  }

  const statusOf = async (id: string) => (await consumer?.store.get(id))?.status;

  it('a handler that fails twice then succeeds ends processed after 3 attempts, spaced by the schedule', async () => {
    const starts: number[] = [];
    await start({}, (c) =>
      c.on('order.created', async (_event, ctx) => {
        starts.push(Date.now());
        assert.equal(ctx.attempt, starts.length);
        if (ctx.attempt < 3) throw new Error(`flaky ${ctx.attempt}`);
      }),
    );
    const event = examplePayloads['order.created'];
    await postSigned(url, event);
    await waitFor(async () => (await statusOf(event.id)) === 'processed', { what: 'processed' });
    const detail = await consumer!.store.get(event.id);
    assert.equal(detail?.attempts, 3);
    assert.deepEqual(
      detail?.attemptHistory.map((a) => [a.outcome, a.errorMessage]),
      [
        ['failed', 'flaky 1'],
        ['failed', 'flaky 2'],
        ['succeeded', null],
      ],
    );
    assert.equal(starts.length, 3);
    const gap1 = starts[1]! - starts[0]!;
    const gap2 = starts[2]! - starts[1]!;
    assert.ok(gap1 >= 200 && gap1 < 2000, `first retry after ${gap1}ms`);
    assert.ok(gap2 >= 400 && gap2 < 2500, `second retry after ${gap2}ms`);
  });

  it('a handler that always fails ends dead after 1 + N attempts, and the alert fires', async () => {
    const collector = await startCollector();
    try {
      let runs = 0;
      await start({ alertWebhookUrl: collector.url }, (c) =>
        c.on('payment.failed', async () => {
          runs++;
          throw new Error('downstream is down');
        }),
      );
      const event = examplePayloads['payment.failed'];
      await postSigned(url, event);
      await waitFor(async () => (await statusOf(event.id)) === 'dead', { what: 'dead' });
      assert.equal(runs, 4);
      assert.equal((await consumer!.store.get(event.id))?.attempts, 4);
      const alert = await waitFor(
        () => collector.received[0] as { text: string; alert: string } | undefined,
        {
          what: 'alert POST',
        },
      );
      assert.equal(alert.alert, 'dead_letter');
      assert.match(alert.text, new RegExp(event.id));
      assert.match(alert.text, /downstream is down/);
    } finally {
      await collector.close();
    }
  });

  it('NonRetryableError dead-letters at once', async () => {
    await start({}, (c) =>
      c.on('order.cancelled', async () => {
        throw new NonRetryableError('order is unknown here');
      }),
    );
    const event = examplePayloads['order.cancelled'];
    await postSigned(url, event);
    await waitFor(async () => (await statusOf(event.id)) === 'dead', { what: 'dead' });
    assert.equal((await consumer!.store.get(event.id))?.attempts, 1);
  });

  it('a hung handler is timed out, its signal fires, and it is retried', async () => {
    let aborted = 0;
    await start({ handlerTimeout: '150ms' }, (c) =>
      c.on('search.started', async (_event, ctx) => {
        if (ctx.attempt === 1) {
          ctx.signal.addEventListener('abort', () => aborted++);
          await new Promise(() => {}); // never settles
        }
      }),
    );
    const event = examplePayloads['search.started'];
    await postSigned(url, event);
    await waitFor(async () => (await statusOf(event.id)) === 'processed', { what: 'processed' });
    const detail = await consumer!.store.get(event.id);
    assert.deepEqual(
      detail?.attemptHistory.map((a) => a.outcome),
      ['timed_out', 'succeeded'],
    );
    assert.match(detail?.attemptHistory[0]?.errorMessage ?? '', /timed out after 150ms/);
    assert.equal(aborted, 1);
  });

  it('200 concurrent duplicate deliveries run the handler exactly once', async () => {
    let runs = 0;
    await start({}, (c) =>
      c.on('order.shipped', async (event) => {
        runs++;
        assert.equal(typeof event.data.trackingNumber, 'string');
        await sleep(50);
      }),
    );
    const event = examplePayloads['order.shipped'];
    const results = await Promise.all(Array.from({ length: 200 }, () => postSigned(url, event)));
    assert.equal(results.filter((r) => r.body.status === 'ok').length, 1);
    assert.equal(results.filter((r) => r.body.status === 'duplicate').length, 199);
    await waitFor(async () => (await statusOf(event.id)) === 'processed', { what: 'processed' });
    assert.equal((await consumer!.store.get(event.id))?.deliveries.length, 200, 'every delivery is recorded');
    // Closing waits for every handler running or queued: a second run would have happened by now.
    await consumer!.close();
    const detail = await readClosedInbox((store) => store.get(event.id));
    assert.deepEqual(
      detail?.attemptHistory.map((a) => [a.number, a.outcome]),
      [[1, 'succeeded']],
    );
    consumer = undefined;
    assert.equal(runs, 1);
  });

  it('types without a handler are stored unhandled; onAny takes the rest, unknown types included', async () => {
    await start({}, (c) => c.on('order.created', async () => {}));
    await postSigned(url, examplePayloads['user.registered']);
    assert.equal(await statusOf(examplePayloads['user.registered'].id), 'unhandled');
    await consumer!.close();

    const seen: string[] = [];
    await start({}, (c) =>
      c.onAny(async (event) => {
        seen.push(event.type);
      }),
    );
    const unknown = {
      id: 'evt_new_type',
      type: 'fleet.truck_arrived',
      version: '1.1',
      created: 1,
      data: { dock: 4 },
    };
    await postSigned(url, unknown);
    await waitFor(async () => (await statusOf('evt_new_type')) === 'processed', { what: 'processed' });
    assert.deepEqual(seen, ['fleet.truck_arrived']);
    // Replay the unhandled event now that a catch-all handler exists.
    assert.equal(await consumer!.store.replay(examplePayloads['user.registered'].id, 4), 'replayed');
    await waitFor(async () => (await statusOf(examplePayloads['user.registered'].id)) === 'processed', {
      what: 'replayed event processed',
    });
  });

  it('per-type retry schedules override the default', async () => {
    await start({ retrySchedule: ['10s'] }, (c) =>
      c.on(
        'ad.budget_exhausted',
        async (_e, ctx) => {
          if (ctx.attempt === 1) throw new Error('once');
        },
        { retrySchedule: ['100ms', '100ms'] },
      ),
    );
    const event = examplePayloads['ad.budget_exhausted'];
    await postSigned(url, event);
    await waitFor(async () => (await statusOf(event.id)) === 'processed', {
      what: 'processed',
      timeoutMs: 5000,
    });
    assert.equal((await consumer!.store.get(event.id))?.maxAttempts, 3);
  });

  it('ctx.sql commits with the processed mark, and not at all when the attempt fails', async () => {
    const path = join(tmp.dir, 'inbox.db');
    const setup = new SqliteConnection(path);
    setup.db.exec('CREATE TABLE shipments (order_id TEXT PRIMARY KEY, tracking TEXT NOT NULL)');
    setup.close();
    await start({}, (c) =>
      c.on('order.shipped', async (event, ctx) => {
        ctx.sql('INSERT INTO shipments (order_id, tracking) VALUES (?, ?)', [
          event.data.orderId,
          event.data.trackingNumber,
        ]);
        if (ctx.attempt === 1) throw new Error('fails after queueing its write');
      }),
    );
    const event = examplePayloads['order.shipped'];
    await postSigned(url, event);
    await waitFor(async () => (await statusOf(event.id)) === 'processed', { what: 'processed' });
    const check = new SqliteConnection(path);
    try {
      const rows = check.db.prepare('SELECT * FROM shipments').all();
      assert.deepEqual(rows, [{ order_id: event.data.orderId, tracking: event.data.trackingNumber }]);
    } finally {
      check.close();
    }
  });

  it('replays a processed event as a new attempt', async () => {
    let runs = 0;
    await start({}, (c) =>
      c.on('order.delivered', async () => {
        runs++;
      }),
    );
    const event = examplePayloads['order.delivered'];
    await postSigned(url, event);
    await waitFor(async () => (await statusOf(event.id)) === 'processed', { what: 'processed' });
    assert.equal(await consumer!.store.replay(event.id, 4), 'replayed');
    await waitFor(async () => runs === 2, { what: 'second run' });
    await waitFor(async () => (await statusOf(event.id)) === 'processed', { what: 'processed again' });
    assert.equal((await consumer!.store.get(event.id))?.attempts, 2);
  });

  it('SIGTERM-style close lets an in-flight handler finish, and refuses deliveries meanwhile with 503', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let finished = false;
    await start({ shutdownGrace: '10s' }, (c) =>
      c.on('order.confirmed', async () => {
        await released;
        finished = true;
      }),
    );
    const event = examplePayloads['order.confirmed'];
    await postSigned(url, event);
    await waitFor(() => consumer!.store.get(event.id).then((e) => e?.status === 'processing'), {
      what: 'processing',
    });

    // A delivery whose request is in flight when shutdown starts (an idle connection would simply
    // be closed): the server has its headers, the rest of its body arrives while draining.
    const body = JSON.stringify({ ...event, id: 'evt_during_shutdown' });
    const arrived = new Promise<void>((resolve) => server.once('request', () => resolve()));
    let closing: Promise<void> | undefined;
    const response = new Promise<{ status: number; retryAfter: string | undefined; body: unknown }>(
      (resolve, reject) => {
        const req = request(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'x-procureiq-signature': sign(SECRET, body),
            'x-procureiq-timestamp': String(Math.floor(Date.now() / 1000)),
          },
        });
        req.on('error', reject);
        req.on('response', (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            text += d.toString();
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              retryAfter: res.headers['retry-after'] as string | undefined,
              body: JSON.parse(text),
            }),
          );
        });
        req.flushHeaders();
        arrived.then(() => {
          closing = consumer!.close();
          req.end(body);
        }, reject);
      },
    );
    const during = await response;
    assert.deepEqual(during, {
      status: 503,
      retryAfter: '5',
      body: { error: { code: 'shutting_down', message: 'the service is shutting down; retry later' } },
    });
    assert.equal(finished, false, 'the handler still runs: shutdown is waiting for it');
    release();
    await closing;
    assert.equal(finished, true);
    assert.equal((await readClosedInbox((store) => store.get(event.id)))?.status, 'processed');
    assert.equal(
      await readClosedInbox((store) => store.get('evt_during_shutdown')),
      null,
      'the refused delivery was not stored',
    );
    consumer = undefined;
  });

  it('close after the grace period aborts a slow handler and gives its lease back', async () => {
    let sawAbort = false;
    await start({ shutdownGrace: '100ms' }, (c) =>
      c.on('order.confirmed', async (_e, ctx) => {
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            sawAbort = true;
            resolve();
          }),
        );
      }),
    );
    const event = examplePayloads['order.confirmed'];
    await postSigned(url, event);
    await waitFor(() => consumer!.store.get(event.id).then((e) => e?.status === 'processing'), {
      what: 'processing',
    });
    await consumer!.close();
    consumer = undefined;
    assert.equal(sawAbort, true);
    const check = new SqliteConnection(join(tmp.dir, 'inbox.db'));
    try {
      const row = check.db.prepare('SELECT status, max_attempts FROM events WHERE id = ?').get(event.id) as {
        status: string;
        max_attempts: number;
      };
      assert.equal(row.status, 'retrying');
      assert.equal(row.max_attempts, 5, 'the aborted attempt did not spend the budget');
    } finally {
      check.close();
    }
  });
});
