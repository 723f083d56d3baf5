// An attempt that ends while the store is unreachable (a database restart) has its outcome written
// once the store is back, rather than left `processing` until its lease expires.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/logger.ts';
import { HandlerRegistry } from '../../src/worker/handlers.ts';
import { createWorker } from '../../src/worker/worker.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { capturingLogger } from '../helpers/capture-log.ts';
import { waitFor } from '../helpers/index.ts';
import { migratedStore, outage, refusedCalls, refusingWhileDown } from '../helpers/outage-store.ts';

describe('worker: outcomes written while the store is unreachable', () => {
  it('a handler that succeeds during an outage is marked processed once the store is back, without running again', async () => {
    const { inner, dispose } = await migratedStore();
    const down = outage(false);
    const registry = new HandlerRegistry([100], Number);
    const runs: number[] = [];
    registry.on('order.created', async (_event, ctx) => {
      runs.push(ctx.attempt);
      down.now = true;
    });
    const log = capturingLogger();
    const worker = createWorker({
      store: refusingWhileDown(inner, down),
      registry,
      logger: log.logger,
      pollIntervalMs: 50,
    });
    const id = `evt_outage_${Date.now()}`;
    try {
      await inner.insertIfAbsent(newEvent(id));
      worker.start();
      await waitFor(() => refusedCalls(down) >= 2, { what: 'the outcome refused twice' });
      // One warning for the outage, not one per refused write.
      assert.equal(log.text().split('cannot record attempt outcomes yet').length - 1, 1, log.text());
      down.now = false;
      await waitFor(async () => (await inner.get(id))?.status === 'processed', { what: 'processed' });
      assert.deepEqual(runs, [1]);
      assert.deepEqual(
        (await inner.get(id))?.attemptHistory.map((a) => a.outcome),
        ['succeeded'],
      );
    } finally {
      await worker.stop();
      await dispose();
    }
  });

  it('stop does not wait out the delay of an outcome waiting for the store', async () => {
    const { inner, dispose } = await migratedStore();
    const down = outage(true);
    const registry = new HandlerRegistry([100], Number);
    registry.on('order.created', async () => {});
    const worker = createWorker({
      store: refusingWhileDown(inner, down),
      registry,
      logger: silentLogger(),
      pollIntervalMs: 60_000,
    });
    try {
      await inner.insertIfAbsent(newEvent(`evt_stop_${Date.now()}`));
      worker.start();
      await waitFor(() => refusedCalls(down) >= 1, { what: 'the outcome refused' });
      const stopping = Date.now();
      await worker.stop();
      assert.ok(Date.now() - stopping < 5_000, `stop took ${Date.now() - stopping} ms`);
    } finally {
      await dispose();
    }
  });
});
