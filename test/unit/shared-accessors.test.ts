// Objects made per request or per attempt keep their getters on a shared prototype. An object
// literal with getters gives each object getters of its own, which V8 keeps with the object's
// shape in the old generation; every such object (and all it holds: the event, its body) then
// outlived the next scavenge and was promoted, and full GCs came every 1.5-3 s under load.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/logger.ts';
import { lazyEntity } from '../../src/projections/read-entity.ts';
import { createBodyBudget } from '../../src/receiver/body-budget.ts';
import type { ClaimedEvent } from '../../src/store/inbox-store.ts';
import { startAttempt } from '../../src/worker/attempt.ts';
import type { HandlerContext } from '../../src/worker/handlers.ts';

function claimed(id: string): ClaimedEvent {
  return {
    id,
    consumer: 'handlers',
    type: 'order.created',
    environment: 'production',
    rawBody: Buffer.from(
      JSON.stringify({ id, type: 'order.created', created: 1, data: { orderId: `ord_${id}` } }),
    ),
    created: 1,
    receivedAt: 1_700_000_000_000,
    deliveryId: `dlv_${id}`,
    attempt: 1,
    maxAttempts: 3,
    owner: 'w1',
  };
}

/** The names among `names` that `object` has as accessors of its own. */
const ownAccessors = (object: object, names: readonly string[]) =>
  names.filter((name) => Object.getOwnPropertyDescriptor(object, name)?.get !== undefined);

describe('getters shared by every object, not made per object', () => {
  it('a handler context: entity, isStale, logger and signal come from one prototype, and still work', async () => {
    const seen: HandlerContext[] = [];
    let reads = 0;
    const reader = {
      dialect: 'sqlite' as const,
      read: async () => [],
      readNow: () => {
        reads++;
        return [{ status: 'shipped', last_event_created: 5, last_stage_rank: 9, last_event_id: 'evt_z' }];
      },
      close: async () => {},
    };
    for (const id of ['evt_a', 'evt_b']) {
      const attempt = startAttempt(
        claimed(id),
        (_event, ctx) => {
          seen.push(ctx);
        },
        {
          timeoutMs: 10_000,
          eventLogger: () => silentLogger(),
          readEntity: (event) =>
            lazyEntity(reader, {
              id: event.id,
              type: event.type,
              created: event.created,
              data: event.data as Record<string, unknown>,
            }) ?? { entity: null, isStale: false },
        },
      );
      const run = await attempt.settled;
      assert.equal(run.error, undefined);
    }
    const [a, b] = seen as [HandlerContext, HandlerContext];
    assert.deepEqual(ownAccessors(a, ['entity', 'isStale', 'logger', 'signal']), []);
    assert.equal(Object.getPrototypeOf(a), Object.getPrototypeOf(b));

    assert.equal(a.eventId, 'evt_a');
    assert.equal(b.idempotencyKey, 'evt_b');
    assert.equal(a.deliveryId, 'dlv_evt_a');
    assert.equal(reads, 0, 'the row is read only when a handler asks for it');
    assert.equal(a.entity?.status, 'shipped');
    assert.equal(a.isStale, true);
    assert.equal(reads, 1, 'read once');
    assert.equal(a.signal.aborted, false);
    assert.equal(typeof a.logger.info, 'function');
    // Wrappers read through, and `sql` works detached.
    assert.equal(new Proxy(a, {}).entity?.status, 'shipped');
    assert.equal((Object.create(b) as HandlerContext).eventId, 'evt_b');
    assert.equal((Object.create(b) as HandlerContext).signal.aborted, false);
    const { sql } = a;
    sql('INSERT INTO t VALUES (?)', [1]);

    // The lazy view behind ctx.entity, too.
    const key = { id: 'evt_c', type: 'order.created', created: 1, data: { orderId: 'ord_c' } };
    const [one, two] = [lazyEntity(reader, key), lazyEntity(reader, key)] as [object, object];
    assert.deepEqual(ownAccessors(one, ['entity', 'isStale']), []);
    assert.equal(Object.getPrototypeOf(one), Object.getPrototypeOf(two));
  });

  it("a request's body account", () => {
    const budget = createBodyBudget(1000);
    const one = budget.open('10.0.0.1');
    const two = budget.open('10.0.0.2');
    assert.deepEqual(ownAccessors(one, ['held']), []);
    assert.equal(Object.getPrototypeOf(one), Object.getPrototypeOf(two));
    assert.equal(one.take(200), 'ok');
    assert.equal(one.held, 200);
    assert.equal(budget.used, 200);
    one.release();
    assert.equal(budget.used, 0);
  });
});
