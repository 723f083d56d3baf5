import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { type Consumer, createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { postSigned, SECRET, signedRequest, tempDir, waitFor } from '../helpers/index.ts';

describe('Express middleware and the web-standard handler', () => {
  const tmp = tempDir();
  let consumer: Consumer;
  let server: Server;
  let base: string;
  const seen: string[] = [];

  before(async () => {
    consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: silentLogger(),
    });
    consumer.on('order.created', async (event) => {
      seen.push(event.data.orderId);
    });
    const app = express();
    // The right way: the webhook route reads its own raw body.
    app.post('/webhooks/procureiq', consumer.middleware());
    // express.raw() before it also works: its Buffer is the raw body.
    app.post('/raw/webhooks', express.raw({ type: 'application/json' }), consumer.middleware());
    // The classic pitfall: express.json() consumed the body first.
    app.post('/pitfall/webhooks', express.json(), consumer.middleware());
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ error: error.message });
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await consumer.close();
    tmp.cleanup();
  });

  it('Express: verifies, stores and processes', async () => {
    const event = { ...examplePayloads['order.created'], id: 'evt_express' };
    assert.deepEqual(await postSigned(`${base}/webhooks/procureiq`, event), {
      status: 200,
      body: { status: 'ok' },
    });
    assert.equal((await postSigned(`${base}/webhooks/procureiq`, event, { secret: 'nope' })).status, 401);
    await waitFor(async () => (await consumer.store.get('evt_express'))?.status === 'processed', {
      what: 'processed',
    });
    assert.ok(seen.includes(event.data.orderId));
  });

  it('Express: uses the Buffer left by express.raw()', async () => {
    // Spacing JSON.stringify would not produce: only the exact bytes match.
    const body = JSON.stringify({ ...examplePayloads['order.created'], id: 'evt_express_raw' }, null, 1);
    assert.deepEqual(await postSigned(`${base}/raw/webhooks`, body), { status: 200, body: { status: 'ok' } });
    const stored = await consumer.store.get('evt_express_raw');
    assert.ok(stored, 'the event is in the store');
    assert.deepEqual(Buffer.from(stored.rawBody), Buffer.from(body), 'the exact raw bytes are stored');
  });

  it('Express: explains the express.json() pitfall instead of failing every signature', async () => {
    const event = { ...examplePayloads['order.created'], id: 'evt_express_json' };
    const res = await postSigned(`${base}/pitfall/webhooks`, event);
    assert.equal(res.status, 500);
    assert.match(String(res.body.error), /express\.json\(\) or similar ran first/);
    assert.equal(await consumer.store.get('evt_express_json'), null);
  });

  it('web-standard handler: Request in, Response out', async () => {
    const handler = consumer.fetchHandler();
    const event = { ...examplePayloads['order.created'], id: 'evt_fetch' };
    const body = JSON.stringify(event);
    const ok = await handler(signedRequest(body));
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { status: 'ok' });
    const bad = await handler(
      new Request('http://x/', { method: 'POST', headers: { 'content-type': 'application/json' }, body }),
    );
    assert.equal(bad.status, 401);
    const big = await handler(
      new Request('http://x/', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: 'x'.repeat(2 * 1024 * 1024),
      }),
    );
    assert.equal(big.status, 413);
    assert.equal((await handler(new Request('http://x/'))).status, 405);
    await waitFor(async () => (await consumer.store.get('evt_fetch'))?.status === 'processed', {
      what: 'processed',
    });
  });
});
