// A batch of projection jobs that ends while the store is unreachable (a database restart) is
// marked processed once the store is back, rather than left `processing` until the lease expires.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/logger.ts';
import { openEntityReader } from '../../src/projections/read-entity.ts';
import { PROJECTIONS_CONSUMER, resolveProjectionsConfig } from '../../src/projections/registry.ts';
import { createProjectionRunner } from '../../src/projections/runner.ts';
import type { InboxStore, NewEvent } from '../../src/store/inbox-store.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { waitFor } from '../helpers/index.ts';
import {
  migratedStore,
  type Outage,
  outage,
  refusedCalls,
  refusingWhileDown,
} from '../helpers/outage-store.ts';

const config = resolveProjectionsConfig();
/** Longer than any wait below: a job that ends processed was not recovered by lease expiry. */
const LEASE_MS = 120_000;

function orderCreated(id: string): NewEvent {
  const data = { orderId: `ord_${id}`, userId: 'u1', totalAmount: 10, currency: 'EUR', itemCount: 1 };
  return newEvent(id, {
    created: 100,
    rawBody: Buffer.from(JSON.stringify({ id, type: 'order.created', version: '1.0', created: 100, data })),
    jobs: [{ consumer: PROJECTIONS_CONSUMER, maxAttempts: 3 }],
  });
}

async function projectionJob(store: InboxStore, id: string) {
  return (await store.get(id))?.jobs.find((j) => j.consumer === PROJECTIONS_CONSUMER);
}

/** A projections runner on `inner`, whose finishing writes are refused while `down` is on. */
function runnerOn(inner: InboxStore, down: Outage, pollMs: number) {
  return createProjectionRunner({
    store: refusingWhileDown(inner, down),
    logger: silentLogger(),
    config,
    retrySchedule: [0, 0],
    pollMs,
    leaseMs: LEASE_MS,
  });
}

describe('projections runner: finishing writes while the store is unreachable', () => {
  it('jobs whose completion is refused are processed once the store is back, without a failed attempt', async () => {
    const { inner, path, dispose } = await migratedStore();
    const reader = openEntityReader({ kind: 'sqlite', path });
    const down = outage(true);
    const runner = runnerOn(inner, down, 50);
    const ids = [`evt_proj_outage_a_${Date.now()}`, `evt_proj_outage_b_${Date.now()}`];
    try {
      for (const id of ids) await inner.insertIfAbsent(orderCreated(id));
      runner.start();
      await waitFor(() => refusedCalls(down, 'complete') >= 2 * ids.length, {
        what: 'each completion refused twice',
      });
      down.now = false;
      for (const id of ids) {
        const job = await waitFor(
          async () => {
            const found = await projectionJob(inner, id);
            return found?.status === 'processed' ? found : undefined;
          },
          { what: `the projections job of ${id} processed` },
        );
        assert.equal(job.attempts, 1, 'claimed once: not recovered by lease expiry');
        const rows = await reader.read('SELECT * FROM procureiq_orders WHERE order_id = ?', [`ord_${id}`]);
        assert.equal(rows[0]?.last_event_id, id);
      }
      // The outage is not the projection's failure: no retry or dead-letter was recorded for it.
      assert.equal(refusedCalls(down, 'scheduleRetry'), 0);
      assert.equal(refusedCalls(down, 'deadLetter'), 0);
    } finally {
      await runner.stop();
      await reader.close();
      await dispose();
    }
  });

  it('stop does not wait out the delay of a completion waiting for the store', async () => {
    const { inner, dispose } = await migratedStore();
    const down = outage(true);
    const runner = runnerOn(inner, down, 60_000);
    const id = `evt_proj_stop_${Date.now()}`;
    try {
      await inner.insertIfAbsent(orderCreated(id));
      runner.start();
      await waitFor(() => refusedCalls(down, 'complete') >= 1, { what: 'the completion refused' });
      const stopping = Date.now();
      // A grace longer than the bound below: stop returns because the runner's loop ended.
      await runner.stop(30_000);
      assert.ok(Date.now() - stopping < 5_000, `stop took ${Date.now() - stopping} ms`);
      // Left to its lease, not recorded as a failed projection.
      assert.equal((await projectionJob(inner, id))?.status, 'processing');
    } finally {
      await runner.stop();
      await dispose();
    }
  });
});
