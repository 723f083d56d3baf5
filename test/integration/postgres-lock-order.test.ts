// Several instances claim and finish jobs of the same events at once (two routes of one event, on
// different instances). Every write that changes an event's row must take those rows' locks in
// one order (event id), or two of them can deadlock; PostgreSQL then aborts one, and when that one
// was a finishing write its outcome was lost: the job stayed `processing` for its whole lease
// (routes-cluster stalled 120 s on it, then sent the batch again).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { dropSchema, PG_URL, uniqueSchema, waitFor } from '../helpers/index.ts';

const ok = () => ({ startedAt: Date.now(), finishedAt: Date.now(), outcome: 'succeeded' as const });

describe('PostgreSQL: claims and finishing writes of the same events', () => {
  const schema = uniqueSchema('piq_lock_order');
  let store: PostgresStore;
  /** Sessions of the test's own: one holds row locks, one looks at them. */
  let holder: pg.Client;
  let prober: pg.Client;
  let seq = 0;

  before(async () => {
    // Its sessions are told apart from the test's own (and other tests') by application_name.
    store = new PostgresStore({ connectionString: `${PG_URL}?application_name=${schema}`, schema });
    await store.migrate();
    holder = new pg.Client({ connectionString: PG_URL });
    prober = new pg.Client({ connectionString: PG_URL });
    await holder.connect();
    await prober.connect();
    await holder.query(`SET search_path = "${schema}"`);
    await prober.query(`SET search_path = "${schema}"`);
  });
  after(async () => {
    await holder.end();
    await prober.end();
    await store.close();
    await dropSchema(schema);
  });

  /** `n` events with a job of `consumer` each, stored in one batch; ids sort as numbered. */
  async function events(n: number, consumer: string): Promise<string[]> {
    const tag = `t${seq++}`;
    const ids = Array.from({ length: n }, (_, i) => `evt_${tag}_${String(i).padStart(3, '0')}`);
    await Promise.all(
      ids.map((id) => store.insertIfAbsent(newEvent(id, { jobs: [{ consumer, maxAttempts: 3 }] }))),
    );
    return ids;
  }

  /** Until one backend of the store's pool waits for a lock. */
  async function storeBackendWaiting(): Promise<void> {
    await waitFor(
      async () => {
        const { rows } = await prober.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [schema],
        );
        return rows.length === 1 ? (rows[0] as { pid: number }).pid : undefined;
      },
      { what: 'a store backend to wait for a lock' },
    );
  }

  it('a claim locks its events in id order', async () => {
    const ids = await events(30, 'route:claim');
    const last = ids.at(-1) as string;
    // Hold the last event's row: a claim that takes its events in id order has every other one
    // locked by the time it waits for this one.
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM events WHERE id = $1 FOR UPDATE', [last]);
    const claiming = store.claimDue({ owner: 'c', limit: 100, leaseMs: 60_000, consumers: ['route:claim'] });
    try {
      await storeBackendWaiting();
      const { rows } = await prober.query<{ id: string }>(
        // SKIP LOCKED leaves out the rows another transaction holds: those are the ones the claim took.
        'SELECT id FROM events WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE SKIP LOCKED',
        [ids],
      );
      assert.deepEqual(
        rows.map((r) => r.id),
        [],
        'every event before the held one is locked by the waiting claim',
      );
    } finally {
      await holder.query('COMMIT');
    }
    const claimed = await claiming;
    assert.equal(claimed.events.length, ids.length);
    await Promise.all(claimed.events.map((job) => store.complete(job, ok())));
  });

  it('a finishing write aborted as a deadlock victim is written again, not lost', async () => {
    const [x, y] = await events(2, 'route:finish');
    const claimed = await store.claimDue({
      owner: 'a',
      limit: 10,
      leaseMs: 60_000,
      consumers: ['route:finish'],
    });
    assert.equal(claimed.events.length, 2);
    // The test's session holds y; the finish locks x, then waits for y; then the session asks for
    // x: a deadlock. The session waits longer before checking for one, so PostgreSQL aborts the
    // finishing write, as it did the instance's in routes-cluster.
    await holder.query('BEGIN');
    await holder.query("SET LOCAL deadlock_timeout = '60s'");
    await holder.query('SELECT id FROM events WHERE id = $1 FOR UPDATE', [y]);
    const finishing = Promise.all(claimed.events.map((job) => store.complete(job, ok())));
    // Settled or not, observed without an unhandled rejection.
    const settled = finishing.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await storeBackendWaiting();
    const holderLocksX = holder.query('SELECT id FROM events WHERE id = $1 FOR UPDATE', [x]);
    // The finish's deadlock check (after the server's deadlock_timeout, 1 s by default) finds the
    // cycle and aborts it; the session then gets x.
    await holderLocksX;
    await holder.query('COMMIT');
    const outcome = await settled;
    assert.ok(
      !('error' in outcome),
      `the finishing write failed: ${String((outcome as { error?: unknown }).error)}`,
    );
    assert.deepEqual(outcome.value, [true, true]);
    const { rows } = await prober.query<{ status: string }>(
      "SELECT status FROM jobs WHERE event_id = ANY($1::text[]) AND consumer = 'route:finish'",
      [[x, y]],
    );
    assert.deepEqual(
      rows.map((r) => r.status),
      ['processed', 'processed'],
    );
  });
});
