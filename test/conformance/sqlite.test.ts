import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
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

describe('SQLite schema', () => {
  it('is durable by configuration: WAL with synchronous=FULL', () => {
    const tmp = tempDir();
    const inbox = new SqliteConnection(join(tmp.dir, 'inbox.db'));
    try {
      assert.equal(inbox.db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(inbox.db.pragma('synchronous', { simple: true }), 2); // FULL
    } finally {
      inbox.close();
      tmp.cleanup();
    }
  });

  it('refuses a status outside the vocabulary, whatever code path writes it', () => {
    const tmp = tempDir();
    const inbox = new SqliteConnection(join(tmp.dir, 'inbox.db'));
    try {
      inbox.insertIfAbsent(newEvent('evt_check'));
      assert.throws(
        () => inbox.db.prepare("UPDATE events SET status = 'done' WHERE id = 'evt_check'").run(),
        /CHECK constraint/,
      );
      assert.throws(
        () =>
          inbox.db
            .prepare(
              "INSERT INTO attempts (event_id, consumer, number, started_at, outcome) VALUES ('x', 'handlers', 1, 0, 'meh')",
            )
            .run(),
        /CHECK constraint/,
      );
      assert.throws(
        () => inbox.db.prepare("UPDATE jobs SET status = 'invalid' WHERE event_id = 'evt_check'").run(),
        /CHECK constraint/,
        'a job is never invalid: invalid events get no job',
      );
    } finally {
      inbox.close();
      tmp.cleanup();
    }
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
      ]);
      inbox.close();
    } finally {
      tmp.cleanup();
    }
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
