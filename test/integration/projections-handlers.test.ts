// The live tables through a real consumer, on both engines: an event a handler takes is projected
// in the transaction that records the handler's success, and the handler sees the row as it was
// before its event (ctx.entity) and whether a later event already moved it on (ctx.isStale); an
// event no handler takes is projected as it is stored (SQLite) or by its own job (PostgreSQL);
// one whose handler gave up (dead, or unhandled on a worker behind an ingest-only instance) by a
// projections job the give-up adds.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Consumer, createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { type EntityReader, openEntityReader } from '../../src/projections/read-entity.ts';
import { NonRetryableError } from '../../src/util/errors.ts';
import { dropSchema, PG_URL, postSigned, SECRET, tempDir, uniqueSchema, waitFor } from '../helpers/index.ts';

interface Seen {
  type: string;
  status: unknown;
  isStale: boolean;
}

const engines = [
  {
    name: 'SQLite',
    setup: () => {
      const tmp = tempDir();
      const path = join(tmp.dir, 'inbox.db');
      return {
        database: `sqlite:${path}`,
        reader: () => openEntityReader({ kind: 'sqlite', path }),
        cleanup: async () => tmp.cleanup(),
      };
    },
  },
  {
    name: 'PostgreSQL',
    setup: () => {
      const schema = uniqueSchema();
      const url = new URL(PG_URL);
      url.searchParams.set('schema', schema);
      return {
        database: url.toString(),
        reader: () => openEntityReader({ kind: 'postgres', url: PG_URL, schema }),
        cleanup: () => dropSchema(schema),
      };
    },
  },
];

for (const engine of engines) {
  describe(`projections with handlers on ${engine.name}`, () => {
    const env = engine.setup();
    const seen: Seen[] = [];
    let consumer: Consumer;
    let reader: EntityReader;
    let webhook: string;

    before(async () => {
      consumer = createConsumer({
        secret: [SECRET],
        database: env.database,
        logger: silentLogger(),
        pollInterval: '100ms',
        handlers: {
          'order.confirmed': async (_event, ctx) => {
            seen.push({ type: 'order.confirmed', status: ctx.entity?.status, isStale: ctx.isStale });
          },
          'order.shipped': async (_event, ctx) => {
            seen.push({ type: 'order.shipped', status: ctx.entity?.status, isStale: ctx.isStale });
          },
          'order.cancelled': async () => {
            throw new NonRetryableError('the refund service refused it');
          },
        },
      });
      await consumer.start();
      const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
      webhook = `http://127.0.0.1:${port}/webhooks/procureiq`;
      reader = env.reader();
    });
    after(async () => {
      await reader.close();
      await consumer.close();
      await env.cleanup();
    });

    const order = async (orderId: string) =>
      (
        await reader.read(
          `SELECT * FROM procureiq_orders WHERE order_id = ${reader.dialect === 'sqlite' ? '?' : '$1'}`,
          [orderId],
        )
      )[0];

    it('projects handled and unhandled events; a handler sees the row before its event, and staleness', async () => {
      const orderId = `ord_handlers_${engine.name}`;
      const send = async (type: keyof typeof examplePayloads, created: number, data: object) => {
        const example = examplePayloads[type];
        const id = `evt_${type}_${engine.name}_${created}`;
        const body = { ...example, id, created, data: { ...example.data, ...data, orderId } };
        assert.equal((await postSigned(webhook, body)).status, 200);
        return id;
      };
      // order.created has no handler: projected as stored (SQLite) or by its job (PostgreSQL).
      const created = await send('order.created', 100, {});
      await waitFor(async () => (await order(orderId))?.last_event_id === created, {
        what: 'order.created projected',
      });

      // order.confirmed has a handler: projected with its success, after the handler saw the row.
      const confirmed = await send('order.confirmed', 200, {});
      await waitFor(async () => (await order(orderId))?.last_event_id === confirmed, {
        what: 'order.confirmed projected',
      });
      assert.deepEqual(seen, [{ type: 'order.confirmed', status: 'created', isStale: false }]);
      assert.equal((await order(orderId))?.status, 'confirmed');

      // A delivered order, then a late order.shipped: its handler is told it is stale, and the
      // shipping columns are filled while the status stays delivered.
      const delivered = await send('order.delivered', 400, {});
      await waitFor(async () => (await order(orderId))?.last_event_id === delivered, {
        what: 'order.delivered projected',
      });
      const shipped = await send('order.shipped', 300, { trackingNumber: 'TRK-LATE' });
      await waitFor(async () => (await order(orderId))?.tracking_number === 'TRK-LATE', {
        what: `${shipped} projected`,
      });
      assert.deepEqual(seen[1], { type: 'order.shipped', status: 'delivered', isStale: true });
      const row = await order(orderId);
      assert.equal(row?.status, 'delivered');
      assert.equal(row?.last_event_id, delivered);
    });

    it('projects an event whose handler gave up (dead) by a projections job; the event stays dead', async () => {
      const orderId = `ord_dead_handler_${engine.name}`;
      const example = examplePayloads['order.cancelled'];
      const id = `evt_cancel_dead_${engine.name}`;
      const body = {
        ...example,
        id,
        created: 500,
        data: { ...example.data, orderId, reason: 'out_of_stock' },
      };
      assert.equal((await postSigned(webhook, body)).status, 200);
      const row = await waitFor(
        async () => {
          const r = await order(orderId);
          return r?.cancelled_event_id === id ? r : undefined;
        },
        { what: 'the cancelled order projected after its handler died' },
      );
      assert.equal(row.status, 'cancelled');
      assert.equal(row.reason, 'out_of_stock');
      const event = await consumer.store.get(id);
      assert.equal(event?.status, 'dead', 'the dead handler still makes the event dead');
      assert.deepEqual(Object.fromEntries(event?.jobs.map((j) => [j.consumer, j.status]) ?? []), {
        handlers: 'dead',
        projections: 'processed',
      });
    });
  });
}

describe('projections with an ingest-only instance on PostgreSQL', () => {
  it('a worker instance without the handler still projects the event (its handlers job ends unhandled)', async () => {
    const schema = uniqueSchema();
    const url = new URL(PG_URL);
    url.searchParams.set('schema', schema);
    const common = {
      secret: [SECRET],
      database: url.toString(),
      logger: silentLogger(),
      pollInterval: '100ms',
    };
    // The ingest instance cannot know the workers' handlers, so every event gets a handlers job.
    const ingest = createConsumer({ ...common, worker: false });
    const worker = createConsumer(common);
    const reader = openEntityReader({ kind: 'postgres', url: PG_URL, schema });
    try {
      await ingest.start();
      await worker.start();
      const { port } = await ingest.listen({ port: 0, host: '127.0.0.1' });
      const example = examplePayloads['order.created'];
      const id = 'evt_ingest_only_created';
      const orderId = 'ord_ingest_only';
      const body = { ...example, id, data: { ...example.data, orderId } };
      assert.equal((await postSigned(`http://127.0.0.1:${port}/webhooks/procureiq`, body)).status, 200);
      await waitFor(
        async () => (await reader.read('SELECT * FROM procureiq_orders WHERE order_id = $1', [orderId]))[0],
        { what: 'the order projected by the worker instance' },
      );
      const event = await waitFor(
        async () => {
          const e = await worker.store.get(id);
          return e?.jobs.every((j) => j.status === 'unhandled' || j.status === 'processed') ? e : undefined;
        },
        { what: 'every job of the event finished' },
      );
      assert.equal(event.status, 'unhandled');
      assert.deepEqual(Object.fromEntries(event.jobs.map((j) => [j.consumer, j.status])), {
        handlers: 'unhandled',
        projections: 'processed',
      });
    } finally {
      await reader.close();
      await worker.close();
      await ingest.close();
      await dropSchema(schema);
    }
  });
});
