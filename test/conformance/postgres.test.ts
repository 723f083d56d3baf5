import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { dropSchema, PG_URL, uniqueSchema } from '../helpers/index.ts';
import { newEvent, storeConformance } from './store-suite.ts';

storeConformance('PostgreSQL', async () => {
  const schema = uniqueSchema();
  return {
    store: new PostgresStore({ connectionString: PG_URL, schema }),
    cleanup: () => dropSchema(schema),
  };
});

describe('PostgreSQL specifics', () => {
  const schema = uniqueSchema();
  after(() => dropSchema(schema));

  it('migrations from several instances at once apply once', async () => {
    const stores = Array.from({ length: 4 }, () => new PostgresStore({ connectionString: PG_URL, schema }));
    try {
      await Promise.all(stores.map((s) => s.migrate()));
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      const { rows } = await client.query(`SELECT version, name FROM "${schema}".schema_migrations`);
      await client.end();
      assert.deepEqual(rows, [
        { version: 1, name: 'inbox' },
        { version: 2, name: 'operations' },
        { version: 3, name: 'jobs' },
        { version: 4, name: 'projections' },
      ]);
      await stores[0]!.ping();
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('the schema refuses a status outside the vocabulary', async () => {
    const store = new PostgresStore({ connectionString: PG_URL, schema });
    await store.migrate();
    await store.insertIfAbsent(newEvent('evt_pg_check'));
    await store.close();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      await assert.rejects(
        client.query(`UPDATE "${schema}".events SET status = 'done' WHERE id = 'evt_pg_check'`),
        /violates check constraint/,
      );
    } finally {
      await client.end();
    }
  });

  it('wakes subscribers by LISTEN/NOTIFY when another instance stores a pending event', async () => {
    const a = new PostgresStore({ connectionString: PG_URL, schema });
    const b = new PostgresStore({ connectionString: PG_URL, schema });
    let woken = 0;
    const unsubscribe = b.subscribe(() => woken++);
    try {
      await a.migrate();
      // The first wake comes on connecting; wait for it, then count what the insert causes.
      for (let i = 0; i < 100 && woken === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const before = woken;
      await a.insertIfAbsent(newEvent(`evt_notify_${Date.now()}`));
      for (let i = 0; i < 100 && woken === before; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(woken > before, 'notified');
    } finally {
      await unsubscribe();
      await a.close();
      await b.close();
    }
  });

  it('names in each notification the kinds of job an insert left for a claim, and is silent when it leased them all', async () => {
    const a = new PostgresStore({ connectionString: PG_URL, schema });
    const b = new PostgresStore({ connectionString: PG_URL, schema });
    // Each wake: the kinds it names, sorted, or 'all'.
    const wakes: string[] = [];
    const unsubscribe = b.subscribe((kinds) => wakes.push(kinds ? [...kinds].sort().join(',') : 'all'));
    const next = async (what: string) => {
      for (let i = 0; i < 250 && wakes.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(wakes.length > 0, `a notification for ${what}`);
      return wakes.shift();
    };
    try {
      await a.migrate();
      assert.equal(await next('the connection'), 'all', 'woken once on connecting, to catch up');
      const id = (name: string) => `evt_kinds_${name}_${Date.now()}`;
      const job = (consumer: string) => ({ consumer, maxAttempts: 3 });
      await a.insertIfAbsent(newEvent(id('projections'), { jobs: [job('projections')] }));
      assert.equal(await next('a projections job'), 'projections');
      await a.insertIfAbsent(
        newEvent(id('routes'), { jobs: [job('route:a'), job('route:b'), job('projections')] }),
      );
      assert.equal(await next('route and projections jobs'), 'projections,routes');
      await a.insertIfAbsent(newEvent(id('handlers')));
      assert.equal(await next('an unleased handlers job'), 'handlers');
      // Its handlers job is leased to the inserting worker at once: nobody else needs waking…
      await a.insertIfAbsent(newEvent(id('leased')), { owner: 'worker-a', leaseMs: 60_000 });
      // …so the next notification is the next insert's (notifications arrive in commit order).
      await a.insertIfAbsent(newEvent(id('route'), { jobs: [job('route:c')] }));
      assert.equal(await next('a route job after a leased handlers job'), 'routes');
    } finally {
      await unsubscribe();
      await a.close();
      await b.close();
    }
  });

  it('re-establishes a dropped LISTEN connection and keeps waking the worker', async () => {
    const a = new PostgresStore({ connectionString: PG_URL, schema });
    const b = new PostgresStore({ connectionString: PG_URL, schema });
    let woken = 0;
    const unsubscribe = b.subscribe(() => woken++);
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await a.migrate();
      const until = async (check: () => boolean, what: string) => {
        for (let i = 0; i < 250 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
        assert.ok(check(), what);
      };
      await until(() => woken > 0, 'first LISTEN');
      // Cut the listener off, as a restart, a failover or an idle-connection reaper would.
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN procureiq_webhooks_due%' AND pid <> pg_backend_pid()",
      );
      assert.ok((killed.rowCount ?? 0) >= 1);
      const afterDrop = woken;
      await until(() => woken > afterDrop, 'woken once on reconnect, to catch up');
      const beforeInsert = woken;
      await a.insertIfAbsent(newEvent(`evt_after_reconnect_${Date.now()}`));
      await until(() => woken > beforeInsert, 'notified again after the reconnect');
    } finally {
      await admin.end();
      await unsubscribe();
      await a.close();
      await b.close();
    }
  });

  it('answers StoreUnavailableError, not a crash, when the server cannot be reached', async () => {
    const store = new PostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', schema });
    await assert.rejects(
      store.insertIfAbsent(newEvent('evt_unreachable')),
      (e: Error) => e.name === 'StoreUnavailableError',
    );
    await assert.rejects(store.ping(), (e: Error) => e.name === 'StoreUnavailableError');
    await store.close();
  });
});
