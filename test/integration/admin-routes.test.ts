// The admin API's routes: GET /admin/api/routes (running state, breaker, counts, orphaned jobs),
// POST /admin/api/routes/:name/replay (only that route's job, audited), and an event's jobs in its
// detail, on a real consumer delivering to a real local HTTP server.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Consumer, createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { postSigned, SECRET, tempDir, waitFor } from '../helpers/index.ts';

const TOKEN = 'admin-routes-token-0123456789';

/** A local HTTP sink: records what each path got; `/down` answers 500 until `fixed`. */
async function startSink() {
  const received: { path: string; id: string }[] = [];
  const state = { fixed: false };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, id: String(req.headers['idempotency-key']) });
      const ok = path === '/ok' || (path === '/down' && state.fixed);
      res.writeHead(ok ? 200 : 500);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    state,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('admin API: routes', () => {
  const tmp = tempDir();
  let sink: Awaited<ReturnType<typeof startSink>>;
  let consumer: Consumer;
  let base: string;

  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field below
  const api = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${base}/admin/api${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    });
    return { status: res.status, body: await res.json() };
  };
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const routeRow = async (name: string): Promise<any> =>
    // biome-ignore lint/suspicious/noExplicitAny: as above
    (await api('/routes')).body.routes.find((r: any) => r.name === name);

  before(async () => {
    sink = await startSink();
    consumer = createConsumer({
      secret: [SECRET],
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: silentLogger(),
      adminToken: TOKEN,
      // Routes only: the live tables' own job would join these events' jobs.
      projections: 'none',
      retrySchedule: ['20ms'],
      pollInterval: '100ms',
      routes: {
        destinations: {
          ok: { type: 'http', url: `${sink.url}/ok` },
          down: { type: 'http', url: `${sink.url}/down` },
          tripped: { type: 'http', url: `${sink.url}/tripped` },
        },
        routes: [
          { name: 'orders-ok', match: { types: ['order.*'] }, to: 'ok' },
          // Its own schedule: three attempts, where the handlers' budget is two.
          { name: 'orders-down', match: { types: ['order.*'] }, to: 'down', retrySchedule: ['20ms', '20ms'] },
          // Five failures in a row open the default breaker; the sixth attempt waits for its pause.
          {
            name: 'payments-tripped',
            match: { types: ['payment.*'] },
            to: 'tripped',
            retrySchedule: ['10ms', '10ms', '10ms', '10ms', '10ms'],
          },
        ],
      },
    });
    await consumer.start();
    const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await consumer.close();
    await sink.close();
    tmp.cleanup();
  });

  it('lists each route with its destination, breaker and job counts; an event shows its jobs', async () => {
    const initial = await api('/routes');
    assert.equal(initial.status, 200);
    assert.deepEqual(
      // biome-ignore lint/suspicious/noExplicitAny: as above
      initial.body.routes.map((r: any) => [r.name, r.destination, r.destinationType, r.breaker]),
      [
        ['orders-ok', 'ok', 'http', 'closed'],
        ['orders-down', 'down', 'http', 'closed'],
        ['payments-tripped', 'tripped', 'http', 'closed'],
      ],
    );
    assert.equal(initial.body.routes[0].counts.processed, 0);

    const id = 'evt_admin_routes_order';
    const webhook = `${base}/webhooks/procureiq`;
    assert.equal((await postSigned(webhook, { ...examplePayloads['order.created'], id })).status, 200);
    await waitFor(async () => (await routeRow('orders-down'))?.counts.dead === 1, {
      what: 'orders-down dead 1',
    });
    assert.equal((await routeRow('orders-ok')).counts.processed, 1);
    assert.equal((await routeRow('orders-down')).breaker, 'closed', 'three failures do not open it');

    const { body } = await api(`/events/${id}`);
    assert.equal(body.event.status, 'dead');
    assert.deepEqual(
      // biome-ignore lint/suspicious/noExplicitAny: as above
      body.event.jobs.map((j: any) => [j.consumer, j.status, j.attempts, j.maxAttempts]),
      [
        ['route:orders-down', 'dead', 3, 3],
        ['route:orders-ok', 'processed', 1, 2],
      ],
    );
    assert.match(body.event.jobs[0].lastError, /HTTP 500/);
    assert.deepEqual(
      // biome-ignore lint/suspicious/noExplicitAny: as above
      body.event.attemptHistory.map((a: any) => a.consumer).sort(),
      ['route:orders-down', 'route:orders-down', 'route:orders-down', 'route:orders-ok'],
    );
  });

  it('replays one route: a dry run first, then only its dead job is re-sent, and it is audited', async () => {
    const id = 'evt_admin_routes_order';
    const okSends = () => sink.received.filter((r) => r.path === '/ok' && r.id === id).length;
    assert.equal(okSends(), 1);
    const dry = await api('/routes/orders-down/replay', {
      method: 'POST',
      body: JSON.stringify({ filter: { status: 'dead' } }),
    });
    assert.equal(dry.status, 200);
    assert.deepEqual(dry.body, { route: 'orders-down', dryRun: true, matching: 1, sample: [id] });

    sink.state.fixed = true;
    const run = await api('/routes/orders-down/replay', {
      method: 'POST',
      body: JSON.stringify({ filter: { status: 'dead', type: 'order.*' }, dryRun: false }),
    });
    assert.deepEqual(run.body, { route: 'orders-down', dryRun: false, matching: 1, replayed: 1 });
    await waitFor(async () => (await api(`/events/${id}`)).body.event.status === 'processed', {
      what: `${id} processed`,
    });
    assert.equal(okSends(), 1, 'the route that had delivered it did not get it again');
    const replayedJob = (await api(`/events/${id}`)).body.event.jobs.find(
      // biome-ignore lint/suspicious/noExplicitAny: as above
      (j: any) => j.consumer === 'route:orders-down',
    );
    assert.deepEqual([replayedJob.attempts, replayedJob.maxAttempts], [4, 6], "the route's own budget again");
    const row = await routeRow('orders-down');
    assert.equal(row.counts.processed, 1);
    assert.equal(row.counts.dead, 0);

    const audit = await api('/audit');
    // biome-ignore lint/suspicious/noExplicitAny: as above
    const entry = audit.body.entries.find((e: any) => e.action === 'replay_route');
    assert.deepEqual(entry?.details, {
      route: 'orders-down',
      filter: { status: 'dead', type: 'order.*' },
      matching: 1,
      replayed: 1,
    });

    // By ids: an event with no job on the route is not given one.
    const byIds = await api('/routes/payments-tripped/replay', {
      method: 'POST',
      body: JSON.stringify({ ids: [id], dryRun: false }),
    });
    assert.deepEqual(byIds.body, { route: 'payments-tripped', dryRun: false, matching: 0, replayed: 0 });
  });

  it('shows an open breaker after five failures in a row, and orphaned route jobs', async () => {
    const webhook = `${base}/webhooks/procureiq`;
    const id = 'evt_admin_routes_payment';
    assert.equal((await postSigned(webhook, { ...examplePayloads['payment.failed'], id })).status, 200);
    await waitFor(async () => (await routeRow('payments-tripped'))?.breaker === 'open', {
      what: 'payments-tripped breaker open',
    });
    const row = await routeRow('payments-tripped');
    assert.equal(row.counts.retrying, 1, 'its job waits without spending attempts');
    assert.equal((await routeRow('orders-ok')).breaker, 'closed');

    // Jobs of a route no longer in the routes (removed or renamed) are listed, not lost.
    await consumer.store.insertIfAbsent(
      newEvent('evt_admin_routes_orphan', { jobs: [{ consumer: 'route:gone', maxAttempts: 3 }] }),
    );
    const { body } = await api('/routes');
    assert.equal(body.orphaned.length, 1);
    assert.equal(body.orphaned[0].route, 'gone');
    assert.equal(body.orphaned[0].consumer, 'route:gone');
    assert.equal(body.orphaned[0].counts.pending, 1);
  });

  it('refuses bad input with a precise status and message', async () => {
    const unknown = await api('/routes/nope/replay', { method: 'POST', body: '{}' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error.message, /no route named "nope"; the routes are orders-ok, orders-down/);
    const badStatus = await api('/routes/orders-ok/replay', {
      method: 'POST',
      body: JSON.stringify({ filter: { status: 'invalid' } }),
    });
    assert.equal(badStatus.status, 400);
    assert.match(badStatus.body.error.message, /filter.status "invalid" is not a job status/);
    const both = await api('/routes/orders-ok/replay', {
      method: 'POST',
      body: JSON.stringify({ ids: ['x'], filter: {} }),
    });
    assert.equal(both.status, 400);
    assert.match(both.body.error.message, /send "ids" or "filter", not both/);
    const badIds = await api('/routes/orders-ok/replay', {
      method: 'POST',
      body: JSON.stringify({ ids: [] }),
    });
    assert.equal(badIds.status, 400);
    const notJson = await fetch(`${base}/admin/api/routes/orders-ok/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
      body: '{}',
    });
    assert.equal(notJson.status, 415);
    const get = await api('/routes/orders-ok/replay');
    assert.equal(get.status, 405);
  });
});
