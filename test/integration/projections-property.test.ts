// Property: any permutation of a 5,000-event history, with duplicates and replays, gives exactly
// the tables that in-order application gives, on SQLite and PostgreSQL (fresh file or schema).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import { examplePayloads } from '../../src/events/examples.ts';
import type { Dialect } from '../../src/projections/entity.ts';
import { ENTITIES } from '../../src/projections/registry.ts';
import { type ProjectedEvent, projectionStatements } from '../../src/projections/statements.ts';
import { migrate as migratePostgres } from '../../src/store/postgres/migrate.ts';
import { migrate as migrateSqlite } from '../../src/store/sqlite/migrate.ts';
import { dropSchema, PG_URL, tempDir, uniqueSchema } from '../helpers/index.ts';

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEY_FIELDS = new Set(ENTITIES.map((e) => e.key.field));

/** A history of `n` valid events over a few keys per entity, with many ties on `created`. */
function history(n: number): ProjectedEvent[] {
  const random = prng(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const types = Object.keys(examplePayloads) as (keyof typeof examplePayloads)[];
  const events: ProjectedEvent[] = [];
  for (let i = 0; i < n; i++) {
    const type = pick(types);
    const k = Math.floor(random() * 40);
    const data: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(examplePayloads[type].data)) {
      if (KEY_FIELDS.has(field) || field === 'merchantProductId') data[field] = `${field}_${k}`;
      else if (typeof value === 'number') data[field] = Math.round(random() * 1000) / 4;
      else data[field] = `${value}-${i}`;
    }
    events.push({
      id: `evt_${String(i).padStart(5, '0')}`,
      type,
      created: 1_700_000_000 + Math.floor(random() * 30),
      environment: random() < 0.5 ? 'production' : 'sandbox',
      receivedAt: 1_700_000_000_000 + i,
      data,
    });
  }
  return events;
}

/** Every event at least once (duplicates and replays up to three times), in a shuffled order. */
function shuffledWithRepeats(events: readonly ProjectedEvent[], seed: number): ProjectedEvent[] {
  const random = prng(seed);
  const out = events.flatMap((e) =>
    Array.from({ length: 1 + Math.floor(random() * 1.4) + (random() < 0.05 ? 1 : 0) }, () => e),
  );
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as ProjectedEvent, out[i] as ProjectedEvent];
  }
  return out;
}

const TABLES = [
  ...ENTITIES.map((e) => [e.table, e.key.column]),
  ['procureiq_product_rejections', 'merchant_product_id'],
];

interface Target {
  dialect: Dialect;
  apply: (events: readonly ProjectedEvent[]) => Promise<void>;
  snapshot: () => Promise<Record<string, unknown[]>>;
  close: () => Promise<void>;
}

async function sqliteTarget(): Promise<Target> {
  const tmp = tempDir();
  const db = new Database(join(tmp.dir, 'p.db'));
  migrateSqlite(db);
  const cache = new Map<string, Database.Statement>();
  return {
    dialect: 'sqlite',
    apply: async (events) => {
      db.transaction(() => {
        for (const [table] of TABLES) db.exec(`DELETE FROM ${table}`);
        for (const e of events)
          for (const s of projectionStatements('sqlite', e)) {
            let st = cache.get(s.sql);
            if (!st) {
              st = db.prepare(s.sql);
              cache.set(s.sql, st);
            }
            st.run(...s.params);
          }
      })();
    },
    snapshot: async () =>
      Object.fromEntries(TABLES.map(([t, k]) => [t, db.prepare(`SELECT * FROM ${t} ORDER BY ${k}`).all()])),
    close: async () => {
      db.close();
      tmp.cleanup();
    },
  };
}

async function postgresTarget(): Promise<Target> {
  const schema = uniqueSchema();
  const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
  await client.connect();
  await migratePostgres(client, schema);
  return {
    dialect: 'postgres',
    apply: async (events) => {
      await client.query('BEGIN');
      for (const [table] of TABLES) await client.query(`DELETE FROM ${table}`);
      for (const e of events)
        for (const s of projectionStatements('postgres', e)) await client.query(s.sql, [...s.params]);
      await client.query('COMMIT');
    },
    snapshot: async () => {
      const out: Record<string, unknown[]> = {};
      for (const [t, k] of TABLES)
        out[t as string] = (await client.query(`SELECT * FROM ${t} ORDER BY ${k}`)).rows;
      return out;
    },
    close: async () => {
      await client.end();
      await dropSchema(schema);
    },
  };
}

const events = history(5000);

for (const [name, open, runs] of [
  ['SQLite', sqliteTarget, 5],
  ['PostgreSQL', postgresTarget, 2],
] as const) {
  describe(`projection order independence on ${name}`, () => {
    let target: Target;
    let expected: Record<string, unknown[]>;
    before(async () => {
      target = await open();
      await target.apply(events);
      expected = await target.snapshot();
    });
    after(() => target.close());

    test('the history touches every table', () => {
      for (const [t] of TABLES) assert.ok((expected[t as string]?.length ?? 0) > 10, t);
    });

    test('any permutation with duplicates and replays gives the in-order tables', async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
          await target.apply(shuffledWithRepeats(events, seed));
          assert.deepEqual(await target.snapshot(), expected);
        }),
        { numRuns: runs },
      );
    });
  });
}

// PostgreSQL's text cannot hold U+0000: a valid event carrying one failed its projection write at
// every attempt there (and stopped a rebuild). Both engines store U+FFFD instead, and agree.
describe('a text value with U+0000', () => {
  const withNul: ProjectedEvent[] = [
    {
      id: 'evt_nul_1',
      type: 'payment.failed',
      created: 1_700_000_000,
      environment: 'production',
      receivedAt: 1_700_000_000_000,
      data: {
        ...examplePayloads['payment.failed'].data,
        paymentId: 'pay_\u0000nul',
        reason: 'declined\u0000',
      },
    },
  ];

  test('is projected on both engines, as U+FFFD, with the same rows', async () => {
    const snapshots: Record<string, unknown[]>[] = [];
    for (const open of [sqliteTarget, postgresTarget]) {
      const target = await open();
      try {
        await target.apply(withNul);
        snapshots.push(await target.snapshot());
      } finally {
        await target.close();
      }
    }
    // The text columns of the one row (PostgreSQL gives its bigints as strings).
    const texts = (rows: unknown[] | undefined) => {
      assert.equal(rows?.length, 1);
      return Object.fromEntries(
        Object.entries(rows?.[0] as Record<string, unknown>).filter(
          ([column, value]) => typeof value === 'string' && !/_created$|^updated_at$/.test(column),
        ),
      );
    };
    const [sqlite, postgres] = snapshots.map((s) => texts(s.procureiq_payments));
    assert.equal(sqlite?.payment_id, 'pay_\uFFFDnul');
    assert.equal(sqlite?.status, 'failed');
    assert.ok(Object.values(sqlite ?? {}).includes('declined\uFFFD'), JSON.stringify(sqlite));
    assert.deepEqual(postgres, sqlite);
  });
});
