// Black-box tests: the CLI started as a user would, real signals, real kill -9.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { examplePayloads } from '../../src/events/examples.ts';
import { SqliteConnection } from '../../src/store/sqlite/sqlite-connection.ts';
import {
  type CliProcess,
  postSigned,
  REPO,
  SECRET,
  startCli,
  startCollector,
  startServer,
  stopProcess,
  tempDir,
  waitFor,
} from '../helpers/index.ts';

const HANDLERS = join(REPO, 'test', 'fixtures', 'handlers', 'e2e-handlers.ts');
const serverEnv = (dir: string) => ({
  WEBHOOK_SECRET: SECRET,
  PORT: '0',
  DATABASE_URL: `sqlite:${join(dir, 'inbox.db')}`,
});

/** Reads the inbox file directly, as an operator's SQL would. */
function readInbox<T>(dir: string, fn: (inbox: SqliteConnection) => T): T {
  const inbox = new SqliteConnection(join(dir, 'inbox.db'));
  try {
    return fn(inbox);
  } finally {
    inbox.close();
  }
}
const statusOf = (dir: string, id: string) =>
  readInbox(
    dir,
    (i) =>
      (i.db.prepare('SELECT status FROM events WHERE id = ?').get(id) as { status: string } | undefined)
        ?.status,
  );
const runs = (log: string, id: string) =>
  existsSync(log)
    ? readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith(`run ${id} `)).length
    : 0;

describe('serve, end to end', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: (CliProcess & { url: string }) | undefined;
  let log: string;

  beforeEach(() => {
    tmp = tempDir();
    log = join(tmp.dir, 'runs.log');
  });
  afterEach(async () => {
    if (server) await stopProcess(server, 'SIGKILL');
    server = undefined;
    tmp.cleanup();
  });

  const env = (extra: Record<string, string> = {}) => ({
    HANDLERS,
    E2E_LOG: log,
    RETRY_SCHEDULE: '1s,2s,3s',
    ...extra,
  });

  it('warms its request path before it answers /healthz, and stores none of it', async () => {
    server = await startServer(tmp.dir, { WARM_UP: '1000' });
    // Logged before the server listened; the pipe may still be delivering it.
    await waitFor(() => server?.stdout().includes('warmed up the request path') === true, {
      what: 'the warm-up log line',
    });
    const line = server
      .stdout()
      .split('\n')
      .find((l) => l.includes('warmed up the request path'));
    assert.ok(line, `no warm-up line in:\n${server.stdout()}`);
    const warmed = JSON.parse(line) as { deliveries: number; answered: Record<string, number> };
    assert.equal(warmed.deliveries, 1000);
    assert.deepEqual(warmed.answered, { 200: 1000 });
    assert.equal(
      readInbox(tmp.dir, (i) => (i.db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n),
      0,
    );
  });

  it('kill -9 in the middle of a concurrent load loses no acknowledged event', async () => {
    server = await startServer(tmp.dir, { LOG_LEVEL: 'warn' });
    const acked: string[] = [];
    let stop = false;
    const lane = async (lane: number) => {
      for (let i = 0; !stop && i < 5000; i++) {
        const id = `evt_load_${lane}_${i}`;
        try {
          const res = await postSigned(server!.url, { ...examplePayloads['order.created'], id });
          if (res.status === 200) acked.push(id);
        } catch {
          return; // the server died mid-request: that delivery was never acknowledged
        }
      }
    };
    const lanes = Array.from({ length: 16 }, (_, i) => lane(i));
    await waitFor(() => acked.length >= 400, { what: '400 acknowledged deliveries' });
    server.child.kill('SIGKILL');
    stop = true;
    await Promise.all(lanes);
    await server.exited;
    server = undefined;
    assert.ok(acked.length >= 400);

    // Restart on the same file: every acknowledged event is there.
    server = await startServer(tmp.dir, { LOG_LEVEL: 'warn' });
    const missing = readInbox(tmp.dir, (inbox) => {
      const has = inbox.db.prepare('SELECT 1 FROM events WHERE id = ?');
      return acked.filter((id) => !has.get(id));
    });
    assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged events were lost`);
  });

  it('retries by RETRY_SCHEDULE: fails twice, then processed after 3 attempts', async () => {
    server = await startServer(tmp.dir, env());
    const event = examplePayloads['order.confirmed'];
    const t0 = Date.now();
    assert.equal((await postSigned(server.url, event)).status, 200);
    await waitFor(() => statusOf(tmp.dir, event.id) === 'processed', {
      what: 'processed',
      timeoutMs: 20_000,
    });
    assert.ok(Date.now() - t0 >= 3000, 'waited 1s then 2s between attempts');
    assert.equal(runs(log, event.id), 3);
    const attempts = readInbox(tmp.dir, (i) =>
      i.db
        .prepare('SELECT number, outcome, started_at FROM attempts WHERE event_id = ? ORDER BY number')
        .all(event.id),
    ) as { number: number; outcome: string; started_at: number }[];
    assert.deepEqual(
      attempts.map((a) => a.outcome),
      ['failed', 'failed', 'succeeded'],
    );
    assert.ok(attempts[1]!.started_at - attempts[0]!.started_at >= 1000);
    assert.ok(attempts[2]!.started_at - attempts[1]!.started_at >= 2000);
  });

  it('always failing: dead after 1 + N attempts, with an alert', async () => {
    const collector = await startCollector();
    try {
      server = await startServer(
        tmp.dir,
        env({ RETRY_SCHEDULE: '200ms,300ms,400ms', ALERT_WEBHOOK_URL: collector.url }),
      );
      const event = examplePayloads['payment.failed'];
      await postSigned(server.url, event);
      await waitFor(() => statusOf(tmp.dir, event.id) === 'dead', { what: 'dead' });
      assert.equal(runs(log, event.id), 4);
      const alert = await waitFor(
        () => collector.received[0] as { alert: string; eventId: string } | undefined,
        {
          what: 'alert',
        },
      );
      assert.equal(alert.alert, 'dead_letter');
      assert.equal(alert.eventId, event.id);
      await waitFor(() => server!.stdout().includes('"alert":"dead_letter"'), { what: 'alert log line' });
    } finally {
      await collector.close();
    }
  });

  it('a hung handler is timed out by HANDLER_TIMEOUT and retried', async () => {
    // order.shipped's first attempt sleeps for a minute, far past the timeout.
    server = await startServer(tmp.dir, env({ HANDLER_TIMEOUT: '300ms', RETRY_SCHEDULE: '100ms' }));
    const event = examplePayloads['order.shipped'];
    await postSigned(server.url, event);
    await waitFor(() => statusOf(tmp.dir, event.id) === 'processed', { what: 'processed after the timeout' });
    const attempts = readInbox(tmp.dir, (i) =>
      i.db
        .prepare('SELECT outcome, error_message FROM attempts WHERE event_id = ? ORDER BY number')
        .all(event.id),
    ) as { outcome: string; error_message: string | null }[];
    assert.deepEqual(
      attempts.map((a) => a.outcome),
      ['timed_out', 'succeeded'],
    );
    assert.match(attempts[0]?.error_message ?? '', /timed out after 300ms/);
    // The signal fired, so the first attempt's handler stopped waiting too.
    await waitFor(() => readFileSync(log, 'utf8').includes(`done ${event.id} 1`), {
      what: 'the aborted handler to return',
    });
  });

  it('a burst of signature failures raises one alert', async () => {
    const collector = await startCollector();
    try {
      server = await startServer(
        tmp.dir,
        env({ SIGNATURE_ALERT_THRESHOLD: '3', ALERT_WEBHOOK_URL: collector.url }),
      );
      for (let i = 0; i < 5; i++) {
        const res = await postSigned(server.url, examplePayloads['order.created'], { secret: 'forged' });
        assert.equal(res.status, 401);
      }
      const alert = await waitFor(
        () => collector.received[0] as { alert: string; count: number; text: string } | undefined,
        {
          what: 'alert',
        },
      );
      assert.equal(alert.alert, 'signature_failures');
      assert.equal(alert.count, 3);
      assert.match(alert.text, /3 deliveries failed signature verification within a minute/);
      await sleep(200);
      assert.equal(collector.received.length, 1, 'one alert per minute, not one per failure');
      assert.match(server.stdout(), /"alert":"signature_failures"/);
    } finally {
      await collector.close();
    }
  });

  it('kill -9 mid-handler, then restart: the event is attempted again and ends processed', async () => {
    server = await startServer(tmp.dir, env());
    const event = examplePayloads['order.shipped'];
    await postSigned(server.url, event);
    await waitFor(() => runs(log, event.id) === 1, { what: 'first attempt to start' });
    assert.equal(statusOf(tmp.dir, event.id), 'processing');
    await stopProcess(server, 'SIGKILL');
    server = await startServer(tmp.dir, env());
    await waitFor(() => statusOf(tmp.dir, event.id) === 'processed', { what: 'processed after restart' });
    const outcomes = readInbox(tmp.dir, (i) =>
      i.db.prepare('SELECT outcome FROM attempts WHERE event_id = ? ORDER BY number').pluck().all(event.id),
    );
    assert.deepEqual(outcomes, ['interrupted', 'succeeded']);
    const stuck = readInbox(tmp.dir, (i) =>
      i.db.prepare("SELECT COUNT(*) FROM events WHERE status = 'processing'").pluck().get(),
    );
    assert.equal(stuck, 0);
  });

  it('a handler that crashes the process every time still ends dead', async () => {
    const event = examplePayloads['support.ticket_created'];
    const e = env({ RETRY_SCHEDULE: '100ms,100ms' });
    server = await startServer(tmp.dir, e);
    // The handler may kill the process before or after the 200 is written; either way the event was stored.
    await postSigned(server.url, event).catch(() => undefined);
    // Each start recovers the interrupted attempt, runs the handler again, and dies again.
    for (let i = 0; i < 6 && statusOf(tmp.dir, event.id) !== 'dead'; i++) {
      await server.exited;
      server = { ...startCli(['serve'], { cwd: tmp.dir, env: { ...serverEnv(tmp.dir), ...e } }), url: '' };
      await Promise.race([
        server.exited,
        waitFor(() => statusOf(tmp.dir, event.id) === 'dead', { timeoutMs: 10_000 }),
      ]);
    }
    await waitFor(() => statusOf(tmp.dir, event.id) === 'dead', { what: 'dead' });
    assert.equal(runs(log, event.id), 3, '1 + 2 attempts, each interrupted by the crash');
  });

  it('SIGTERM with a handler in flight: it finishes, the process exits 0, nothing is lost', async () => {
    server = await startServer(tmp.dir, env({ E2E_SLOW_MS: '500', SHUTDOWN_GRACE: '5s' }));
    const event = examplePayloads['order.shipped'];
    await postSigned(server.url, event);
    await waitFor(() => runs(log, event.id) === 1, { what: 'attempt to start' });
    const code = await stopProcess(server, 'SIGTERM');
    server = undefined;
    assert.equal(code, 0);
    assert.equal(statusOf(tmp.dir, event.id), 'processed');
    assert.match(readFileSync(log, 'utf8'), new RegExp(`done ${event.id} 1`));
  });

  it('SIGTERM past the grace period aborts the handler and gives the event back', async () => {
    server = await startServer(tmp.dir, env({ E2E_SLOW_MS: '60000', SHUTDOWN_GRACE: '300ms' }));
    const event = examplePayloads['order.shipped'];
    await postSigned(server.url, event);
    await waitFor(() => runs(log, event.id) === 1, { what: 'attempt to start' });
    const code = await stopProcess(server, 'SIGTERM');
    server = undefined;
    assert.equal(code, 0);
    assert.equal(statusOf(tmp.dir, event.id), 'retrying');
    server = await startServer(tmp.dir, env());
    await waitFor(() => statusOf(tmp.dir, event.id) === 'processed', { what: 'processed after restart' });
  });
});
