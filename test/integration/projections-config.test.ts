// PROJECTIONS and PROJECTION_EMAILS through a real consumer on SQLite: a list projects only the
// tables it names, `none` none of them, and the email mode decides what procureiq_users.email holds.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import { openEntityReader } from '../../src/projections/read-entity.ts';
import { handleSigned, waitFor } from '../helpers/index.ts';
import { openSqliteConsumer } from '../helpers/sqlite-consumer.ts';

function body(id: string, type: keyof typeof examplePayloads, data: Record<string, unknown> = {}): Buffer {
  const example = examplePayloads[type];
  return Buffer.from(JSON.stringify({ ...example, id, data: { ...example.data, ...data } }));
}

/** Runs a consumer with these settings, stores `events`, waits for each to settle, and reads the tables. */
async function project(
  settings: { projections?: string; projectionEmails?: 'keep' | 'hash' | 'drop' },
  events: Buffer[],
): Promise<Record<string, Record<string, unknown>[]>> {
  const { consumer, path, dispose } = openSqliteConsumer(settings);
  let reader: ReturnType<typeof openEntityReader> | undefined;
  try {
    await consumer.start();
    reader = openEntityReader({ kind: 'sqlite', path });
    for (const raw of events) assert.equal((await handleSigned(consumer.receiver, raw)).status, 200);
    // Events no handler takes are projected in the write that stores them (or by their own job).
    const ids = events.map((raw) => (JSON.parse(raw.toString()) as { id: string }).id);
    await waitFor(
      async () => {
        for (const id of ids) {
          const e = await consumer.store.get(id);
          if (!e || e.jobs.some((j) => !['processed', 'unhandled'].includes(j.status))) return false;
        }
        return true;
      },
      { what: 'every event settled' },
    );
    const tables: Record<string, Record<string, unknown>[]> = {};
    for (const table of ['procureiq_orders', 'procureiq_payments', 'procureiq_users'])
      tables[table] = await reader.read(`SELECT * FROM ${table}`, []);
    return tables;
  } finally {
    await reader?.close();
    await dispose();
  }
}

const history = () => [
  body('evt_cfg_order', 'order.created', { orderId: 'ord_cfg' }),
  body('evt_cfg_payment', 'payment.initiated', { paymentId: 'pay_cfg', orderId: 'ord_cfg' }),
  body('evt_cfg_user', 'user.registered', { userId: 'usr_cfg', email: '  Buyer@Example.COM ' }),
];

describe('PROJECTIONS and PROJECTION_EMAILS on a running consumer', () => {
  it('a list projects only the tables it names', async () => {
    const tables = await project({ projections: 'orders,users' }, history());
    assert.deepEqual(
      tables.procureiq_orders?.map((r) => r.order_id),
      ['ord_cfg'],
    );
    assert.deepEqual(tables.procureiq_payments, [], 'payments is not in the list');
    assert.equal(tables.procureiq_users?.[0]?.email, '  Buyer@Example.COM ', 'keep is the default');
  });

  it('none projects nothing', async () => {
    const tables = await project({ projections: 'none' }, history());
    for (const [table, rows] of Object.entries(tables)) assert.deepEqual(rows, [], table);
  });

  it('hash stores the SHA-256 of the trimmed, lower-cased address; drop stores null', async () => {
    const hashed = await project({ projectionEmails: 'hash' }, history());
    assert.equal(
      hashed.procureiq_users?.[0]?.email,
      createHash('sha256').update('buyer@example.com').digest('hex'),
    );
    assert.equal(hashed.procureiq_payments?.length, 1, 'all tables by default');
    const dropped = await project({ projectionEmails: 'drop' }, history());
    assert.equal(dropped.procureiq_users?.[0]?.email, null);
    assert.equal(dropped.procureiq_users?.[0]?.user_id, 'usr_cfg');
  });
});
