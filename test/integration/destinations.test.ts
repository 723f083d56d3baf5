import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { connect as amqpConnect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { examplePayloads } from '../../src/events/examples.ts';
import { parseRetryAfter } from '../../src/routes/destinations/http.ts';
import { createDestination } from '../../src/routes/destinations/index.ts';
import type { Destination, DestinationConfig, OutboundMessage, SendOutcome } from '../../src/routes/types.ts';
import { verifySignature } from '../../src/signature/verify-signature.ts';
import { freePort, REDIS_URL } from '../helpers/index.ts';

const RUN = `${process.pid}_${Date.now().toString(36)}`;
const RABBIT_URL = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const SECRET = 'forwarding-secret-0123456789';
/** Short, so the down-destination tests prove sends fail within it instead of hanging. */
const DOWN_TIMEOUT_MS = 500;
/** Generous slack over a timeout for a loaded 2-core machine. */
const SLACK_MS = 3000;

let seq = 0;
/**
 * A stored event on its way out. The body is pretty-printed with non-ASCII text, so any
 * re-serialization or re-encoding on the way shows up as a byte difference.
 */
function outbound(type = 'order.created', overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  seq += 1;
  const eventId = `evt_${RUN}_${seq}`;
  const envelope = {
    ...examplePayloads['order.created'],
    id: eventId,
    type,
    data: { ...examplePayloads['order.created'].data, note: 'Müller & Søn — 5 € ✓' },
  };
  return {
    eventId,
    type,
    environment: 'production',
    created: 1711234567,
    deliveryId: `dlv_${RUN}_${seq}`,
    body: Buffer.from(`${JSON.stringify(envelope, null, 2)}\n`, 'utf8'),
    contentType: 'application/json',
    timestamp: 1711234600 + seq,
    ...overrides,
  };
}

function batchOf(n: number, type = 'order.created'): OutboundMessage[] {
  return Array.from({ length: n }, () => outbound(type));
}

/** A TCP port that accepts connections and never says a word: a hung broker or server. */
async function startSilentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends and asserts every message failed within the timeout (plus slack), with `pattern`. */
async function assertFailsFast(destination: Destination, pattern: RegExp): Promise<void> {
  const batch = batchOf(3);
  const started = Date.now();
  const outcomes = await destination.send(batch);
  const elapsed = Date.now() - started;
  assert.equal(outcomes.length, 3);
  for (const outcome of outcomes) {
    assert.equal(outcome.ok, false);
    assert.match(outcome.ok ? '' : outcome.error, pattern);
  }
  assert.ok(elapsed < DOWN_TIMEOUT_MS + SLACK_MS, `failed after ${elapsed}ms`);
}

/** Five batches of 100, reported in the test log only: no assertion on speed. */
async function logThroughput(t: TestContext, destination: Destination): Promise<void> {
  const batches = Array.from({ length: 5 }, () => batchOf(100));
  const started = performance.now();
  for (const batch of batches) {
    const outcomes = await destination.send(batch);
    assert.ok(
      outcomes.every((o) => o.ok),
      'every message of the throughput run is delivered',
    );
  }
  const seconds = (performance.now() - started) / 1000;
  t.diagnostic(`${destination.type}: ${Math.round(500 / seconds)} messages/s in batches of 100`);
}

/** Kills the Redis connections a destination opened (named after it); answers how many. */
async function killRedisClients(redis: Redis, destinationName: string): Promise<number> {
  const list = String(await redis.client('LIST'));
  const ids = list
    .split('\n')
    .filter((line) => line.includes(` name=procureiq-webhooks:${destinationName} `))
    .map((line) => /^id=(\d+)/.exec(line)?.[1]);
  for (const id of ids) if (id) await redis.client('KILL', 'ID', id);
  return ids.length;
}

/**
 * After its connection is killed, a destination notices on the next send at the latest (that send
 * may fail, never hang) and the send after it reconnects and lands.
 */
async function assertReconnects(destination: Destination, kill: () => Promise<number>): Promise<void> {
  assert.deepEqual(await destination.send(batchOf(1)), [{ ok: true }]);
  assert.equal(await kill(), 1, 'one connection killed');
  const first = await destination.send(batchOf(1));
  if (first[0]?.ok === false) assert.match(first[0].error, /connection to Redis was lost|clos|reset|EPIPE/i);
  assert.deepEqual(await destination.send(batchOf(1)), [{ ok: true }]);
}

function downDestinations(port: number): DestinationConfig[] {
  return [
    {
      type: 'http',
      name: 'down-http',
      url: `http://127.0.0.1:${port}/hook`,
      timeoutMs: DOWN_TIMEOUT_MS,
      headers: {},
    },
    {
      type: 'rabbitmq',
      name: 'down-rabbit',
      url: `amqp://guest:guest@127.0.0.1:${port}`,
      queue: `piq_down_${RUN}`,
    },
    { type: 'redis-stream', name: 'down-redis', url: `redis://127.0.0.1:${port}`, stream: `piq:down:${RUN}` },
    { type: 'bullmq', name: 'down-bullmq', url: `redis://127.0.0.1:${port}`, queue: `piq-down-${RUN}` },
    { type: 'nats', name: 'down-nats', url: `nats://127.0.0.1:${port}`, subject: `piq.down.${RUN}.{type}` },
  ];
}

describe('destinations that are down', () => {
  it('answer failures within the timeout on a closed port, and check() rejects', async () => {
    const port = await freePort();
    for (const config of downDestinations(port)) {
      const destination = createDestination(config, { timeoutMs: DOWN_TIMEOUT_MS });
      try {
        await assertFailsFast(destination, /ECONNREFUSED|refused|connect/i);
        await assert.rejects(destination.check(), (e: Error) => {
          assert.equal(e.name, 'DestinationError', config.type);
          assert.ok(e.message.includes(config.name), e.message);
          return true;
        });
      } finally {
        await destination.close();
      }
    }
  });

  it('answer failures within the timeout when the peer accepts and never answers', async () => {
    const silent = await startSilentServer();
    try {
      for (const config of downDestinations(silent.port)) {
        const destination = createDestination(config, { timeoutMs: DOWN_TIMEOUT_MS });
        try {
          await assertFailsFast(destination, /timed? ?out/i);
        } finally {
          await destination.close();
        }
      }
    } finally {
      await silent.close();
    }
  });

  it('never leak the URL password into an error', async () => {
    const port = await freePort();
    const destination = createDestination(
      { type: 'rabbitmq', name: 'r', url: `amqp://guest:hunter2@127.0.0.1:${port}`, queue: 'q' },
      { timeoutMs: DOWN_TIMEOUT_MS },
    );
    try {
      const [outcome] = await destination.send(batchOf(1));
      assert.ok(outcome && !outcome.ok);
      assert.ok(!outcome.error.includes('hunter2'), outcome.error);
      await assert.rejects(destination.check(), (e: Error) => !e.message.includes('hunter2'));
    } finally {
      await destination.close();
    }
  });
});

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: Buffer;
  socket: Socket;
}

describe('http destination against a real node:http server', () => {
  let server: Server;
  let base: string;
  const received: Received[] = [];
  /** Answers by delivery id; the default is 204. */
  const answers = new Map<string, (res: ServerResponse) => void>();

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: Buffer.concat(chunks),
          socket: req.socket,
        });
        const answer = answers.get(String(req.headers['x-procureiq-delivery']));
        if (answer) answer(res);
        else res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function http(overrides: Partial<Extract<DestinationConfig, { type: 'http' }>> = {}): Destination {
    return createDestination({
      type: 'http',
      name: 'hook',
      url: `${base}/hook`,
      timeoutMs: 5000,
      headers: {},
      ...overrides,
    });
  }
  const byDelivery = (id: string): Received => {
    const found = received.find((r) => r.headers['x-procureiq-delivery'] === id);
    assert.ok(found, `the server received ${id}`);
    return found;
  };

  it('POSTs the exact bytes with the ProcureIQ headers, signed as ProcureIQ signs', async () => {
    const destination = http({
      secret: SECRET,
      headers: { 'X-Tenant': 'acme', Authorization: 'Bearer t0k' },
    });
    try {
      const batch = [outbound('order.created'), outbound('payment.succeeded'), outbound('order.created')];
      assert.deepEqual(await destination.send(batch), [{ ok: true }, { ok: true }, { ok: true }]);
      for (const message of batch) {
        const got = byDelivery(message.deliveryId);
        assert.equal(got.method, 'POST');
        assert.equal(got.url, '/hook');
        assert.ok(got.body.equals(message.body), 'byte-for-byte body');
        assert.equal(got.headers['content-type'], 'application/json');
        assert.equal(got.headers['content-length'], String(message.body.length));
        assert.equal(got.headers['x-procureiq-event'], message.type);
        assert.equal(got.headers['x-procureiq-timestamp'], String(message.timestamp));
        assert.equal(got.headers['idempotency-key'], message.eventId);
        assert.equal(got.headers['x-tenant'], 'acme');
        assert.equal(got.headers.authorization, 'Bearer t0k');
        const signature = got.headers['x-procureiq-signature'];
        // Our own receiver's verifier accepts the forwarded event…
        assert.deepEqual(verifySignature([SECRET], got.body, signature), { ok: true, secretIndex: 0 });
        // …and so does the guide's Express verifier, verbatim: HMAC of the raw body, no timestamp.
        const expected = `sha256=${createHmac('sha256', SECRET).update(got.body).digest('hex')}`;
        assert.equal(signature, expected);
      }
    } finally {
      await destination.close();
    }
  });

  it('sends no signature without a secret', async () => {
    const destination = http();
    try {
      const message = outbound();
      assert.deepEqual(await destination.send([message]), [{ ok: true }]);
      assert.equal(byDelivery(message.deliveryId).headers['x-procureiq-signature'], undefined);
    } finally {
      await destination.close();
    }
  });

  it('keeps connections alive between batches', async () => {
    const destination = http();
    try {
      const sent: OutboundMessage[] = [];
      for (let i = 0; i < 5; i++) {
        const batch = batchOf(4);
        assert.ok((await destination.send(batch)).every((o) => o.ok));
        sent.push(...batch);
      }
      // Without keep-alive every one of the 20 requests opens its own connection. The pool may
      // open a spare while a finished one is being returned, so allow some above 4.
      const sockets = new Set(sent.map((m) => byDelivery(m.deliveryId).socket));
      assert.ok(sockets.size <= 10, `${sockets.size} connections for 20 requests`);
    } finally {
      await destination.close();
    }
  });

  it('sends a batch 16 requests at a time', async () => {
    const destination = http();
    try {
      const batch = batchOf(40);
      // Hold every request until as many as may be in flight are (16, or all that remain), then
      // a little longer, so a client sending more than 16 at once would show it.
      const held: ServerResponse[] = [];
      let answered = 0;
      let maxInFlight = 0;
      let releasing = false;
      const hold = (res: ServerResponse) => {
        held.push(res);
        maxInFlight = Math.max(maxInFlight, held.length);
        if (releasing || held.length < Math.min(16, batch.length - answered)) return;
        releasing = true;
        setTimeout(() => {
          releasing = false;
          answered += held.length;
          for (const r of held.splice(0)) r.writeHead(204).end();
        }, 50);
      };
      for (const m of batch) answers.set(m.deliveryId, hold);
      const outcomes = await destination.send(batch);
      assert.ok(outcomes.every((o) => o.ok));
      assert.equal(maxInFlight, 16);
    } finally {
      await destination.close();
    }
  });

  it('answers one outcome per message, in order: 2xx, 5xx, 4xx, 429/503 with Retry-After', async () => {
    const destination = http();
    try {
      const batch = batchOf(7);
      const [ok, err500, err404, r429, r503, r429bare, r503past] = batch.map((m) => m.deliveryId) as string[];
      const inTwoMinutes = new Date(Date.now() + 120_000).toUTCString();
      answers.set(String(err500), (res) => res.writeHead(500).end(`database exploded: ${'x'.repeat(500)}`));
      answers.set(String(err404), (res) => res.writeHead(404).end('no such hook'));
      answers.set(String(r429), (res) => res.writeHead(429, { 'retry-after': '7' }).end());
      answers.set(String(r503), (res) =>
        res.writeHead(503, { 'retry-after': inTwoMinutes }).end('maintenance'),
      );
      answers.set(String(r429bare), (res) => res.writeHead(429).end());
      answers.set(String(r503past), (res) =>
        res.writeHead(503, { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }).end(),
      );
      assert.ok(ok);
      const outcomes = await destination.send(batch);
      assert.equal(outcomes.length, 7);
      assert.deepEqual(outcomes[0], { ok: true });
      const failure = (o: SendOutcome | undefined) => {
        assert.ok(o && !o.ok, 'a failure');
        return o;
      };
      const e500 = failure(outcomes[1]);
      assert.match(e500.error, /^HTTP 500: database exploded: x+…$/);
      assert.ok(e500.error.length < 260, 'only an excerpt of the body');
      assert.equal(e500.retryAfterMs, undefined);
      assert.deepEqual(outcomes[2], { ok: false, error: 'HTTP 404: no such hook' });
      assert.deepEqual(outcomes[3], { ok: false, error: 'HTTP 429', retryAfterMs: 7000 });
      const e503 = failure(outcomes[4]);
      assert.equal(e503.error, 'HTTP 503: maintenance');
      // An HTTP date has whole seconds: two minutes from now, less at most the time spent since.
      assert.ok(
        e503.retryAfterMs !== undefined && e503.retryAfterMs > 100_000 && e503.retryAfterMs <= 120_000,
        String(e503.retryAfterMs),
      );
      assert.deepEqual(outcomes[5], { ok: false, error: 'HTTP 429' });
      assert.deepEqual(outcomes[6], { ok: false, error: 'HTTP 503', retryAfterMs: 0 });
    } finally {
      await destination.close();
    }
  });

  it('parses Retry-After as seconds or an HTTP date, and ignores garbage', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:01:30 GMT', now), 90_000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('-5', now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });

  it('fails a request the server does not answer within timeoutMs, and delivers the rest', async () => {
    const destination = http({ timeoutMs: 400 });
    try {
      const batch = batchOf(3);
      const stalled: ServerResponse[] = [];
      answers.set(batch[1]?.deliveryId ?? '', (res) => stalled.push(res));
      const started = Date.now();
      const outcomes = await destination.send(batch);
      const elapsed = Date.now() - started;
      assert.deepEqual(outcomes[0], { ok: true });
      assert.deepEqual(outcomes[2], { ok: true });
      assert.equal(outcomes[1]?.ok, false);
      assert.match(outcomes[1]?.ok === false ? outcomes[1].error : '', /timed out after 400ms/);
      assert.ok(elapsed < 400 + SLACK_MS, `took ${elapsed}ms`);
      for (const res of stalled) res.destroy();
    } finally {
      await destination.close();
    }
  });

  it('check() resolves for a reachable URL whatever it answers', async () => {
    const destination = http();
    try {
      await destination.check();
    } finally {
      await destination.close();
    }
  });

  it('throughput sanity (log only)', async (t) => {
    const destination = http({ secret: SECRET });
    try {
      await logThroughput(t, destination);
    } finally {
      await destination.close();
    }
  });
});

describe('rabbitmq destination against a real broker', () => {
  const queue = `piq_dest_${RUN}`;
  const exchange = `piq_dest_x_${RUN}`;
  const boundQueue = `piq_dest_bound_${RUN}`;
  let admin: ChannelModel;

  before(async () => {
    admin = await amqpConnect(RABBIT_URL);
  });
  after(async () => {
    const ch = await admin.createChannel();
    await ch.deleteQueue(queue);
    await ch.deleteQueue(boundQueue);
    await ch.deleteExchange(exchange);
    await admin.close();
  });

  /** Reads `n` messages off `q` with a real consumer, acking each. */
  async function consume(q: string, n: number): Promise<ConsumeMessage[]> {
    const ch = await admin.createChannel();
    const got: ConsumeMessage[] = [];
    try {
      await new Promise<void>((resolve) => {
        void ch.consume(q, (msg) => {
          if (!msg) return;
          got.push(msg);
          ch.ack(msg);
          if (got.length === n) resolve();
        });
      });
    } finally {
      await ch.close();
    }
    return got;
  }

  async function messageCount(q: string): Promise<number> {
    const ch = await admin.createChannel();
    try {
      return (await ch.checkQueue(q)).messageCount;
    } finally {
      await ch.close();
    }
  }

  it('declares a durable queue and publishes confirmed, persistent messages with their properties', async () => {
    const destination = createDestination({ type: 'rabbitmq', name: 'rq', url: RABBIT_URL, queue });
    try {
      await destination.check();
      const batch = [outbound('order.created'), outbound('payment.succeeded'), outbound('order.shipped')];
      assert.deepEqual(await destination.send(batch), [{ ok: true }, { ok: true }, { ok: true }]);
      const got = await consume(queue, 3);
      assert.deepEqual(
        got.map((m) => m.properties.messageId),
        batch.map((m) => m.eventId),
        'in order',
      );
      for (const [i, msg] of got.entries()) {
        const sent = batch[i] as OutboundMessage;
        assert.ok(msg.content.equals(sent.body), 'byte-for-byte body');
        assert.equal(msg.properties.deliveryMode, 2, 'persistent');
        assert.equal(msg.properties.type, sent.type);
        assert.equal(msg.properties.timestamp, sent.timestamp);
        assert.equal(msg.properties.contentType, 'application/json');
        assert.deepEqual(msg.properties.headers, {
          'x-procureiq-event': sent.type,
          'x-procureiq-timestamp': String(sent.timestamp),
          'x-procureiq-delivery': sent.deliveryId,
          'x-procureiq-environment': 'production',
        });
      }
    } finally {
      await destination.close();
    }
  });

  it('re-declares a queue deleted under it: the lost message fails as unroutable, the next send lands', async () => {
    const destination = createDestination({ type: 'rabbitmq', name: 'rq', url: RABBIT_URL, queue });
    try {
      await destination.check();
      const ch = await admin.createChannel();
      await ch.deleteQueue(queue);
      await ch.close();
      const [lost] = await destination.send(batchOf(1));
      assert.equal(lost?.ok, false);
      assert.match(lost?.ok === false ? lost.error : '', /unroutable/);
      const again = outbound();
      assert.deepEqual(await destination.send([again]), [{ ok: true }]);
      const [msg] = await consume(queue, 1);
      assert.equal(msg?.properties.messageId, again.eventId);
    } finally {
      await destination.close();
    }
  });

  it('publishes to an exchange with the templated routing key; unroutable messages fail, in order', async () => {
    const ch = await admin.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    await ch.assertQueue(boundQueue, { durable: false });
    await ch.bindQueue(boundQueue, exchange, 'production.order.*');
    await ch.close();
    const destination = createDestination({
      type: 'rabbitmq',
      name: 'rx',
      url: RABBIT_URL,
      exchange,
      routingKey: '{environment}.{type}',
    });
    try {
      await destination.check();
      const batch = [outbound('order.created'), outbound('payment.succeeded'), outbound('order.shipped')];
      const outcomes = await destination.send(batch);
      assert.deepEqual(outcomes[0], { ok: true });
      assert.deepEqual(outcomes[2], { ok: true });
      assert.equal(outcomes[1]?.ok, false);
      assert.match(
        outcomes[1]?.ok === false ? outcomes[1].error : '',
        /unroutable.*production\.payment\.succeeded/,
      );
      const got = await consume(boundQueue, 2);
      assert.deepEqual(
        got.map((m) => [m.fields.routingKey, m.properties.messageId]),
        [
          ['production.order.created', batch[0]?.eventId],
          ['production.order.shipped', batch[2]?.eventId],
        ],
      );
      assert.equal(await messageCount(boundQueue), 0);
    } finally {
      await destination.close();
    }
  });

  it('reconnects on the next send after a channel error (exchange deleted, then re-created)', async () => {
    const destination = createDestination(
      { type: 'rabbitmq', name: 'rx', url: RABBIT_URL, exchange, routingKey: 'production.{type}' },
      { timeoutMs: 5000 },
    );
    try {
      await destination.check();
      let ch = await admin.createChannel();
      await ch.deleteExchange(exchange);
      await ch.close();
      // Publishing to a missing exchange closes the channel (404): the confirms fail.
      const failed = await destination.send(batchOf(2));
      assert.ok(
        failed.every((o) => !o.ok),
        JSON.stringify(failed),
      );
      await assert.rejects(destination.check(), /exchange .* is not usable/);
      ch = await admin.createChannel();
      await ch.assertExchange(exchange, 'topic', { durable: false });
      await ch.bindQueue(boundQueue, exchange, 'production.order.*');
      await ch.close();
      const message = outbound();
      assert.deepEqual(await destination.send([message]), [{ ok: true }]);
      const [got] = await consume(boundQueue, 1);
      assert.equal(got?.properties.messageId, message.eventId);
    } finally {
      await destination.close();
    }
  });

  it('throughput sanity (log only)', async (t) => {
    const destination = createDestination({ type: 'rabbitmq', name: 'rq', url: RABBIT_URL, queue });
    try {
      await logThroughput(t, destination);
      const ch = await admin.createChannel();
      await ch.purgeQueue(queue);
      await ch.close();
    } finally {
      await destination.close();
    }
  });
});

describe('redis-stream destination against a real Redis', () => {
  const stream = `piq:dest:${RUN}:events`;
  const trimmed = `piq:dest:${RUN}:trimmed`;
  const wrongType = `piq:dest:${RUN}:string`;
  let redis: Redis;

  before(() => {
    redis = new Redis(REDIS_URL);
  });
  after(async () => {
    await redis.del(stream, trimmed, wrongType);
    await redis.quit();
  });

  it('XADDs id, type, environment, created and the exact body bytes, one entry per message in order', async () => {
    const destination = createDestination({ type: 'redis-stream', name: 'rs', url: REDIS_URL, stream });
    try {
      await destination.check();
      const batch = [outbound('order.created'), outbound('payment.succeeded', { environment: 'sandbox' })];
      assert.deepEqual(await destination.send(batch), [{ ok: true }, { ok: true }]);
      const entries = await redis.xrangeBuffer(stream, '-', '+');
      assert.equal(entries.length, 2);
      for (const [i, [, fields]] of entries.entries()) {
        const sent = batch[i] as OutboundMessage;
        assert.deepEqual(
          fields.map((f, j) => (j === 9 ? f : f.toString('utf8'))),
          [
            'id',
            sent.eventId,
            'type',
            sent.type,
            'environment',
            sent.environment,
            'created',
            String(sent.created),
            'body',
            sent.body,
          ],
        );
      }
    } finally {
      await destination.close();
    }
  });

  it('trims approximately to maxLength', async () => {
    const destination = createDestination({
      type: 'redis-stream',
      name: 'rs',
      url: REDIS_URL,
      stream: trimmed,
      maxLength: 10,
    });
    try {
      for (let i = 0; i < 10; i++) assert.ok((await destination.send(batchOf(100))).every((o) => o.ok));
      const length = await redis.xlen(trimmed);
      // `~` trims whole radix-tree nodes (100 entries by default), never below the bound.
      assert.ok(length >= 10 && length <= 200, `XLEN ${length}`);
    } finally {
      await destination.close();
    }
  });

  it('reconnects on the next send after its connection was killed', async () => {
    const destination = createDestination({
      type: 'redis-stream',
      name: `rs-kill-${RUN}`,
      url: REDIS_URL,
      stream,
    });
    try {
      await assertReconnects(destination, () => killRedisClients(redis, `rs-kill-${RUN}`));
    } finally {
      await destination.close();
    }
  });

  it('fails every message when the key is not a stream, and check() says so', async () => {
    await redis.set(wrongType, 'not a stream');
    const destination = createDestination({
      type: 'redis-stream',
      name: 'rs',
      url: REDIS_URL,
      stream: wrongType,
    });
    try {
      const outcomes = await destination.send(batchOf(2));
      assert.equal(outcomes.length, 2);
      for (const o of outcomes) assert.match(o.ok ? '' : o.error, /WRONGTYPE/);
      await assert.rejects(destination.check(), /holds a string, not a stream/);
    } finally {
      await destination.close();
    }
  });

  it('throughput sanity (log only)', async (t) => {
    const destination = createDestination({ type: 'redis-stream', name: 'rs', url: REDIS_URL, stream });
    try {
      await logThroughput(t, destination);
    } finally {
      await destination.close();
    }
  });
});

describe('bullmq destination against a real Redis', () => {
  const queueName = `piq-dest-${RUN}`;
  let connection: Redis;
  let queue: Queue;

  before(() => {
    connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    queue = new Queue(queueName, { connection });
  });
  after(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    await connection.quit();
  });

  it('adds one job per message, named by type, with the envelope as data and the event id as job id', async () => {
    const destination = createDestination({ type: 'bullmq', name: 'bq', url: REDIS_URL, queue: queueName });
    try {
      await destination.check();
      const json = outbound('order.created');
      const text = outbound('order.created', {
        contentType: 'text/plain; charset=utf-8',
        body: Buffer.from('ünïcode text'),
      });
      assert.deepEqual(await destination.send([json, text]), [{ ok: true }, { ok: true }]);
      const job = await queue.getJob(json.eventId);
      assert.equal(job?.name, 'order.created');
      assert.deepEqual(job?.data, JSON.parse(json.body.toString('utf8')));
      const textJob = await queue.getJob(text.eventId);
      assert.equal(textJob?.data, 'ünïcode text');
    } finally {
      await destination.close();
    }
  });

  it('does not create a second job when the same event id is sent again', async () => {
    const destination = createDestination({ type: 'bullmq', name: 'bq', url: REDIS_URL, queue: queueName });
    try {
      const first = outbound('payment.succeeded');
      assert.deepEqual(await destination.send([first]), [{ ok: true }]);
      const before = await queue.getJobCounts('waiting');
      const resent = {
        ...first,
        deliveryId: `${first.deliveryId}-again`,
        body: Buffer.from('{"changed":true}'),
      };
      assert.deepEqual(await destination.send([resent]), [{ ok: true }], 'a re-send is not a failure');
      assert.deepEqual(await queue.getJobCounts('waiting'), before, 'no second job');
      const job = await queue.getJob(first.eventId);
      assert.deepEqual(job?.data, JSON.parse(first.body.toString('utf8')), 'the first job is kept');
    } finally {
      await destination.close();
    }
  });

  it('reconnects on the next send after its connection was killed', async () => {
    const name = `bq-kill-${RUN}`;
    const destination = createDestination({ type: 'bullmq', name, url: REDIS_URL, queue: queueName });
    try {
      await assertReconnects(destination, () => killRedisClients(connection, name));
    } finally {
      await destination.close();
    }
  });

  it('fails only the messages whose event id BullMQ cannot take as a job id, in order', async () => {
    const destination = createDestination({ type: 'bullmq', name: 'bq', url: REDIS_URL, queue: queueName });
    try {
      const good = outbound();
      const outcomes = await destination.send([
        outbound('order.created', { eventId: '12345' }),
        good,
        outbound('order.created', { eventId: 'evt:with:colon:s' }),
      ]);
      assert.equal(outcomes[0]?.ok, false);
      assert.match(outcomes[0]?.ok === false ? outcomes[0].error : '', /integer/);
      assert.deepEqual(outcomes[1], { ok: true });
      assert.match(outcomes[2]?.ok === false ? outcomes[2].error : '', /contains ":"/);
      assert.ok(await queue.getJob(good.eventId));
    } finally {
      await destination.close();
    }
  });

  it('throughput sanity (log only)', async (t) => {
    const destination = createDestination({ type: 'bullmq', name: 'bq', url: REDIS_URL, queue: queueName });
    try {
      await logThroughput(t, destination);
    } finally {
      await destination.close();
    }
  });
});

describe('nats destination against a real JetStream', () => {
  const stream = `PIQ_DEST_${RUN}`;
  const prefix = `piq.${RUN}`;
  let nc: Awaited<ReturnType<typeof natsConnect>>;

  before(async () => {
    nc = await natsConnect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
  });
  after(async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream);
    await nc.close();
  });

  const config = (): DestinationConfig => ({
    type: 'nats',
    name: 'ns',
    url: NATS_URL,
    subject: `${prefix}.{environment}.{type}`,
  });
  const streamMessages = async () => (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;

  it('publishes the exact bytes on the templated subject with msgID and the x-procureiq headers', async () => {
    const destination = createDestination(config());
    try {
      await destination.check();
      const batch = [outbound('order.created'), outbound('payment.succeeded', { environment: 'sandbox' })];
      assert.deepEqual(await destination.send(batch), [{ ok: true }, { ok: true }]);
      const consumer = await jetstream(nc).consumers.get(stream);
      const messages = await consumer.fetch({ max_messages: 2, expires: 5000 });
      const got = [];
      for await (const m of messages) {
        got.push(m);
        if (got.length === 2) break;
      }
      assert.equal(got.length, 2);
      for (const [i, m] of got.entries()) {
        const sent = batch[i] as OutboundMessage;
        assert.equal(m.subject, `${prefix}.${sent.environment}.${sent.type}`);
        assert.ok(Buffer.from(m.data).equals(sent.body), 'byte-for-byte body');
        assert.equal(m.headers?.get('Nats-Msg-Id'), sent.eventId);
        assert.equal(m.headers?.get('x-procureiq-event'), sent.type);
        assert.equal(m.headers?.get('x-procureiq-delivery'), sent.deliveryId);
        assert.equal(m.headers?.get('x-procureiq-timestamp'), String(sent.timestamp));
        assert.equal(m.headers?.get('x-procureiq-environment'), sent.environment);
        assert.equal(m.headers?.get('content-type'), 'application/json');
      }
    } finally {
      await destination.close();
    }
  });

  it('lets the stream drop a re-send of the same event id, and counts it delivered', async () => {
    const destination = createDestination(config());
    try {
      const message = outbound('order.shipped');
      assert.deepEqual(await destination.send([message]), [{ ok: true }]);
      const count = await streamMessages();
      const resent = { ...message, deliveryId: `${message.deliveryId}-again` };
      assert.deepEqual(await destination.send([resent, message]), [{ ok: true }, { ok: true }]);
      assert.equal(await streamMessages(), count, 'no new stream message');
    } finally {
      await destination.close();
    }
  });

  it('check() rejects and sends fail clearly when no stream covers the subject', async () => {
    const destination = createDestination({
      type: 'nats',
      name: 'orphan',
      url: NATS_URL,
      subject: `nostream.${RUN}.{type}`,
    });
    try {
      await assert.rejects(
        destination.check(),
        new RegExp(`nats destination "orphan".*no JetStream stream covers subject "nostream\\.${RUN}\\.>"`),
      );
      const [outcome] = await destination.send(batchOf(1));
      assert.match(
        outcome?.ok === false ? outcome.error : '',
        new RegExp(`no JetStream stream covers subject "nostream\\.${RUN}\\.order\\.created"`),
      );
    } finally {
      await destination.close();
    }
  });

  it('throughput sanity (log only)', async (t) => {
    const destination = createDestination(config());
    try {
      await logThroughput(t, destination);
    } finally {
      await destination.close();
    }
  });
});
