// README: `dead-letter replay evt_… | --all`, and `dead-letter discard`: "hidden from the list,
// kept for dedupe and audit". A replay gives each event a fresh budget of 1 + N attempts.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import { SqliteConnection } from '../../src/store/sqlite/sqlite-connection.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { postSigned, REPO, runCli, startServer, stopProcess, tempDir } from '../helpers/index.ts';
import { ADMIN_TOKEN, adminEvent, eventWhere, settledEvent } from './admin-client.ts';

describe('dead-letter replay --all', () => {
  it('replays every dead letter not discarded, while the service runs; they are then processed', async () => {
    const tmp = tempDir();
    const fixed = join(tmp.dir, 'payments-api-is-back');
    const db = ['--db', `sqlite:${join(tmp.dir, 'inbox.db')}`];
    const server = await startServer(tmp.dir, {
      HANDLERS: join(REPO, 'test', 'fixtures', 'handlers', 'e2e-handlers.ts'),
      E2E_LOG: join(tmp.dir, 'runs.log'),
      E2E_FIXED_FILE: fixed,
      RETRY_SCHEDULE: '100ms',
      POLL_INTERVAL: '100ms',
      ADMIN_TOKEN,
    });
    try {
      // payment.failed fails until the fixed file exists: 1 + 1 attempts, then dead.
      const dead = ['evt_dl_1', 'evt_dl_2', 'evt_dl_3'];
      for (const id of dead)
        assert.equal(
          (await postSigned(server.url, { ...examplePayloads['payment.failed'], id })).status,
          200,
        );
      const processed = { ...examplePayloads['order.created'], id: 'evt_dl_ok' };
      assert.equal((await postSigned(server.url, processed)).status, 200);
      for (const id of dead) {
        const e = await settledEvent(server.port, id);
        assert.deepEqual([e.status, e.attempts], ['dead', 2], id);
      }
      assert.equal((await settledEvent(server.port, processed.id)).status, 'processed');
      const discarded = 'evt_dl_3';
      assert.match((await runCli(['dead-letter', 'discard', discarded, ...db])).stdout, /discarded 1 of 1/);

      writeFileSync(fixed, '');
      const replay = await runCli(['dead-letter', 'replay', '--all', '--retry-schedule', '100ms', ...db]);
      assert.equal(replay.code, 0, replay.stderr);
      assert.deepEqual(
        replay.stdout.trim().split('\n').sort(),
        ['evt_dl_1', 'evt_dl_2'].map((id) => `replayed ${id}: due now, 2 attempt(s) allowed`),
      );
      for (const id of ['evt_dl_1', 'evt_dl_2']) {
        const e = await eventWhere(
          server.port,
          id,
          'settled after its replay',
          (x) => x.attempts > 2 && !['pending', 'processing', 'retrying'].includes(x.status),
        );
        assert.deepEqual([e.status, e.attempts], ['processed', 3], id);
        assert.deepEqual(
          // The handlers' attempts (a dead handler's event also gets a projections job of its own).
          e.attemptHistory.filter((a) => a.consumer === 'handlers').map((a) => a.outcome),
          ['failed', 'failed', 'succeeded'],
        );
      }
      const left = await adminEvent(server.port, discarded);
      assert.deepEqual(
        [left?.status, left?.attempts],
        ['dead', 2],
        'a discarded dead letter is not replayed',
      );
      const ok = await adminEvent(server.port, processed.id);
      assert.deepEqual(
        [ok?.status, ok?.attempts],
        ['processed', 1],
        'events that are not dead are untouched',
      );

      const again = await runCli(['dead-letter', 'replay', '--all', ...db]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'no dead letters\n');
      const both = await runCli(['dead-letter', 'replay', 'evt_dl_1', '--all', ...db]);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /give ids or --all, not both/);
      assert.equal(await stopProcess(server), 0);
    } finally {
      await stopProcess(server, 'SIGKILL');
      tmp.cleanup();
    }
  });

  it('pages through more dead letters than one page holds (2,500), each replayed once', async () => {
    const tmp = tempDir();
    const path = join(tmp.dir, 'inbox.db');
    try {
      const inbox = new SqliteConnection(path);
      try {
        inbox.db.transaction(() => {
          for (let i = 0; i < 2500; i++)
            inbox.insertIfAbsent(newEvent(`evt_page_${String(i).padStart(4, '0')}`, { maxAttempts: 1 }));
          inbox.db.prepare("UPDATE events SET status = 'dead', attempts = 1, run_at = NULL").run();
          inbox.db.prepare("UPDATE jobs SET status = 'dead', attempts = 1, run_at = NULL").run();
          inbox.insertIfAbsent(newEvent('evt_page_pending', { maxAttempts: 1 }));
        })();
      } finally {
        inbox.close();
      }
      const replay = await runCli(['dead-letter', 'replay', '--all', '--db', `sqlite:${path}`]);
      assert.equal(replay.code, 0, replay.stderr);
      const replayed = replay.stdout.trim().split('\n');
      assert.equal(replayed.length, 2500);
      assert.equal(new Set(replayed).size, 2500, 'each once');
      assert.ok(replayed.every((l) => /^replayed evt_page_\d{4}: due now, 4 attempt\(s\) allowed$/.test(l)));

      const after = new SqliteConnection(path);
      try {
        assert.deepEqual(
          Object.entries(after.countByStatus()).filter(([, n]) => n > 0),
          [['pending', 2501]],
        );
      } finally {
        after.close();
      }
    } finally {
      tmp.cleanup();
    }
  });
});
