// RabbitMQ restarted in the middle of a load (`rabbitmqctl stop_app`, then `start_app`) while the
// real `serve` routes events to a durable queue: nothing is lost, and the jobs that failed during
// the outage were retried.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect as amqpConnect } from 'amqplib';
import Database from 'better-sqlite3';
import { examplePayloads } from '../../src/events/examples.ts';
import { type CliProcess, postSigned, startServer, stopProcess, tempDir, waitFor } from '../helpers/index.ts';

const RABBIT_URL = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const QUEUE = `piq_e2e_restart_${process.pid}_${Date.now().toString(36)}`;
const EVENTS = 1000;
const SENDERS = 8;

function rabbitmqctl(command: 'stop_app' | 'start_app' | 'await_startup'): void {
  execFileSync('rabbitmqctl', [command], { stdio: 'ignore', timeout: 60_000 });
}

async function rabbitUp(): Promise<boolean> {
  try {
    const conn = await amqpConnect(RABBIT_URL);
    await conn.close();
    return true;
  } catch {
    return false;
  }
}

describe('RabbitMQ restarted while routing a load', () => {
  const tmp = tempDir();
  let server: CliProcess | undefined;

  after(async () => {
    if (!(await rabbitUp())) {
      rabbitmqctl('start_app');
      rabbitmqctl('await_startup');
    }
    if (server) await stopProcess(server, 'SIGKILL');
    const amqp = await amqpConnect(RABBIT_URL);
    const ch = await amqp.createChannel();
    await ch.deleteQueue(QUEUE);
    await amqp.close();
    tmp.cleanup();
  });

  it('loses nothing, and retries the jobs that failed during the outage', async () => {
    const routesFile = join(tmp.dir, 'routes.json');
    writeFileSync(
      routesFile,
      JSON.stringify({
        destinations: { rabbit: { type: 'rabbitmq', url: RABBIT_URL, queue: QUEUE } },
        routes: [{ name: 'rabbit', match: { types: ['*'] }, to: 'rabbit' }],
      }),
    );
    // Enough 500 ms retries to outlast the restart; the breaker stays out of the way (its 30 s pause
    // is covered by the dispatcher tests), so the outage is bridged by the retry schedule alone.
    const started = await startServer(tmp.dir, {
      ROUTES: routesFile,
      RETRY_SCHEDULE: Array(60).fill('500ms').join(','),
      BREAKER_THRESHOLD: '1000',
      LOG_LEVEL: 'warn',
    });
    server = started;
    const db = new Database(join(tmp.dir, 'inbox.db'), { readonly: true });
    const count = (sql: string) => db.prepare(sql).pluck().get() as number;
    const processed = () =>
      count("SELECT COUNT(*) FROM jobs WHERE consumer = 'route:rabbit' AND status = 'processed'");
    const failedAttempts = () =>
      count("SELECT COUNT(*) FROM attempts WHERE consumer = 'route:rabbit' AND outcome = 'failed'");

    const ids = Array.from({ length: EVENTS }, (_, i) => `evt_restart_${process.pid}_${i}`);
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
      rabbitmqctl('stop_app');
      try {
        await waitFor(() => failedAttempts() >= 5 || undefined, {
          what: 'sends failing while the broker is down',
          timeoutMs: 30_000,
        });
      } finally {
        rabbitmqctl('start_app');
        rabbitmqctl('await_startup');
      }
      await load;
      assert.equal(statuses.filter((s) => s === 200).length, EVENTS, 'the receiver took every event');
      await waitFor(() => processed() === EVENTS || undefined, {
        what: 'every route job processed',
        timeoutMs: 120_000,
        intervalMs: 200,
      });
      const retried = count(
        "SELECT COUNT(*) FROM jobs WHERE consumer = 'route:rabbit' AND status = 'processed' AND attempts > 1",
      );
      const failedJobs = count(
        "SELECT COUNT(DISTINCT event_id) FROM attempts WHERE consumer = 'route:rabbit' AND outcome = 'failed'",
      );
      assert.ok(failedJobs > 0, 'some sends failed during the outage');
      assert.equal(retried, failedJobs, 'every job that failed was retried to delivery');
      process.stdout.write(`${failedJobs} jobs failed during the outage and were retried\n`);
    } finally {
      db.close();
    }

    const amqp = await amqpConnect(RABBIT_URL);
    try {
      const ch = await amqp.createChannel();
      const { messageCount } = await ch.checkQueue(QUEUE);
      const seen = new Set<string>();
      let consumed = 0;
      await new Promise<void>((resolve) => {
        void ch.consume(QUEUE, (msg) => {
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
        'every event consumed at least once',
      );
    } finally {
      await amqp.close();
    }
  });
});
