// Routing behaviours at its edges, through a real consumer on SQLite and a real local HTTP sink:
// an invalid event is never routed; a route's dead letter raises an alert naming the route; a
// destination that is down at start-up stops nothing (ingest goes on, its jobs retry); and a
// route's rateLimit spaces its sends out.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { freePort, handleSigned, SECRET, startCollector, tempDir, waitFor } from '../helpers/index.ts';

/** A sink answering 500 on paths under /down and 200 elsewhere; records each request's time. */
async function startSink() {
  const received: { path: string; id: string; at: number }[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, id: String(req.headers['idempotency-key']), at: Date.now() });
      res.writeHead(path.startsWith('/down') ? 500 : 200);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    at: (path: string) => received.filter((r) => r.path === path),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function body(id: string, type: keyof typeof examplePayloads, data: Record<string, unknown> = {}): Buffer {
  const example = examplePayloads[type];
  return Buffer.from(JSON.stringify({ ...example, id, data: { ...example.data, ...data } }));
}

describe('routes at their edges', () => {
  const tmp = tempDir();
  let sink: Awaited<ReturnType<typeof startSink>>;
  let alerts: Awaited<ReturnType<typeof startCollector>>;
  let consumer: ReturnType<typeof createConsumer>;

  before(async () => {
    sink = await startSink();
    alerts = await startCollector();
    const closedPort = await freePort();
    consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: silentLogger(),
      projections: 'none',
      pollInterval: '100ms',
      retrySchedule: ['50ms'],
      alertWebhookUrl: alerts.url,
      routes: {
        destinations: {
          ok: { type: 'http', url: `${sink.url}/ok` },
          failing: { type: 'http', url: `${sink.url}/down` },
          limited: { type: 'http', url: `${sink.url}/limited` },
          // Nothing listens there: down from the start.
          absent: { type: 'redis-stream', url: `redis://127.0.0.1:${closedPort}`, stream: 'never' },
        },
        routes: [
          { name: 'orders', match: { types: ['order.*'] }, to: 'ok' },
          { name: 'refunds', match: { types: ['payment.refunded'] }, to: 'failing', retrySchedule: ['10ms'] },
          { name: 'searches', match: { types: ['search.*'] }, to: 'limited', rateLimit: '4/s' },
          { name: 'tickets', match: { types: ['support.*'] }, to: 'absent' },
        ],
      },
    });
    await consumer.start();
  });
  after(async () => {
    await consumer.close();
    await alerts.close();
    await sink.close();
    tmp.cleanup();
  });

  it('never routes an invalid event', async () => {
    // A known type that fails its schema (totalAmount must be a number): stored invalid, no jobs.
    const invalid = await handleSigned(
      consumer.receiver,
      body('evt_edges_invalid', 'order.created', { totalAmount: 'lots' }),
    );
    assert.equal(invalid.status, 200);
    const valid = await handleSigned(consumer.receiver, body('evt_edges_valid', 'order.created'));
    assert.equal(valid.status, 200);
    await waitFor(() => sink.at('/ok').some((r) => r.id === 'evt_edges_valid') || undefined, {
      what: 'the valid order routed',
    });
    const stored = await consumer.store.get('evt_edges_invalid');
    assert.equal(stored?.status, 'invalid');
    assert.deepEqual(stored?.jobs, []);
    assert.ok(!sink.at('/ok').some((r) => r.id === 'evt_edges_invalid'));
  });

  it("raises an alert naming the route when a route's job is dead-lettered", async () => {
    assert.equal(
      (await handleSigned(consumer.receiver, body('evt_edges_refund', 'payment.refunded'))).status,
      200,
    );
    const alert = (await waitFor(
      () =>
        alerts.received.find(
          (a) =>
            (a as { alert?: string; eventId?: string }).alert === 'dead_letter' &&
            (a as { eventId?: string }).eventId === 'evt_edges_refund',
        ),
      { what: 'the dead_letter alert' },
    )) as Record<string, unknown>;
    assert.equal(alert.route, 'refunds');
    assert.equal(alert.attempts, 2);
    assert.match(String(alert.text), /dead-lettered on route refunds after 2 attempt\(s\): HTTP 500/);
    assert.equal(sink.at('/down').length, 2);
  });

  it('a destination down at start-up stops nothing: ingest goes on, its jobs wait and retry', async () => {
    const res = await handleSigned(consumer.receiver, body('evt_edges_ticket', 'support.ticket_created'));
    assert.equal(res.status, 200);
    const job = await waitFor(
      async () => {
        const j = (await consumer.store.get('evt_edges_ticket'))?.jobs.find(
          (x) => x.consumer === 'route:tickets',
        );
        return j && j.attempts >= 1 && j.status === 'retrying' ? j : undefined;
      },
      { what: 'the ticket job retrying' },
    );
    assert.ok(job.lastError, 'the connection error is kept');
    // The other routes were never held up by it.
    assert.equal(
      (await handleSigned(consumer.receiver, body('evt_edges_valid_2', 'order.created'))).status,
      200,
    );
    await waitFor(() => sink.at('/ok').some((r) => r.id === 'evt_edges_valid_2') || undefined, {
      what: 'an order routed while the redis destination is down',
    });
  });

  it("spaces a route's sends out to its rateLimit (4/s: a burst of 4, then one every 250 ms)", async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `evt_edges_search_${i}`);
    for (const id of ids)
      assert.equal((await handleSigned(consumer.receiver, body(id, 'search.started'))).status, 200);
    await waitFor(() => sink.at('/limited').length >= ids.length || undefined, {
      what: 'every search sent',
      timeoutMs: 20_000,
    });
    const times = sink.at('/limited').map((r) => r.at);
    const spread = Math.max(...times) - Math.min(...times);
    // 8 sends beyond the first 4 need 2 s of refill at 4/s; a clock a little off still shows ≥ 1.5 s.
    assert.ok(spread >= 1500, `12 sends at 4/s took only ${spread} ms`);
    assert.deepEqual(new Set(sink.at('/limited').map((r) => r.id)), new Set(ids), 'each sent');
  });
});
