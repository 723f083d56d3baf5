// The admin event detail with payloads that cannot be rendered, and how admin errors map to
// statuses, on SQLite and on PostgreSQL.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Consumer, createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { createAdminHandler } from '../../src/ops/admin-api.ts';
import { MinuteSeries } from '../../src/ops/minute-series.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { capturingLogger } from '../helpers/capture-log.ts';
import { dropSchema, PG_URL, postSigned, SECRET, tempDir, uniqueSchema } from '../helpers/index.ts';

const TOKEN = 'admin-token-0123456789abcdef';
const DEPTH = 100_000;

/** A valid envelope whose `data` holds arrays nested `depth` deep, as raw JSON text. */
function deepBody(id: string, depth: number): string {
  const envelope = JSON.stringify({ ...examplePayloads['order.created'], id, data: { nested: 'HOLE' } });
  return envelope.replace('"HOLE"', `${'['.repeat(depth)}${']'.repeat(depth)}`);
}

const engines: { name: string; database: () => { url: string; cleanup: () => Promise<void> } }[] = [
  {
    name: 'SQLite',
    database: () => {
      const tmp = tempDir();
      return { url: `sqlite:${join(tmp.dir, 'inbox.db')}`, cleanup: async () => tmp.cleanup() };
    },
  },
  {
    name: 'PostgreSQL',
    database: () => {
      const schema = uniqueSchema();
      return { url: `${PG_URL}?schema=${schema}`, cleanup: () => dropSchema(schema) };
    },
  },
];

for (const engine of engines) {
  describe(`admin detail of an event too deep to render (${engine.name})`, () => {
    let consumer: Consumer;
    let base: string;
    let cleanup: () => Promise<void>;
    const log = capturingLogger();
    const api = async (path: string) => {
      const res = await fetch(`${base}/admin/api${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      // biome-ignore lint/suspicious/noExplicitAny: checked field by field below
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };

    before(async () => {
      const db = engine.database();
      cleanup = db.cleanup;
      consumer = createConsumer({
        secret: SECRET,
        database: db.url,
        logger: log.logger,
        adminToken: TOKEN,
        worker: false,
      });
      const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${port}`;
    });
    after(async () => {
      await consumer.close();
      await cleanup();
    });

    it('ingest accepts it; the detail answers 200 with the raw body and says why there is no payload', async () => {
      const body = deepBody('evt_deep_1', DEPTH);
      const ingest = await postSigned(`${base}/webhooks/procureiq`, body);
      assert.equal(ingest.status, 200, JSON.stringify(ingest.body));
      const res = await api('/events/evt_deep_1');
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
      const e = res.body.event;
      assert.equal(e.id, 'evt_deep_1');
      assert.equal(e.rawBody, body);
      assert.equal('payload' in e, false);
      assert.match(e.payloadError, /nests 100002 levels deep; more than 256 cannot be rendered/);
    });

    it('a shallow payload is still rendered parsed, with payloadError null', async () => {
      await postSigned(`${base}/webhooks/procureiq`, deepBody('evt_shallow_1', 10));
      const e = (await api('/events/evt_shallow_1')).body.event;
      assert.equal(e.payloadError, null);
      assert.equal(JSON.stringify(e.payload.data.nested), `${'['.repeat(10)}${']'.repeat(10)}`);
    });

    it('a store that is unavailable is 503 store_unavailable, nothing else', async () => {
      const db = engine.database();
      const other = createConsumer({
        secret: SECRET,
        database: db.url,
        logger: log.logger,
        adminToken: TOKEN,
        worker: false,
      });
      const { port } = await other.listen({ port: 0, host: '127.0.0.1' });
      // The store goes away under a running server (the server itself still answers).
      await other.store.close();
      const res = await fetch(`http://127.0.0.1:${port}/admin/api/events/evt_deep_1`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      await other.close();
      await db.cleanup();
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'store_unavailable');
    });
  });
}

describe('admin API: an unexpected error is 500 with an error id that is also logged', () => {
  const tmp = tempDir();
  let consumer: Consumer;
  let server: Server;
  let base: string;
  const log = capturingLogger();

  before(async () => {
    consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: log.logger,
      worker: false,
    });
    await consumer.start();
    // The real store and a real server; the replay budget (a callback the consumer provides)
    // breaks, as a bug in it would.
    const handler = createAdminHandler({
      store: consumer.store,
      token: TOKEN,
      logger: log.logger,
      replayBudget: () => {
        throw new TypeError('replay budget exploded: secret internals here');
      },
      signatureFailures: new MinuteSeries(),
      secretsConfigured: { production: 1, sandbox: 0 },
    });
    server = createServer((req, res) => {
      void handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await consumer.close();
    tmp.cleanup();
  });

  it('answers 500 internal_error with an errorId, logs the error under that id, leaks nothing', async () => {
    await consumer.store.insertIfAbsent(newEvent('evt_boom', { status: 'unhandled' }));
    const res = await fetch(`${base}/admin/api/events/evt_boom/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    });
    const text = await res.text();
    assert.equal(res.status, 500, text);
    const body = JSON.parse(text) as { error: { code: string; errorId: string } };
    assert.equal(body.error.code, 'internal_error');
    assert.match(body.error.errorId, /^[0-9a-f-]{36}$/);
    assert.doesNotMatch(text, /exploded|secret internals/);
    const logged = log.lines().find((l) => l.errorId === body.error.errorId);
    assert.ok(logged, `no log line with errorId ${body.error.errorId}:\n${log.text()}`);
    assert.match(JSON.stringify(logged.err), /replay budget exploded/);
  });
});
