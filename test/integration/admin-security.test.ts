// Admin hardening over real HTTP: routing of bad paths, headers, JSON-only mutations, /readyz,
// and failed sign-ins (logged by address, never the token; 429 after 10 in a minute).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type Consumer, createConsumer } from '../../src/consumer.ts';
import { storeReadiness } from '../../src/ops/readiness.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { capturingLogger } from '../helpers/capture-log.ts';
import { dropSchema, PG_URL, SECRET, tempDir, uniqueSchema } from '../helpers/index.ts';

const TOKEN = 'admin-token-0123456789abcdef';

describe('admin routing, headers and media types', () => {
  const tmp = tempDir();
  let consumer: Consumer;
  let base: string;
  const auth = { authorization: `Bearer ${TOKEN}` };

  before(async () => {
    consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: capturingLogger().logger,
      adminToken: TOKEN,
      worker: false,
    });
    const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await consumer.close();
    tmp.cleanup();
  });

  it('a malformed percent-escape in an event id is 400, not a failure', async () => {
    const res = await fetch(`${base}/admin/api/events/%E0%A4%A`, { headers: auth });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid_request');
    assert.match(body.error.message, /malformed percent-escape/);
    const replay = await fetch(`${base}/admin/api/events/%ZZ/replay`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
    });
    assert.equal(replay.status, 400);
  });

  it('params are decoded once; a known path under another method is 405 with Allow', async () => {
    const encoded = await fetch(`${base}/admin/api/events/${encodeURIComponent('evt_a/b%c')}`, {
      headers: auth,
    });
    assert.equal(encoded.status, 404);
    assert.match(((await encoded.json()) as { error: { message: string } }).error.message, /evt_a\/b%c$/);
    const wrong = await fetch(`${base}/admin/api/events`, { method: 'DELETE', headers: auth });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET');
    assert.equal((await fetch(`${base}/admin/api/nope`, { headers: auth })).status, 404);
  });

  it('the bearer scheme in any case; ids as long as the receiver takes (256 bytes), not longer', async () => {
    const lower = await fetch(`${base}/admin/api/events?limit=1`, {
      headers: { authorization: `bearer ${TOKEN}` },
    });
    assert.equal(lower.status, 200);
    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `BEARER ${TOKEN}` } });
    assert.equal(metrics.status, 200);
    const long = await fetch(`${base}/admin/api/events/evt_${'x'.repeat(240)}`, { headers: auth });
    assert.equal(long.status, 404, 'a 244-byte id is looked up');
    const tooLong = await fetch(`${base}/admin/api/events/evt_${'x'.repeat(260)}`, { headers: auth });
    assert.equal(tooLong.status, 400);
  });

  it('a JSON body over 64 KiB is 413', async () => {
    const res = await fetch(`${base}/admin/api/replay`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ ids: ['evt_1'], pad: 'x'.repeat(70 * 1024) }),
    });
    assert.equal(res.status, 413);
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'payload_too_large');
  });

  it('a page cursor that names no stored event is 400, not an empty page', async () => {
    for (const path of ['/admin/api/events', '/admin/api/dead-letters']) {
      const res = await fetch(`${base}${path}?before=evt_nope`, { headers: auth });
      assert.equal(res.status, 400, path);
      const body = (await res.json()) as { error: { message: string } };
      assert.match(body.error.message, /before "evt_nope" is no stored event/);
    }
  });

  it('the dashboard HTML: CSP with base-uri and form-action, and no referrer', async () => {
    const res = await fetch(`${base}/admin`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const directive of [
      "default-src 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
      "form-action 'self'",
    ])
      assert.ok(
        csp
          .split(';')
          .map((d) => d.trim())
          .includes(directive),
        `CSP lacks ${directive}: ${csp}`,
      );
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  });

  it('every API answer (ok, refused, not found) is nosniff and no-store', async () => {
    for (const [path, headers, status] of [
      ['/events', auth, 200],
      ['/events', {}, 401],
      ['/events/evt_missing', auth, 404],
    ] as const) {
      const res = await fetch(`${base}/admin/api${path}`, { headers });
      assert.equal(res.status, status, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('cache-control'), 'no-store', path);
    }
  });

  it('mutating calls must be application/json: 415 with a message that says so', async () => {
    const cases: [string, Record<string, string>][] = [
      ['/dead-letters/discard', {}],
      ['/dead-letters/discard', { 'content-type': 'text/plain' }],
      ['/replay', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['/events/evt_x/replay', {}],
    ];
    for (const [path, headers] of cases) {
      const res = await fetch(`${base}/admin/api${path}`, {
        method: 'POST',
        headers: { ...auth, ...headers },
        body: headers['content-type'] ? '{"ids":["evt_x"]}' : null,
      });
      assert.equal(res.status, 415, `${path} ${JSON.stringify(headers)}`);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'unsupported_media_type');
      assert.match(body.error.message, /must send content-type: application\/json/);
    }
    const ok = await fetch(`${base}/admin/api/dead-letters/discard`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json; charset=utf-8' },
      body: '{"ids":["evt_x"]}',
    });
    assert.equal(ok.status, 200);
  });
});

describe('failed admin sign-ins', () => {
  const tmp = tempDir();
  let consumer: Consumer;
  let base: string;
  const log = capturingLogger();

  before(async () => {
    consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: log.logger,
      adminToken: TOKEN,
      worker: false,
    });
    const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await consumer.close();
    tmp.cleanup();
  });

  it('are logged with the address, never the token; the 11th in a minute is 429 with Retry-After', async () => {
    const guess = 'guessed-token-do-not-log-me';
    const tries: number[] = [];
    for (let i = 0; i < 10; i++) {
      const headers: Record<string, string> = i === 0 ? {} : { authorization: `Bearer ${guess}-${i}` };
      tries.push((await fetch(`${base}/admin/api/events`, { headers })).status);
    }
    assert.deepEqual(tries, Array(10).fill(401));
    const refusals = log.lines().filter((l) => l.msg === 'admin sign-in refused');
    assert.equal(refusals.length, 10);
    assert.equal(refusals[0]?.remoteAddress, '127.0.0.1');
    assert.equal(refusals[0]?.reason, 'missing');
    assert.equal(refusals[1]?.reason, 'wrong');
    assert.equal(refusals[9]?.failures, 10);
    assert.doesNotMatch(log.text(), /guessed-token/);

    // Now blocked, even with the right token (or a guess would still be checked).
    const blocked = await fetch(`${base}/admin/api/events`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(blocked.status, 429);
    const retryAfter = Number(blocked.headers.get('retry-after'));
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
      `Retry-After ${retryAfter}`,
    );
    assert.equal(
      ((await blocked.json()) as { error: { code: string } }).error.code,
      'too_many_failed_logins',
    );
    assert.doesNotMatch(log.text(), new RegExp(TOKEN));
  });
});

describe('/readyz on a store that fails', () => {
  const schema = uniqueSchema();
  let consumer: Consumer;
  let base: string;
  const log = capturingLogger();

  before(async () => {
    consumer = createConsumer({
      secret: SECRET,
      database: `${PG_URL}?schema=${schema}`,
      logger: log.logger,
      worker: false,
    });
    const { port } = await consumer.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await consumer.close();
    await dropSchema(schema);
  });

  it('names migrations that are behind (our own words), and nothing of the database', async () => {
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP TABLE "${schema}".schema_migrations`);
    await client.end();
    const res = await fetch(`${base}/readyz`);
    const text = await res.text();
    assert.equal(res.status, 503);
    const body = JSON.parse(text) as { status: string; reason: string };
    assert.equal(body.status, 'not_ready');
    assert.match(body.reason, /^migrations are behind \(0 of \d+\); run "procureiq-webhooks migrate"$/);
    assert.doesNotMatch(text, /piq_test|PostgreSQL|127\.0\.0\.1/);
  });

  it("gives a generic reason for the store's own errors; their text goes to the log only", async () => {
    const unreachable = new PostgresStore({
      connectionString: 'postgres://postgres@127.0.0.1:1/test',
      schema,
    });
    const capture = capturingLogger();
    try {
      await assert.rejects(storeReadiness(unreachable, capture.logger)(), (error: Error) => {
        assert.equal(error.message, 'the store is not reachable; the service log has the details');
        return true;
      });
      const logged = capture.lines().find((l) => l.msg === 'not ready: the store did not answer a ping');
      assert.match(JSON.stringify(logged?.err), /ECONNREFUSED|unreachable/);
    } finally {
      await unreachable.close();
    }
  });
});
