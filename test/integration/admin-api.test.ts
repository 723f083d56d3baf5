import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Consumer, createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { postSigned, SECRET, startCollector, tempDir, waitFor } from '../helpers/index.ts';

const TOKEN = 'admin-token-0123456789abcdef';
const SANDBOX_SECRET = 'sandbox-secret-0123456789';

describe('admin API, metrics and sandbox over real HTTP', () => {
  const tmp = tempDir();
  let consumer: Consumer;
  let base: string;
  let webhook: string;
  let collector: Awaited<ReturnType<typeof startCollector>>;

  const api = async (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (init.token !== null) headers.authorization = `Bearer ${init.token ?? TOKEN}`;
    const res = await fetch(`${base}/admin/api${path}`, { ...init, headers });
    // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field below
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  before(async () => {
    collector = await startCollector();
    consumer = createConsumer({
      secret: [SECRET],
      sandboxSecret: SANDBOX_SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: silentLogger(),
      adminToken: TOKEN,
      retrySchedule: ['50ms'],
      alertWebhookUrl: collector.url,
    });
    consumer.on('order.created', async () => {});
    consumer.on('payment.failed', async () => {
      throw new Error('payments API down');
    });
    const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
    webhook = `${base}/webhooks/procureiq`;
  });
  after(async () => {
    await consumer.close();
    await collector.close();
    tmp.cleanup();
  });

  it('refuses without a token and with a wrong one', async () => {
    const none = await api('/events', { token: null });
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'unauthorized');
    const wrong = await api('/events', { token: 'nope-nope-nope-nope' });
    assert.equal(wrong.status, 401);
    const basic = await fetch(`${base}/admin/api/events`, { headers: { authorization: `Basic ${TOKEN}` } });
    assert.equal(basic.status, 401);
    assert.equal(basic.headers.get('www-authenticate'), 'Bearer');
  });

  it('lists and searches events, with keyset pagination', async () => {
    for (let i = 0; i < 7; i++) {
      await postSigned(webhook, {
        ...examplePayloads['order.created'],
        id: `evt_api_${i}`,
        data: { ...examplePayloads['order.created'].data, orderId: `ord_api_${i}` },
      });
    }
    await postSigned(webhook, examplePayloads['user.registered']);
    const page1 = await api('/events?type=order.*&limit=5');
    assert.equal(page1.status, 200);
    assert.equal(page1.body.events.length, 5);
    assert.equal(page1.body.events[0].id, 'evt_api_6');
    assert.ok(page1.body.next);
    const page2 = await api(`/events?type=order.*&limit=5&before=${page1.body.next}`);
    assert.deepEqual(
      page2.body.events.map((e: { id: string }) => e.id),
      ['evt_api_1', 'evt_api_0'],
    );
    assert.equal(page2.body.next, null);
    const byText = await api('/events?q=ord_api_3');
    assert.deepEqual(
      byText.body.events.map((e: { id: string }) => e.id),
      ['evt_api_3'],
    );
    const byTime = await api(
      `/events?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
    );
    assert.deepEqual(byTime.body.events, []);
    const recent = await api('/events?since=1h&environment=production&type=user.registered');
    assert.equal(recent.body.events.length, 1);
  });

  it('refuses bad input with a clear message', async () => {
    const cases: [string, RegExp][] = [
      ['/events?status=done', /status "done" is not one of pending/],
      ['/events?limit=0', /limit "0" must be a whole number from 1 to 500/],
      ['/events?since=yesterday', /since "yesterday" is not a time/],
      ['/events?environment=staging', /environment "staging" must be production or sandbox/],
      ['/events?type=order;drop', /type "order;drop" may hold/],
      ['/events?color=red', /unknown filter "color"/],
    ];
    for (const [path, message] of cases) {
      const res = await api(path);
      assert.equal(res.status, 400, path);
      assert.match(res.body.error.message, message, path);
    }
    const badJson = await fetch(`${base}/admin/api/dead-letters/discard`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: '{not json',
    });
    assert.equal(badJson.status, 400);
    const noIds = await api('/dead-letters/discard', { method: 'POST', body: JSON.stringify({ ids: [] }) });
    assert.equal(noIds.status, 400);
    assert.match(noIds.body.error.message, /"ids" must be an array/);
    assert.equal((await api('/nope')).status, 404);
    assert.equal((await api('/events/evt_missing')).status, 404);
  });

  it('shows an event with its payload, headers, deliveries and attempts', async () => {
    await postSigned(webhook, { ...examplePayloads['order.created'], id: 'evt_api_0' }); // a duplicate delivery
    await waitFor(async () => (await consumer.store.get('evt_api_0'))?.status === 'processed');
    const res = await api('/events/evt_api_0');
    assert.equal(res.status, 200);
    const e = res.body.event;
    assert.equal(e.payload.data.orderId, 'ord_api_0');
    assert.equal(typeof e.rawBody, 'string');
    assert.equal(e.deliveries.length, 2);
    assert.equal(e.deliveries[1].duplicate, true);
    assert.equal(e.attempts, 1);
    assert.equal(e.attemptHistory[0].outcome, 'succeeded');
    assert.ok('x-procureiq-delivery' in e.headers);
  });

  it('replays one event, and by filter after a dry run; audit-logs both', async () => {
    const one = await api('/events/evt_api_1/replay', { method: 'POST' });
    assert.deepEqual(one.body, { id: 'evt_api_1', outcome: 'replayed' });
    await waitFor(
      async () => {
        const e = await consumer.store.get('evt_api_1');
        return e?.status === 'processed' && e.attempts === 2;
      },
      { what: 'the replayed attempt to finish' },
    );
    // Processed again, so replayable again: exactly one answer is right.
    const again = await api('/events/evt_api_1/replay', { method: 'POST' });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { id: 'evt_api_1', outcome: 'replayed' });
    await waitFor(
      async () => {
        const e = await consumer.store.get('evt_api_1');
        return e?.status === 'processed' && e.attempts === 3;
      },
      { what: 'the second replay to finish' },
    );

    const filter = { type: 'order.created', q: 'ord_api_5' };
    const dry = await api('/replay', { method: 'POST', body: JSON.stringify({ filter }) });
    assert.deepEqual({ dryRun: dry.body.dryRun, matching: dry.body.matching }, { dryRun: true, matching: 1 });
    assert.equal((await consumer.store.get('evt_api_5'))?.attempts, 1, 'a dry run replays nothing');
    const real = await api('/replay', { method: 'POST', body: JSON.stringify({ filter, dryRun: false }) });
    assert.equal(real.body.replayed, 1);
    await waitFor(async () => (await consumer.store.get('evt_api_5'))?.attempts === 2, {
      what: 'replay by filter',
    });
    const audit = await api('/audit');
    const actions = audit.body.entries.map((e: { action: string }) => e.action);
    assert.ok(actions.includes('replay') && actions.includes('replay_by_filter'));
    assert.match(audit.body.entries[0].actor, /^admin:[0-9a-f]{8}@/);
  });

  it('dead letters: list, replay, discard', async () => {
    await postSigned(webhook, examplePayloads['payment.failed']);
    const id = examplePayloads['payment.failed'].id;
    await waitFor(async () => (await consumer.store.get(id))?.status === 'dead', { what: 'dead' });
    const list = await api('/dead-letters');
    assert.deepEqual(
      list.body.events.map((e: { id: string }) => e.id),
      [id],
    );
    const replay = await api('/dead-letters/replay', { method: 'POST', body: JSON.stringify({ ids: [id] }) });
    assert.equal(replay.body.replayed, 1);
    await waitFor(
      async () =>
        (await consumer.store.get(id))?.status === 'dead' && (await consumer.store.get(id))?.attempts === 4,
    );
    const discard = await api('/dead-letters/discard', {
      method: 'POST',
      body: JSON.stringify({ ids: [id] }),
    });
    assert.equal(discard.body.discarded, 1);
    assert.deepEqual((await api('/dead-letters')).body.events, []);
  });

  it('stats: counts, throughput, oldest waiting, signature failures', async () => {
    await postSigned(webhook, examplePayloads['order.created'], { secret: 'forged-secret' });
    const res = await api('/stats?window=1h');
    assert.equal(res.status, 200);
    assert.ok(res.body.byStatus.processed >= 7);
    assert.ok(res.body.byType.some((r: { type: string }) => r.type === 'order.created'));
    assert.ok(res.body.receivedPerMinute.length >= 1);
    assert.ok(res.body.failedAttemptsPerMinute.length >= 1);
    // Every event here has settled (earlier tests wait for it), so nothing waits.
    assert.equal((await consumer.store.stats({ since: 0 })).oldestWaitingAt, null);
    assert.equal(res.body.oldestWaitingAgeSeconds, 0);
    assert.ok(
      res.body.signatureFailuresPerMinute.reduce((n: number, r: { count: number }) => n + r.count, 0) >= 1,
    );
  });

  it('sandbox: its own endpoint and secret; a secret never verifies on the other endpoint', async () => {
    const sandbox = `${webhook}/sandbox`;
    const event = {
      ...examplePayloads['order.created'],
      id: 'evt_sandbox_1',
      metadata: { environment: 'sandbox' },
    };
    assert.equal((await postSigned(sandbox, event, { secret: SANDBOX_SECRET })).status, 200);
    assert.equal(
      (await postSigned(sandbox, { ...event, id: 'evt_sandbox_2' }, { secret: SECRET })).status,
      401,
    );
    assert.equal(
      (await postSigned(webhook, { ...event, id: 'evt_sandbox_3' }, { secret: SANDBOX_SECRET })).status,
      401,
    );
    assert.equal((await consumer.store.get('evt_sandbox_1'))?.environment, 'sandbox');
    const listed = await api('/events?environment=sandbox');
    assert.deepEqual(
      listed.body.events.map((e: { id: string }) => e.id),
      ['evt_sandbox_1'],
    );
  });

  it('an event whose metadata.environment contradicts the endpoint is flagged invalid and alerted', async () => {
    const event = {
      ...examplePayloads['order.created'],
      id: 'evt_mixed',
      metadata: { environment: 'sandbox' },
    };
    assert.equal((await postSigned(webhook, event)).status, 200);
    const stored = await consumer.store.get('evt_mixed');
    assert.equal(stored?.status, 'invalid');
    assert.match(
      stored?.validationError ?? '',
      /metadata.environment is "sandbox" but the event was delivered to the production endpoint/,
    );
    await waitFor(
      () => collector.received.some((a) => (a as { alert?: string }).alert === 'environment_mismatch'),
      {
        what: 'mismatch alert',
      },
    );
  });

  it('secrets: when each last verified a delivery', async () => {
    await waitFor(
      async () => {
        const res = await api('/secrets');
        const prod = res.body.secrets.find(
          (s: { environment: string; index: number }) => s.environment === 'production' && s.index === 0,
        );
        return prod?.lastVerifiedAt !== null && prod !== undefined;
      },
      { what: 'secret usage flushed', timeoutMs: 10_000 },
    );
    const res = await api('/secrets');
    assert.deepEqual(
      res.body.secrets.map((s: { environment: string; index: number }) => [s.environment, s.index]),
      [
        ['production', 0],
        ['sandbox', 0],
      ],
    );
  });

  it('Prometheus metrics: the series are there and move', async () => {
    const scrape = async () =>
      await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const before = await scrape();
    const value = (text: string, series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(series));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const ok =
      'procureiq_webhooks_deliveries_total{type="order.created",environment="production",outcome="ok"}';
    await postSigned(webhook, { ...examplePayloads['order.created'], id: 'evt_metrics_1' });
    await postSigned(webhook, { ...examplePayloads['order.created'], id: 'evt_metrics_1' });
    await postSigned(webhook, examplePayloads['order.created'], { secret: 'forged-secret' });
    await waitFor(async () => (await consumer.store.get('evt_metrics_1'))?.status === 'processed');
    const afterText = await scrape();
    assert.equal(value(afterText, ok), value(before, ok) + 1);
    for (const series of [
      'procureiq_webhooks_deliveries_total{type="order.created",environment="production",outcome="duplicate"}',
      'procureiq_webhooks_deliveries_total{type="none",environment="production",outcome="bad_signature"}',
      'procureiq_webhooks_signature_verified_total{environment="production",secret_index="0"}',
      'procureiq_webhooks_secret_last_verified_timestamp_seconds{environment="production",secret_index="0"}',
      'procureiq_webhooks_attempts_total{type="order.created",environment="production",outcome="succeeded"}',
      'procureiq_webhooks_attempt_duration_seconds_count{type="order.created",environment="production"}',
      'procureiq_webhooks_ack_duration_seconds_count{route="/webhooks/procureiq",status="200"}',
      'procureiq_webhooks_receive_to_handler_seconds_count',
      'procureiq_webhooks_queue_depth{status="processed"}',
    ]) {
      assert.ok(value(afterText, series) > 0, `${series} missing or zero:\n${afterText.slice(0, 300)}`);
    }
    // Nothing waits once evt_metrics_1 is processed: the gauge is there and exactly 0 (its value
    // with an event waiting is checked with the worker off, below).
    assert.match(afterText, /^procureiq_webhooks_oldest_waiting_age_seconds 0$/m);
    assert.ok(
      value(
        afterText,
        'procureiq_webhooks_ack_duration_seconds_count{route="/webhooks/procureiq",status="200"}',
      ) >
        value(
          before,
          'procureiq_webhooks_ack_duration_seconds_count{route="/webhooks/procureiq",status="200"}',
        ),
    );
  });
});

describe('admin surface switched off', () => {
  it('answers 404 when no token is configured, and serves on a separate port when asked', async () => {
    const tmp = tempDir();
    const off = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'a.db')}`,
      logger: silentLogger(),
    });
    const { port } = await off.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`http://127.0.0.1:${port}/admin/api/events`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(res.status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${port}/admin`)).status, 404);
    await off.close();

    const split = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'b.db')}`,
      logger: silentLogger(),
      adminToken: TOKEN,
      adminPort: 0,
    });
    const ports = await split.listen({ port: 0, host: '127.0.0.1' });
    assert.ok(ports.adminPort && ports.adminPort !== ports.port);
    const onMain = await fetch(`http://127.0.0.1:${ports.port}/admin/api/events`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(onMain.status, 404);
    const onAdmin = await fetch(`http://127.0.0.1:${ports.adminPort}/admin/api/events`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(onAdmin.status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${ports.adminPort}/metrics`)).status, 200);
    await split.close();
    tmp.cleanup();
  });
});

describe('admin API keyset pagination over 100k events', () => {
  it('walks deep pages without gaps or repeats', async () => {
    const tmp = tempDir();
    const consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'big.db')}`,
      logger: silentLogger(),
      adminToken: TOKEN,
      worker: false,
    });
    try {
      const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
      const { newEvent } = await import('../conformance/store-suite.ts');
      const total = 100_000;
      for (let start = 0; start < total; start += 5000) {
        await Promise.all(
          Array.from({ length: 5000 }, (_, i) => {
            const n = start + i;
            return consumer.store.insertIfAbsent(
              newEvent(`evt_big_${String(n).padStart(6, '0')}`, {
                type: n % 10 === 0 ? 'order.shipped' : 'order.created',
                status: 'unhandled',
              }),
            );
          }),
        );
      }
      const get = async (query: string) => {
        const t0 = performance.now();
        const res = await fetch(`http://127.0.0.1:${port}/admin/api/events?${query}`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        const body = (await res.json()) as { events: { id: string }[]; next: string | null };
        return { ...body, ms: performance.now() - t0 };
      };
      // Jump deep with a cursor, then walk on: each page continues exactly where the last ended.
      let cursor: string | null = 'evt_big_050000';
      const seen: string[] = [];
      const timings: number[] = [];
      for (let i = 0; i < 20 && cursor; i++) {
        const page = await get(`limit=100&before=${cursor}`);
        timings.push(page.ms);
        seen.push(...page.events.map((e) => e.id));
        cursor = page.next;
      }
      assert.equal(seen.length, 2000);
      assert.equal(seen[0], 'evt_big_049999');
      assert.equal(seen.at(-1), 'evt_big_048000');
      assert.equal(new Set(seen).size, seen.length);
      // Filtered pages deep in the table, too.
      const filtered = await get('limit=100&type=order.shipped&before=evt_big_020000');
      assert.equal(filtered.events[0]?.id, 'evt_big_019990');
      assert.equal(filtered.events.length, 100);
      timings.sort((a, b) => a - b);
      // A figure for the record, not an assertion: these machines are shared.
      process.stdout.write(
        `# keyset pages over ${total} events: median ${timings[10]?.toFixed(1)} ms, max ${timings.at(-1)?.toFixed(1)} ms; filtered deep page ${filtered.ms.toFixed(1)} ms\n`,
      );
    } finally {
      await consumer.close();
      tmp.cleanup();
    }
  });
});

describe('retention', () => {
  it('purges payloads of old processed events in the background, keeping dedupe keys and dead letters', async () => {
    const tmp = tempDir();
    const consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'r.db')}`,
      logger: silentLogger(),
      retention: '200ms',
      retrySchedule: [],
    });
    consumer.on('order.created', async () => {});
    consumer.on('payment.failed', async () => {
      throw new Error('down');
    });
    try {
      const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${port}/webhooks/procureiq`;
      await postSigned(url, examplePayloads['order.created']);
      await postSigned(url, examplePayloads['payment.failed']);
      await waitFor(
        async () => (await consumer.store.get(examplePayloads['order.created'].id))?.rawBody.byteLength === 0,
        {
          what: 'the processed payload purged',
        },
      );
      const purged = await consumer.store.get(examplePayloads['order.created'].id);
      assert.equal(purged?.status, 'processed');
      assert.deepEqual(purged?.attemptHistory, []);
      assert.deepEqual((await postSigned(url, examplePayloads['order.created'])).body, {
        status: 'duplicate',
      });
      const dead = await consumer.store.get(examplePayloads['payment.failed'].id);
      assert.equal(dead?.status, 'dead');
      assert.ok((dead?.rawBody.byteLength ?? 0) > 0);
    } finally {
      await consumer.close();
      tmp.cleanup();
    }
  });
});

describe('with the worker off: what waits stays waiting', () => {
  const tmp = tempDir();
  let consumer: Consumer;
  let base: string;
  const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

  before(async () => {
    consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: silentLogger(),
      adminToken: TOKEN,
      worker: false,
    });
    const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await consumer.close();
    tmp.cleanup();
  });

  it('oldest waiting age, in /stats and in /metrics, counts from the received time', async () => {
    const receivedAt = Date.now() - 90_000;
    await consumer.store.insertIfAbsent(newEvent('evt_old_1', { receivedAt }));
    await consumer.store.insertIfAbsent(newEvent('evt_old_2', { receivedAt: receivedAt + 30_000 }));
    const before = Date.now();
    const stats = (await (await fetch(`${base}/admin/api/stats`, { headers: auth })).json()) as {
      oldestWaitingAgeSeconds: number;
    };
    const metrics = await (await fetch(`${base}/metrics`, { headers: auth })).text();
    const elapsed = (Date.now() - before) / 1000;
    const gauge = Number(/^procureiq_webhooks_oldest_waiting_age_seconds (\S+)$/m.exec(metrics)?.[1]);
    // 90 s old, plus however long the requests took (rounded to whole seconds in /stats).
    assert.ok(
      stats.oldestWaitingAgeSeconds >= 90 && stats.oldestWaitingAgeSeconds <= 91 + elapsed,
      `oldestWaitingAgeSeconds ${stats.oldestWaitingAgeSeconds}`,
    );
    assert.ok(gauge >= 90 && gauge <= 90 + elapsed + 0.5, `gauge ${gauge}`);
  });

  it('a pending event is not replayable: 409, and the message says why', async () => {
    const res = await fetch(`${base}/admin/api/events/evt_old_1/replay`, { method: 'POST', headers: auth });
    assert.equal(res.status, 409);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'not_replayable');
    assert.match(
      body.error.message,
      /event evt_old_1 is pending; only processed, dead, invalid or unhandled/,
    );
    assert.equal((await consumer.store.get('evt_old_1'))?.attempts, 0);
  });
});

describe('delivery metrics: every outcome label, and type="other"', () => {
  const tmp = tempDir();
  let consumer: Consumer;
  let base: string;
  let webhook: string;

  before(async () => {
    consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: silentLogger(),
      maxBodyBytes: 4096,
      metricsPublic: true,
    });
    consumer.on('order.created', async () => {});
    const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
    webhook = `${base}/webhooks/procureiq`;
  });
  after(async () => {
    await consumer.close();
    tmp.cleanup();
  });

  it('counts ok, duplicate, invalid, unhandled, bad_signature, bad_request, too_large, unsupported_media_type, unavailable', async () => {
    const order = { ...examplePayloads['order.created'], id: 'evt_labels_1' };
    assert.equal((await postSigned(webhook, order)).status, 200); // ok
    assert.equal((await postSigned(webhook, order)).status, 200); // duplicate
    const mismatch = { ...order, id: 'evt_labels_2', metadata: { environment: 'sandbox' } };
    assert.equal((await postSigned(webhook, mismatch)).status, 200); // invalid
    const unknown = { ...order, id: 'evt_labels_3', type: 'widget.spun' };
    assert.equal((await postSigned(webhook, unknown)).status, 200); // unhandled, type other
    assert.equal((await postSigned(webhook, order, { secret: 'forged-secret' })).status, 401);
    assert.equal((await postSigned(webhook, '{not json')).status, 400);
    assert.equal(
      (await postSigned(webhook, { ...order, id: 'evt_labels_4', pad: 'x'.repeat(5000) })).status,
      413,
    );
    assert.equal(
      (await postSigned(webhook, order, { headers: { 'content-type': 'text/plain' } })).status,
      415,
    );
    const text = await (await fetch(`${base}/metrics`)).text();
    const count = (labels: string) => {
      const line = text
        .split('\n')
        .find((l) => l.startsWith(`procureiq_webhooks_deliveries_total{${labels}}`));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const expected: [string, number][] = [
      ['type="order.created",environment="production",outcome="ok"', 1],
      ['type="order.created",environment="production",outcome="duplicate"', 1],
      ['type="order.created",environment="production",outcome="invalid"', 1],
      ['type="other",environment="production",outcome="unhandled"', 1],
      ['type="none",environment="production",outcome="bad_signature"', 1],
      ['type="none",environment="production",outcome="bad_request"', 1],
      ['type="none",environment="production",outcome="too_large"', 1],
      ['type="none",environment="production",outcome="unsupported_media_type"', 1],
    ];
    for (const [labels, n] of expected) assert.equal(count(labels), n, `${labels}\n${text.slice(0, 2000)}`);
    assert.doesNotMatch(text, /widget\.spun/, 'an unknown type never becomes a label value');

    // The store goes away under the running server: the delivery is refused as unavailable. The
    // scrape itself needs the store (queue depth), so read the counter from the registry.
    await consumer.store.close();
    assert.equal((await postSigned(webhook, { ...order, id: 'evt_labels_5' })).status, 503);
    const counter = await consumer.metrics.registry.getSingleMetricAsString(
      'procureiq_webhooks_deliveries_total',
    );
    assert.match(counter, /\{type="order.created",environment="production",outcome="unavailable"\} 1$/m);
  });
});
