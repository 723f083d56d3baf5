// A worker leases more events than it runs at once (its queue), and leases are not renewed. With
// slow handlers and a backlog, queued events outlived their leases: the next claim took them back
// (an `interrupted` attempt), so events ran twice, and were dead-lettered without ever failing. An
// event that can no longer start in time on its lease is given back and claimed afresh. And a
// handler that succeeded is never counted as failed because the store could not take its outcome.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/logger.ts';
import type { InboxStore } from '../../src/store/inbox-store.ts';
import { StoreUnavailableError } from '../../src/util/errors.ts';
import { HandlerRegistry } from '../../src/worker/handlers.ts';
import { createWorker } from '../../src/worker/worker.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { waitFor } from '../helpers/index.ts';
import { migratedStore } from '../helpers/outage-store.ts';

describe('worker queue and leases', () => {
  it('runs each event once when queued events would outlive their leases', async () => {
    // The defaults' shape scaled down 60×: a 500 ms timeout, leases of 1.5 s, handlers of 250 ms
    // one at a time, so 20 queued events need 5 s to start.
    const { inner: store, dispose } = await migratedStore();
    const ids = Array.from({ length: 20 }, (_, i) => `evt_queue_${String(i).padStart(2, '0')}`);
    for (const id of ids) await store.insertIfAbsent(newEvent(id, { type: 'order.created', maxAttempts: 2 }));
    const registry = new HandlerRegistry([100], Number);
    const runs = new Map<string, number>();
    registry.on('order.created', async (_event, ctx) => {
      runs.set(ctx.eventId, (runs.get(ctx.eventId) ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, 250));
    });
    const dead: string[] = [];
    const worker = createWorker({
      store,
      registry,
      logger: silentLogger(),
      concurrency: 1,
      handlerTimeoutMs: 500,
      leaseMs: 1500,
      pollIntervalMs: 100,
      onDeadLetter: (info) => dead.push(`${info.id}: ${info.error}`),
    });
    worker.start();
    try {
      await waitFor(
        async () => {
          for (const id of ids) if ((await store.get(id))?.status !== 'processed') return false;
          return true;
        },
        { what: 'all 20 events processed', timeoutMs: 30_000 },
      );
    } finally {
      await worker.stop(1000);
    }
    assert.deepEqual(dead, []);
    assert.deepEqual(
      [...runs].filter(([, n]) => n > 1),
      [],
      'no handler ran twice',
    );
    assert.equal(runs.size, 20);
    await dispose();
  });

  it('a success whose outcome the store cannot take (at shutdown) is not a failure: no dead letter', async () => {
    const { inner, dispose } = await migratedStore();
    // The finishing write refused once, as at shutdown when the store's retries give up.
    let refusals = 1;
    const store = new Proxy(inner, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        if (key === 'complete')
          return (...args: unknown[]) =>
            refusals-- > 0
              ? Promise.reject(new StoreUnavailableError('connection reset'))
              : value.apply(target, args);
        return value.bind(target);
      },
    }) as InboxStore;
    const id = 'evt_success_unrecorded';
    await inner.insertIfAbsent(newEvent(id, { type: 'order.created', maxAttempts: 1 }));
    const registry = new HandlerRegistry([], Number);
    let started = false;
    registry.on('order.created', async () => {
      started = true;
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    const dead: string[] = [];
    const worker = createWorker({
      store,
      registry,
      logger: silentLogger(),
      pollIntervalMs: 50,
      onDeadLetter: (info) => dead.push(info.id),
    });
    worker.start();
    await waitFor(() => started, { what: 'the handler started' });
    await worker.stop(5000);
    const detail = await inner.get(id);
    assert.deepEqual(dead, [], 'no dead letter');
    assert.equal(detail?.status, 'processing', 'left to its lease, to run again (at least once)');
    assert.deepEqual(
      detail?.attemptHistory.filter((a) => a.outcome === 'failed'),
      [],
    );
    await dispose();
  });

  it('an event whose last lease ran out is dead-lettered with its attempts in the alert', async () => {
    const { inner: store, dispose } = await migratedStore();
    await store.insertIfAbsent(newEvent('evt_lease_lost', { type: 'order.created', maxAttempts: 1 }));
    // Leased by a worker that is gone: its one attempt ends when the lease does.
    const { events } = await store.claimDue({ owner: 'gone', limit: 1, leaseMs: 1 });
    assert.equal(events.length, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const registry = new HandlerRegistry([], Number);
    registry.on('order.created', async () => {});
    const dead: { id: string; attempts: number }[] = [];
    const worker = createWorker({
      store,
      registry,
      logger: silentLogger(),
      pollIntervalMs: 50,
      onDeadLetter: (info) => dead.push({ id: info.id, attempts: info.attempts }),
    });
    worker.start();
    try {
      await waitFor(() => dead.length === 1, { what: 'the dead letter alert' });
    } finally {
      await worker.stop(1000);
    }
    assert.deepEqual(dead, [{ id: 'evt_lease_lost', attempts: 1 }], 'not attempts: 0');
    await dispose();
  });
});
