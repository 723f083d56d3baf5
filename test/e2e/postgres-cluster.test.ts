// Several real instances on one PostgreSQL: duplicates across instances, kill -9, a paused zombie,
// and the database itself stopped in the middle of a load.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { examplePayloads } from '../../src/events/examples.ts';
import {
  type CliProcess,
  dropSchema,
  PG_URL,
  postSigned,
  REPO,
  startServer,
  stopProcess,
  tempDir,
  uniqueSchema,
  waitFor,
} from '../helpers/index.ts';

const HANDLERS = join(REPO, 'test', 'fixtures', 'handlers', 'e2e-handlers.ts');
type Instance = CliProcess & { url: string; port: number };

function pgCluster(action: 'start' | 'stop'): void {
  const version = execFileSync('ls', ['/etc/postgresql'], { encoding: 'utf8' }).trim().split('\n')[0] ?? '15';
  const args = ['--skip-systemctl-redirect', version, 'main', action];
  if (action === 'stop') args.push('-m', 'immediate');
  execFileSync('pg_ctlcluster', args, { stdio: 'ignore' });
}

async function pgReady(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

describe('several instances on one PostgreSQL', () => {
  const schema = uniqueSchema('piq_cluster');
  const tmp = tempDir();
  const log = join(tmp.dir, 'runs.log');
  const db = new pg.Client({ connectionString: PG_URL });
  let instances: Instance[] = [];

  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: `${PG_URL}?schema=${schema}`,
    HANDLERS,
    E2E_LOG: log,
    E2E_NO_CRASH: '1',
    RETRY_SCHEDULE: '200ms,200ms,200ms',
    LOG_LEVEL: 'info',
    ...extra,
  });
  const start = async (n: number, extra: Record<string, string> = {}) => {
    for (let i = 0; i < n; i++) instances.push(await startServer(tmp.dir, env(extra)));
  };
  const lines = (prefix: string) =>
    existsSync(log)
      ? readFileSync(log, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith(prefix))
      : [];
  const statusOf = async (id: string) =>
    (await db.query(`SELECT status FROM "${schema}".events WHERE id = $1`, [id])).rows[0]?.status as
      | string
      | undefined;

  before(async () => {
    // The outage test stops the server under this connection too.
    db.on('error', () => {});
    await db.connect();
  });
  afterEach(async () => {
    for (const p of instances) {
      if (p.child.signalCode === null && p.child.exitCode === null) p.child.kill('SIGCONT');
      await stopProcess(p, 'SIGKILL');
    }
    instances = [];
  });
  after(async () => {
    if (!(await pgReady())) pgCluster('start');
    await db.end().catch(() => {});
    await dropSchema(schema);
    tmp.cleanup();
  });

  it('3 instances, duplicates spread across them: each event stored once, handled once', async () => {
    await start(3);
    const ids = Array.from({ length: 300 }, (_, i) => `evt_cluster_${i}`);
    const deliveries = ids.flatMap((id) => [0, 1, 2].map((k) => ({ id, target: instances[k]! })));
    const results: { status: number; body: Record<string, unknown> }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 24 }, async () => {
        for (;;) {
          const d = deliveries[next++];
          if (!d) return;
          results.push(await postSigned(d.target.url, { ...examplePayloads['order.created'], id: d.id }));
        }
      }),
    );
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(results.filter((r) => r.body.status === 'ok').length, 300);
    assert.equal(results.filter((r) => r.body.status === 'duplicate').length, 600);
    const stored = await db.query(
      `SELECT COUNT(*)::int AS n FROM "${schema}".events WHERE id LIKE 'evt_cluster_%'`,
    );
    assert.equal(stored.rows[0].n, 300);
    await waitFor(
      async () =>
        (
          await db.query(
            `SELECT COUNT(*)::int AS n FROM "${schema}".events WHERE id LIKE 'evt_cluster_%' AND status = 'processed'`,
          )
        ).rows[0].n === 300,
      { what: 'all processed' },
    );
    const runs = lines('run evt_cluster_');
    assert.equal(runs.length, 300, 'one handler run per event');
    assert.equal(new Set(runs).size, 300);
  });

  it('kill -9 one instance mid-handler: the others take its leases over once they expire', async () => {
    await start(2, { E2E_SLOW_MS: '60000' });
    const [victim, survivor] = instances as [Instance, Instance];
    const ids = Array.from({ length: 5 }, (_, i) => `evt_takeover_${Date.now()}_${i}`);
    for (const id of ids) await postSigned(victim.url, { ...examplePayloads['order.shipped'], id });
    await waitFor(() => ids.every((id) => lines(`run ${id} 1`).length === 1), {
      what: 'handlers to start on the victim',
    });
    victim.child.kill('SIGKILL');
    await victim.exited;
    // Instead of waiting out the lease, move it into the past, as the clock eventually would.
    const owner = `${hostname()}:${victim.child.pid}:`;
    const moved = await db.query(
      `UPDATE "${schema}".jobs SET lease_expires_at = 0 WHERE status = 'processing' AND starts_with(lease_owner, $1)`,
      [owner],
    );
    assert.equal(moved.rowCount, 5);
    for (const id of ids)
      await waitFor(async () => (await statusOf(id)) === 'processed', { what: `${id} processed` });
    for (const id of ids) assert.equal(lines(`run ${id} 2`).length, 1, 'second attempt ran on the survivor');
    const outcomes = await db.query(
      `SELECT outcome FROM "${schema}".attempts WHERE event_id = $1 ORDER BY number`,
      [ids[0]],
    );
    assert.deepEqual(
      outcomes.rows.map((r) => r.outcome),
      ['interrupted', 'succeeded'],
    );
    assert.ok(survivor.child.exitCode === null);
  });

  it('a zombie paused past its lease cannot complete the event another instance completed', async () => {
    await start(2, { E2E_SLOW_MS: '1500' });
    const [zombie, other] = instances as [Instance, Instance];
    const id = `evt_zombie_${Date.now()}`;
    await postSigned(zombie.url, { ...examplePayloads['order.shipped'], id });
    await waitFor(() => lines(`run ${id} 1`).length === 1, { what: 'the zombie to start the handler' });
    zombie.child.kill('SIGSTOP');
    await db.query(
      `UPDATE "${schema}".jobs SET lease_expires_at = 0 WHERE event_id = $1 AND consumer = 'handlers'`,
      [id],
    );
    await waitFor(async () => (await statusOf(id)) === 'processed', {
      what: 'the other instance to complete it',
    });
    assert.equal(lines(`run ${id} 2`).length, 1);
    zombie.child.kill('SIGCONT');
    // The zombie's handler finishes its sleep, then its completion is fenced out.
    await waitFor(() => zombie.stdout().includes('lease was lost before completion'), {
      what: 'the fenced completion',
    });
    const attempts = await db.query(
      `SELECT number, outcome, worker FROM "${schema}".attempts WHERE event_id = $1 ORDER BY number`,
      [id],
    );
    assert.deepEqual(
      attempts.rows.map((r) => r.outcome),
      ['interrupted', 'succeeded'],
    );
    assert.ok(String(attempts.rows[1].worker).includes(`:${other.child.pid}:`));
    assert.equal(await statusOf(id), 'processed');
  });

  it('PostgreSQL stopped mid-load: no 200 without its event stored, and the service recovers by itself', {
    timeout: 200_000,
  }, async () => {
    await start(1);
    const [instance] = instances as [Instance];
    const acked: string[] = [];
    const refused: number[] = [];
    let stop = false;
    let n = 0;
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (!stop) {
          const id = `evt_outage_${n++}`;
          try {
            const res = await postSigned(instance.url, { ...examplePayloads['order.created'], id });
            if (res.status === 200) acked.push(id);
            else refused.push(res.status);
          } catch {
            refused.push(0);
          }
        }
      }),
    );
    try {
      await waitFor(() => acked.length >= 100, { what: '100 acknowledged' });
      pgCluster('stop');
      await waitFor(() => refused.length >= 20, { what: 'deliveries refused while the database is down' });
      assert.ok(
        refused.every((s) => s === 503),
        `refusals: ${[...new Set(refused)].join(',')}`,
      );
      const ready = await fetch(`http://127.0.0.1:${instance.port}/readyz`);
      assert.equal(ready.status, 503);
    } finally {
      if (!(await pgReady())) pgCluster('start');
    }
    await waitFor(pgReady, { what: 'PostgreSQL back', timeoutMs: 30_000 });
    const ackedBefore = acked.length;
    await waitFor(() => acked.length >= ackedBefore + 100, {
      what: 'deliveries acknowledged again',
      timeoutMs: 30_000,
    });
    stop = true;
    await load;
    assert.equal(instance.child.exitCode, null, 'the service kept running');
    assert.equal((await fetch(`http://127.0.0.1:${instance.port}/readyz`)).status, 200);

    const check = new pg.Client({ connectionString: PG_URL });
    await check.connect();
    try {
      const { rows } = await check.query(`SELECT id FROM "${schema}".events WHERE id = ANY($1::text[])`, [
        acked,
      ]);
      const stored = new Set(rows.map((r) => r.id));
      const lost = acked.filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `${lost.length} acknowledged events are missing`);
      // The worker resumed on its own: everything acknowledged gets processed.
      await waitFor(
        async () =>
          (
            await check.query(
              `SELECT COUNT(*)::int AS n FROM "${schema}".events WHERE id = ANY($1::text[]) AND status <> 'processed'`,
              [acked],
            )
          ).rows[0].n === 0,
        { what: 'acknowledged events processed', timeoutMs: 30_000 },
      );
    } finally {
      await check.end();
    }
    assert.ok(!instance.stderr().includes('Unhandled'), instance.stderr());
    await sleep(10);
  });
});
