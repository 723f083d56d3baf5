// Retries start when they fall due, not at the next poll: the worker arms a timer for the earliest
// retry it knows of, whatever else woke it in between.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/logger.ts';
import { HandlerRegistry } from '../../src/worker/handlers.ts';
import { createWorker } from '../../src/worker/worker.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { waitFor } from '../helpers/index.ts';
import { ENGINES } from './store-engines.ts';

const SLOW_SCHEDULE = [300, 600, 900];
const FAST_SCHEDULE = [250, 500, 750];
/** Far longer than any gap asserted here: a retry that waits for the poll fails the test. */
const POLL_INTERVAL_MS = 10_000;
/** Room for the claim and the outcome's write around each due time. */
const SLACK_MS = 100;

for (const engine of ENGINES) {
  describe(`retry timing: ${engine.name}`, () => {
    it('each retry starts within its delay (+10% jitter), even when another retry woke the worker first', async () => {
      const stores = await engine.open();
      const registry = new HandlerRegistry(SLOW_SCHEDULE, Number);
      const starts = new Map<string, number[]>();
      const failAlways = async (_event: unknown, ctx: { eventId: string }) => {
        starts.set(ctx.eventId, [...(starts.get(ctx.eventId) ?? []), Date.now()]);
        throw new Error('downstream is down');
      };
      registry.on('order.created', failAlways);
      // Retries of this type fall due just before the other's, so the timer they arm fires first.
      registry.on('order.shipped', failAlways, { retrySchedule: FAST_SCHEDULE });
      const deadLettered = new Set<string>();
      const worker = createWorker({
        store: stores.a,
        registry,
        logger: silentLogger(),
        pollIntervalMs: POLL_INTERVAL_MS,
        // Told by the worker rather than polled: queries of the test's own would compete with its claims.
        onDeadLetter: (info) => deadLettered.add(info.id),
      });
      const slow = `evt_slow_${Date.now()}`;
      const fast = `evt_fast_${Date.now()}`;
      try {
        await stores.a.insertIfAbsent(newEvent(slow, { type: 'order.created', maxAttempts: 4 }));
        await stores.a.insertIfAbsent(newEvent(fast, { type: 'order.shipped', maxAttempts: 4 }));
        worker.start();
        await waitFor(() => deadLettered.has(slow) && deadLettered.has(fast), { what: 'both dead-lettered' });
        for (const id of [slow, fast]) assert.equal((await stores.a.get(id))?.status, 'dead');
      } finally {
        await worker.stop();
        await stores.close();
      }
      for (const [id, schedule] of [
        [slow, SLOW_SCHEDULE],
        [fast, FAST_SCHEDULE],
      ] as const) {
        const times = starts.get(id) ?? [];
        assert.equal(times.length, 4, `${id} ran ${times.length} times`);
        const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
        gaps.forEach((gap, i) => {
          const delay = schedule[i] as number;
          assert.ok(
            gap >= delay && gap <= delay * 1.1 + SLACK_MS,
            `${id}: retry ${i + 1} started ${gap}ms after the attempt before it (delay ${delay}ms); gaps ${gaps.join(', ')}`,
          );
        });
      }
    });
  });
}
