// Route transforms on a real consumer (SQLite) delivering to a real local HTTP sink: an object is
// sent as JSON, null skips the job (nothing sent), a throw or an unsendable answer retries by the
// route's schedule and then dead-letters with the error in the attempt history, and transform
// errors never trip the destination's breaker.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { type Consumer, createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import type { EventDetail } from '../../src/store/inbox-store.ts';
import { handleSigned, REPO, tempDir, waitFor } from '../helpers/index.ts';

const SECRET = 'routes-transform-secret';
const TRANSFORMS = join(REPO, 'test', 'fixtures', 'routes', 'transforms');

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

async function startSink() {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    at: (path: string) => received.filter((r) => r.path === path),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function envelope(id: string, type: keyof typeof examplePayloads): Buffer {
  return Buffer.from(JSON.stringify({ ...examplePayloads[type], id }));
}

async function deliver(consumer: Consumer, body: Buffer): Promise<void> {
  const response = await handleSigned(consumer.receiver, body, SECRET);
  assert.equal(response.status, 200);
}

describe('route transforms', () => {
  let sink: Awaited<ReturnType<typeof startSink>>;
  let consumer: Consumer;
  const tmp = tempDir();

  before(async () => {
    sink = await startSink();
    consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      retrySchedule: ['50ms', '50ms'],
      pollInterval: '200ms',
      // Low, so transform errors counted as destination failures would open it at once.
      breakerThreshold: 3,
      routes: {
        destinations: {
          object: { type: 'http', url: `${sink.url}/object` },
          declined: { type: 'http', url: `${sink.url}/declined` },
          throws: { type: 'http', url: `${sink.url}/throws` },
          number: { type: 'http', url: `${sink.url}/number` },
        },
        routes: [
          {
            name: 'object',
            match: { types: ['order.created'] },
            to: 'object',
            transform: join(TRANSFORMS, 'to-object.ts'),
          },
          {
            name: 'declined',
            match: { types: ['order.shipped'] },
            to: 'declined',
            transform: join(TRANSFORMS, 'decline.ts'),
          },
          {
            name: 'throws',
            match: { types: ['payment.failed'] },
            to: 'throws',
            transform: join(TRANSFORMS, 'throws.ts'),
          },
          {
            name: 'number',
            match: { types: ['user.tier_changed'] },
            to: 'number',
            transform: join(TRANSFORMS, 'returns-number.ts'),
          },
        ],
      },
    });
    await consumer.start();
  });
  after(async () => {
    await consumer.close();
    await sink.close();
    tmp.cleanup();
  });

  const jobOf = (event: EventDetail | null, route: string) =>
    event?.jobs.find((j) => j.consumer === `route:${route}`);
  const waitForJob = (id: string, route: string, status: string) =>
    waitFor(
      async () => {
        const event = await consumer.store.get(id);
        return event && jobOf(event, route)?.status === status ? event : undefined;
      },
      { what: `${id} route:${route} ${status}`, timeoutMs: 10_000 },
    );

  it('sends an object answer as JSON', async () => {
    const id = 'evt_tf_object';
    await deliver(consumer, envelope(id, 'order.created'));
    const event = await waitForJob(id, 'object', 'processed');
    assert.equal(event.status, 'processed');
    const [got, ...more] = sink.at('/object');
    assert.equal(more.length, 0, 'sent once');
    assert.equal(got?.headers['content-type'], 'application/json');
    assert.equal(got?.headers['idempotency-key'], id);
    assert.deepEqual(JSON.parse(got?.body.toString('utf8') ?? ''), {
      forwarded: id,
      orderId: examplePayloads['order.created'].data.orderId,
    });
  });

  it('skips the job on null: event processed, attempt recorded as skipped, nothing sent', async () => {
    const id = 'evt_tf_declined';
    await deliver(consumer, envelope(id, 'order.shipped'));
    const event = await waitForJob(id, 'declined', 'skipped');
    assert.equal(event.status, 'processed', 'a skipped job counts as done');
    const attempts = event.attemptHistory.filter((a) => a.consumer === 'route:declined');
    assert.deepEqual(
      attempts.map((a) => a.outcome),
      ['skipped'],
    );
    assert.equal(jobOf(event, 'declined')?.attempts, 1);
    assert.equal(sink.at('/declined').length, 0, 'nothing sent');
  });

  it('retries a throwing transform by schedule, then dead-letters it with the error; the breaker stays closed', async () => {
    // Two events: six transform failures, twice the breaker threshold.
    const ids = ['evt_tf_throws_1', 'evt_tf_throws_2'];
    for (const id of ids) await deliver(consumer, envelope(id, 'payment.failed'));
    for (const id of ids) {
      const event = await waitForJob(id, 'throws', 'dead');
      assert.equal(event.status, 'dead');
      const attempts = event.attemptHistory.filter((a) => a.consumer === 'route:throws');
      assert.deepEqual(
        attempts.map((a) => a.outcome),
        ['failed', 'failed', 'failed'],
        'one attempt and the two retries of the schedule',
      );
      for (const a of attempts)
        assert.equal(a.errorMessage, `transform threw: cannot map ${id}: no warehouse code`);
      const gaps = attempts.slice(1).map((a, i) => a.startedAt - (attempts[i]?.finishedAt ?? 0));
      assert.ok(
        gaps.every((g) => g >= 45),
        `retries waited for the schedule: ${gaps.join(', ')} ms`,
      );
      assert.match(jobOf(event, 'throws')?.lastError ?? '', /no warehouse code/);
    }
    assert.equal(sink.at('/throws').length, 0, 'nothing sent');
    const states = consumer.routeStates();
    assert.deepEqual(
      states.map((s) => [s.name, s.breaker]),
      [
        ['object', 'closed'],
        ['declined', 'closed'],
        ['throws', 'closed'],
        ['number', 'closed'],
      ],
    );
    const metrics = await consumer.metrics.registry.metrics();
    assert.doesNotMatch(metrics, /procureiq_webhooks_route_breaker_open\{route="throws"\} 1/);
  });

  it('fails an unsendable answer (a number) like a destination error: retried, then dead', async () => {
    const id = 'evt_tf_number';
    await deliver(consumer, envelope(id, 'user.tier_changed'));
    const event = await waitForJob(id, 'number', 'dead');
    const attempts = event.attemptHistory.filter((a) => a.consumer === 'route:number');
    assert.deepEqual(
      attempts.map((a) => a.outcome),
      ['failed', 'failed', 'failed'],
    );
    for (const a of attempts)
      assert.match(a.errorMessage ?? '', /^transform returned a number; return a string/);
    assert.equal(sink.at('/number').length, 0, 'nothing sent');
    assert.equal(consumer.routeStates().find((s) => s.name === 'number')?.breaker, 'closed');
  });
});
