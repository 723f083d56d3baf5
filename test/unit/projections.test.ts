import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { examplePayloads } from '../../src/events/examples.ts';
import { versionColumns } from '../../src/projections/entity.ts';
import { projectionJobs } from '../../src/projections/jobs.ts';
import { ENTITIES, resolveProjectionsConfig, stageFor } from '../../src/projections/registry.ts';
import { type ProjectedEvent, projectionStatements } from '../../src/projections/statements.ts';
import { migrate } from '../../src/store/sqlite/migrate.ts';

const event = (type: keyof typeof examplePayloads): ProjectedEvent => {
  const p = examplePayloads[type];
  return { id: p.id, type, created: p.created, environment: 'production', receivedAt: 1, data: p.data };
};

describe('projection statements', () => {
  test('every catalogue type has a projection, bound positionally per dialect', () => {
    for (const type of Object.keys(examplePayloads) as (keyof typeof examplePayloads)[]) {
      for (const dialect of ['sqlite', 'postgres'] as const) {
        const statements = projectionStatements(dialect, event(type));
        assert.ok(statements.length >= 1, type);
        for (const s of statements) {
          const marks =
            dialect === 'sqlite' ? (s.sql.match(/\?/g) ?? []).length : new Set(s.sql.match(/\$\d+/g)).size;
          assert.equal(marks, s.params.length, `${dialect} ${type}`);
          assert.doesNotMatch(s.sql, /@\w/);
        }
      }
    }
  });

  test("each type's values land in their own columns of a real table", () => {
    for (const type of Object.keys(examplePayloads) as (keyof typeof examplePayloads)[]) {
      // Alone on an empty database: its own insert, not a later event's update, sets each column.
      const db = new Database(':memory:');
      try {
        migrate(db);
        const e = { ...event(type), id: `evt_${type}`, receivedAt: 1_700_000_000_000 };
        for (const s of projectionStatements('sqlite', e)) db.prepare(s.sql).run(...(s.params as unknown[]));
        const found = stageFor(type);
        assert.ok(found, type);
        // A rejection waits in its own table until an approval links it to a listing.
        const rejection = type === 'product.rejected';
        const version = versionColumns(found.stage);
        const row = db
          .prepare(
            `SELECT ${version.id} AS id, ${version.created} AS created${rejection ? '' : ', updated_at'}${!rejection && found.entity.statuses ? ', status' : ''}
            FROM ${rejection ? 'procureiq_product_rejections' : found.entity.table}`,
          )
          .get() as Record<string, unknown>;
        assert.deepEqual(
          row,
          {
            id: e.id,
            created: e.created,
            ...(rejection
              ? {}
              : {
                  updated_at: e.receivedAt,
                  ...(found.entity.statuses ? { status: found.stage.status } : {}),
                }),
          },
          type,
        );
      } finally {
        db.close();
      }
    }
  });

  test('order.shipped binds its stage columns and the envelope time', () => {
    const [s] = projectionStatements('sqlite', event('order.shipped'));
    assert.match(s?.sql ?? '', /^INSERT INTO procureiq_orders \(order_id, environment, status,/);
    assert.ok(s?.params.includes('DHL-7845123099'));
    assert.ok(s?.params.includes(new Date(1711238601 * 1000).toISOString()));
  });

  test('PROJECTION_EMAILS hashes or drops user.registered emails', () => {
    const email = 'amina.bello@northstar-imports.com';
    const keep = projectionStatements('sqlite', event('user.registered'))[0]?.params;
    assert.ok(keep?.includes(email));
    const hashed = projectionStatements(
      'sqlite',
      event('user.registered'),
      resolveProjectionsConfig({ projectionEmails: 'hash' }),
    )[0]?.params;
    assert.ok(!hashed?.includes(email));
    assert.ok(hashed?.some((p) => typeof p === 'string' && /^[0-9a-f]{64}$/.test(p)));
    const dropped = projectionStatements(
      'sqlite',
      event('user.registered'),
      resolveProjectionsConfig({ projectionEmails: 'drop' }),
    )[0]?.params;
    assert.ok(!dropped?.includes(email));
  });
});

describe('projection settings', () => {
  test('default all; none; a list', () => {
    assert.equal(resolveProjectionsConfig().entities.length, ENTITIES.length);
    assert.deepEqual(resolveProjectionsConfig({ projections: 'none' }).entities, []);
    assert.deepEqual(
      resolveProjectionsConfig({ projections: 'orders, payments' }).entities.map((e) => e.name),
      ['orders', 'payments'],
    );
    assert.throws(
      () => resolveProjectionsConfig({ projections: 'orders,invoices' }),
      /unknown projection "invoices"/,
    );
    assert.throws(
      () => resolveProjectionsConfig({ projectionEmails: 'mask' }),
      /PROJECTION_EMAILS must be one of keep, hash, drop/,
    );
  });

  test('a job only for valid events of projected types', () => {
    const only = resolveProjectionsConfig({ projections: 'orders' });
    assert.deepEqual(projectionJobs({ type: 'order.shipped', status: 'pending' }, only, 4), [
      { consumer: 'projections', maxAttempts: 4 },
    ]);
    assert.deepEqual(projectionJobs({ type: 'order.shipped', status: 'invalid' }, only, 4), []);
    assert.deepEqual(projectionJobs({ type: 'payment.failed', status: 'pending' }, only, 4), []);
    assert.deepEqual(projectionJobs({ type: 'invoice.sent', status: 'unhandled' }, only, 4), []);
    assert.deepEqual(projectionStatements('sqlite', event('payment.failed'), only), []);
  });
});
