// Untrusted text (event ids, types, metadata.environment, handler errors) never forges a log line
// or a chat message; bad-signature warnings are sampled per source while metrics count them all.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { prettyFactory } from 'pino-pretty';
import { createConsumer } from '../../src/consumer.ts';
import { createLogSampler } from '../../src/logging/log-sampler.ts';
import { createAlerter } from '../../src/ops/alerts.ts';
import { createReceiver } from '../../src/receiver/receiver.ts';
import { buildDelivery, freshEvent } from '../../src/simulator/deliveries.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { capturingLogger } from '../helpers/capture-log.ts';
import { SECRET, startCollector, tempDir, waitFor } from '../helpers/index.ts';

const FORGED = '\n[09:59:00.000] FATAL: database wiped';
const SLACK = ' <!channel> <https://evil.example|Click here> & more';

/** The lines pino-pretty prints for a JSON log line, as on an operator's terminal. */
function prettyLines(line: Record<string, unknown>): string[] {
  const pretty = prettyFactory({
    colorize: false,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
  });
  return pretty(line).split('\n');
}

describe('alerts: untrusted text stays in fields and is escaped in chat text', () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  before(async () => {
    collector = await startCollector();
  });
  after(async () => {
    await collector.close();
  });

  it('a dead letter and an environment mismatch with forged lines and Slack markup', async () => {
    const log = capturingLogger();
    const alerter = createAlerter({ logger: log.logger, webhookUrl: collector.url });
    alerter.deadLetter({
      id: `evt_1${FORGED}`,
      type: `order.created${FORGED}`,
      attempts: 4,
      error: `boom${FORGED}${SLACK}`,
    });
    alerter.environmentMismatch({
      id: 'evt_2',
      type: 'order.created',
      endpoint: 'production',
      claimed: `sandbox${FORGED}${SLACK}`,
    });
    await alerter.flush();

    const lines = log.lines().filter((l) => l.alert !== undefined);
    assert.equal(lines.length, 2);
    for (const line of lines) {
      assert.doesNotMatch(String(line.msg), /evt_|FATAL|channel/, 'the message carries no untrusted text');
      for (const printed of prettyLines(line))
        assert.doesNotMatch(
          printed,
          /^\[09:59:00\.000\] FATAL/,
          `pino-pretty printed a forged line: ${printed}`,
        );
    }
    assert.equal(lines[0]?.eventId, `evt_1${FORGED}`, 'the field keeps the exact value');
    assert.equal(lines[0]?.error, `boom${FORGED}${SLACK}`);

    await waitFor(() => collector.received.length === 2, { what: 'both alerts posted' });
    for (const posted of collector.received as { text: string }[]) {
      assert.doesNotMatch(posted.text, /[\n\r]/, 'no line breaks in chat text');
      assert.doesNotMatch(posted.text, /<!channel>|<https:/, 'no Slack markup from untrusted text');
      assert.match(posted.text, /&lt;!channel&gt; &lt;https:\/\/evil\.example\|Click here&gt; &amp; more/);
      assert.match(posted.text, /\\n\[09:59:00\.000\] FATAL/);
    }
  });
});

describe('bad-signature warnings are sampled per source', () => {
  const tmp = tempDir();
  const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
  before(async () => {
    await store.migrate();
  });
  after(async () => {
    await store.close();
    tmp.cleanup();
  });

  it('the first 5 per source a minute, then one summary per source (injected clock)', async () => {
    const log = capturingLogger();
    let now = 1_000_000;
    const scheduled: (() => void)[] = [];
    const sampler = createLogSampler({
      logger: log.logger,
      now: () => now,
      schedule: (flush) => {
        scheduled.push(flush);
        return () => {};
      },
      summary: (n) => `suppressed ${n} more`,
    });
    const receiver = createReceiver({
      secrets: [SECRET],
      store,
      logger: log.logger,
      badSignatureLog: sampler,
    });
    const bad = buildDelivery(freshEvent('order.created'), SECRET, { badSignature: true });
    const send = (remoteAddress: string) =>
      receiver.handle({ headers: bad.headers, body: Buffer.from(bad.body), remoteAddress });

    for (let i = 0; i < 500; i++) assert.equal((await send('203.0.113.7')).status, 401);
    for (let i = 0; i < 3; i++) await send('198.51.100.9');
    const warnings = () => log.lines().filter((l) => l.outcome === 'bad_signature');
    assert.equal(warnings().filter((l) => l.remoteAddress === '203.0.113.7').length, 5);
    assert.equal(warnings().filter((l) => l.remoteAddress === '198.51.100.9').length, 3);
    assert.equal(scheduled.length, 1, 'one summary scheduled for the end of the minute');
    assert.equal(
      log.lines().filter((l) => l.suppressed !== undefined).length,
      0,
      'no summary within the minute',
    );

    // The next minute: its first failure logs the summary of the last one, then is logged itself.
    now += 60_000;
    await send('203.0.113.7');
    const summaries = log.lines().filter((l) => l.suppressed !== undefined);
    assert.deepEqual(
      summaries.map((l) => [l.source, l.suppressed, l.msg]),
      [['203.0.113.7', 495, 'suppressed 495 more']],
    );
    assert.equal(warnings().length, 5 + 3 + 1);
  });

  it('500 unsigned requests over HTTP: 5 warning lines, 500 counted in metrics', async () => {
    const log = capturingLogger();
    const consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'http.db')}`,
      logger: log.logger,
      worker: false,
      signatureFailuresPerMinute: 1_000_000,
    });
    try {
      const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
      for (let i = 0; i < 500; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/webhooks/procureiq`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        assert.equal(res.status, 401);
        await res.arrayBuffer();
      }
      assert.equal(log.lines().filter((l) => l.outcome === 'bad_signature').length, 5);
      const metric = await consumer.metrics.registry.getSingleMetricAsString(
        'procureiq_webhooks_deliveries_total',
      );
      assert.match(metric, /outcome="bad_signature"\} 500$/m);
    } finally {
      await consumer.close();
    }
  });
});
