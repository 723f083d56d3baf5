// Fencing: a lease is held by one attempt number. When a lease expires and another instance takes
// the event over, the old holder's finishing writes must be refused even though the event is still
// `processing` (the new holder has not finished), which only the attempt-number condition catches.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AttemptResult, ClaimedEvent, InboxStore } from '../../src/store/inbox-store.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { waitFor } from '../helpers/index.ts';
import { ENGINES } from './store-engines.ts';

/** Short enough to expire while the test waits, long enough that A's claim returns first. */
const SHORT_LEASE_MS = 200;

const succeeded = (): AttemptResult => ({
  startedAt: Date.now(),
  finishedAt: Date.now(),
  outcome: 'succeeded',
});
const failed = (): AttemptResult => ({
  startedAt: Date.now(),
  finishedAt: Date.now(),
  outcome: 'failed',
  errorMessage: 'late failure',
});

/** Claims until `id` is leased to `owner`: a claim made before it is due (or free) returns nothing. */
function claim(store: InboxStore, id: string, owner: string, leaseMs: number): Promise<ClaimedEvent> {
  return waitFor(
    async () => (await store.claimDue({ owner, limit: 10, leaseMs })).events.find((e) => e.id === id),
    { what: `${owner} to lease ${id}` },
  );
}

for (const engine of ENGINES) {
  describe(`fencing: ${engine.name}`, () => {
    it('the old holder cannot finish an event whose new holder is still running it', async () => {
      const stores = await engine.open();
      try {
        const id = `evt_fenced_${Date.now()}`;
        await stores.a.insertIfAbsent(newEvent(id, { maxAttempts: 3 }));

        const first = await claim(stores.a, id, 'instance-a', SHORT_LEASE_MS);
        assert.equal(first.attempt, 1);
        // A's handler blocks past its lease; B takes the event over once the lease has expired.
        const second = await claim(stores.b, id, 'instance-b', 60_000);
        assert.equal(second.attempt, 2);

        // A's handler finishes while B's still runs: every finishing write A tries is refused.
        assert.equal(await stores.a.complete(first, succeeded()), false, 'complete');
        assert.equal(await stores.a.scheduleRetry(first, failed(), Date.now()), false, 'scheduleRetry');
        assert.equal(await stores.a.deadLetter(first, failed()), false, 'deadLetter');
        assert.equal(await stores.a.markUnhandled(first, succeeded()), false, 'markUnhandled');
        assert.equal(await stores.a.release(first, { ...succeeded(), outcome: 'aborted' }), false, 'release');

        const during = await stores.b.get(id);
        assert.equal(during?.status, 'processing', "the event is still B's");
        assert.equal(during?.attempts, 2);
        assert.equal(during?.maxAttempts, 3, "A's refused release gave no attempt back");
        assert.deepEqual(
          during?.attemptHistory.map((a) => [a.number, a.worker, a.outcome]),
          [
            [1, 'instance-a', 'interrupted'],
            [2, 'instance-b', 'running'],
          ],
          "A's attempt is recorded as interrupted, never as succeeded",
        );

        assert.equal(await stores.b.complete(second, succeeded()), true);
        const after = await stores.b.get(id);
        assert.equal(after?.status, 'processed');
        assert.deepEqual(
          after?.attemptHistory.map((a) => [a.number, a.worker, a.outcome]),
          [
            [1, 'instance-a', 'interrupted'],
            [2, 'instance-b', 'succeeded'],
          ],
        );
      } finally {
        await stores.close();
      }
    });
  });
}
