import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import { SqliteConnection } from '../../src/store/sqlite/sqlite-connection.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { runCli, startCli, tempDir } from '../helpers/index.ts';

/** Seeds `n` dead letters straight into an inbox file. */
function seedDead(path: string, n: number, type = 'order.created'): void {
  const inbox = new SqliteConnection(path);
  try {
    inbox.db.transaction(() => {
      for (let i = 0; i < n; i++)
        inbox.insertIfAbsent(newEvent(`evt_dead_${String(i).padStart(5, '0')}`, { type, maxAttempts: 1 }));
      inbox.db.prepare("UPDATE events SET status = 'dead', attempts = 1, run_at = NULL").run();
      inbox.db.prepare("UPDATE jobs SET status = 'dead', attempts = 1, run_at = NULL").run();
    })();
  } finally {
    inbox.close();
  }
}

describe('CLI replay by filter', () => {
  it('replays 10k dead letters; interrupted and rerun, nothing is replayed twice', async () => {
    const tmp = tempDir();
    const path = join(tmp.dir, 'inbox.db');
    try {
      seedDead(path, 10_000);
      const db = ['--db', `sqlite:${path}`];
      const dry = await runCli([
        'replay',
        '--status',
        'dead',
        '--type',
        'order.*',
        '--since',
        '1h',
        '--dry-run',
        ...db,
      ]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /10000 event\(s\) match; dry run, nothing replayed/);

      // Start, interrupt part-way with SIGINT (Ctrl-C), then run the same command again. Once the
      // run says it is replaying (its Ctrl-C handler is installed by then) and its first replay has
      // committed, the test counts what is replayed and sends SIGINT at once. The run stops after
      // the write in flight: it cannot finish the other thousands first.
      const watcher = new SqliteConnection(path, { readonly: true });
      const first = startCli(['replay', '--status', 'dead', '--type', 'order.*', ...db]);
      let replayedBeforeSignal: number;
      try {
        replayedBeforeSignal = await new Promise<number>((resolve, reject) => {
          const onData = () => {
            if (!/^replaying 10000 event\(s\); Ctrl-C stops/m.test(first.stderr())) return;
            first.child.stderr?.off('data', onData);
            const deadline = Date.now() + 30_000;
            let replayed = watcher.countByStatus().pending;
            while (replayed === 0) {
              if (Date.now() > deadline) return reject(new Error('no replay committed within 30s'));
              replayed = watcher.countByStatus().pending;
            }
            first.child.kill('SIGINT');
            resolve(replayed);
          };
          first.child.stderr?.on('data', onData);
          void first.exited.then(() =>
            reject(new Error(`the replay ended before the test saw it start: ${first.stderr()}`)),
          );
        });
      } finally {
        watcher.close();
      }
      assert.ok(replayedBeforeSignal > 0 && replayedBeforeSignal < 10_000, `${replayedBeforeSignal}`);
      const code = await first.exited;
      const firstOut = first.stdout();
      assert.equal(code, 130, `${firstOut}${first.stderr()}`);
      assert.match(
        firstOut,
        /^interrupted: replayed \d+ of 10000 matching event\(s\); run the same command again to continue\n$/,
      );
      const done = Number(/replayed (\d+) of 10000/.exec(firstOut)?.[1] ?? -1);
      assert.ok(
        done >= replayedBeforeSignal && done < 10_000,
        `the first run replayed ${done}; ${replayedBeforeSignal} before Ctrl-C`,
      );
      const second = await runCli(['replay', '--status', 'dead', '--type', 'order.*', ...db]);
      assert.equal(second.code, 0, second.stderr);
      const rest = Number(
        /replayed (\d+) of (\d+)/.exec(second.stdout)?.[1] ?? (/^0 event/.test(second.stdout) ? 0 : -1),
      );
      assert.equal(done + rest, 10_000, `${done} + ${rest}`);

      const inbox = new SqliteConnection(path);
      try {
        const counts = inbox.countByStatus();
        assert.equal(counts.pending, 10_000);
        assert.equal(counts.dead, 0);
        // Each event got exactly one fresh budget: replayed twice would show 1 + 2 × budget.
        const budgets = inbox.db.prepare('SELECT DISTINCT max_attempts FROM events').pluck().all();
        assert.deepEqual(budgets, [1 + 4]);
        assert.equal(inbox.db.prepare('SELECT COUNT(*) FROM events').pluck().get(), 10_000, 'no new events');
      } finally {
        inbox.close();
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('replays by id, and refuses unclear requests', async () => {
    const tmp = tempDir();
    const path = join(tmp.dir, 'inbox.db');
    try {
      seedDead(path, 3);
      const db = ['--db', `sqlite:${path}`];
      const byId = await runCli(['replay', '--id', 'evt_dead_00001', ...db]);
      assert.match(byId.stdout, /replayed evt_dead_00001/);
      const both = await runCli(['replay', '--id', 'evt_dead_00002', '--status', 'dead', ...db]);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /give --id, or filters, not both/);
      const none = await runCli(['replay', ...db]);
      assert.equal(none.code, 2);
      const badSince = await runCli(['replay', '--status', 'dead', '--since', 'last tuesday', ...db]);
      assert.equal(badSince.code, 2);
      assert.match(badSince.stderr, /since "last tuesday" is not a time/);
      // --dry-run with --id says what it would do and changes nothing (it replayed for real).
      const dry = await runCli(['replay', '--id', 'evt_dead_00002', '--dry-run', ...db]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /would replay evt_dead_00002: .*\(dry run\)/);
      const still = await runCli(['events', 'show', 'evt_dead_00002', '--json', ...db]);
      assert.equal(JSON.parse(still.stdout).status, 'dead');
      // A dry run says what the replay would: a purged payload is refused, not "would replay".
      const inbox = new SqliteConnection(path);
      inbox.db.prepare("UPDATE events SET raw_body = NULL WHERE id = 'evt_dead_00000'").run();
      inbox.close();
      const purged = await runCli(['replay', '--id', 'evt_dead_00000', '--dry-run', ...db]);
      assert.equal(purged.code, 1);
      assert.match(purged.stderr, /cannot replay evt_dead_00000: its payload was purged by retention/);
      // An empty filter value (`--status "$STATUS"` with STATUS unset) is refused, not dropped.
      const empty = await runCli(['replay', '--status', '', ...db]);
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /--status is empty: give it a value, or leave it out/);
      const exported = await runCli(['export', '--type', '', ...db]);
      assert.equal(exported.code, 2);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('CLI export and import', () => {
  it('import gives events the jobs a delivery would: routes, live tables; invalid stays invalid', async () => {
    const tmp = tempDir();
    try {
      const { writeFileSync } = await import('node:fs');
      const routes = join(tmp.dir, 'routes.yaml');
      writeFileSync(
        routes,
        'destinations:\n  sink: { type: http, url: "http://127.0.0.1:9/x" }\n' +
          'routes:\n  - name: orders\n    match: { types: [order.*] }\n    to: sink\n',
      );
      const line = (id: string, environment: string, metadata: Record<string, unknown> = {}) =>
        JSON.stringify({
          id,
          type: 'order.created',
          environment,
          status: 'processed',
          receivedAt: new Date().toISOString(),
          deliveryId: null,
          timestampHeader: null,
          body: JSON.stringify({
            ...examplePayloads['order.created'],
            id,
            metadata: { ...examplePayloads['order.created'].metadata, ...metadata },
          }),
        });
      const file = join(tmp.dir, 'events.ndjson');
      writeFileSync(
        file,
        [
          line('evt_imp_ok', 'production', { environment: 'production' }),
          line('evt_imp_mismatch', 'production', { environment: 'sandbox' }),
          line('evt_imp_bad_env', 'staging'),
          line('evt_imp_after', 'production'),
        ].join('\n'),
      );
      const to = join(tmp.dir, 'to.db');
      new SqliteConnection(to).close();
      const r = await runCli(['import', file, '--routes', routes, '--db', `sqlite:${to}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /imported 3 event\(s\); 0 already stored; 1 skipped/);
      assert.match(
        r.stderr,
        /line 3: skipped evt_imp_bad_env: environment "staging" is not production or sandbox/,
      );
      const inbox = new SqliteConnection(to);
      try {
        const jobs = (id: string) =>
          inbox
            .get(id)
            ?.jobs.map((j) => j.consumer)
            .sort();
        assert.deepEqual(jobs('evt_imp_ok'), ['handlers', 'projections', 'route:orders']);
        assert.deepEqual(jobs('evt_imp_after'), ['handlers', 'projections', 'route:orders']);
        assert.equal(inbox.get('evt_imp_mismatch')?.status, 'invalid');
        assert.deepEqual(jobs('evt_imp_mismatch'), []);
      } finally {
        inbox.close();
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('moves events between inboxes byte for byte, skipping ids already there', async () => {
    const tmp = tempDir();
    try {
      const from = join(tmp.dir, 'from.db');
      seedDead(from, 5, 'payment.failed');
      const exported = await runCli(['export', '--type', 'payment.*', '--db', `sqlite:${from}`]);
      assert.equal(exported.code, 0, exported.stderr);
      const lines = exported.stdout.trim().split('\n');
      assert.equal(lines.length, 5);
      assert.match(exported.stderr, /exported 5 event\(s\)/);
      const file = join(tmp.dir, 'events.ndjson');
      const { writeFileSync } = await import('node:fs');
      writeFileSync(file, `${exported.stdout}not json\n`);

      const to = join(tmp.dir, 'to.db');
      new SqliteConnection(to).close();
      const imported = await runCli(['import', file, '--environment', 'sandbox', '--db', `sqlite:${to}`]);
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(imported.stdout, /imported 5 event\(s\); 0 already stored; 1 skipped/);
      const again = await runCli(['import', file, '--db', `sqlite:${to}`]);
      assert.match(again.stdout, /imported 0 event\(s\); 5 already stored/);

      const a = new SqliteConnection(from);
      const b = new SqliteConnection(to);
      try {
        const original = a.get('evt_dead_00003');
        const copy = b.get('evt_dead_00003');
        assert.equal(Buffer.from(copy!.rawBody).toString(), Buffer.from(original!.rawBody).toString());
        assert.equal(copy?.bodySha256, original?.bodySha256);
        assert.equal(copy?.environment, 'sandbox');
        assert.equal(copy?.status, 'invalid', 'the seeded payload is not a valid payment.failed');
      } finally {
        a.close();
        b.close();
      }
    } finally {
      tmp.cleanup();
    }
  });
});
