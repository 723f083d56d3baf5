// The behaviour every InboxStore must have. Each engine's test file runs this suite against its
// own implementation.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { AttemptResult, ClaimedEvent, InboxStore, NewEvent } from '../../src/store/inbox-store.ts';

export function newEvent(id: string, overrides: Partial<NewEvent> = {}): NewEvent {
  const rawBody = Buffer.from(
    JSON.stringify({ id, type: overrides.type ?? 'order.created', created: 1, data: {} }),
  );
  return {
    id,
    type: 'order.created',
    environment: 'production',
    status: 'pending',
    created: 1,
    rawBody,
    deliveryId: `dlv_${id}`,
    timestampHeader: '1711234567',
    receivedAt: Date.now(),
    validationError: null,
    maxAttempts: 3,
    secretIndex: 0,
    sourceAddress: '127.0.0.1',
    ...overrides,
  };
}

const ok = (): AttemptResult => ({ startedAt: Date.now(), finishedAt: Date.now(), outcome: 'succeeded' });
const failed = (message = 'boom'): AttemptResult => ({
  startedAt: Date.now(),
  finishedAt: Date.now(),
  outcome: 'failed',
  errorMessage: message,
  errorStack: `Error: ${message}\n    at handler`,
});

export function storeConformance(
  name: string,
  open: () => Promise<{ store: InboxStore; cleanup: () => Promise<void> }>,
) {
  describe(`InboxStore conformance: ${name}`, () => {
    let store: InboxStore;
    let cleanup: () => Promise<void>;
    let seq = 0;
    const uid = (p: string) => `${p}_${++seq}_${Math.random().toString(36).slice(2, 6)}`;

    // Every test gets a store of its own (a fresh file or schema), so none waits on another's
    // leftovers and each claim sees exactly the events its test made due.
    beforeEach(async () => {
      ({ store, cleanup } = await open());
      await store.migrate();
      await store.migrate(); // idempotent
    });
    afterEach(async () => {
      await store.close();
      await cleanup();
    });

    /** Claims the one due job, which must be the given event's. */
    async function claimOne(id: string, owner = 'w1', leaseMs = 60_000): Promise<ClaimedEvent> {
      const batch = await store.claimDue({ owner, limit: 100, leaseMs });
      assert.deepEqual(
        batch.events.map((e) => e.id),
        [id],
        `exactly ${id} is due`,
      );
      return batch.events[0] as ClaimedEvent;
    }

    it('inserts once per id and records every delivery', async () => {
      const id = uid('evt');
      assert.deepEqual(await store.insertIfAbsent(newEvent(id)), { outcome: 'inserted', claimed: null });
      assert.deepEqual(await store.insertIfAbsent(newEvent(id, { deliveryId: 'dlv_again' })), {
        outcome: 'duplicate',
        claimed: null,
      });
      const detail = await store.get(id);
      assert.ok(detail);
      assert.equal(detail.status, 'pending');
      assert.equal(detail.attempts, 0);
      assert.deepEqual(
        detail.deliveries.map((d) => [d.deliveryId, d.duplicate]),
        [
          [`dlv_${id}`, false],
          ['dlv_again', true],
        ],
      );
      const body = JSON.stringify({ id, type: 'order.created', created: 1, data: {} });
      assert.equal(Buffer.from(detail.rawBody).toString(), body);
      assert.equal(detail.bodySha256, createHash('sha256').update(body).digest('hex'));
    });

    it('keeps nothing of a rehearsal (the warm-up): answered inserted, no lease, the id still new', async () => {
      const id = uid('evt');
      const jobs = [
        { consumer: 'handlers', maxAttempts: 3 },
        { consumer: 'route:all', maxAttempts: 3 },
      ];
      const rehearsed = await store.insertIfAbsent(newEvent(id, { rehearsal: true, jobs }), {
        owner: 'local',
        leaseMs: 60_000,
      });
      assert.equal(rehearsed.outcome, 'inserted');
      assert.equal(rehearsed.claimed, null);
      assert.equal(await store.get(id), null);
      assert.deepEqual(await store.countJobs(), []);
      assert.equal((await store.claimDue({ owner: 'w1', limit: 10, leaseMs: 60_000 })).events.length, 0);
      assert.deepEqual(await store.insertIfAbsent(newEvent(id, { jobs })), {
        outcome: 'inserted',
        claimed: null,
      });
      assert.equal((await store.get(id))?.status, 'pending');
    });

    it('leases a new event in the same write when asked, and never a duplicate', async () => {
      const id = uid('evt');
      const first = await store.insertIfAbsent(newEvent(id), { owner: 'local', leaseMs: 60_000 });
      assert.equal(first.outcome, 'inserted');
      assert.equal(first.claimed?.id, id);
      assert.equal(first.claimed?.attempt, 1);
      assert.equal(first.claimed?.owner, 'local');
      const detail = await store.get(id);
      assert.equal(detail?.status, 'processing');
      assert.equal(detail?.attempts, 1);
      assert.equal(detail?.attemptHistory[0]?.outcome, 'running');
      const again = await store.insertIfAbsent(newEvent(id), { owner: 'local', leaseMs: 60_000 });
      assert.deepEqual(again, { outcome: 'duplicate', claimed: null });
      // Not claimable by others while leased; completes with its fencing token.
      const batch = await store.claimDue({ owner: 'other', limit: 100, leaseMs: 60_000 });
      assert.ok(!batch.events.some((e) => e.id === id));
      for (const e of batch.events) await store.complete(e, ok());
      assert.equal(await store.complete(first.claimed!, ok()), true);
      // Events that are not pending are never leased at insert.
      const invalid = await store.insertIfAbsent(newEvent(uid('evt'), { status: 'invalid' }), {
        owner: 'local',
        leaseMs: 1,
      });
      assert.equal(invalid.claimed, null);
    });

    it('concurrent inserts of one id store it once', async () => {
      const id = uid('evt');
      const outcomes = await Promise.all(
        Array.from({ length: 50 }, () => store.insertIfAbsent(newEvent(id))),
      );
      assert.equal(outcomes.filter((o) => o.outcome === 'inserted').length, 1);
      assert.equal((await store.get(id))?.deliveries.length, 50);
    });

    it('answers each caller with its own result when calls overlap commits', async () => {
      // Calls spread over several turns of the event loop, so some go to an idle store and some
      // queue behind a commit in flight; every promise must get the answer to its own call.
      // Inserts take a lease, so an inserted event's answer names it.
      const stored = Array.from({ length: 20 }, () => uid('evt'));
      for (const [j, id] of stored.entries())
        await store.insertIfAbsent(newEvent(id, { type: `test.s${j}` }));
      const lease = { owner: 'overlap', leaseMs: 60_000 };
      const ids = Array.from({ length: 120 }, () => uid('evt'));
      const calls: Promise<unknown>[] = [];
      for (const [i, id] of ids.entries()) {
        calls.push(store.insertIfAbsent(newEvent(id, { type: `test.t${i}` }), lease));
        if (i % 3 === 0) calls.push(store.insertIfAbsent(newEvent(id), lease));
        if (i % 7 === 0) calls.push(store.get(stored[i / 7] as string));
        if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      const results = await Promise.all(calls);
      type Inserted = { outcome: string; claimed: { id: string } | null };
      let k = 0;
      for (const [i, id] of ids.entries()) {
        // Concurrent deliveries of one id: exactly one stores it, whichever reaches the database first.
        const answers = (i % 3 === 0 ? [results[k++], results[k++]] : [results[k++]]) as Inserted[];
        const inserted = answers.filter((a) => a.outcome === 'inserted');
        assert.equal(inserted.length, 1, `one insert of ${id} stores it`);
        assert.equal(inserted[0]?.claimed?.id, id, `the answer for ${id} is about ${id}`);
        for (const a of answers.filter((x) => x.outcome !== 'inserted'))
          assert.deepEqual(a, { outcome: 'duplicate', claimed: null });
        if (i % 7 === 0) {
          const detail = results[k++] as { id: string; type: string } | null;
          assert.equal(detail?.id, stored[i / 7]);
          assert.equal(detail?.type, `test.s${i / 7}`);
        }
      }
      assert.equal(k, results.length);
    });

    it('claims due events under a lease; completes them once', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id));
      const claimed = await claimOne(id);
      assert.equal(claimed.attempt, 1);
      assert.equal(claimed.maxAttempts, 3);
      assert.equal((await store.get(id))?.status, 'processing');
      assert.equal(await store.complete(claimed, ok()), true);
      assert.equal(await store.complete(claimed, ok()), false, 'a second completion is fenced out');
      const detail = await store.get(id);
      assert.equal(detail?.status, 'processed');
      assert.equal(detail?.attemptHistory[0]?.outcome, 'succeeded');
    });

    it('does not claim unhandled or invalid events, nor retries before their time', async () => {
      const a = uid('evt');
      const b = uid('evt');
      const c = uid('evt');
      await store.insertIfAbsent(newEvent(a, { status: 'unhandled' }));
      await store.insertIfAbsent(newEvent(b, { status: 'invalid', validationError: 'x' }));
      await store.insertIfAbsent(newEvent(c));
      const claimed = await claimOne(c);
      await store.scheduleRetry(claimed, failed(), Date.now() + 60_000);
      const batch = await store.claimDue({ owner: 'w1', limit: 100, leaseMs: 60_000 });
      assert.deepEqual(
        batch.events.filter((e) => [a, b, c].includes(e.id)),
        [],
      );
      for (const e of batch.events) await store.complete(e, ok());
      assert.equal((await store.get(c))?.status, 'retrying');
      assert.ok(((await store.get(c))?.nextAttemptAt ?? 0) > Date.now());
    });

    it('a zombie whose lease expired cannot complete the event another worker took over', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id));
      const zombie = await claimOne(id, 'zombie');
      assert.equal(await store.expireLeases('zombie'), 1);
      const fresh = await claimOne(id, 'fresh');
      assert.equal(fresh.attempt, 2);
      assert.equal(await store.complete(zombie, ok()), false, 'the stale fencing token is refused');
      assert.equal(await store.scheduleRetry(zombie, failed(), Date.now()), false);
      assert.equal(await store.deadLetter(zombie, failed()), false);
      assert.equal(await store.complete(fresh, ok()), true);
      const detail = await store.get(id);
      assert.equal(detail?.status, 'processed');
      assert.deepEqual(
        detail?.attemptHistory.map((a) => a.outcome),
        ['interrupted', 'succeeded'],
      );
    });

    it('an interrupted last attempt dead-letters the event instead of looping', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id, { maxAttempts: 1 }));
      await claimOne(id, 'crashy');
      assert.equal(await store.expireLeases('crashy'), 1);
      const batch = await store.claimDue({ owner: 'w2', limit: 100, leaseMs: 60_000 });
      assert.deepEqual(batch.events, [], 'an event out of attempts is not claimed again');
      assert.deepEqual(batch.deadLettered, [
        { id, consumer: 'handlers', type: 'order.created', attempts: 1 },
      ]);
      assert.equal((await store.get(id))?.status, 'dead');

      // With deadLetterJobs, the claim that dead-letters it also gives it the jobs of its type.
      const other = uid('evt');
      await store.insertIfAbsent(newEvent(other, { maxAttempts: 1 }));
      await claimOne(other, 'crashy');
      assert.equal(await store.expireLeases('crashy'), 1);
      const withJobs = await store.claimDue({
        owner: 'w2',
        limit: 100,
        leaseMs: 60_000,
        deadLetterJobs: { 'order.created': [{ consumer: 'projections', maxAttempts: 3 }] },
      });
      assert.deepEqual(
        withJobs.deadLettered.map((d) => d.id),
        [other],
      );
      const detail = await store.get(other);
      assert.equal(detail?.status, 'dead');
      assert.deepEqual(Object.fromEntries(detail?.jobs.map((j) => [j.consumer, j.status]) ?? []), {
        handlers: 'dead',
        projections: 'pending',
      });
    });

    it('expireLeases makes leases recoverable at once', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id));
      await claimOne(id, 'gone-process:1', 60_000);
      assert.ok((await store.expireLeases('gone-process:')) >= 1);
      const again = await claimOne(id, 'w1');
      assert.equal(again.attempt, 2);
      await store.complete(again, ok());
    });

    it('retries by schedule and dead-letters with the attempt history', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id, { maxAttempts: 2 }));
      const first = await claimOne(id);
      assert.equal(await store.scheduleRetry(first, failed('first'), Date.now()), true);
      const second = await claimOne(id);
      assert.equal(second.attempt, 2);
      assert.equal(await store.deadLetter(second, failed('second')), true);
      const detail = await store.get(id);
      assert.equal(detail?.status, 'dead');
      assert.equal(detail?.attempts, 2);
      assert.equal(detail?.lastError, 'second');
      assert.deepEqual(
        detail?.attemptHistory.map((a) => [a.number, a.outcome, a.errorMessage]),
        [
          [1, 'failed', 'first'],
          [2, 'failed', 'second'],
        ],
      );
      assert.match(detail?.attemptHistory[0]?.errorStack ?? '', /at handler/);
    });

    it('stores an error holding U+0000 with U+FFFD (PostgreSQL text cannot hold it)', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id, { maxAttempts: 2 }));
      const first = await claimOne(id);
      assert.equal(await store.scheduleRetry(first, failed('HTTP 500: bad\u0000byte'), Date.now()), true);
      const detail = await store.get(id);
      assert.equal(detail?.lastError, 'HTTP 500: bad\uFFFDbyte');
      assert.equal(detail?.attemptHistory[0]?.errorMessage, 'HTTP 500: bad\uFFFDbyte');
    });

    it('release gives the lease back without spending the budget', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id, { maxAttempts: 1 }));
      const claimed = await claimOne(id);
      assert.equal(await store.release(claimed, { ...ok(), outcome: 'aborted' }), true);
      const detail = await store.get(id);
      assert.equal(detail?.status, 'retrying');
      assert.equal(detail?.maxAttempts, 2);
      const again = await claimOne(id);
      assert.equal(again.attempt, 2);
      await store.complete(again, ok());

      // Given back until a time (a paused destination's probe): not claimable before it.
      const later = uid('evt');
      await store.insertIfAbsent(newEvent(later));
      const held = await claimOne(later);
      const at = Date.now() + 60_000;
      assert.equal(await store.release(held, { ...ok(), outcome: 'aborted' }, at), true);
      const waiting = (await store.get(later))?.jobs[0];
      assert.equal(waiting?.status, 'retrying');
      assert.equal(waiting?.nextAttemptAt, at);
      assert.deepEqual((await store.claimDue({ owner: 'w', limit: 10, leaseMs: 60_000 })).events, []);
    });

    it('replays finished events as new attempts, never new events', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id));
      assert.equal(await store.replay(id, 3), 'not_replayable', 'a pending event is not replayed');
      assert.equal(await store.replay(uid('missing'), 3), 'not_found');
      const claimed = await claimOne(id);
      await store.complete(claimed, ok());
      assert.equal(await store.replay(id, 3), 'replayed');
      const detail = await store.get(id);
      assert.equal(detail?.status, 'pending');
      assert.equal(detail?.maxAttempts, 4, 'attempts so far + a fresh budget');
      const again = await claimOne(id);
      assert.equal(again.attempt, 2);
      await store.complete(again, ok());
      assert.equal((await store.list({ limit: 1000 })).filter((e) => e.id === id).length, 1);
    });

    it('discards dead letters, keeping them for dedupe', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id, { maxAttempts: 1 }));
      const claimed = await claimOne(id);
      await store.deadLetter(claimed, failed());
      assert.ok(
        (await store.list({ status: 'dead', excludeDiscarded: true, limit: 1000 })).some((e) => e.id === id),
      );
      assert.equal(await store.discard([id, uid('missing')]), 1);
      assert.ok(
        !(await store.list({ status: 'dead', excludeDiscarded: true, limit: 1000 })).some((e) => e.id === id),
      );
      assert.equal((await store.insertIfAbsent(newEvent(id))).outcome, 'duplicate');
    });

    it('marks events whose type has no handler as unhandled', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id));
      const claimed = await claimOne(id);
      assert.equal(await store.markUnhandled(claimed, ok()), true);
      assert.equal((await store.get(id))?.status, 'unhandled');
    });

    it('a handlers job ending dead or unhandled gives its event the jobs it names (its projections job), only if the lease held', async () => {
      const then = [{ consumer: 'projections', maxAttempts: 3 }];
      const jobsOf = async (id: string) =>
        Object.fromEntries((await store.get(id))?.jobs.map((j) => [j.consumer, j.status]) ?? []);
      const finishProjection = async (id: string) => {
        const batch = await store.claimDue({
          owner: 'p',
          limit: 10,
          leaseMs: 60_000,
          consumers: ['projections'],
        });
        assert.deepEqual(
          batch.events.map((e) => e.id),
          [id],
        );
        assert.equal(await store.complete(batch.events[0] as ClaimedEvent, ok()), true);
      };

      const dead = uid('evt');
      await store.insertIfAbsent(newEvent(dead, { maxAttempts: 1 }));
      assert.equal(await store.deadLetter(await claimOne(dead), failed('gave up'), then), true);
      assert.deepEqual(await jobsOf(dead), { handlers: 'dead', projections: 'pending' });
      assert.equal((await store.get(dead))?.status, 'dead');
      await finishProjection(dead);
      assert.deepEqual(await jobsOf(dead), { handlers: 'dead', projections: 'processed' });
      assert.equal((await store.get(dead))?.status, 'dead', 'the dead handler still makes the event dead');

      const unhandled = uid('evt');
      await store.insertIfAbsent(newEvent(unhandled));
      assert.equal(await store.markUnhandled(await claimOne(unhandled), ok(), then), true);
      assert.equal((await store.get(unhandled))?.status, 'unhandled', 'its projection is bookkeeping');
      await finishProjection(unhandled);
      assert.equal((await store.get(unhandled))?.status, 'unhandled');

      // A stale lease changes nothing: no job is added.
      const fenced = uid('evt');
      await store.insertIfAbsent(newEvent(fenced));
      const zombie = await claimOne(fenced, 'zombie');
      assert.equal(await store.expireLeases('zombie'), 1);
      await claimOne(fenced, 'fresh');
      assert.equal(await store.deadLetter(zombie, failed(), then), false);
      assert.equal(await store.markUnhandled(zombie, ok(), then), false);
      assert.deepEqual(await jobsOf(fenced), { handlers: 'processing' });
    });

    it('lists newest first with filters and keyset pagination', async () => {
      const family = uid('fam').replace(/_/g, '');
      const t0 = Date.now() - 100_000;
      for (let i = 0; i < 25; i++) {
        await store.insertIfAbsent(
          newEvent(`${family}_${String(i).padStart(2, '0')}`, {
            type: i % 2 ? `${family}.even` : `${family}.odd`,
            receivedAt: t0 + Math.floor(i / 2),
          }),
        );
      }
      const pages: string[] = [];
      let before: string | undefined;
      for (;;) {
        const page = await store.list({ type: `${family}.*`, limit: 7, before });
        pages.push(...page.map((e) => e.id));
        const last = page.at(-1);
        if (!last) break;
        before = last.id;
      }
      assert.equal(pages.length, 25);
      assert.equal(new Set(pages).size, 25, 'no event appears on two pages');
      assert.equal(pages[0], `${family}_24`);
      const evens = await store.list({ type: `${family}.even`, limit: 100 });
      assert.equal(evens.length, 12);
      const counts = await store.countByStatus();
      assert.ok(counts.pending >= 25);
      assert.equal(typeof counts.dead, 'number');
    });

    it('filters by environment, time range and text inside the payload', async () => {
      const marker = uid('ord');
      const t = Date.now();
      const inPayload = (id: string) =>
        Buffer.from(JSON.stringify({ id, type: 'order.created', created: 1, data: { orderId: marker } }));
      const a = uid('evt');
      const b = uid('evt');
      const c = uid('evt');
      await store.insertIfAbsent(newEvent(a, { rawBody: inPayload(a), receivedAt: t - 5000 }));
      await store.insertIfAbsent(
        newEvent(b, { rawBody: inPayload(b), environment: 'sandbox', receivedAt: t - 1000 }),
      );
      await store.insertIfAbsent(newEvent(c, { receivedAt: t - 1000 }));
      const ids = async (f: Parameters<InboxStore['list']>[0]) =>
        (await store.list({ limit: 1000, ...f })).map((e) => e.id);
      assert.deepEqual(await ids({ text: marker }), [b, a]);
      assert.deepEqual(await ids({ text: marker, environment: 'sandbox' }), [b]);
      assert.deepEqual(await ids({ text: marker, since: t - 2000 }), [b]);
      assert.deepEqual(await ids({ text: marker, until: t - 2000 }), [a]);
      assert.ok(!(await ids({ environment: 'sandbox' })).includes(c));
    });

    it('reports stats for a time window', async () => {
      const since = Date.now() - 60_000;
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id, { type: 'stats.probe' }));
      const claimed = await claimOne(id);
      await store.scheduleRetry(claimed, failed(), Date.now() + 60_000);
      const stats = await store.stats({ since });
      assert.ok(stats.byStatus.retrying >= 1);
      assert.deepEqual(
        stats.byType.filter((r) => r.type === 'stats.probe'),
        [{ type: 'stats.probe', status: 'retrying', count: 1 }],
      );
      assert.ok(stats.receivedPerMinute.some((r) => r.type === 'stats.probe' && r.count === 1));
      assert.ok(stats.failedAttemptsPerMinute.reduce((n, r) => n + r.count, 0) >= 1);
      assert.ok(stats.oldestWaitingAt !== null && stats.oldestWaitingAt <= Date.now());
      const sandbox = await store.stats({ since, environment: 'sandbox' });
      assert.ok(!sandbox.byType.some((r) => r.type === 'stats.probe'));
      // The metric's own query gives the same oldest wait, per environment too.
      assert.equal(await store.oldestWaitingAt(), stats.oldestWaitingAt);
      assert.equal(await store.oldestWaitingAt('production'), stats.oldestWaitingAt);
      assert.equal(await store.oldestWaitingAt('sandbox'), sandbox.oldestWaitingAt);
    });

    it('keeps the latest use of each secret, and an audit log', async () => {
      await store.recordSecretUse([
        { environment: 'production', secretIndex: 0, lastVerifiedAt: 2000 },
        { environment: 'production', secretIndex: 1, lastVerifiedAt: 1000 },
      ]);
      await store.recordSecretUse([{ environment: 'production', secretIndex: 0, lastVerifiedAt: 1500 }]);
      const uses = (await store.secretUsage()).filter((u) => u.environment === 'production');
      assert.deepEqual(uses, [
        { environment: 'production', secretIndex: 0, lastVerifiedAt: 2000 },
        { environment: 'production', secretIndex: 1, lastVerifiedAt: 1000 },
      ]);
      await store.audit({ at: 1, actor: 'admin@127.0.0.1', action: 'replay', details: { id: 'evt_1' } });
      await store.audit({ at: 2, actor: 'admin@127.0.0.1', action: 'discard', details: { ids: ['evt_2'] } });
      const log = await store.auditLog(2);
      assert.deepEqual(
        log.map((e) => [e.action, e.details]),
        [
          ['discard', { ids: ['evt_2'] }],
          ['replay', { id: 'evt_1' }],
        ],
      );
    });

    it('retention purges payloads and attempts of old processed events, keeping the dedupe key', async () => {
      const old = uid('evt');
      const dead = uid('evt');
      await store.insertIfAbsent(newEvent(old));
      await store.complete(await claimOne(old), ok());
      await store.insertIfAbsent(newEvent(dead, { maxAttempts: 1 }));
      await store.deadLetter(await claimOne(dead), failed());
      let purged = 0;
      for (let n = 1; n > 0; ) {
        n = await store.purgeProcessed(Date.now() + 1000, 2);
        purged += n;
      }
      assert.ok(purged >= 1);
      const detail = await store.get(old);
      assert.equal(detail?.status, 'processed');
      assert.equal(detail?.rawBody.byteLength, 0);
      assert.deepEqual(detail?.attemptHistory, []);
      assert.match(detail?.bodySha256 ?? '', /^[0-9a-f]{64}$/);
      assert.equal((await store.insertIfAbsent(newEvent(old))).outcome, 'duplicate');
      // Nothing left to run: a replay is refused (it ran, failed on the missing body, went dead).
      assert.equal(await store.replay(old, 3), 'purged');
      assert.equal((await store.get(old))?.status, 'processed');
      const deadDetail = await store.get(dead);
      assert.ok((deadDetail?.rawBody.byteLength ?? 0) > 0, 'dead letters are never purged');
      assert.equal(deadDetail?.attemptHistory.length, 1);
    });

    it('reports when the next job falls due or the next lease expires', async () => {
      assert.equal(await store.nextDueAt(), null, 'nothing waits in an empty store');
      const soon = uid('evt');
      const receivedAt = Date.now() - 1000;
      await store.insertIfAbsent(newEvent(soon, { receivedAt }));
      assert.equal(await store.nextDueAt(), receivedAt, 'a new pending event is due when received');
      const claimed = await claimOne(soon, 'w1', 60_000);
      const leaseEnd = (await store.nextDueAt()) ?? 0;
      assert.ok(leaseEnd > Date.now() + 50_000 && leaseEnd <= Date.now() + 60_000, 'the lease expiry');
      const runAt = Date.now() + 5_000;
      await store.scheduleRetry(claimed, failed(), runAt);
      assert.equal(await store.nextDueAt(), runAt, 'the retry time');
      await store.ping();
    });

    it('keeps one job per (event, consumer), each finished on its own; the event sums them up', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id));
      const detail = await store.get(id);
      assert.deepEqual(
        detail?.jobs.map((j) => [j.consumer, j.status, j.attempts]),
        [['handlers', 'pending', 0]],
      );
      assert.deepEqual(
        (await store.claimDue({ owner: 'w1', limit: 10, leaseMs: 60_000, consumers: ['route:other'] }))
          .events,
        [],
        'a claim takes only the consumers it names',
      );
      const claimed = await claimOne(id);
      assert.equal(claimed.consumer, 'handlers');
      assert.equal(
        await store.complete({ ...claimed, consumer: 'route:other' }, ok()),
        false,
        "a lease on one consumer's job never finishes another's",
      );
      assert.equal(await store.markSkipped(claimed, { ...ok(), outcome: 'skipped' }), true);
      const done = await store.get(id);
      assert.equal(done?.status, 'processed', 'a skipped job counts as done');
      assert.deepEqual(
        done?.attemptHistory.map((a) => [a.consumer, a.number, a.outcome]),
        [['handlers', 1, 'skipped']],
      );
      assert.equal(await store.replay(id, 2, 'route:missing'), 'not_replayable', 'no such job');
      assert.equal(await store.replay(id, 2, 'handlers'), 'replayed');
      assert.equal((await store.get(id))?.jobs[0]?.status, 'pending');
    });

    it('completions sharing a commit: one whose statement fails stays unfinished, its writes undone, the rest commit', async () => {
      const p = (n: number) => (store.dialect === 'sqlite' ? '?' : `$${n}`);
      const insert = (k: string) => ({
        sql: `INSERT INTO conformance_keys (k) VALUES (${p(1)})`,
        params: [k],
      });
      const ids = ['a', 'b', 'c', 'd', 'e'].map((k) => uid(`evt_${k}`));
      for (const id of ids) await store.insertIfAbsent(newEvent(id));
      const leases = new Map(
        (await store.claimDue({ owner: 'w1', limit: 10, leaseMs: 60_000 })).events.map((e) => [e.id, e]),
      );
      const lease = (i: number) => leases.get(ids[i] as string) as ClaimedEvent;
      assert.equal(leases.size, 5);
      assert.equal(
        await store.complete(lease(0), ok(), [
          { sql: 'CREATE TABLE conformance_keys (k TEXT PRIMARY KEY)', params: [] },
          insert('taken'),
        ]),
        true,
      );
      // Made at once, these share a commit (SQLite's group commit, PostgreSQL's completion batch).
      const outcomes = await Promise.allSettled([
        store.complete(lease(1), ok(), [insert('b')]),
        store.complete(lease(2), ok(), [insert('c1'), insert('taken')]),
        store.complete(lease(3), ok(), [insert('d')]),
        store.complete(lease(4), ok(), [insert('e')]),
      ]);
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
      );
      for (const i of [1, 3, 4]) assert.equal((await store.get(ids[i] as string))?.status, 'processed');
      assert.equal(
        (await store.get(ids[2] as string))?.status,
        'processing',
        'the failed completion left its job leased',
      );
      // Its first statement was undone with it: the same key goes in now.
      assert.equal(await store.complete(lease(2), ok(), [insert('c1')]), true);
      assert.equal((await store.get(ids[2] as string))?.status, 'processed');
    });

    it('counts jobs by consumer and status, or only the unfinished ones', async () => {
      const [a, b, c] = [uid('evt'), uid('evt'), uid('evt')];
      const jobs = [
        { consumer: 'handlers', maxAttempts: 3 },
        { consumer: 'route:r1', maxAttempts: 3 },
      ];
      for (const id of [a, b, c]) await store.insertIfAbsent(newEvent(id, { jobs }));
      const [first] = (
        await store.claimDue({ owner: 'w1', limit: 1, leaseMs: 60_000, consumers: ['route:r1'] })
      ).events;
      assert.ok(first);
      const [second] = (
        await store.claimDue({ owner: 'w1', limit: 1, leaseMs: 60_000, consumers: ['route:r1'] })
      ).events;
      assert.ok(second);
      assert.equal(await store.complete(second, ok()), true);
      const rows = (list: { consumer: string; status: string; count: number | string }[]) =>
        list.map((r) => [r.consumer, r.status, Number(r.count)]);
      assert.deepEqual(rows(await store.countJobs()), [
        ['handlers', 'pending', 3],
        ['route:r1', 'pending', 1],
        ['route:r1', 'processed', 1],
        ['route:r1', 'processing', 1],
      ]);
      assert.deepEqual(rows(await store.countJobs({ unfinished: true })), [
        ['handlers', 'pending', 3],
        ['route:r1', 'pending', 1],
        ['route:r1', 'processing', 1],
      ]);
    });

    it('gives events stored without a job their handlers job when replayed', async () => {
      const id = uid('evt');
      await store.insertIfAbsent(newEvent(id, { status: 'unhandled' }));
      assert.deepEqual((await store.get(id))?.jobs, []);
      assert.equal(await store.replay(id, 3), 'replayed');
      const detail = await store.get(id);
      assert.equal(detail?.status, 'pending');
      assert.deepEqual(
        detail?.jobs.map((j) => [j.consumer, j.status, j.maxAttempts]),
        [['handlers', 'pending', 3]],
      );
      const claimed = await claimOne(id);
      assert.equal(claimed.attempt, 1);
    });

    it('stores an event with several jobs at once; only the handlers job is leased at insert', async () => {
      const id = uid('evt');
      const jobs = [
        { consumer: 'handlers', maxAttempts: 3 },
        { consumer: 'route:a', maxAttempts: 2 },
        { consumer: 'route:b', maxAttempts: 5 },
      ];
      const result = await store.insertIfAbsent(newEvent(id, { jobs }), { owner: 'w1', leaseMs: 60_000 });
      assert.equal(result.claimed?.consumer, 'handlers');
      const detail = await store.get(id);
      assert.deepEqual(
        detail?.jobs.map((j) => [j.consumer, j.status, j.maxAttempts]),
        [
          ['handlers', 'processing', 3],
          ['route:a', 'pending', 2],
          ['route:b', 'pending', 5],
        ],
      );
      const routes = await store.claimDue({
        owner: 'r',
        limit: 10,
        leaseMs: 60_000,
        consumers: ['route:a', 'route:b'],
      });
      assert.deepEqual(routes.events.map((e) => e.consumer).sort(), ['route:a', 'route:b']);
      const [a, b] = [...routes.events].sort((x, y) => x.consumer.localeCompare(y.consumer));
      assert.ok(a && b && result.claimed);
      assert.equal(await store.complete(a, ok()), true);
      assert.equal(await store.deadLetter(b, failed('destination down')), true);
      assert.equal((await store.get(id))?.status, 'dead', 'any dead job makes the event dead');
      assert.equal(await store.complete(result.claimed, ok()), true);
      const dead = await store.get(id);
      assert.equal(dead?.status, 'dead');
      assert.equal(dead?.lastError, 'destination down');
      // Replaying a dead event re-opens only its dead jobs: no destination that succeeded gets it again.
      assert.equal(await store.replay(id, 2), 'replayed');
      assert.deepEqual(
        (await store.get(id))?.jobs.map((j) => [j.consumer, j.status]),
        [
          ['handlers', 'processed'],
          ['route:a', 'processed'],
          ['route:b', 'pending'],
        ],
      );
      const again = await store.claimDue({ owner: 'r', limit: 10, leaseMs: 60_000, consumers: ['route:b'] });
      assert.equal(again.events[0]?.attempt, 2);
      assert.equal(await store.complete(again.events[0] as ClaimedEvent, ok()), true);
      assert.equal((await store.get(id))?.status, 'processed', 'processed once every job is');
    });

    it('runs jobs with the same order key one at a time, in order of created, then receipt', async () => {
      const route = 'route:ordered';
      const job = (orderKey: string) => [{ consumer: route, maxAttempts: 3, orderKey }];
      // Received out of order: the later-created event arrives first.
      await store.insertIfAbsent(newEvent('k1_second', { created: 20, jobs: job('k1') }));
      await store.insertIfAbsent(newEvent('k1_first', { created: 10, jobs: job('k1') }));
      await store.insertIfAbsent(newEvent('k1_third', { created: 20, jobs: job('k1') }));
      await store.insertIfAbsent(newEvent('k2_only', { created: 30, jobs: job('k2') }));
      const claim = async () =>
        (await store.claimDue({ owner: 'r', limit: 10, leaseMs: 60_000, consumers: [route] })).events;
      const first = await claim();
      assert.deepEqual(
        first.map((e) => e.id).sort(),
        ['k1_first', 'k2_only'],
        'one per key; keys never block each other',
      );
      const k1 = first.find((e) => e.id === 'k1_first') as ClaimedEvent;
      assert.deepEqual(await claim(), [], 'the next of k1 waits while the first is in flight');
      assert.equal(await store.scheduleRetry(k1, failed(), Date.now() - 1), true);
      const retried = await claim();
      assert.deepEqual(
        retried.map((e) => e.id),
        ['k1_first'],
        'a retry keeps its place in line',
      );
      assert.equal(await store.complete(retried[0] as ClaimedEvent, ok()), true);
      const second = await claim();
      assert.deepEqual(
        second.map((e) => e.id),
        ['k1_second'],
        'same created: receipt order',
      );
      assert.equal(await store.deadLetter(second[0] as ClaimedEvent, failed()), true);
      assert.deepEqual(
        (await claim()).map((e) => e.id),
        ['k1_third'],
        'a dead job no longer blocks its key',
      );
    });
  });
}
