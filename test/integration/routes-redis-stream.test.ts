// A route to a real Redis stream on a real consumer (SQLite): each entry's `created` is the
// envelope's, read from the store (the dispatcher parses a body only for a transform), and its body
// is the exact stored bytes, or the transform's answer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import { type Consumer, createConsumer } from '../../src/consumer.ts';
import { examplePayloads } from '../../src/events/examples.ts';
import { handleSigned, REDIS_URL, REPO, tempDir, waitFor } from '../helpers/index.ts';

const SECRET = 'routes-redis-stream-secret';
const RUN = randomBytes(4).toString('hex');
const RAW = `piq:routes:${RUN}:raw`;
const SLIM = `piq:routes:${RUN}:slim`;

describe('routes to a Redis stream', () => {
  let consumer: Consumer;
  let redis: Redis;
  const tmp = tempDir();

  before(async () => {
    redis = new Redis(REDIS_URL);
    consumer = createConsumer({
      secret: SECRET,
      database: `sqlite:${join(tmp.dir, 'inbox.db')}`,
      logger: pino({ level: 'silent' }),
      pollInterval: '100ms',
      routes: {
        destinations: {
          raw: { type: 'redis-stream', url: REDIS_URL, stream: RAW },
          slim: { type: 'redis-stream', url: REDIS_URL, stream: SLIM },
        },
        routes: [
          { name: 'raw', match: { types: ['order.*'] }, to: 'raw' },
          {
            name: 'slim',
            match: { types: ['order.*'] },
            to: 'slim',
            transform: join(REPO, 'test', 'fixtures', 'routes', 'transforms', 'as-text.mjs'),
          },
        ],
      },
    });
    await consumer.start();
  });

  after(async () => {
    await consumer.close();
    await redis.del(RAW, SLIM);
    await redis.quit();
    tmp.cleanup();
  });

  it("carries the envelope's created and the exact bytes, with a transform or without", async () => {
    const events = [
      { ...examplePayloads['order.created'], id: `evt_rs_${RUN}_1`, created: 1711234001 },
      { ...examplePayloads['order.shipped'], id: `evt_rs_${RUN}_2`, created: 1711239999 },
    ];
    const bodies = events.map((e) => Buffer.from(JSON.stringify(e)));
    for (const body of bodies) {
      assert.equal((await handleSigned(consumer.receiver, body, SECRET)).status, 200);
    }
    for (const e of events)
      await waitFor(async () => (await consumer.store.get(e.id))?.status === 'processed', {
        what: `${e.id} routed`,
      });
    const entries = async (stream: string) =>
      new Map(
        (await redis.xrangeBuffer(stream, '-', '+')).map(([, fields]) => {
          const f = new Map<string, Buffer>();
          for (let i = 0; i < fields.length; i += 2) f.set(String(fields[i]), fields[i + 1] as Buffer);
          return [String(f.get('id')), f] as const;
        }),
      );
    const raw = await entries(RAW);
    const slim = await entries(SLIM);
    for (const [i, e] of events.entries()) {
      assert.equal(String(raw.get(e.id)?.get('created')), String(e.created), `${e.id} raw`);
      assert.deepEqual(raw.get(e.id)?.get('body'), bodies[i]);
      assert.equal(String(slim.get(e.id)?.get('created')), String(e.created), `${e.id} transformed`);
      assert.equal(String(slim.get(e.id)?.get('body')), `${e.type} ${e.id}`);
    }
  });
});
