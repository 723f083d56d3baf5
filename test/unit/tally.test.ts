import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Gauge, Registry } from 'prom-client';
import { LatestValues, Tally } from '../../src/ops/tally.ts';

test('a tally hands each series its count once, at the scrape after it was counted', async () => {
  const registry = new Registry();
  const tally = new Tally(['type', 'environment', 'outcome']);
  new Counter({
    name: 'deliveries_total',
    help: 'h',
    labelNames: ['type', 'environment', 'outcome'],
    registers: [registry],
    collect() {
      tally.drain((labels, n) => this.inc(labels, n));
    },
  });
  const value = async (labels: string) =>
    (await registry.metrics()).split('\n').find((l) => l.startsWith(`deliveries_total{${labels}}`));
  tally.add('order.created', 'production', 'ok');
  tally.add('order.created', 'production', 'ok');
  tally.add('order.created', 'sandbox', 'ok');
  tally.add('other', 'production', 'duplicate');
  assert.equal(
    await value('type="order.created",environment="production",outcome="ok"'),
    'deliveries_total{type="order.created",environment="production",outcome="ok"} 2',
  );
  // A second scrape adds nothing counted twice; a later count adds to the total.
  assert.match((await value('type="order.created",environment="production",outcome="ok"')) ?? '', / 2$/);
  tally.add('order.created', 'production', 'ok');
  assert.match((await value('type="order.created",environment="production",outcome="ok"')) ?? '', / 3$/);
  assert.match((await value('type="order.created",environment="sandbox",outcome="ok"')) ?? '', / 1$/);
  assert.match((await value('type="other",environment="production",outcome="duplicate"')) ?? '', / 1$/);
});

test('latest values set a gauge to the last value of each series', async () => {
  const registry = new Registry();
  const latest = new LatestValues(['environment', 'secret_index']);
  new Gauge({
    name: 'last_seconds',
    help: 'h',
    labelNames: ['environment', 'secret_index'],
    registers: [registry],
    collect() {
      latest.drain((labels, v) => this.set(labels, v));
    },
  });
  latest.set(10, 'production', '0');
  latest.set(12, 'production', '0');
  latest.set(7, 'production', '1');
  const text = await registry.metrics();
  assert.ok(text.includes('last_seconds{environment="production",secret_index="0"} 12'), text);
  assert.ok(text.includes('last_seconds{environment="production",secret_index="1"} 7'), text);
  latest.set(13, 'production', '0');
  assert.ok(
    (await registry.metrics()).includes('last_seconds{environment="production",secret_index="0"} 13'),
  );
});
