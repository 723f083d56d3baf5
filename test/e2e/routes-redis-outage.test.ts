// Redis dropping the service's connections in the middle of a load, while the real `serve` routes
// events to a Redis stream: for two seconds each of its connections is killed as soon as it is
// made (`CLIENT KILL ID`, found by the destination's connection name, every 20 ms; the local Redis
// keeps nothing on disk, so a real restart would also empty the stream this test reads back).
// Nothing is lost: every event reaches the stream at least once, and the sends that failed
// meanwhile were retried to delivery.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { type CliProcess, REDIS_URL, stopProcess, tempDir, waitFor } from '../helpers/index.ts';
import { startRoutedLoad } from './routed-load.ts';

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
    const ids = Array.from({ length: EVENTS }, (_, i) => `evt_redis_outage_${process.pid}_${i}`);
    const routed = await startRoutedLoad({
      dir: tmp.dir,
      route: 'firehose',
      destinationName: DESTINATION,
      destination: { type: 'redis-stream', url: REDIS_URL, stream: STREAM },
      retryMs: 300,
      ids,
      senders: SENDERS,
    });
    server = routed.server;
    try {
      await waitFor(() => routed.processed() >= 200 || undefined, {
        what: '200 events routed',
        timeoutMs: 60_000,
      });
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
      const { failedJobs, retried } = await routed.settled();
      assert.equal(retried, failedJobs, 'every job that failed was retried to delivery');
      process.stdout.write(`${failedJobs} jobs failed while Redis dropped its clients, and were retried\n`);
    } finally {
      routed.close();
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
