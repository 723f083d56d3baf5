// A destination's circuit breaker with a real SQLite store and a real HTTP sink that fails, then
// recovers: consecutive failures pause the destination (alert and metric), waiting jobs spend no
// attempts during the pause, one half-open probe closes it, and the waiting jobs then go.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import type { BreakerStateChange } from '../../src/routes/breaker.ts';
import { resolveRoutes } from '../../src/routes/config.ts';
import { createRouteDispatcher, type RouteDispatcher } from '../../src/routes/dispatcher.ts';
import { sign } from '../../src/signature/sign.ts';
import type { InboxStore } from '../../src/store/inbox-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { StoreUnavailableError } from '../../src/util/errors.ts';
import { REPO, startCollector, tempDir, waitFor } from '../helpers/index.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const SKIP_FLAGGED = join(REPO, 'test', 'fixtures', 'routes', 'transforms', 'skip-flagged.ts');

/** A sink answering 500 while `failing`, else 200; every request is recorded with its time. */
async function startSink() {
  const requests: { at: number; id: string; status: number }[] = [];
  const state = { failing: true };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const status = state.failing ? 500 : 200;
      requests.push({ at: Date.now(), id: String(req.headers['idempotency-key']), status });
      res.writeHead(status);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    state,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function body(id: string, data: Record<string, unknown> = {}): Buffer {
  const example = examplePayloads['order.created'];
  return Buffer.from(JSON.stringify({ ...example, id, data: { ...example.data, ...data } }));
}

async function storeEvent(store: InboxStore, id: string, data: Record<string, unknown> = {}): Promise<void> {
  const result = await store.insertIfAbsent({
    id,
    type: 'order.created',
    environment: 'production',
    status: 'pending',
    created: 1_780_000_000,
    rawBody: body(id, data),
    deliveryId: null,
    timestampHeader: null,
    receivedAt: Date.now(),
    validationError: null,
    maxAttempts: 1,
    jobs: [{ consumer: 'route:orders', maxAttempts: 50 }],
    secretIndex: 0,
    sourceAddress: null,
  });
  assert.equal(result.outcome, 'inserted');
}

/** One http destination at `url` and the route `orders` to it, as a routes file has them. */
function routesFile(url: string) {
  return {
    destinations: { sink: { type: 'http' as const, url } },
    routes: [{ name: 'orders', match: { types: ['order.*'] }, to: 'sink' }],
  };
}

describe('route breaker on a consumer', () => {
  it('opens after breakerThreshold failures in a row: the metric reads 1, the alert goes out, the route shows open', async () => {
    const sink = await startSink();
    const alerts = await startCollector();
    const tmp = tempDir();
    const secret = 'breaker-secret';
    const consumer = createConsumer({
      secret,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger,
      retrySchedule: ['30s'],
      pollInterval: '200ms',
      breakerThreshold: 3,
      alertWebhookUrl: alerts.url,
      routes: routesFile(`${sink.url}/orders`),
    });
    try {
      await consumer.start();
      const metricLine = async () =>
        (await consumer.metrics.registry.metrics())
          .split('\n')
          .find((l) => l.startsWith('procureiq_webhooks_route_breaker_open{route="orders"}'));
      // Every configured route has both series from the start, at 0.
      assert.equal(await metricLine(), 'procureiq_webhooks_route_breaker_open{route="orders"} 0');
      assert.match(
        await consumer.metrics.registry.metrics(),
        /^procureiq_webhooks_route_queue_depth\{route="orders"\} 0$/m,
      );
      for (let i = 0; i < 3; i++) {
        const raw = body(`evt_brk_consumer_${i}`);
        const res = await consumer.receiver.handle({
          headers: {
            'content-type': 'application/json',
            'x-procureiq-signature': sign(secret, raw),
            'x-procureiq-timestamp': String(Math.floor(Date.now() / 1000)),
          },
          body: raw,
        });
        assert.equal(res.status, 200);
      }
      await waitFor(() => consumer.routeStates()[0]?.breaker === 'open', { what: 'the breaker open' });
      assert.equal(await metricLine(), 'procureiq_webhooks_route_breaker_open{route="orders"} 1');
      const text = await consumer.metrics.registry.metrics();
      // The three failed jobs wait to be retried; nothing here saturates ingest.
      assert.match(text, /^procureiq_webhooks_route_queue_depth\{route="orders"\} 3$/m);
      // Two scrapes at once each see 3, not the sum.
      for (const scrape of await Promise.all([
        consumer.metrics.registry.metrics(),
        consumer.metrics.registry.metrics(),
      ]))
        assert.match(scrape, /^procureiq_webhooks_route_queue_depth\{route="orders"\} 3$/m);
      assert.match(text, /^procureiq_webhooks_routes_yielding 0$/m);
      // Each failed send counts once (the breaker opens before the third's retry is written, so
      // wait for it), whatever the number of scrapes.
      const failed =
        /^procureiq_webhooks_route_deliveries_total\{route="orders",destination_type="http",outcome="failed"\} 3$/m;
      await waitFor(async () => failed.test(await consumer.metrics.registry.metrics()), {
        what: 'three failed sends counted',
      });
      assert.match(await consumer.metrics.registry.metrics(), failed);
      const alert = (await waitFor(
        () => alerts.received.find((a) => (a as { alert?: string }).alert === 'destination_paused'),
        { what: 'the destination_paused alert' },
      )) as Record<string, unknown>;
      assert.equal(alert.destination, 'sink');
      assert.match(
        String(alert.text),
        /destination sink failed 3 times in a row and is paused for 30s: HTTP 500/,
      );
      assert.equal(sink.requests.length, 3);

      // A reload (SIGHUP) that leaves the destination as it was keeps its breaker, and the metric.
      await consumer.reloadRoutes(resolveRoutes(routesFile(`${sink.url}/orders`)));
      assert.equal(consumer.routeStates()[0]?.breaker, 'open');
      assert.equal(await metricLine(), 'procureiq_webhooks_route_breaker_open{route="orders"} 1');
      // A destination the new file changes starts afresh, closed.
      await consumer.reloadRoutes(resolveRoutes(routesFile(`${sink.url}/v2/orders`)));
      assert.equal(consumer.routeStates()[0]?.breaker, 'closed');
      assert.equal(await metricLine(), 'procureiq_webhooks_route_breaker_open{route="orders"} 0');
    } finally {
      await consumer.close();
      await alerts.close();
      await sink.close();
      tmp.cleanup();
    }
  });
});

describe('route breaker on the dispatcher', () => {
  const PAUSE_MS = 2000;
  let sink: Awaited<ReturnType<typeof startSink>>;
  let store: SqliteStore;
  let dispatcher: RouteDispatcher | undefined;
  const tmp = tempDir();
  let changes: BreakerStateChange[] = [];

  const start = (options: { retryMs: number; transform?: string }) => {
    changes = [];
    dispatcher = createRouteDispatcher({
      store,
      logger,
      routes: resolveRoutes({
        destinations: { sink: { type: 'http', url: `${sink.url}/orders` } },
        routes: [
          {
            name: 'orders',
            match: { types: ['order.*'] },
            to: 'sink',
            ...(options.transform ? { transform: options.transform } : {}),
          },
        ],
      }),
      defaultRetryScheduleMs: Array.from({ length: 49 }, () => options.retryMs),
      pollIntervalMs: 100,
      breakerThreshold: 3,
      breakerPauseMs: PAUSE_MS,
      onBreakerChange: (_destination, change) => changes.push(change),
    });
    dispatcher.start();
    return dispatcher;
  };
  const change = (to: string, from = 0) =>
    waitFor(() => changes.slice(from).find((c) => c.to === to), {
      what: `the breaker ${to}`,
      timeoutMs: 10_000,
    });
  const jobOf = async (id: string) => (await store.get(id))?.jobs.find((j) => j.consumer === 'route:orders');

  before(async () => {
    sink = await startSink();
    store = new SqliteStore({ path: join(tmp.dir, 'inbox.db'), mode: 'thread' });
    await store.migrate();
  });
  after(async () => {
    await dispatcher?.stop();
    await store.close();
    await sink.close();
    tmp.cleanup();
  });

  it('pauses after 3 failures without spending attempts; one probe closes it; the waiting jobs then go', async () => {
    sink.state.failing = true;
    const first = Array.from({ length: 5 }, (_, i) => `evt_brk_first_${i}`);
    for (const id of first) await storeEvent(store, id);
    start({ retryMs: 100 });
    const opened = await change('open');
    assert.equal(opened.pauseMs, PAUSE_MS);
    // Every job of the failed batch has its one failed attempt recorded, and is due again soon.
    await waitFor(
      async () => {
        for (const id of first) {
          const job = await jobOf(id);
          if (job?.status !== 'retrying' || job.attempts !== 1) return false;
        }
        return true;
      },
      { what: 'the first jobs retrying after one attempt' },
    );
    // The three failures that opened the breaker spent their attempt; the rest of the batch failed
    // once it was open, so those two were given back (recorded as aborted, one attempt granted).
    const outcomes = await Promise.all(
      first.map(async (id) => {
        const detail = await store.get(id);
        const job = detail?.jobs.find((j) => j.consumer === 'route:orders');
        const attempt = detail?.attemptHistory.find((a) => a.consumer === 'route:orders');
        return {
          id,
          outcome: attempt?.outcome,
          error: attempt?.errorMessage,
          maxAttempts: job?.maxAttempts,
          nextAttemptAt: job?.nextAttemptAt ?? 0,
        };
      }),
    );
    assert.equal(outcomes.filter((o) => o.outcome === 'failed').length, 3);
    const paused = outcomes.filter((o) => o.outcome === 'aborted');
    assert.equal(paused.length, 2);
    for (const o of paused)
      assert.match(o.error ?? '', /^destination paused by its circuit breaker: HTTP 500/);
    const budget = outcomes.find((o) => o.outcome === 'failed')?.maxAttempts ?? 0;
    for (const o of paused) {
      assert.equal(o.maxAttempts, budget + 1, 'a paused job keeps its whole budget');
      // Due when the breaker probes, not at once (another instance would take it straight back).
      assert.ok(
        o.nextAttemptAt >= opened.at + PAUSE_MS - 50,
        `${o.id} due ${o.nextAttemptAt - opened.at} ms in`,
      );
    }
    const retryingSoon = outcomes.filter((o) => o.outcome === 'failed').map((o) => o.id);
    const failedRequests = sink.requests.length;
    // The sink recovers during the pause, and more events arrive.
    sink.state.failing = false;
    const later = Array.from({ length: 3 }, (_, i) => `evt_brk_later_${i}`);
    for (const id of later) await storeEvent(store, id);
    dispatcher?.wake();
    // Wait until the three failed jobs are due (their retry time has passed) while the breaker is
    // still open: they are claimable, yet nothing is claimed.
    await waitFor(
      async () => {
        for (const id of retryingSoon) {
          const job = await jobOf(id);
          if ((job?.nextAttemptAt ?? Number.POSITIVE_INFINITY) > Date.now() - 300) return false;
        }
        return true;
      },
      { what: 'the failed jobs due again' },
    );
    assert.ok(!changes.some((c) => c.to === 'half-open'), 'still paused');
    for (const id of first)
      assert.equal((await jobOf(id))?.attempts, 1, `${id} spent no attempt while paused`);
    for (const id of later) assert.equal((await jobOf(id))?.attempts, 0, `${id} waits`);
    assert.equal(sink.requests.length, failedRequests, 'nothing sent while paused');

    const halfOpen = await change('half-open');
    assert.ok(halfOpen.at - opened.at >= PAUSE_MS, `paused ${halfOpen.at - opened.at} ms`);
    const closed = await change('closed');
    const probes = sink.requests.filter((r) => r.at >= halfOpen.at && r.at <= closed.at);
    assert.equal(probes.length, 1, 'one half-open probe');
    assert.equal(probes[0]?.status, 200);

    for (const id of [...first, ...later])
      await waitFor(async () => (await jobOf(id))?.status === 'processed', { what: `${id} delivered` });
    const delivered = sink.requests.filter((r) => r.status === 200).map((r) => r.id);
    assert.deepEqual(delivered.sort(), [...first, ...later].sort(), 'each waiting job sent once');
    // No attempt started while the breaker was open.
    for (const id of [...first, ...later]) {
      const attempts = (await store.get(id))?.attemptHistory ?? [];
      const inPause = attempts.filter((a) => a.startedAt > opened.at && a.startedAt < halfOpen.at);
      assert.deepEqual(inPause, [], `${id}: no attempt during the pause`);
      assert.equal(attempts.length, first.includes(id) ? 2 : 1);
    }
    await dispatcher?.stop();
    dispatcher = undefined;
  });

  it('a probe whose claim the store refuses is handed back: the next round probes and closes it', async () => {
    sink.state.failing = true;
    for (let i = 0; i < 3; i++) await storeEvent(store, `evt_brk_refused_fail_${i}`);
    start({ retryMs: 60_000 });
    await change('open');
    // The first claim after the pause is the probe's: the store refuses it once (a database
    // restarting). Before the fix, the probe stayed out and nothing was sent again.
    const claimDue = store.claimDue.bind(store);
    let refused = 0;
    store.claimDue = async (options) => {
      if (refused === 0) {
        refused++;
        throw new StoreUnavailableError('database restarting');
      }
      return claimDue(options);
    };
    try {
      sink.state.failing = false;
      await storeEvent(store, 'evt_brk_refused_after');
      await waitFor(async () => (await jobOf('evt_brk_refused_after'))?.status === 'processed', {
        what: 'the event stored during the pause delivered',
        timeoutMs: 10_000,
      });
      assert.equal(refused, 1, 'the probe’s claim was refused once');
      assert.equal(changes.at(-1)?.to, 'closed');
    } finally {
      store.claimDue = claimDue;
      await dispatcher?.stop();
      dispatcher = undefined;
    }
  });

  it('a probe whose job the transform skips does not leave the breaker half-open forever', async () => {
    sink.state.failing = true;
    const failing = Array.from({ length: 3 }, (_, i) => `evt_brk_skip_fail_${i}`);
    for (const id of failing) await storeEvent(store, id);
    // A long retry delay: the failed jobs are not due when the probe goes, so the probe takes the
    // skipped event stored during the pause.
    start({ retryMs: 60_000, transform: SKIP_FLAGGED });
    await change('open');
    sink.state.failing = false;
    await storeEvent(store, 'evt_brk_skipped', { skip: true });
    dispatcher?.wake();
    await waitFor(async () => (await jobOf('evt_brk_skipped'))?.status === 'skipped', {
      what: 'the probe job skipped',
    });
    await storeEvent(store, 'evt_brk_after_skip');
    dispatcher?.wake();
    await waitFor(async () => (await jobOf('evt_brk_after_skip'))?.status === 'processed', {
      what: 'the next event delivered',
      timeoutMs: 5_000,
    });
    assert.equal(changes.at(-1)?.to, 'closed');
    await dispatcher?.stop();
    dispatcher = undefined;
  });

  it('a backlog of skipped jobs after an outage drains a probe per round, not one a poll', async () => {
    sink.state.failing = true;
    for (let i = 0; i < 3; i++) await storeEvent(store, `evt_brk_backlog_fail_${i}`);
    start({ retryMs: 60_000, transform: SKIP_FLAGGED });
    await change('open');
    sink.state.failing = false;
    // Each of these is a probe that never reaches the destination: handed back, the next one goes
    // at once. At one a poll (100 ms here) they would take 10 s.
    const skipped = Array.from({ length: 100 }, (_, i) => `evt_brk_backlog_skip_${i}`);
    for (const id of skipped) await storeEvent(store, id, { skip: true });
    await storeEvent(store, 'evt_brk_backlog_after');
    dispatcher?.wake();
    await waitFor(async () => (await jobOf('evt_brk_backlog_after'))?.status === 'processed', {
      what: 'the event after 100 skipped ones delivered',
      timeoutMs: 6_000,
    });
    for (const id of skipped) assert.equal((await jobOf(id))?.status, 'skipped', id);
    assert.equal(changes.at(-1)?.to, 'closed');
    await dispatcher?.stop();
    dispatcher = undefined;
  });
});
