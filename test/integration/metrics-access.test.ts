// /metrics through the real server: on the public webhook port it needs the admin bearer token
// (404 with none configured) unless metricsPublic; on ADMIN_PORT it stays open; ADMIN_HOST binds
// the admin port to its own address.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveServeConfig } from '../../src/config/resolve-config.ts';
import { type Consumer, type ConsumerOptions, createConsumer } from '../../src/consumer.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { SECRET, tempDir } from '../helpers/index.ts';

const TOKEN = 'admin-token-0123456789abcdef';

describe('/metrics access', () => {
  const tmp = tempDir();
  const consumers: Consumer[] = [];
  let n = 0;
  after(async () => {
    for (const c of consumers) await c.close();
    tmp.cleanup();
  });

  async function start(options: Partial<ConsumerOptions>, host = '127.0.0.1') {
    const consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, `inbox-${n++}.db`)}`,
      logger: silentLogger(),
      worker: false,
      ...options,
    });
    consumers.push(consumer);
    const ports = await consumer.listen({ port: 0, host });
    return { ...ports, base: `http://127.0.0.1:${ports.port}` };
  }

  it('on the webhook port: 401 without the admin token or with a wrong one, 200 with it', async () => {
    const { base } = await start({ adminToken: TOKEN });
    const none = await fetch(`${base}/metrics`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.doesNotMatch(await none.text(), /procureiq_webhooks_/);
    const wrong = await fetch(`${base}/metrics`, {
      headers: { authorization: 'Bearer not-the-token-at-all' },
    });
    assert.equal(wrong.status, 401);
    const right = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(right.status, 200);
    assert.match(await right.text(), /procureiq_webhooks_inflight_body_bytes 0/);
  });

  it('wrong tokens on /metrics count against the admin sign-in limit (429)', async () => {
    const { base } = await start({ adminToken: TOKEN });
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer guess-${i}` } });
      assert.equal(res.status, 401);
    }
    const blocked = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
    const admin = await fetch(`${base}/admin/api/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(admin.status, 429, 'the admin API shares the limit');
  });

  it('on the webhook port with no admin token: 404, never open', async () => {
    const { base } = await start({});
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /METRICS_PUBLIC=true/);
  });

  it('metricsPublic opens it on the webhook port', async () => {
    const { base } = await start({ metricsPublic: true });
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /procureiq_webhooks_deliveries_total/);
  });

  it('on ADMIN_PORT it stays open, bound to ADMIN_HOST alone', async () => {
    const { base, adminPort } = await start({ adminToken: TOKEN, adminPort: 0, adminHost: '127.0.0.2' });
    assert.ok(adminPort);
    assert.equal((await fetch(`http://127.0.0.2:${adminPort}/metrics`)).status, 200);
    assert.equal(
      (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status,
      404,
    );
    await assert.rejects(fetch(`http://127.0.0.1:${adminPort}/metrics`), 'not listening on 127.0.0.1');
  });

  it('ADMIN_HOST without ADMIN_PORT is a configuration error', () => {
    assert.throws(
      () => resolveServeConfig({ secret: SECRET, adminHost: '127.0.0.1' }),
      /ADMIN_HOST \(--admin-host\) needs ADMIN_PORT \(--admin-port\)/,
    );
    const config = resolveServeConfig({ secret: SECRET, adminHost: '127.0.0.1', adminPort: '9100' });
    assert.equal(config.adminHost, '127.0.0.1');
    assert.equal(config.metricsPublic, false);
    assert.equal(config.maxInflightBodyBytes, 64 * 1024 * 1024);
    assert.equal(config.bodyTimeoutMs, 10_000);
    assert.equal(config.maxConnections, 1024);
    assert.equal(
      resolveServeConfig({ secret: SECRET, maxInflightBodyBytes: '8mb' }).maxInflightBodyBytes,
      8 * 1024 * 1024,
    );
    assert.throws(() => resolveServeConfig({ secret: SECRET, metricsPublic: 'yes' }), /METRICS_PUBLIC/);
  });
});
