import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type BatchRequest, runBatch } from '../../src/store/sqlite/protocol.ts';
import { SqliteConnection } from '../../src/store/sqlite/sqlite-connection.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { tempDir } from '../helpers/index.ts';
import { newEvent, storeConformance } from './store-suite.ts';

for (const mode of ['thread', 'inline'] as const) {
  storeConformance(`SQLite (${mode})`, async () => {
    const tmp = tempDir();
    return {
      store: new SqliteStore({ path: join(tmp.dir, 'inbox.db'), mode }),
      cleanup: async () => tmp.cleanup(),
    };
  });
}

/** Runs `test` on a connection to a fresh inbox file in a temporary folder, then removes both. */
function withConnection(test: (inbox: SqliteConnection, dir: string) => void): void {
  const tmp = tempDir();
  const inbox = new SqliteConnection(join(tmp.dir, 'inbox.db'));
  try {
    test(inbox, tmp.dir);
  } finally {
    inbox.close();
    tmp.cleanup();
  }
}

describe('SQLite schema', () => {
  it('is durable by configuration: WAL with synchronous=FULL', () => {
    withConnection((inbox) => {
      assert.equal(inbox.db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(inbox.db.pragma('synchronous', { simple: true }), 2); // FULL
    });
  });

  it('refuses a status outside the vocabulary, whatever code path writes it', () => {
    withConnection((inbox) => {
      inbox.insertIfAbsent(newEvent('evt_check'));
      assert.throws(
        () => inbox.db.prepare("UPDATE events SET status = 'done' WHERE id = 'evt_check'").run(),
        /CHECK constraint/,
      );
      assert.throws(
        () =>
          inbox.db
            .prepare(
              "INSERT INTO attempts (event_seq, event_id, consumer, number, started_at, outcome) VALUES (1, 'x', 'handlers', 1, 0, 'meh')",
            )
            .run(),
        /CHECK constraint/,
      );
      assert.throws(
        () => inbox.db.prepare("UPDATE jobs SET status = 'invalid' WHERE event_id = 'evt_check'").run(),
        /CHECK constraint/,
        'a job is never invalid: invalid events get no job',
      );
    });
  });

  it('never gives a receipt number twice: jobs left by an event deleted by hand stay its own', () => {
    withConnection((inbox) => {
      const routed = { jobs: [{ consumer: 'route:a', maxAttempts: 3 }] };
      inbox.insertIfAbsent(newEvent('evt_kept', routed));
      inbox.insertIfAbsent(newEvent('evt_deleted', routed));
      const seqOf = (id: string) =>
        inbox.db.prepare('SELECT seq FROM events WHERE id = ?').pluck().get(id) as number;
      const deleted = seqOf('evt_deleted');
      inbox.db.prepare("DELETE FROM events WHERE id = 'evt_deleted'").run();
      inbox.insertIfAbsent(newEvent('evt_new', { jobs: [{ consumer: 'route:b', maxAttempts: 3 }] }));
      assert.ok(seqOf('evt_new') > deleted);
      assert.deepEqual(
        inbox.get('evt_new')?.jobs.map((j) => j.consumer),
        ['route:b'],
      );
    });
  });

  it('an operation that fails half-way in a batch leaves nothing: the others commit, it can be retried', () => {
    withConnection((inbox) => {
      // Any statement-level failure after the event row is written (the statement is undone, the
      // transaction is not): before, the event row committed without its jobs, and the retry was
      // answered "duplicate" and never processed.
      inbox.db.exec(`CREATE TRIGGER fail_jobs BEFORE INSERT ON jobs WHEN NEW.event_id = 'evt_half'
        BEGIN SELECT RAISE(ABORT, 'job insert failed'); END`);
      const jobs = { jobs: [{ consumer: 'handlers', maxAttempts: 3 }] };
      const results = runBatch(inbox, [
        ['insertIfAbsent', [newEvent('evt_whole', jobs)]],
        ['insertIfAbsent', [newEvent('evt_half', jobs)]],
      ]);
      assert.deepEqual(
        results.map((r) => (r.ok ? (r.value as { outcome: string }).outcome : r.error.message)),
        ['inserted', 'job insert failed'],
      );
      assert.equal(inbox.get('evt_half'), null, 'nothing of the failed insert was kept');
      assert.deepEqual(
        inbox.get('evt_whole')?.jobs.map((j) => j.consumer),
        ['handlers'],
      );
      inbox.db.exec('DROP TRIGGER fail_jobs');
      const [retry] = runBatch(inbox, [['insertIfAbsent', [newEvent('evt_half', jobs)]]]);
      assert.equal(retry?.ok && (retry.value as { outcome: string }).outcome, 'inserted');
    });
  });

  it('records applied migrations once', () => {
    const tmp = tempDir();
    const path = join(tmp.dir, 'inbox.db');
    try {
      new SqliteConnection(path).close();
      const inbox = new SqliteConnection(path);
      const rows = inbox.db.prepare('SELECT version, name FROM schema_migrations').all();
      assert.deepEqual(rows, [
        { version: 1, name: 'inbox' },
        { version: 2, name: 'operations' },
        { version: 3, name: 'jobs' },
        { version: 4, name: 'projections' },
        { version: 5, name: 'sequence_keys' },
      ]);
      inbox.close();
    } finally {
      tmp.cleanup();
    }
  });
});

describe('SQLite rehearsals (the warm-up)', () => {
  const projection = (id: string) => [
    {
      sql: `INSERT INTO procureiq_orders (order_id, environment, status, last_event_id, last_event_created,
        last_stage_rank, updated_at) VALUES (?, 'production', 'created', ?, 1, 0, 1)`,
      params: [`ord_${id}`, id],
    },
  ];
  // With its projection applied at insert, the event needs no job.
  const projectionsJob = [{ consumer: 'projections', maxAttempts: 3 }];
  const count = (inbox: SqliteConnection, table: string) =>
    inbox.db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number;

  it('runs every statement of the insert, then takes it back', () => {
    withConnection((inbox) => {
      const changes = () => inbox.db.prepare('SELECT total_changes()').pluck().get() as number;
      const before = changes();
      const jobs = [
        { consumer: 'route:all', maxAttempts: 3 },
        { consumer: 'projections', maxAttempts: 3 },
      ];
      const result = runBatch(inbox, [
        [
          'insertIfAbsent',
          [newEvent('evt_rehearsed', { rehearsal: true, jobs, projection: projection('a') })],
        ],
      ]);
      assert.deepEqual(result[0], {
        ok: true,
        value: { outcome: 'inserted', claimed: null, projectedAtInsert: true },
      });
      // The event, its route job and its projection were written (then rolled back).
      assert.ok(changes() - before >= 3, `only ${changes() - before} rows were written`);
      for (const table of ['events', 'jobs', 'procureiq_orders']) assert.equal(count(inbox, table), 0, table);
    });
  });

  it('a batch of rehearsals alone writes nothing to the WAL; in a batch with real inserts, only those are kept', () => {
    withConnection((inbox, dir) => {
      const walBytes = () => statSync(join(dir, 'inbox.db-wal')).size;
      inbox.db.pragma('wal_checkpoint(TRUNCATE)');
      assert.equal(walBytes(), 0);
      const rehearsal = (i: number): BatchRequest['ops'][number] => [
        'insertIfAbsent',
        [newEvent(`evt_r${i}`, { rehearsal: true, jobs: projectionsJob, projection: projection(`r${i}`) })],
      ];
      runBatch(inbox, [rehearsal(1), rehearsal(2), rehearsal(3)]);
      assert.equal(walBytes(), 0, 'a batch of rehearsals committed');

      const results = runBatch(inbox, [
        rehearsal(4),
        ['insertIfAbsent', [newEvent('evt_real', { jobs: projectionsJob, projection: projection('real') })]],
        rehearsal(5),
      ]);
      assert.deepEqual(
        results.map((r) => r.ok && (r.value as { outcome: string }).outcome),
        ['inserted', 'inserted', 'inserted'],
      );
      assert.ok(walBytes() > 0);
      assert.deepEqual(inbox.db.prepare('SELECT id FROM events').pluck().all(), ['evt_real']);
      assert.deepEqual(inbox.db.prepare('SELECT order_id FROM procureiq_orders').pluck().all(), ['ord_real']);
    });
  });
});

describe('SQLite store threads', () => {
  it('answers reads on a thread of their own: a writer held by a lock holds up no count, list or detail', async () => {
    const tmp = tempDir();
    const path = join(tmp.dir, 'inbox.db');
    const store = new SqliteStore({ path, mode: 'thread' });
    await store.migrate();
    await store.insertIfAbsent(newEvent('evt_committed'));
    // The reader thread starts at the first read: start it before the lock, whose wait is bounded
    // by the writer's busy timeout (5 s).
    assert.equal((await store.countByStatus()).pending, 1);
    // Another process's write transaction holds the database's write lock: the writer thread's
    // next commit waits for it (busy timeout), as it would behind a long write.
    const blocker = new Database(path);
    blocker.exec('BEGIN IMMEDIATE');
    let stored = false;
    const insert = store.insertIfAbsent(newEvent('evt_waiting')).then((r) => {
      stored = true;
      return r;
    });
    try {
      assert.equal((await store.countByStatus()).pending, 1, 'counts the last commit');
      assert.equal((await store.get('evt_committed'))?.id, 'evt_committed');
      assert.deepEqual(
        (await store.list({ limit: 10 })).map((e) => e.id),
        ['evt_committed'],
      );
      assert.equal(stored, false, 'the write is still waiting for the lock');
    } finally {
      blocker.exec('ROLLBACK');
      blocker.close();
    }
    assert.equal((await insert).outcome, 'inserted');
    assert.equal((await store.get('evt_waiting'))?.id, 'evt_waiting', 'a read after a write sees it');
    await store.close();
    await assert.rejects(store.countByStatus(), /closed/);
    tmp.cleanup();
  });
});
