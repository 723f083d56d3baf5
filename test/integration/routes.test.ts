// Routes end to end on a real consumer (SQLite and PostgreSQL) delivering to a real local HTTP
// server: matching, exact bytes and signatures, retries and Retry-After, one route dead while
// another succeeds, transforms, per-key order, and the circuit breaker.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { type Consumer, createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { resolveRoutes } from '../../src/routes/config.ts';
import { sign } from '../../src/signature/sign.ts';
import { verifySignature } from '../../src/signature/verify-signature.ts';
import { dropSchema, PG_URL, REPO, tempDir, uniqueSchema, waitFor } from '../helpers/index.ts';

const SECRET = 'routes-test-secret';
const FORWARD_SECRET = 'forwarding-secret';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** A local HTTP sink whose answer per path can be changed while the test runs. */
async function startSink() {
  const received: Received[] = [];
  const answers = new Map<
    string,
    (n: number) => { status: number; headers?: Record<string, string>; after?: Promise<void> }
  >();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks) });
      const n = received.filter((r) => r.path === path).length;
      const answer = answers.get(path)?.(n) ?? { status: 200 };
      void (answer.after ?? Promise.resolve()).then(() => {
        res.writeHead(answer.status, answer.headers ?? {});
        res.end();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    answers,
    at: (path: string) => received.filter((r) => r.path === path),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The guide's example of `type`, with its id, data fields and created time replaced. */
function envelope(
  id: string,
  type: keyof typeof examplePayloads,
  data: Record<string, unknown>,
  created = 1_780_000_000,
) {
  const example = examplePayloads[type];
  return Buffer.from(JSON.stringify({ ...example, id, created, data: { ...example.data, ...data } }));
}

async function deliver(consumer: Consumer, body: Buffer): Promise<number> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const response = await consumer.receiver.handle({
    headers: {
      'content-type': 'application/json',
      'x-procureiq-signature': sign(SECRET, body),
      'x-procureiq-timestamp': timestamp,
      'x-procureiq-event': 'x',
    },
    body,
  });
  return response.status;
}

for (const engine of ['SQLite', 'PostgreSQL'] as const) {
  describe(`routes on ${engine}`, () => {
    let sink: Awaited<ReturnType<typeof startSink>>;
    let consumer: Consumer;
    let cleanup: () => Promise<void>;

    before(async () => {
      sink = await startSink();
      let database: string;
      if (engine === 'SQLite') {
        const tmp = tempDir();
        database = `sqlite:${join(tmp.dir, 'inbox.db')}`;
        cleanup = async () => tmp.cleanup();
      } else {
        const schema = uniqueSchema('piq_routes');
        database = `${PG_URL}?schema=${schema}`;
        cleanup = () => dropSchema(schema);
      }
      consumer = createConsumer({
        secret: SECRET,
        database,
        logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
        retrySchedule: ['50ms', '50ms'],
        pollInterval: '200ms',
        breakerThreshold: 3,
        routes: {
          destinations: {
            sink: { type: 'http', url: `${sink.url}/orders`, secret: FORWARD_SECRET, timeout: '2s' },
            flaky: { type: 'http', url: `${sink.url}/flaky` },
            down: { type: 'http', url: `${sink.url}/down` },
            ordered: { type: 'http', url: `${sink.url}/ordered` },
          },
          routes: [
            {
              name: 'big-orders',
              match: { types: ['order.*'], where: { 'data.totalAmount': { $gte: 500 } } },
              to: 'sink',
            },
            // Its own schedule is long: a Retry-After answer decides when it tries again.
            { name: 'flaky', match: { types: ['payment.*'] }, to: 'flaky', retrySchedule: ['1h'] },
            { name: 'down', match: { types: ['payment.failed'] }, to: 'down', retrySchedule: ['20ms'] },
            { name: 'ordered', match: { types: ['user.*'] }, to: 'ordered', orderBy: 'data.userId' },
          ],
        },
      });
      await consumer.start();
    });
    after(async () => {
      await consumer.close();
      await sink.close();
      await cleanup();
    });

    it('routes only what matches, forwarding the exact bytes, signed', async () => {
      const big = envelope(`ord_big_${engine}`, 'order.created', { orderId: 'o1', totalAmount: 900 });
      const small = envelope(`ord_small_${engine}`, 'order.created', { orderId: 'o2', totalAmount: 10 });
      assert.equal(await deliver(consumer, big), 200);
      assert.equal(await deliver(consumer, small), 200);
      const got = await waitFor(() => sink.at('/orders').find((r) => r.body.equals(big)), {
        what: 'the big order',
      });
      assert.equal(got.headers['x-procureiq-event'], 'order.created');
      assert.equal(got.headers['idempotency-key'], `ord_big_${engine}`);
      assert.ok(got.headers['x-procureiq-delivery']);
      const verdict = verifySignature([FORWARD_SECRET], got.body, got.headers['x-procureiq-signature']);
      assert.equal(verdict.ok, true, 'the forwarded bytes verify with the route secret');
      const smallEvent = await consumer.store.get(`ord_small_${engine}`);
      assert.equal(smallEvent?.status, 'unhandled', 'no handler and no route wants the small order');
      await waitFor(async () => (await consumer.store.get(`ord_big_${engine}`))?.status === 'processed', {
        what: 'the big order processed',
      });
    });

    it('retries when Retry-After says, else by schedule; a dead route never holds back a route that succeeded', async () => {
      sink.answers.set('/flaky', (n) =>
        // Retry-After: 0 is taken as the floor of one second (not as "spend every attempt now").
        n === 1 ? { status: 503, headers: { 'retry-after': '0' } } : { status: 200 },
      );
      sink.answers.set('/down', () => ({ status: 500 }));
      const id = `pay_${engine}`;
      const body = envelope(id, 'payment.failed', {
        paymentId: 'p1',
        orderId: 'o1',
        reason: 'card_declined',
      });
      assert.equal(await deliver(consumer, body), 200);
      const dead = await waitFor(
        async () => {
          const e = await consumer.store.get(id);
          return e?.jobs.find((j) => j.consumer === 'route:down')?.status === 'dead' &&
            e.jobs.find((j) => j.consumer === 'route:flaky')?.status === 'processed'
            ? e
            : undefined;
        },
        { what: 'flaky delivered and down dead', timeoutMs: 10_000 },
      );
      assert.equal(dead.status, 'dead', 'any dead job makes the event dead');
      const flaky = sink.at('/flaky').filter((r) => r.headers['idempotency-key'] === id);
      assert.equal(flaky.length, 2, 'one 503, then one success: no re-send after success');
      const downAttempts = dead.attemptHistory.filter((a) => a.consumer === 'route:down');
      assert.deepEqual(
        downAttempts.map((a) => a.outcome),
        ['failed', 'failed'],
      );
      assert.match(downAttempts[0]?.errorMessage ?? '', /500/);
      const flakyAttempts = dead.attemptHistory.filter((a) => a.consumer === 'route:flaky');
      assert.ok(
        (flakyAttempts[1]?.startedAt ?? 0) - (flakyAttempts[0]?.finishedAt ?? 0) >= 950,
        "the second try waited a second (Retry-After: 0, floored), not the route's 1 h schedule",
      );
    });

    it('delivers jobs with the same key in order of created, even across retries', async () => {
      // The first send is held open (the job is in flight), then answered 500 (a retry): meanwhile
      // the later events of the same key arrive, and must wait their turn.
      let release = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      sink.answers.set('/ordered', (n) => (n === 1 ? { status: 500, after: held } : { status: 200 }));
      const id = (n: number) => `usr_${engine}_${n}`;
      const send = (n: number, userId = 'u1') =>
        deliver(
          consumer,
          envelope(id(n), 'user.tier_changed', { userId, newTier: `T${n}` }, 1_780_000_000 + n),
        );
      assert.equal(await send(1), 200);
      await waitFor(() => sink.at('/ordered').length === 1 || undefined, {
        what: 'the first send in flight',
      });
      // Received out of order: 3 before 2. Another key is never held back by u1's line.
      assert.equal(await send(3), 200);
      assert.equal(await send(2), 200);
      assert.equal(await send(9, 'u2'), 200);
      await waitFor(
        () => sink.at('/ordered').some((r) => r.headers['idempotency-key'] === id(9)) || undefined,
        {
          what: "the other key's delivery while u1's send is still in flight",
          timeoutMs: 5_000,
        },
      );
      release();
      await waitFor(() => sink.at('/ordered').length >= 5 || undefined, {
        what: 'every ordered delivery',
        timeoutMs: 10_000,
      });
      const u1 = sink
        .at('/ordered')
        .map((r) => String(r.headers['idempotency-key']))
        .filter((key) => key !== id(9));
      assert.deepEqual(u1, [id(1), id(1), id(2), id(3)], 'u1 in order of created, the retry first');
    });
  });
}

describe('a transform that is not a function, given to createConsumer', () => {
  it('fails start() with the transform named, as serve refuses the file', async () => {
    const tmp = tempDir();
    const consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: pino({ level: 'silent' }),
      routes: {
        destinations: { sink: { type: 'http', url: 'http://127.0.0.1:9/hooks' } },
        routes: [
          {
            name: 'slimmed',
            match: { types: ['order.*'] },
            to: 'sink',
            transform: join(REPO, 'test', 'fixtures', 'routes', 'transforms', 'not-a-function.ts'),
          },
        ],
      },
    });
    try {
      await assert.rejects(consumer.start(), /not-a-function\.ts must export default a function/);
    } finally {
      await consumer.close();
      tmp.cleanup();
    }
  });
});

describe('reloading routes on a consumer (what SIGHUP does)', () => {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  it('a consumer started with no routes can get some; one created without `routes` refuses', async () => {
    const sink = await startSink();
    const tmp = tempDir();
    const bare = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'bare.db')}`,
      logger,
    });
    const empty = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'empty.db')}`,
      logger,
      pollInterval: '100ms',
      routes: { destinations: {}, routes: [] },
    });
    const next = resolveRoutes({
      destinations: { sink: { type: 'http', url: `${sink.url}/late` } },
      routes: [{ name: 'late', match: { types: ['order.*'] }, to: 'sink' }],
    });
    try {
      await bare.start();
      await empty.start();
      await assert.rejects(bare.reloadRoutes(next), /reloadRoutes: this consumer was created without routes/);

      assert.equal(await deliver(empty, envelope('evt_reload_before', 'order.created', {})), 200);
      await empty.reloadRoutes(next);
      assert.deepEqual(
        empty.routeStates().map((r) => [r.name, r.breaker]),
        [['late', 'closed']],
      );
      assert.equal(await deliver(empty, envelope('evt_reload_after', 'order.created', {})), 200);
      await waitFor(() => sink.at('/late').length === 1 || undefined, {
        what: 'the event stored after the reload sent',
      });
      assert.equal(sink.at('/late')[0]?.headers['idempotency-key'], 'evt_reload_after');
      const before = await empty.store.get('evt_reload_before');
      assert.deepEqual(before?.jobs, [], 'routes apply to events stored afterwards');
    } finally {
      await bare.close();
      await empty.close();
      await sink.close();
      tmp.cleanup();
    }
  });
});
