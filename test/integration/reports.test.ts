// The report against a known set of events on both engines: stored as the receiver stores them,
// projected by `rebuildProjections`, then read by `buildReport` (SQLite's medians in JS, PostgreSQL's
// with percentile_cont) and compared number by number.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { DatabaseLocation } from '../../src/config/database-url.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { type EntityReader, openEntityReader } from '../../src/projections/read-entity.ts';
import { type ProjectionDatabase, rebuildProjections } from '../../src/projections/rebuild.ts';
import { resolveProjectionsConfig } from '../../src/projections/registry.ts';
import { projectionStatements } from '../../src/projections/statements.ts';
import { buildReport, median } from '../../src/reports/report.ts';
import type { InboxStore } from '../../src/store/inbox-store.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { migrate as migrateSqlite } from '../../src/store/sqlite/migrate.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { EXPECTED, reportEvents, storeReportEvents } from '../fixtures/report-events.ts';
import { dropSchema, PG_URL, tempDir, uniqueSchema } from '../helpers/index.ts';

interface Opened {
  store: InboxStore;
  location: DatabaseLocation;
  direct: () => Promise<{ target: ProjectionDatabase; close: () => Promise<void> }>;
  close: () => Promise<void>;
}

const engines: { name: string; open: () => Promise<Opened> }[] = [
  {
    name: 'SQLite',
    open: async () => {
      const tmp = tempDir();
      const path = join(tmp.dir, 'inbox.db');
      const store = new SqliteStore({ path });
      await store.migrate();
      return {
        store,
        location: { kind: 'sqlite', path },
        direct: async () => {
          const db = new Database(path);
          db.pragma('busy_timeout = 5000');
          return { target: { dialect: 'sqlite', db }, close: async () => void db.close() };
        },
        close: async () => {
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
      return {
        store,
        location: { kind: 'postgres', url: PG_URL, schema },
        direct: async () => {
          const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
          await client.connect();
          return { target: { dialect: 'postgres', client }, close: () => client.end() };
        },
        close: async () => {
          await store.close();
          await dropSchema(schema);
        },
      };
    },
  },
];

const DAY = 86_400_000;

test('a currency or a role named __proto__ is counted like any other', async () => {
  const db = new Database(':memory:');
  migrateSqlite(db);
  const created = Math.floor(Date.now() / 1000);
  for (const [type, data] of [
    ['order.created', { ...examplePayloads['order.created'].data, currency: '__proto__', totalAmount: 5 }],
    ['user.registered', { ...examplePayloads['user.registered'].data, role: '__proto__' }],
  ] as const)
    for (const s of projectionStatements('sqlite', {
      id: `evt_proto_${type}`,
      type,
      created,
      environment: 'production',
      receivedAt: Date.now(),
      data,
    }))
      db.prepare(s.sql).run(...s.params);
  const report = await buildReport(
    {
      dialect: 'sqlite',
      read: async (sql, params) => db.prepare(sql).all(...params) as Record<string, unknown>[],
    },
    { since: Date.now() - DAY },
  );
  db.close();
  assert.deepEqual(Object.entries(report.orders.gmvByCurrency), [['__proto__', 5]]);
  assert.deepEqual(Object.entries(report.users.registrationsByRole), [['__proto__', 1]]);
});

test('median: odd, even and empty, like percentile_cont(0.5)', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), null);
});

for (const engine of engines) {
  describe(`report on ${engine.name}`, () => {
    let opened: Opened;
    let reader: EntityReader;
    const now = Math.floor(Date.now() / 1000);

    before(async () => {
      opened = await engine.open();
      await storeReportEvents(opened.store, reportEvents(now));
      const direct = await opened.direct();
      try {
        await rebuildProjections(direct.target, { config: resolveProjectionsConfig() });
      } finally {
        await direct.close();
      }
      reader = openEntityReader(opened.location);
    });
    after(async () => {
      await reader?.close();
      await opened?.close();
    });

    test('every section over the last 7 days matches the seeded events', async () => {
      const report = await buildReport(reader, { since: now * 1000 - 7 * DAY });
      assert.equal(report.environment, null);
      for (const section of Object.keys(EXPECTED) as (keyof typeof EXPECTED)[])
        assert.deepEqual(report[section], EXPECTED[section], `section ${section}`);
      // Keyed sections in byte order on both engines, so their JSON and CSV are the same.
      assert.deepEqual(Object.keys(report.orders.gmvByCurrency), ['EUR', 'USD']);
      assert.deepEqual(Object.keys(report.users.registrationsByRole), ['buyer', 'merchant']);
    });

    test('environment=production leaves the sandbox order out', async () => {
      const report = await buildReport(reader, { since: now * 1000 - 7 * DAY, environment: 'production' });
      assert.equal(report.environment, 'production');
      assert.deepEqual(report.orders.byStatus, { ...EXPECTED.orders.byStatus, created: 0 });
      assert.deepEqual(report.orders.gmvByCurrency, { USD: 150, EUR: 30 });
      assert.equal(report.orders.cancellationRate, 0.25);
      assert.deepEqual(report.payments, EXPECTED.payments);
    });

    test('since reaches back to the old order; a window after everything is empty', async () => {
      const wide = await buildReport(reader, { since: now * 1000 - 60 * DAY });
      assert.equal(wide.orders.byStatus.created, 2);
      assert.equal(wide.orders.gmvByCurrency.USD, 155 + 999);
      const empty = await buildReport(reader, { since: now * 1000 + DAY });
      assert.equal(empty.orders.total, 0);
      assert.equal(empty.orders.cancellationRate, null);
      assert.equal(empty.orders.medianCreatedToShippedMs, null);
      assert.equal(empty.support.csatAverage, null);
      assert.deepEqual(empty.support.csatDistribution, {});
      assert.equal(empty.searches.medianDurationMs, null);
      assert.deepEqual(empty.payments.topFailureReasons, []);
    });
  });
}
