// Routes rows of `npm run bench` (BENCH_TARGETS=routes): for each destination type, 20,000 events
// stored by a service (SQLite) are routed to a real destination on this machine. The table gives
// events delivered per second draining a backlog (see benchRoute) and receive -> delivered latency
// (p50, p99) while events arrive, as the dispatcher reports it (`onRouteDelivery`, measured once the
// destination confirmed and the job was recorded).
//
// Options (env): BENCH_ROUTE_EVENTS (default 20000), BENCH_ROUTE_SENDERS (concurrent requests,
// default 32), BENCH_ROUTE_TYPES (comma list of http, rabbitmq, redis-stream, bullmq, nats; empty for none, to run only the two-routes ingest rows),
// BENCH_ROUTE_PROFILE (a folder: the service writes a CPU profile there).
import { fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { orderCreatedBody, signature } from './lib.mjs';

const here = new URL('.', import.meta.url).pathname;
export const RABBIT_URL = process.env.BENCH_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
const events = Number(process.env.BENCH_ROUTE_EVENTS ?? 20_000);
const senders = Number(process.env.BENCH_ROUTE_SENDERS ?? 32);
const types = (process.env.BENCH_ROUTE_TYPES ?? 'http,rabbitmq,redis-stream,bullmq,nats')
  .split(',')
  .filter(Boolean);

/** Events delivered per second each destination type must reach on this machine. */
export const ROUTE_TARGETS = {
  http: 3000,
  rabbitmq: 5000,
  'redis-stream': 10000,
  bullmq: undefined,
  nats: 5000,
};

/** A local HTTP sink in its own process, answering 200 to everything. */
export async function startHttpSink(port) {
  const child = fork(join(here, 'baselines', 'sink-server.mjs'), [], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`sink exited (${code})`)));
  });
  return {
    url: `http://127.0.0.1:${port}/hook`,
    close: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A destination of each type on this machine, with what it takes to create and remove its
 * target (queue, stream). `name` is unique to the run.
 */
export async function destinationFor(type, tag, freePort) {
  switch (type) {
    case 'http': {
      const sink = await startHttpSink(await freePort());
      return { config: { type, url: sink.url }, cleanup: sink.close };
    }
    case 'rabbitmq': {
      const queue = `piq_bench_${tag}`;
      return {
        config: { type, url: RABBIT_URL, queue },
        cleanup: async () => {
          const { connect } = await import('amqplib');
          const conn = await connect(RABBIT_URL);
          const ch = await conn.createChannel();
          await ch.deleteQueue(queue);
          await conn.close();
        },
      };
    }
    case 'redis-stream': {
      const stream = `piq:bench:${tag}`;
      return {
        config: { type, url: REDIS_URL, stream },
        cleanup: async () => {
          const { Redis } = await import('ioredis');
          const redis = new Redis(REDIS_URL);
          await redis.del(stream);
          await redis.quit();
        },
      };
    }
    case 'bullmq': {
      const queue = `piq-bench-${tag}`;
      return {
        config: { type, url: REDIS_URL, queue },
        cleanup: async () => {
          const [{ Queue }, { Redis }] = await Promise.all([import('bullmq'), import('ioredis')]);
          const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
          const q = new Queue(queue, { connection });
          await q.obliterate({ force: true });
          await q.close();
          await connection.quit();
        },
      };
    }
    case 'nats': {
      const stream = `PIQ_BENCH_${tag.replace(/\W/g, '_')}`;
      const prefix = `piqbench.${tag.replace(/\W/g, '_')}`;
      const [{ connect }, { jetstreamManager }] = await Promise.all([
        import('@nats-io/transport-node'),
        import('@nats-io/jetstream'),
      ]);
      const nc = await connect({ servers: NATS_URL });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
      return {
        config: { type, url: NATS_URL, subject: `${prefix}.{type}` },
        cleanup: async () => {
          await jsm.streams.delete(stream);
          await nc.close();
        },
      };
    }
    default:
      throw new Error(`unknown destination type ${type}`);
  }
}

/** `count` signed, unique order.created deliveries. */
function signedEvents(count, secret) {
  const run = randomBytes(4).toString('hex');
  return Array.from({ length: count }, (_, i) => {
    const body = orderCreatedBody(`evt_route_${run}_${i}`, i);
    return { body, signature: signature(body, secret) };
  });
}

/** Posts every delivery with at most `concurrency` in flight (keep-alive); answers the non-200 count. */
async function sendAll(url, deliveries, concurrency) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let refused = 0;
  const post = ({ body, signature }) =>
    new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'x-procureiq-signature': signature },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < deliveries.length) {
        const status = await post(deliveries[next++]);
        if (status !== 200) refused += 1;
      }
    }),
  );
  agent.destroy();
  return refused;
}

/** Route jobs delivered so far, by the service's own counter. */
async function deliveredCount(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('procureiq_webhooks_route_deliveries_total{') && line.includes('outcome="delivered"'))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}

/**
 * A service without a worker stores every event with a handlers job, for a worker elsewhere: the
 * backlog phase removes them, so the drain measures the route alone.
 */
function dropHandlersJobs(database) {
  const db = new Database(database.slice('sqlite:'.length));
  db.prepare("DELETE FROM jobs WHERE consumer = 'handlers'").run();
  db.close();
}

/**
 * Routes `events` events to one destination of `type`; answers the row's figures, from two runs of
 * the service on one database:
 * - live: the events are sent while the route delivers them; receive -> delivered p50 and p99 come
 *   from here. Its delivered/s can be no more than the ingest rate.
 * - backlog: the same number of new events is stored by the service with its dispatcher off
 *   (`worker: false`; the route jobs are created all the same), then the service restarts with it
 *   on: delivered/s is the route's own throughput, from the restart's first answer to the last
 *   delivery.
 */
export async function benchRoute(type, { dir, secret, freePort, waitHealthy, stop, logLevel }) {
  const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const destination = await destinationFor(type, tag, freePort);
  try {
    const routesFile = join(dir, `routes-${type}.json`);
    writeFileSync(
      routesFile,
      JSON.stringify({
        destinations: { out: destination.config },
        routes: [{ name: 'all', match: { types: ['*'] }, to: 'out' }],
      }),
    );
    const database = `sqlite:${join(dir, `routes-${type}.db`)}`;
    const start = async (phase) => {
      const port = await freePort();
      const statsFile = join(dir, `route-stats-${type}-${phase}.json`);
      // BENCH_ROUTE_PROFILE=DIR writes a CPU profile of the service (node --cpu-prof) there.
      const profile = process.env.BENCH_ROUTE_PROFILE
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_ROUTE_PROFILE}`]
        : [];
      const child = spawn(process.execPath, [...profile, join(here, 'route-service.mjs')], {
        env: {
          ...process.env,
          PORT: String(port),
          WEBHOOK_SECRET: secret,
          DATABASE_URL: database,
          ROUTES: routesFile,
          LOG_LEVEL: logLevel,
          BENCH_OUT: statsFile,
          BENCH_ROUTE_DISPATCH: phase === 'store' ? 'off' : 'on',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      await waitHealthy(`http://127.0.0.1:${port}/healthz`, child);
      const url = `http://127.0.0.1:${port}/webhooks/procureiq`;
      const finish = async () => {
        await stop(child);
        return JSON.parse(readFileSync(statsFile, 'utf8'));
      };
      return { port, url, finish };
    };
    const untilDelivered = async (port, count, since) => {
      for (;;) {
        const done = await deliveredCount(port);
        if (done >= count) return;
        if (Date.now() - since > 300_000) throw new Error(`${type}: only ${done} of ${count} delivered`);
        // Each scrape of /metrics costs the store some counting: poll gently. The figures come
        // from the delivery times the service records, not from when this loop noticed.
        await sleep(250);
      }
    };

    // Live.
    const live = await start('live');
    const started = Date.now();
    const refused = await sendAll(live.url, signedEvents(events, secret), senders);
    const sentMs = Date.now() - started;
    await untilDelivered(live.port, events, started);
    const { delivered, other } = await live.finish();
    const waits = delivered.map(([, ms]) => ms).sort((a, b) => a - b);
    const pct = (p) => waits[Math.min(waits.length - 1, Math.floor((p / 100) * waits.length))];

    // Backlog.
    const storing = await start('store');
    const refusedBacklog = await sendAll(storing.url, signedEvents(events, secret), senders);
    await storing.finish();
    dropHandlersJobs(database);
    const restartedAt = Date.now();
    const draining = await start('drain');
    const answeredAt = Date.now();
    await untilDelivered(draining.port, events, restartedAt);
    const drained = await draining.finish();
    const lastDelivered = Math.max(...drained.delivered.map(([at]) => at));
    return {
      type,
      delivered: delivered.length,
      refused: refused + refusedBacklog,
      other: { ...other, ...drained.other },
      ingestPerSecond: events / (sentMs / 1000),
      perSecond: drained.delivered.length / ((lastDelivered - answeredAt) / 1000),
      p50: pct(50),
      p99: pct(99),
      target: ROUTE_TARGETS[type],
    };
  } finally {
    await destination.cleanup();
  }
}

export const routeTypes = types;

/** Two routes for the ingest comparison: a Redis stream and a NATS subject (cheap, local). */
export async function twoRoutesFile(dir, freePort) {
  const tag = `${process.pid}_ingest_${randomBytes(3).toString('hex')}`;
  const redis = await destinationFor('redis-stream', tag, freePort);
  const nats = await destinationFor('nats', tag, freePort);
  const file = join(dir, 'two-routes.json');
  writeFileSync(
    file,
    JSON.stringify({
      destinations: { stream: redis.config, subject: nats.config },
      routes: [
        { name: 'to-stream', match: { types: ['order.*'] }, to: 'stream' },
        { name: 'to-nats', match: { types: ['*'] }, to: 'subject' },
      ],
    }),
  );
  return {
    file,
    cleanup: async () => {
      await redis.cleanup();
      await nats.cleanup();
    },
  };
}
