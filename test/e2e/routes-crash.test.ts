// kill -9 in the middle of routing a load: the real `serve` (SQLite, --routes) routes every event
// to NATS JetStream, BullMQ, a Redis stream and a RabbitMQ queue; it is killed mid-way and
// restarted. Every event reaches every destination at least once, and exactly once where the
// destination dedupes (NATS msgID, BullMQ jobId).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { connect as amqpConnect } from 'amqplib';
import Database from 'better-sqlite3';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { examplePayloads } from '../../src/events/examples.ts';
import {
  type CliProcess,
  postSigned,
  REDIS_URL,
  startServer,
  stopProcess,
  tempDir,
  waitFor,
} from '../helpers/index.ts';

const RUN = `${process.pid}_${Date.now().toString(36)}`;
const RABBIT_URL = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const EVENTS = 2000;
const SENDERS = 16;
const KILL_AFTER = 700;

const names = {
  natsStream: `PIQ_E2E_CRASH_${RUN}`,
  natsPrefix: `piqe2e.crash.${RUN}`,
  bullQueue: `piq-e2e-crash-${RUN}`,
  redisStream: `piq:e2e:crash:${RUN}`,
  rabbitQueue: `piq_e2e_crash_${RUN}`,
};

/**
 * Posts each event once with at most SENDERS in flight; events whose request failed (the service
 * was down) are answered in `unsent`. Stops taking new events once `stop()` says so.
 */
async function sendEvents(url: string, ids: readonly string[], onAck: (acked: number) => void) {
  const acked: string[] = [];
  const unsent: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: SENDERS }, async () => {
      for (;;) {
        const id = ids[next++];
        if (id === undefined) return;
        try {
          const res = await postSigned(url, { ...examplePayloads['order.created'], id });
          if (res.status === 200) {
            acked.push(id);
            onAck(acked.length);
          } else unsent.push(id);
        } catch {
          unsent.push(id);
        }
      }
    }),
  );
  return { acked, unsent };
}

describe('kill -9 while routing a load to four brokers', () => {
  const tmp = tempDir();
  let server: (CliProcess & { url: string }) | undefined;
  let redis: Redis;
  let nc: Awaited<ReturnType<typeof natsConnect>>;

  before(async () => {
    redis = new Redis(REDIS_URL);
    nc = await natsConnect({ servers: NATS_URL });
    // The duplicate window covers the whole test: a re-send after the restart is dropped.
    await (await jetstreamManager(nc)).streams.add({
      name: names.natsStream,
      subjects: [`${names.natsPrefix}.>`],
      duplicate_window: 10 * 60 * 1_000_000_000,
    });
  });
  after(async () => {
    if (server) await stopProcess(server, 'SIGKILL');
    await (await jetstreamManager(nc)).streams.delete(names.natsStream).catch(() => {});
    await nc.close();
    await redis.del(names.redisStream);
    const bullConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue(names.bullQueue, { connection: bullConnection });
    await queue.obliterate({ force: true });
    await queue.close();
    await bullConnection.quit();
    await redis.quit();
    const amqp = await amqpConnect(RABBIT_URL);
    const ch = await amqp.createChannel();
    await ch.deleteQueue(names.rabbitQueue);
    await amqp.close();
    tmp.cleanup();
  });

  it('delivers every event to every destination at least once, and exactly once in NATS and BullMQ', async () => {
    const routesFile = join(tmp.dir, 'routes.json');
    writeFileSync(
      routesFile,
      JSON.stringify({
        destinations: {
          nats: { type: 'nats', url: NATS_URL, subject: `${names.natsPrefix}.{type}` },
          bull: { type: 'bullmq', url: REDIS_URL, queue: names.bullQueue },
          stream: { type: 'redis-stream', url: REDIS_URL, stream: names.redisStream },
          rabbit: { type: 'rabbitmq', url: RABBIT_URL, queue: names.rabbitQueue },
        },
        routes: ['nats', 'bull', 'stream', 'rabbit'].map((to) => ({ name: to, match: { types: ['*'] }, to })),
      }),
    );
    const env = { ROUTES: routesFile, RETRY_SCHEDULE: Array(20).fill('200ms').join(','), LOG_LEVEL: 'warn' };
    const ids = Array.from({ length: EVENTS }, (_, i) => `evt_crash_${RUN}_${i}`);

    const first = await startServer(tmp.dir, env);
    server = first;
    let killed = false;
    const phase1 = await sendEvents(first.url, ids, (acked) => {
      if (acked >= KILL_AFTER && !killed) {
        killed = true;
        first.child.kill('SIGKILL');
      }
    });
    await first.exited;
    assert.equal(first.child.signalCode, 'SIGKILL');
    assert.ok(phase1.unsent.length > 0, 'the kill cut the load short');

    // What the kill left behind: route jobs not yet delivered, some of them mid-send.
    const db = new Database(join(tmp.dir, 'inbox.db'), { readonly: true });
    const count = (where: string) =>
      db
        .prepare(`SELECT COUNT(*) FROM jobs WHERE consumer LIKE 'route:%' AND ${where}`)
        .pluck()
        .get() as number;
    try {
      const leftover = count("status <> 'processed'");
      assert.ok(leftover > 0, 'the kill came while jobs were still being routed');
      process.stdout.write(
        `# at the kill: ${phase1.acked.length} events acknowledged, ${leftover} route jobs undelivered, ${count("status = 'processing'")} mid-send\n`,
      );

      const second = await startServer(tmp.dir, env);
      server = second;
      const phase2 = await sendEvents(second.url, phase1.unsent, () => {});
      assert.deepEqual(phase2.unsent, [], 'the restarted service took every remaining event');
      await waitFor(() => count("status = 'processed'") === EVENTS * 4 || undefined, {
        what: 'every route job processed',
        timeoutMs: 120_000,
        intervalMs: 200,
      });
      assert.equal(count('1 = 1'), EVENTS * 4, 'one job per (event, route)');
    } finally {
      db.close();
    }

    // Redis stream: every event at least once.
    const entries = await redis.xrange(names.redisStream, '-', '+');
    const inStream = new Set(entries.map(([, fields]) => fields[fields.indexOf('id') + 1]));
    assert.deepEqual(
      ids.filter((id) => !inStream.has(id)),
      [],
      'every event in the Redis stream',
    );
    assert.ok(entries.length >= EVENTS);

    // RabbitMQ: consume every message; every event at least once, by messageId.
    const amqp = await amqpConnect(RABBIT_URL);
    try {
      const ch = await amqp.createChannel();
      const { messageCount } = await ch.checkQueue(names.rabbitQueue);
      assert.ok(messageCount >= EVENTS, `${messageCount} messages in the queue`);
      const seen = new Set<string>();
      let consumed = 0;
      await new Promise<void>((resolve) => {
        void ch.consume(names.rabbitQueue, (msg) => {
          if (!msg) return;
          seen.add(String(msg.properties.messageId));
          ch.ack(msg);
          consumed += 1;
          if (consumed === messageCount) resolve();
        });
      });
      assert.deepEqual(
        ids.filter((id) => !seen.has(id)),
        [],
        'every event consumed from RabbitMQ',
      );
    } finally {
      await amqp.close();
    }

    // NATS: the stream dropped re-sends by msgID.
    const info = await (await jetstreamManager(nc)).streams.info(names.natsStream);
    assert.equal(info.state.messages, EVENTS, 'exactly one NATS message per event');

    // BullMQ: one job per event id.
    const bullConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue(names.bullQueue, { connection: bullConnection });
    try {
      const counts = await queue.getJobCounts();
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      assert.equal(total, EVENTS, `exactly one BullMQ job per event: ${JSON.stringify(counts)}`);
      const sample = await queue.getJob(ids[0] as string);
      assert.equal(sample?.id, ids[0]);
    } finally {
      await queue.close();
      await bullConnection.quit();
    }
  });
});
