import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type Consumer, createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { createLogger, silentLogger } from '../../src/logging/logger.ts';
import { projectionJobs } from '../../src/projections/jobs.ts';
import { resolveProjectionsConfig } from '../../src/projections/registry.ts';
import { projectionStatements } from '../../src/projections/statements.ts';
import { createReceiver } from '../../src/receiver/receiver.ts';
import { sign } from '../../src/signature/sign.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { postSigned, SECRET, tempDir } from '../helpers/index.ts';

const fixtures = Object.values(examplePayloads);

describe('receiver over real HTTP and a real SQLite file', () => {
  const tmp = tempDir();
  let consumer: Consumer;
  let url: string;
  let base: string;

  before(async () => {
    consumer = createConsumer({
      secret: ['rotated-new-secret', SECRET],
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: silentLogger(),
      maxBodyBytes: 64 * 1024,
      worker: false,
    });
    const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
    url = `${base}/webhooks/procureiq`;
  });
  after(async () => {
    await consumer.close();
    tmp.cleanup();
  });

  it('stores every fixture of the guide and answers ok', async () => {
    for (const fixture of fixtures) {
      const body = JSON.stringify(fixture);
      const res = await postSigned(url, body);
      assert.deepEqual(res, { status: 200, body: { status: 'ok' } }, fixture.type);
      const stored = await consumer.store.get(fixture.id);
      assert.ok(stored, fixture.type);
      assert.equal(stored.type, fixture.type);
      assert.equal(stored.status, 'pending');
      assert.equal(Buffer.from(stored.rawBody).toString('utf8'), body, 'stores the exact raw body');
      assert.equal(stored.deliveries.length, 1);
      assert.equal(stored.deliveries[0]?.secretIndex, 1, 'the second configured secret matched');
    }
  });

  it('answers duplicate for a repeated delivery and stores nothing new but the delivery', async () => {
    const fixture = examplePayloads['order.created'];
    const res = await postSigned(url, JSON.stringify(fixture));
    assert.deepEqual(res, { status: 200, body: { status: 'duplicate' } });
    const stored = await consumer.store.get(fixture.id);
    assert.equal(stored?.deliveries.length, 2);
    assert.equal(stored?.deliveries[1]?.duplicate, true);
  });

  it('stores 22 rows for 3 concurrent deliveries of each fixture', async () => {
    const prefixed = fixtures.map((f) => ({ ...f, id: `${f.id}_concurrent` }));
    const results = await Promise.all(
      prefixed.flatMap((f) => [1, 2, 3].map(() => postSigned(url, JSON.stringify(f)))),
    );
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(results.filter((r) => r.body.status === 'ok').length, 22);
    assert.equal(results.filter((r) => r.body.status === 'duplicate').length, 44);
    const rows = await consumer.store.list({ limit: 1000 });
    assert.equal(rows.filter((r) => r.id.endsWith('_concurrent')).length, 22);
  });

  it('stores the delivery id and timestamp header', async () => {
    const event = { ...examplePayloads['user.registered'], id: 'evt_headers' };
    await postSigned(url, event, {
      headers: { 'x-procureiq-delivery': 'dlv_123', 'x-procureiq-timestamp': '1711234567' },
    });
    const stored = await consumer.store.get('evt_headers');
    assert.equal(stored?.deliveryId, 'dlv_123');
    assert.equal(stored?.timestampHeader, '1711234567');
    assert.ok(stored && Math.abs(stored.receivedAt - Date.now()) < 60_000);
  });

  it('accepts and stores an unknown event type', async () => {
    const event = {
      id: 'evt_unknown_type',
      type: 'warehouse.teleported',
      version: '2.0',
      created: 1,
      data: { x: 1 },
    };
    assert.equal((await postSigned(url, event)).status, 200);
    assert.equal((await consumer.store.get('evt_unknown_type'))?.type, 'warehouse.teleported');
  });

  it('stores a known type with bad data as invalid, and accepts it', async () => {
    const event = {
      ...examplePayloads['order.shipped'],
      id: 'evt_invalid_data',
      data: { orderId: 'o', trackingNumber: 7 },
    };
    assert.deepEqual(await postSigned(url, event), { status: 200, body: { status: 'ok' } });
    const stored = await consumer.store.get('evt_invalid_data');
    assert.equal(stored?.status, 'invalid');
    assert.match(stored?.validationError ?? '', /trackingNumber/);
  });

  it('refuses a body over the limit with 413, declared or chunked', async () => {
    const big = JSON.stringify({
      ...examplePayloads['order.created'],
      id: 'evt_big',
      pad: 'x'.repeat(70 * 1024),
    });
    const declared = await postSigned(url, big);
    assert.equal(declared.status, 413);
    assert.equal((declared.body.error as { code: string }).code, 'body_too_large');
    // Chunked: no content-length, the body streams past the limit.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'transfer-encoding': 'chunked',
          'x-procureiq-signature': sign(SECRET, big),
        },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < big.length; i += 8192) req.write(big.slice(i, i + 8192));
      req.end();
    });
    assert.equal(status, 413);
    assert.equal(await consumer.store.get('evt_big'), null);
  });

  it('refuses a non-JSON content type with 415', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const res = await postSigned(url, examplePayloads['order.created'], {
        headers: { 'content-type': type },
      });
      assert.equal(res.status, 415, type);
    }
    const res = await postSigned(
      url,
      { ...examplePayloads['order.created'], id: 'evt_charset' },
      {
        headers: { 'content-type': 'application/json; charset=utf-8' },
      },
    );
    assert.equal(res.status, 200);
  });

  it('refuses bad, missing and repeated signatures with 401 and stores nothing', async () => {
    const event = { ...examplePayloads['order.created'], id: 'evt_unsigned' };
    const body = JSON.stringify(event);
    const cases: Record<string, string>[] = [
      { 'x-procureiq-signature': sign('wrong-secret', body) },
      { 'x-procureiq-signature': 'sha256=nothex' },
      { 'x-procureiq-signature': '' },
      { 'x-procureiq-signature': `${sign(SECRET, body)}, ${sign(SECRET, body)}` },
    ];
    for (const headers of cases) {
      const res = await postSigned(url, body, { headers });
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal((res.body.error as { code: string }).code, 'signature_invalid');
    }
    const missing = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    assert.equal(missing.status, 401);
    assert.match(JSON.stringify(await missing.json()), /missing/);
    // A repeated header sent as two separate header lines.
    const repeated = await new Promise<number>((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-procureiq-signature': [sign(SECRET, body), sign(SECRET, body)],
        },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(repeated, 401);
    assert.equal(await consumer.store.get('evt_unsigned'), null);
  });

  it('refuses malformed JSON and bad envelopes with 400, and duplicate id keys', async () => {
    const bodies = [
      '{"id":',
      '[]',
      '{"id":"evt_x","type":"order.created","created":"yesterday","data":{}}',
      '{"id":"evt_x","type":"order.created","created":1}',
      '{"type":"order.created","created":1,"data":{}}',
      '{"id":"evt_dup_a","type":"order.created","created":1,"data":{},"id":"evt_dup_b"}',
    ];
    for (const body of bodies) {
      const res = await postSigned(url, body);
      assert.equal(res.status, 400, body);
      assert.equal((res.body.error as { code: string }).code, 'payload_invalid');
    }
    assert.equal(await consumer.store.get('evt_dup_a'), null);
    assert.equal(await consumer.store.get('evt_dup_b'), null);
  });

  it('refuses an envelope out of bounds with 400 naming the field, and stores nothing', async () => {
    const envelope = (fields: Record<string, unknown>) =>
      JSON.stringify({ id: 'evt_bounds', type: 'order.created', created: 1, data: {}, ...fields });
    const cases: [string, string, string][] = [
      // [id to look up, body, field the message names]
      ['evt_big_created', envelope({ id: 'evt_big_created', created: 1e308 }), '"created"'],
      ['evt_float_created', envelope({ id: 'evt_float_created', created: 1711234601.5 }), '"created"'],
      ['evt_neg_created', envelope({ id: 'evt_neg_created', created: -1 }), '"created"'],
      ['evt_2100_created', envelope({ id: 'evt_2100_created', created: 4102444801 }), '"created"'],
      [
        'evt_huge_int',
        '{"id":"evt_huge_int","type":"t","created":123456789012345678901234567890,"data":{}}',
        '"created"',
      ],
      [`evt_${'é'.repeat(127)}`, envelope({ id: `evt_${'é'.repeat(127)}` }), '"id"'],
      ['x'.repeat(10_000), envelope({ id: 'x'.repeat(10_000) }), '"id"'],
      ['evt_long_type', envelope({ id: 'evt_long_type', type: `t.${'y'.repeat(255)}` }), '"type"'],
      ['evt with space', envelope({ id: 'evt with space' }), '"id"'],
      ['evt\u0000nul', envelope({ id: 'evt\u0000nul' }), '"id"'],
      ['evt\n', envelope({ id: 'evt\n' }), '"id"'],
      ['evt_\u202erlo', envelope({ id: 'evt_\u202erlo' }), '"id"'],
      ['evt_lone_\ud800', '{"id":"evt_lone_\\ud800","type":"t","created":1,"data":{}}', '"id"'],
      ['evt_nul_type', envelope({ id: 'evt_nul_type', type: 'order\u0000created' }), '"type"'],
    ];
    for (const [id, body, field] of cases) {
      const res = await postSigned(url, body);
      assert.equal(res.status, 400, body.slice(0, 120));
      const error = res.body.error as { code: string; message: string };
      assert.equal(error.code, 'payload_invalid');
      assert.ok(error.message.includes(field), `${error.message} names ${field}`);
      assert.equal(await consumer.store.get(id), null, `nothing stored for ${body.slice(0, 120)}`);
    }
  });

  it('accepts an envelope at its bounds', async () => {
    const id = `evt_${'é'.repeat(126)}`; // 256 bytes
    assert.equal(Buffer.byteLength(id), 256);
    const bodies = [
      { id, type: `t.${'y'.repeat(254)}`, created: 4102444800, data: {} },
      { id: 'evt_created_zero_😀', type: 'x', created: 0, data: {} },
    ];
    for (const body of bodies) {
      assert.equal((await postSigned(url, body)).status, 200, body.id);
      assert.equal((await consumer.store.get(body.id))?.created, body.created);
    }
  });

  it('quotes a mismatched metadata.environment, control characters escaped', async () => {
    const body = {
      ...examplePayloads['order.created'],
      id: 'evt_env_nul',
      metadata: { environment: 'x\u0000y' },
    };
    assert.equal((await postSigned(url, body)).status, 200);
    const stored = await consumer.store.get('evt_env_nul');
    assert.equal(stored?.status, 'invalid');
    assert.match(stored?.validationError ?? '', /metadata\.environment is "x\\u0000y"/);
  });

  it('a __proto__ key in a delivery pollutes nothing and the event is stored', async () => {
    const body = `{"id":"evt_proto","type":"order.cancelled","version":"1.0","created":1,"__proto__":{"polluted":1},"data":{"orderId":"o","reason":"r","__proto__":{"polluted":2}}}`;
    assert.equal((await postSigned(url, body)).status, 200);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Buffer.from((await consumer.store.get('evt_proto'))!.rawBody).toString(), body);
  });

  it('answers 405 for GET on the webhook route, and /healthz and /readyz', async () => {
    assert.equal((await fetch(url)).status, 405);
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' });
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  });
});

describe('receiver when the store is unavailable', () => {
  it('answers 503, never 2xx, when the write cannot be made durable', async () => {
    const tmp = tempDir();
    const consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: silentLogger(),
      worker: false,
    });
    try {
      const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
      await consumer.store.close();
      const res = await postSigned(
        `http://127.0.0.1:${port}/webhooks/procureiq`,
        examplePayloads['order.created'],
      );
      assert.equal(res.status, 503);
      assert.equal((res.body.error as { code: string }).code, 'store_unavailable');
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 503);
    } finally {
      await consumer.close();
      tmp.cleanup();
    }
  });
});

describe('receiver when the store refuses the write for a reason of its own', () => {
  it('answers 500 internal_error with an error id that is logged, not 503', async () => {
    const tmp = tempDir();
    const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
    const logs = new PassThrough();
    let logged = '';
    logs.on('data', (d: Buffer) => {
      logged += d.toString();
    });
    // A misconfigured retry budget breaks the CHECK (max_attempts >= 1): a bug, not an outage.
    const receiver = createReceiver({
      secrets: [SECRET],
      store,
      logger: createLogger({ destination: logs, pretty: false }),
      maxAttemptsFor: () => 0,
    });
    try {
      await store.migrate();
      const body = Buffer.from(JSON.stringify({ ...examplePayloads['order.created'], id: 'evt_check' }));
      const res = await receiver.handle({
        headers: { 'content-type': 'application/json', 'x-procureiq-signature': sign(SECRET, body) },
        body,
      });
      assert.equal(res.status, 500);
      const error = res.body.error as { code: string; message: string; errorId: string };
      assert.equal(error.code, 'internal_error');
      assert.equal(error.message, 'internal error');
      assert.match(error.errorId, /^[0-9a-f-]{36}$/);
      assert.ok(logged.includes(error.errorId), 'the error id is in the log');
      assert.equal(await store.get('evt_check'), null);
    } finally {
      await store.close();
      tmp.cleanup();
    }
  });

  it('an error thrown on the SQLite writer thread keeps its class and code', async () => {
    const tmp = tempDir();
    const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
    try {
      await assert.rejects(
        store.insertIfAbsent({
          id: 'evt_thread',
          type: 't',
          environment: 'production',
          status: 'pending',
          created: 1e308,
          rawBody: Buffer.from('{}'),
          deliveryId: null,
          timestampHeader: null,
          receivedAt: Date.now(),
          validationError: null,
          maxAttempts: 4,
          secretIndex: 0,
          sourceAddress: null,
        }),
        (error: unknown) =>
          error instanceof Database.SqliteError && error.code.startsWith('SQLITE_CONSTRAINT'),
      );
    } finally {
      await store.close();
      tmp.cleanup();
    }
  });
});

describe('restart persistence', () => {
  it('finds what it stored after a restart, and still answers duplicate', async () => {
    const tmp = tempDir();
    const database = `sqlite:${join(tmp.dir, 'inbox.db')}`;
    try {
      const first = createConsumer({ secret: SECRET, database, logger: silentLogger(), worker: false });
      const a = await first.listen({ port: 0, host: '127.0.0.1' });
      for (const f of fixtures)
        assert.equal((await postSigned(`http://127.0.0.1:${a.port}/webhooks/procureiq`, f)).status, 200);
      await first.close();

      const second = createConsumer({ secret: SECRET, database, logger: silentLogger(), worker: false });
      const b = await second.listen({ port: 0, host: '127.0.0.1' });
      assert.equal((await second.store.list({ limit: 100 })).length, 22);
      const again = await postSigned(`http://127.0.0.1:${b.port}/webhooks/procureiq`, fixtures[0]!);
      assert.deepEqual(again.body, { status: 'duplicate' });
      await second.close();
    } finally {
      tmp.cleanup();
    }
  });
});

describe('receiver wakes the projections runner only for a projections job', () => {
  it('an event projected at insert (SQLite) wakes nothing; one whose write failed wakes the runner', async () => {
    const tmp = tempDir();
    const path = join(tmp.dir, 'inbox.db');
    const store = new SqliteStore({ path });
    const projections = resolveProjectionsConfig();
    let projectionWakes = 0;
    let routeWakes = 0;
    const receiver = createReceiver({
      secrets: [SECRET],
      store,
      logger: silentLogger(),
      // No handler takes these types: only the projection wants them.
      initialStatus: () => 'unhandled',
      projectionJobs: (event) => projectionJobs({ type: event.type, status: 'pending' }, projections, 3),
      projectionStatements: (event) => projectionStatements(store.dialect, event, projections),
      onProjectionJob: () => projectionWakes++,
      onRouted: () => routeWakes++,
    });
    const deliver = (payload: object) => {
      const body = Buffer.from(JSON.stringify(payload));
      return receiver.handle({
        headers: { 'content-type': 'application/json', 'x-procureiq-signature': sign(SECRET, body) },
        body,
      });
    };
    try {
      await store.migrate();
      const order = { ...examplePayloads['order.created'], id: 'evt_projected_at_insert' };
      assert.equal((await deliver(order)).status, 200);
      // Projected in the commit that stored it: no job, so a claim would find nothing.
      assert.deepEqual((await store.get(order.id))?.jobs, []);
      assert.equal(projectionWakes, 0);

      const direct = new Database(path);
      direct.exec('DROP TABLE procureiq_searches');
      direct.close();
      const search = { ...examplePayloads['search.failed'], id: 'evt_projection_fallback' };
      assert.equal((await deliver(search)).status, 200);
      assert.deepEqual(
        (await store.get(search.id))?.jobs.map((j) => [j.consumer, j.status]),
        [['projections', 'pending']],
      );
      assert.equal(projectionWakes, 1, 'the fallback job wakes the runner');
      assert.equal(routeWakes, 0, 'no route matched');
    } finally {
      await store.close();
      tmp.cleanup();
    }
  });
});
