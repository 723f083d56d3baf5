// RabbitMQ restarted in the middle of a load (`rabbitmqctl stop_app`, then `start_app`) while the
// real `serve` routes events to a durable queue: nothing is lost, and the jobs that failed during
// the outage were retried.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { connect as amqpConnect } from 'amqplib';
import { type CliProcess, stopProcess, tempDir, waitFor } from '../helpers/index.ts';
import { startRoutedLoad } from './routed-load.ts';

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
    const ids = Array.from({ length: EVENTS }, (_, i) => `evt_restart_${process.pid}_${i}`);
    // Enough 500 ms retries to outlast the restart; the breaker stays out of the way (its 30 s pause
    // is covered by the dispatcher tests), so the outage is bridged by the retry schedule alone.
    const routed = await startRoutedLoad({
      dir: tmp.dir,
      route: 'rabbit',
      destinationName: 'rabbit',
      destination: { type: 'rabbitmq', url: RABBIT_URL, queue: QUEUE },
      retryMs: 500,
      ids,
      senders: SENDERS,
    });
    server = routed.server;
    try {
      await waitFor(() => routed.processed() >= 200 || undefined, {
        what: '200 events routed',
        timeoutMs: 60_000,
      });
      rabbitmqctl('stop_app');
      try {
        await waitFor(() => routed.failedAttempts() >= 5 || undefined, {
          what: 'sends failing while the broker is down',
          timeoutMs: 30_000,
        });
      } finally {
        rabbitmqctl('start_app');
        rabbitmqctl('await_startup');
      }
      const { failedJobs, retried } = await routed.settled();
      assert.ok(failedJobs > 0, 'some sends failed during the outage');
      assert.equal(retried, failedJobs, 'every job that failed was retried to delivery');
      process.stdout.write(`${failedJobs} jobs failed during the outage and were retried\n`);
    } finally {
      routed.close();
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
