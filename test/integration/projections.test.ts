// The projections consumer on both engines: events stored with a projections job are projected by
// the runner in the transaction that marks the job processed (or, on SQLite, by the insert itself,
// the job being the fallback when that write fails); out-of-order, tied and replayed
// events give the rows the rules promise; invalid events are never projected; a failing write is
// retried then dead-lettered; a rebuild gives identical tables and resumes after interruption.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { silentLogger } from '../../src/logging/logger.ts';
import { projectionJobs } from '../../src/projections/jobs.ts';
import { type EntityReader, openEntityReader, readEntity } from '../../src/projections/read-entity.ts';
import { type ProjectionDatabase, rebuildProjections } from '../../src/projections/rebuild.ts';
import { ENTITIES, PROJECTIONS_CONSUMER, resolveProjectionsConfig } from '../../src/projections/registry.ts';
import { createProjectionRunner, type ProjectionRunner } from '../../src/projections/runner.ts';
import { projectionStatements } from '../../src/projections/statements.ts';
import type { InboxStore, NewEvent } from '../../src/store/inbox-store.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { dropSchema, PG_URL, tempDir, uniqueSchema, waitFor } from '../helpers/index.ts';

const config = resolveProjectionsConfig();

interface Engine {
  name: string;
  open: () => Promise<{
    store: InboxStore;
    reader: EntityReader;
    direct: () => Promise<{
      target: ProjectionDatabase;
      exec: (sql: string) => Promise<void>;
      close: () => Promise<void>;
    }>;
    close: () => Promise<void>;
  }>;
}

const engines: Engine[] = [
  {
    name: 'SQLite',
    open: async () => {
      const tmp = tempDir();
      const path = join(tmp.dir, 'inbox.db');
      const store = new SqliteStore({ path });
      await store.migrate();
      const reader = openEntityReader({ kind: 'sqlite', path });
      return {
        store,
        reader,
        direct: async () => {
          const db = new Database(path);
          db.pragma('busy_timeout = 5000');
          return {
            target: { dialect: 'sqlite', db },
            exec: async (sql) => void db.exec(sql),
            close: async () => void db.close(),
          };
        },
        close: async () => {
          await reader.close();
          await store.close();
          tmp.cleanup();
        },
      };
    },
  },
  {
    name: 'PostgreSQL',
    open: async () => {
      const schema = uniqueSchema();
      const store = new PostgresStore({ connectionString: PG_URL, schema });
      await store.migrate();
      const reader = openEntityReader({ kind: 'postgres', url: PG_URL, schema });
      return {
        store,
        reader,
        direct: async () => {
          const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
          await client.connect();
          return {
            target: { dialect: 'postgres', client },
            exec: async (sql) => void (await client.query(sql)),
            close: () => client.end(),
          };
        },
        close: async () => {
          await reader.close();
          await store.close();
          await dropSchema(schema);
        },
      };
    },
  },
];

let seq = 0;
function newEvent(
  type: string,
  created: number,
  data: Record<string, unknown>,
  options: { id?: string; maxAttempts?: number } = {},
): NewEvent {
  const id = options.id ?? `evt_${process.pid}_${++seq}`;
  const body = { id, type, version: '1.0', created, data };
  const event: NewEvent = {
    id,
    type,
    environment: 'production',
    status: 'pending',
    created,
    rawBody: Buffer.from(JSON.stringify(body)),
    deliveryId: null,
    timestampHeader: null,
    receivedAt: 1_700_000_000_000 + seq,
    validationError: null,
    maxAttempts: options.maxAttempts ?? 3,
    secretIndex: 0,
    sourceAddress: null,
  };
  return { ...event, jobs: projectionJobs(event, config, options.maxAttempts ?? 3) };
}

/** The event with the projection writes the receiver adds for a store that projects at insert. */
function withProjection(event: NewEvent, store: InboxStore): NewEvent {
  const data = JSON.parse(Buffer.from(event.rawBody).toString('utf8')).data;
  return {
    ...event,
    projection: projectionStatements(
      store.dialect,
      {
        id: event.id,
        type: event.type,
        created: event.created,
        environment: event.environment,
        receivedAt: event.receivedAt,
        data,
      },
      config,
    ),
  };
}

async function projected(store: InboxStore, id: string, status = 'processed') {
  return waitFor(
    async () => {
      const detail = await store.get(id);
      const job = detail?.jobs.find((j) => j.consumer === PROJECTIONS_CONSUMER);
      return job?.status === status ? detail : undefined;
    },
    { what: `projections job of ${id} to be ${status}` },
  );
}

async function tables(read: EntityReader['read']): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  // procureiq_searches is dropped by the dead-letter test.
  for (const entity of ENTITIES.filter((e) => e.name !== 'searches'))
    out[entity.table] = await read(`SELECT * FROM ${entity.table} ORDER BY ${entity.key.column}`, []);
  out.procureiq_product_rejections = await read(
    'SELECT * FROM procureiq_product_rejections ORDER BY merchant_product_id',
    [],
  );
  return out;
}

for (const engine of engines) {
  describe(`projections on ${engine.name}`, () => {
    let opened: Awaited<ReturnType<Engine['open']>>;
    let runner: ProjectionRunner;
    /** The runner's dead letters, as the alerter gets them. */
    const deadLetters: { id: string; attempts: number; error: string }[] = [];

    before(async () => {
      opened = await engine.open();
      runner = createProjectionRunner({
        store: opened.store,
        logger: silentLogger(),
        config,
        retrySchedule: [0],
        pollMs: 50,
        onDeadLetter: (info) => deadLetters.push(info),
      });
      runner.start();
    });
    after(async () => {
      await runner.stop(5000);
      await opened.close();
    });

    const row = async (table: string, key: string, value: string) =>
      (
        await opened.reader.read(
          `SELECT * FROM ${table} WHERE ${key} = ${opened.reader.dialect === 'sqlite' ? '?' : '$1'}`,
          [value],
        )
      )[0];

    test('order.shipped after order.delivered keeps delivered and fills the shipping columns', async () => {
      const orderId = `ord_late_${engine.name}`;
      const created = newEvent('order.created', 100, {
        orderId,
        userId: 'u1',
        totalAmount: 10,
        currency: 'EUR',
        itemCount: 2,
      });
      const delivered = newEvent('order.delivered', 300, {
        orderId,
        deliveredAt: '2026-05-03T14:22:19.000Z',
      });
      const shipped = newEvent('order.shipped', 200, {
        orderId,
        trackingNumber: 'DHL-1',
        carrierId: 'dhl',
        estimatedDelivery: '2026-05-03',
      });
      for (const e of [created, delivered, shipped]) {
        await opened.store.insertIfAbsent(e);
        runner.wake();
        await projected(opened.store, e.id);
      }
      const r = await row('procureiq_orders', 'order_id', orderId);
      assert.equal(r?.status, 'delivered');
      assert.equal(r?.tracking_number, 'DHL-1');
      assert.equal(r?.carrier_id, 'dhl');
      assert.equal(r?.shipped_at, new Date(200_000).toISOString());
      assert.equal(r?.delivered_at, '2026-05-03T14:22:19.000Z');
      assert.equal(r?.last_event_id, delivered.id);
      // Fields the winning event does not carry keep their values.
      assert.equal(r?.total_amount, 10);
      assert.equal(r?.user_id, 'u1');

      // A replay of the late event changes nothing.
      assert.equal(await opened.store.replay(shipped.id, 3, PROJECTIONS_CONSUMER), 'replayed');
      runner.wake();
      await waitFor(
        async () => {
          const d = await opened.store.get(shipped.id);
          const job = d?.jobs.find((j) => j.consumer === PROJECTIONS_CONSUMER);
          return job?.status === 'processed' && job.attempts === 2;
        },
        { what: 'the replayed projection' },
      );
      assert.deepEqual(await row('procureiq_orders', 'order_id', orderId), r);

      const view = await readEntity(opened.reader, {
        id: shipped.id,
        type: shipped.type,
        created: 200,
        data: {} as Record<string, unknown>,
      });
      assert.equal(view.isStale, false, 'no order id in the data: no entity');
      const stale = await readEntity(opened.reader, {
        id: shipped.id,
        type: shipped.type,
        created: 200,
        data: { orderId },
      });
      assert.equal(stale.isStale, true);
      assert.equal(stale.entity?.status, 'delivered');
    });

    test('a tie on created: the later stage wins, in either arrival order', async () => {
      for (const [name, order] of [
        ['a', ['order.delivered', 'order.shipped']],
        ['b', ['order.shipped', 'order.delivered']],
      ] as const) {
        const orderId = `ord_tie_${name}_${engine.name}`;
        for (const type of order) {
          const e = newEvent(
            type,
            500,
            type === 'order.shipped'
              ? { orderId, trackingNumber: 'T', carrierId: 'c', estimatedDelivery: 'd' }
              : { orderId, deliveredAt: '2026-01-01T00:00:00.000Z' },
          );
          await opened.store.insertIfAbsent(e);
          runner.wake();
          await projected(opened.store, e.id);
        }
        const r = await row('procureiq_orders', 'order_id', orderId);
        assert.equal(r?.status, 'delivered', `arrival order ${order.join(', ')}`);
        assert.equal(r?.tracking_number, 'T');
      }
    });

    test('an invalid event is never projected', async () => {
      const campaignId = `adcmp_invalid_${engine.name}`;
      const invalid = newEvent('ad.campaign_started', 100, { campaignId });
      assert.deepEqual(projectionJobs({ ...invalid, status: 'invalid' }, config, 3), []);
      // Even with a projections job (the body failed its schema: no advertiserId), the runner skips it.
      await opened.store.insertIfAbsent({
        ...invalid,
        jobs: [{ consumer: PROJECTIONS_CONSUMER, maxAttempts: 3 }],
      });
      runner.wake();
      await projected(opened.store, invalid.id, 'skipped');
      assert.equal(await row('procureiq_ad_campaigns', 'campaign_id', campaignId), undefined);
    });

    test('an event stored with its projection writes is projected in the insert (SQLite) or by its job', async () => {
      const orderId = `ord_at_insert_${engine.name}`;
      const e = withProjection(
        newEvent('order.created', 100, {
          orderId,
          userId: 'u',
          totalAmount: 5,
          currency: 'EUR',
          itemCount: 1,
        }),
        opened.store,
      );
      e.status = 'unhandled';
      // The receiver reads projectedAtInsert to leave the runner asleep: there is no job to claim.
      assert.deepEqual(await opened.store.insertIfAbsent(e), {
        outcome: 'inserted',
        claimed: null,
        ...(opened.store.projectsAtInsert ? { projectedAtInsert: true } : {}),
      });
      if (opened.store.projectsAtInsert) {
        // Projected in the same commit that stored it: no job, nothing for the runner to do.
        const detail = await opened.store.get(e.id);
        assert.deepEqual(detail?.jobs, []);
        assert.equal(detail?.status, 'unhandled');
        assert.equal((await row('procureiq_orders', 'order_id', orderId))?.last_event_id, e.id);
      } else {
        runner.wake();
        await projected(opened.store, e.id);
      }
      const r = await row('procureiq_orders', 'order_id', orderId);
      assert.equal(r?.status, 'created');
      assert.equal(r?.total_amount, 5);
      // A second delivery stores nothing and projects nothing new.
      assert.deepEqual(await opened.store.insertIfAbsent({ ...e, receivedAt: e.receivedAt + 1 }), {
        outcome: 'duplicate',
        claimed: null,
      });
      assert.deepEqual(await row('procureiq_orders', 'order_id', orderId), r);
    });

    test('a write to a dropped table is retried, then dead-lettered with the SQL error', async () => {
      const direct = await opened.direct();
      try {
        await direct.exec('DROP TABLE procureiq_searches');
      } finally {
        await direct.close();
      }
      // Stored with its projection writes: where the store applies them at insert (SQLite), the
      // failing write rolls back alone and the projections job takes over.
      const e = withProjection(
        newEvent('search.failed', 100, { searchResultId: 'sr_dropped', error: 'x' }, { maxAttempts: 2 }),
        opened.store,
      );
      assert.deepEqual(await opened.store.insertIfAbsent(e), { outcome: 'inserted', claimed: null });
      runner.wake();
      const detail = await projected(opened.store, e.id, 'dead');
      const attempts = (detail?.attemptHistory ?? []).filter((a) => a.consumer === PROJECTIONS_CONSUMER);
      assert.equal(attempts.length, 2);
      for (const a of attempts) {
        assert.equal(a.outcome, 'failed');
        assert.match(a.errorMessage ?? '', /procureiq_searches/);
      }
      // A dead letter raises its alert, as a handler's does (it raised none). The alert follows the
      // commit that another connection may see first: wait for it.
      await waitFor(() => deadLetters.some((d) => d.id === e.id), { what: 'the dead letter alert' });
      const alerted = deadLetters.filter((d) => d.id === e.id);
      assert.equal(alerted.length, 1);
      assert.equal(alerted[0]?.attempts, 2);
      assert.match(alerted[0]?.error ?? '', /^projection: .*procureiq_searches/);
    });

    test('rebuild gives identical tables, and resumes after an interruption', async () => {
      const before = await tables(opened.reader.read);
      assert.ok((before.procureiq_orders?.length ?? 0) >= 3);
      const direct = await opened.direct();
      try {
        // The searches table was dropped above: rebuild the others.
        const others = resolveProjectionsConfig({
          projections: 'orders,payments,products,users,support_tickets,ad_campaigns',
        });
        const full = await rebuildProjections(direct.target, { config: others, batchSize: 2 });
        assert.equal(full.resumed, false);
        assert.deepEqual(await tables(opened.reader.read), before);

        /** A rebuild stopped (as by Ctrl-C) once its first batch has committed. */
        const interrupted = async () => {
          const controller = new AbortController();
          await assert.rejects(
            rebuildProjections(direct.target, {
              config: others,
              batchSize: 2,
              signal: controller.signal,
              onProgress: ({ done }) => {
                if (done >= 2) controller.abort(new Error('stop here'));
              },
            }),
            /stop here/,
          );
        };
        await interrupted();
        const firstProgress: number[] = [];
        const resumed = await rebuildProjections(direct.target, {
          config: others,
          batchSize: 2,
          onProgress: ({ done }) => firstProgress.push(done),
        });
        assert.equal(resumed.resumed, true);
        assert.equal(firstProgress[0], 2, 'resumes after the committed batch');
        assert.deepEqual(await tables(opened.reader.read), before);

        // Interrupted, then run again with another email mode: it starts over rather than mixing.
        await interrupted();
        const hashed = resolveProjectionsConfig({
          projections: 'orders,payments,products,users,support_tickets,ad_campaigns',
          projectionEmails: 'hash',
        });
        assert.equal(
          (await rebuildProjections(direct.target, { config: hashed, batchSize: 2 })).resumed,
          false,
        );
        assert.equal(
          (await rebuildProjections(direct.target, { config: others, batchSize: 2 })).resumed,
          false,
        );
        assert.deepEqual(await tables(opened.reader.read), before);

        // Interrupted, then run on fewer tables: refused, as it would leave the rest half-built
        // (it started over on its own tables and dropped the marker); the same run finishes it.
        await interrupted();
        await assert.rejects(
          rebuildProjections(direct.target, {
            config: resolveProjectionsConfig({ projections: 'orders' }),
            batchSize: 2,
          }),
          /interrupted rebuild of orders, payments, .* would leave payments, products, users, support_tickets, ad_campaigns half-built\. Run it again with PROJECTIONS=orders,payments,/,
        );
        assert.equal(
          (await rebuildProjections(direct.target, { config: others, batchSize: 2 })).resumed,
          true,
        );
        assert.deepEqual(await tables(opened.reader.read), before);
      } finally {
        await direct.close();
      }
    });
  });
}
