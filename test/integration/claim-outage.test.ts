// While the store refuses claims (a database restart), the worker claims again only after its
// backoff, whatever else asks it to claim (a refused delivery, a claim that just failed); once the
// store is back, a stored delivery is claimed at once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/logger.ts';
import type { InboxStore } from '../../src/store/inbox-store.ts';
import { StoreUnavailableError } from '../../src/util/errors.ts';
import { HandlerRegistry } from '../../src/worker/handlers.ts';
import { storeBackoff } from '../../src/worker/store-backoff.ts';
import { createWorker } from '../../src/worker/worker.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { capturingLogger } from '../helpers/capture-log.ts';
import { waitFor } from '../helpers/index.ts';
import { migratedStore } from '../helpers/outage-store.ts';

interface Outage {
  now: boolean;
  /** When each claim was refused (epoch ms, when it was asked for). */
  refusedClaims: number[];
}

/** `store` whose claims fail as unreachable while `down.now` is true. */
function refusingClaims(store: InboxStore, down: Outage): InboxStore {
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      if (key !== 'claimDue') return value.bind(target);
      return (...args: unknown[]) => {
        if (!down.now) return value.apply(target, args);
        down.refusedClaims.push(Date.now());
        // Refused on a later turn, as a refused connection is: a claim loop cannot starve the test.
        const refused = new StoreUnavailableError('PostgreSQL is unreachable: connect ECONNREFUSED');
        return new Promise((_, reject) => setImmediate(() => reject(refused)));
      };
    },
  });
}

describe('worker: claims while the store is unreachable', () => {
  it('refused claims are spaced by the backoff, while refused deliveries keep asking for one', async () => {
    const { inner, dispose } = await migratedStore();
    const down: Outage = { now: true, refusedClaims: [] };
    const pollIntervalMs = 100;
    const worker = createWorker({
      store: refusingClaims(inner, down),
      registry: new HandlerRegistry([100], Number),
      logger: silentLogger(),
      pollIntervalMs,
    });
    // What the receiver does for each delivery the store refuses: reserve a lease, give it back.
    const deliveries = setInterval(() => {
      if (worker.reserve()) worker.cancel();
    }, 2);
    try {
      worker.start();
      await waitFor(() => down.refusedClaims.length >= 4, { what: 'four refused claims' });
      const gaps = down.refusedClaims.slice(1, 4).map((at, i) => at - (down.refusedClaims[i] as number));
      for (const [i, gap] of gaps.entries()) {
        const backoff = storeBackoff(pollIntervalMs, i + 1);
        assert.ok(
          gap >= backoff,
          `claim ${i + 2} came ${gap} ms after the one before, not after ${backoff} ms`,
        );
      }
    } finally {
      clearInterval(deliveries);
      await worker.stop();
      await dispose();
    }
  });

  it('a delivery stored once the store is back is claimed at once, not after the backoff', async () => {
    const { inner, dispose } = await migratedStore();
    const down: Outage = { now: true, refusedClaims: [] };
    const registry = new HandlerRegistry([100], Number);
    const handled: string[] = [];
    registry.on('order.created', async (event) => {
      handled.push(event.id);
    });
    const log = capturingLogger();
    const worker = createWorker({
      store: refusingClaims(inner, down),
      registry,
      logger: log.logger,
      // The backoff after the first refused claim is 2 minutes.
      pollIntervalMs: 60_000,
    });
    const id = `evt_back_${Date.now()}`;
    try {
      worker.start();
      await waitFor(() => log.lines().some((l) => l.msg === 'worker could not claim events'), {
        what: 'a claim refused and logged',
      });
      down.now = false;
      // The receiver's path while due events may wait: stored without a lease, then a wake-up.
      const lease = worker.reserve();
      if (lease) worker.cancel();
      assert.equal(lease, undefined, 'a claim is due: new events are stored pending');
      await inner.insertIfAbsent(newEvent(id));
      worker.wake();
      await waitFor(async () => (await inner.get(id))?.status === 'processed', {
        what: 'processed',
        timeoutMs: 5_000,
      });
      assert.deepEqual(handled, [id]);
      assert.equal(down.refusedClaims.length, 1);
    } finally {
      await worker.stop();
      await dispose();
    }
  });
});
