// listen({ warmUp }) sends signed deliveries through its own server and receiver, on a local socket,
// before it takes its port: every one is accepted (so the path compiled is the one real deliveries
// take, the store's included: each is a rehearsal the writer rolls back), none is stored, counted,
// routed or logged, and the server then takes real deliveries as usual; a real delivery arriving
// meanwhile is stored; close() meanwhile keeps the port free.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import type { InboxStore, LeaseRequest, NewEvent } from '../../src/store/inbox-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { capturingLogger } from '../helpers/capture-log.ts';
import { freePort, postSigned, SECRET, signedRequest, tempDir } from '../helpers/index.ts';
import { openSqliteConsumer } from '../helpers/sqlite-consumer.ts';

describe('warm-up before listening', () => {
  it('accepts every warm-up delivery, stores and counts none, then serves real ones', async () => {
    const log = capturingLogger();
    const { consumer, path, dispose } = openSqliteConsumer({
      logger: log.logger,
      metricsPublic: true,
      warmUp: 300,
      // A route that matches everything: warm-up deliveries decide their jobs but store none.
      routes: {
        destinations: { sink: { type: 'http', url: 'http://127.0.0.1:9/never' } },
        routes: [{ name: 'all', match: { types: ['*'] }, to: 'sink' }],
      },
    });
    try {
      const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
      const warmed = log.lines().find((l) => l.msg === 'warmed up the request path');
      assert.ok(warmed, `no warm-up line in ${log.text()}`);
      assert.equal(warmed.deliveries, 300);
      assert.deepEqual(warmed.answered, { 200: 300 });
      assert.equal(
        log.lines().filter((l) => l.msg === 'event stored').length,
        0,
        'a warm-up delivery was logged as stored',
      );

      const counts = await consumer.store.countByStatus();
      assert.equal(
        Object.values(counts).reduce((a, b) => a + b, 0),
        0,
        'the warm-up stored nothing',
      );
      assert.deepEqual(await consumer.store.countJobs(), []);
      // Each was a rehearsal on the writer (its projection included), rolled back.
      const db = new Database(path, { readonly: true });
      try {
        assert.equal(db.prepare('SELECT COUNT(*) FROM procureiq_orders').pluck().get(), 0);
      } finally {
        db.close();
      }
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.doesNotMatch(metrics, /procureiq_webhooks_deliveries_total\{[^}]*\} [1-9]/);

      const res = await postSigned(
        `http://127.0.0.1:${port}/webhooks/procureiq`,
        examplePayloads['order.created'],
      );
      assert.deepEqual(res, { status: 200, body: { status: 'ok' } });
      // Stored for real, with its route job; the lane may already have taken it (the sink never
      // answers), so its status is any of the unfinished ones.
      const stored = await consumer.store.get(examplePayloads['order.created'].id);
      assert.ok(stored, 'the real delivery was stored');
      assert.ok(['pending', 'processing', 'retrying'].includes(stored.status), stored.status);
      assert.deepEqual(
        stored.jobs.map((j) => j.consumer),
        ['route:all'],
      );
    } finally {
      await dispose();
    }
  });

  it('sends the store rehearsals only if it says it takes them; a store of your own that does not gets none', async () => {
    for (const rehearses of [true, undefined]) {
      const tmp = tempDir();
      const inner = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
      const inserts: { id: string; rehearsal: boolean }[] = [];
      // A store of one's own: the SQLite store behind a Proxy that records each insert, and says it
      // rehearses or leaves `rehearses` out, as a store written before rehearsals would.
      const store = new Proxy(inner, {
        get(target, name, receiver) {
          if (name === 'rehearses') return rehearses;
          if (name === 'insertIfAbsent')
            return (event: NewEvent, lease?: LeaseRequest) => {
              inserts.push({ id: event.id, rehearsal: event.rehearsal === true });
              return target.insertIfAbsent(event, lease);
            };
          return Reflect.get(target, name, receiver);
        },
      }) as InboxStore;
      const consumer = createConsumer({ secret: SECRET, store, logger: silentLogger(), warmUp: 200 });
      try {
        await consumer.listen({ port: 0, host: '127.0.0.1' });
        assert.equal(inserts.length, rehearses ? 200 : 0, `rehearses: ${rehearses}`);
        assert.ok(inserts.every((i) => i.rehearsal));
        const counts = await inner.countByStatus();
        assert.equal(
          Object.values(counts).reduce((a, b) => a + b, 0),
          0,
        );
      } finally {
        await consumer.close();
        tmp.cleanup();
      }
    }
  });

  it('a real delivery that arrives during the warm-up (through the fetch handler) is stored and counted', async () => {
    const counted: string[] = [];
    const { consumer, dispose } = openSqliteConsumer({
      warmUp: 3000,
      onDelivery: (d) => {
        if (d.eventId) counted.push(d.eventId);
      },
    });
    const handler = consumer.fetchHandler();
    try {
      let listening = false;
      const listened = consumer.listen({ port: 0, host: '127.0.0.1' }).then((r) => {
        listening = true;
        return r;
      });
      // listen() awaits start() first, then turns the warm-up on before it awaits anything else,
      // so a delivery sent once start() has resolved arrives while the warm-up runs.
      await consumer.start();
      const during: string[] = [];
      for (let i = 0; !listening && i < 200; i++) {
        const id = `evt_during_warm_up_${i}`;
        const body = JSON.stringify({ ...examplePayloads['order.created'], id });
        const res = await handler(signedRequest(body));
        assert.equal(res.status, 200);
        if (!listening) during.push(id);
      }
      await listened;
      assert.ok(during.length > 0, 'no delivery arrived during the warm-up');
      for (const id of during)
        assert.ok(await consumer.store.get(id), `${id} was acknowledged but not stored`);
      assert.deepEqual(
        counted.filter((id) => during.includes(id)),
        during,
      );
    } finally {
      await dispose();
    }
  });

  it('close() during the warm-up: listen() rejects and no port is taken', async () => {
    const { consumer, dispose } = openSqliteConsumer({ warmUp: 3000 });
    const port = await freePort();
    const listening = consumer.listen({ port, host: '127.0.0.1' });
    // listen() has turned the warm-up on once start() resolves (see the test above).
    await consumer.start();
    await consumer.close();
    await assert.rejects(listening, /closed while it was starting/);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`));
    await dispose();
  });
});
