// Redis dropping the service's connections in the middle of a load, while the real `serve` routes
// events to a Redis stream: for two seconds each of its connections is killed as soon as it is
// made (`CLIENT KILL ID`, found by the destination's connection name, every 20 ms; the local Redis
// keeps nothing on disk, so a real restart would also empty the stream this test reads back). Nothing is lost: every event reaches the stream at
// least once, and the sends that failed meanwhile were retried to delivery.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
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

const STREAM = `piq_e2e_outage_${process.pid}_${Date.now().toString(36)}`;
// The destination's name, so its connections are `procureiq-webhooks:<name>` in CLIENT LIST.
const DESTINATION = `firehose_${process.pid}`;
const EVENTS = 1000;
const SENDERS = 8;

describe('Redis dropping its clients while routing a load', () => {
  const tmp = tempDir();
  let server: CliProcess | undefined;
  const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: null });

  after(async () => {
    if (server) await stopProcess(server, 'SIGKILL');
    await admin.del(STREAM).catch(() => {});
    admin.disconnect();
    tmp.cleanup();
  });

  it('loses nothing, and retries the sends that failed', async () => {
    await admin.connect();
    const routesFile = join(tmp.dir, 'routes.json');
    writeFileSync(
      routesFile,
      JSON.stringify({
        destinations: { [DESTINATION]: { type: 'redis-stream', url: REDIS_URL, stream: STREAM } },
        routes: [{ name: 'firehose', match: { types: ['*'] }, to: DESTINATION }],
      }),
    );
    const started = await startServer(tmp.dir, {
      ROUTES: routesFile,
      RETRY_SCHEDULE: Array(60).fill('300ms').join(','),
      BREAKER_THRESHOLD: '1000',
      LOG_LEVEL: 'warn',
    });
    server = started;
    const db = new Database(join(tmp.dir, 'inbox.db'), { readonly: true });
    const count = (sql: string) => db.prepare(sql).pluck().get() as number;
    const processed = () =>
      count("SELECT COUNT(*) FROM jobs WHERE consumer = 'route:firehose' AND status = 'processed'");

    const ids = Array.from({ length: EVENTS }, (_, i) => `evt_redis_outage_${process.pid}_${i}`);
    let next = 0;
    const statuses: number[] = [];
    const load = Promise.all(
      Array.from({ length: SENDERS }, async () => {
        for (;;) {
          const id = ids[next++];
          if (id === undefined) return;
          statuses.push((await postSigned(started.url, { ...examplePayloads['order.created'], id })).status);
        }
      }),
    );
    try {
      await waitFor(() => processed() >= 200 || undefined, { what: '200 events routed', timeoutMs: 60_000 });
      // The service's connections are dropped, again and again, for two seconds; no one else's.
      let dropped = 0;
      const until = Date.now() + 2000;
      while (Date.now() < until) {
        const list = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'normal'));
        for (const line of list.split('\n')) {
          const id = /(?:^| )id=(\d+)/.exec(line)?.[1];
          if (id && line.includes(` name=procureiq-webhooks:${DESTINATION} `)) {
            await admin.call('CLIENT', 'KILL', 'ID', id).catch(() => {});
            dropped += 1;
          }
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(dropped > 0, "the service's connections were found and dropped");
      await load;
      assert.equal(statuses.filter((s) => s === 200).length, EVENTS, 'the receiver took every event');
      await waitFor(() => processed() === EVENTS || undefined, {
        what: 'every route job processed',
        timeoutMs: 120_000,
        intervalMs: 200,
      });
      const failedJobs = count(
        "SELECT COUNT(DISTINCT event_id) FROM attempts WHERE consumer = 'route:firehose' AND outcome = 'failed'",
      );
      const retried = count(
        "SELECT COUNT(*) FROM jobs WHERE consumer = 'route:firehose' AND status = 'processed' AND attempts > 1",
      );
      assert.equal(retried, failedJobs, 'every job that failed was retried to delivery');
      process.stdout.write(`${failedJobs} jobs failed while Redis dropped its clients, and were retried\n`);
    } finally {
      db.close();
    }

    const entries = (await admin.xrange(STREAM, '-', '+')) as [string, string[]][];
    const seen = new Set(
      entries.map(([, fields]) => {
        const i = fields.indexOf('id');
        return fields[i + 1];
      }),
    );
    assert.deepEqual(
      ids.filter((id) => !seen.has(id)),
      [],
      'every event in the stream at least once',
    );
  });
});
