// A database made by the previous release (0.1.0: one lease per event, attempts without a
// consumer) migrates in place: every event keeps its status, attempts and history, and the
// migrated store works. The fixtures were written by 0.1.0's own store code
// (test/fixtures/release-0.1.0/make-fixture.ts.txt).
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { InboxStore } from '../../src/store/inbox-store.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { dropSchema, PG_URL, tempDir, uniqueSchema } from '../helpers/index.ts';

const FIXTURES = new URL('../fixtures/release-0.1.0/', import.meta.url);
const RETRY_AT = 4_000_000_000_000;

async function checkMigrated(store: InboxStore): Promise<void> {
  await store.migrate();
  await store.ping();
  const summary = async (id: string) => {
    const e = await store.get(id);
    assert.ok(e, `${id} survived`);
    return {
      status: e.status,
      attempts: e.attempts,
      jobs: e.jobs.map((j) => [j.consumer, j.status, j.attempts, j.maxAttempts]),
      history: e.attemptHistory.map((a) => [a.consumer, a.number, a.outcome, a.errorMessage]),
      lastError: e.lastError,
    };
  };
  assert.deepEqual(await summary('evt_processed'), {
    status: 'processed',
    attempts: 1,
    jobs: [['handlers', 'processed', 1, 4]],
    history: [['handlers', 1, 'succeeded', null]],
    lastError: null,
  });
  assert.equal((await store.get('evt_processed'))?.deliveries.length, 2, 'the duplicate delivery is kept');
  assert.deepEqual(await summary('evt_retrying'), {
    status: 'retrying',
    attempts: 1,
    jobs: [['handlers', 'retrying', 1, 4]],
    history: [['handlers', 1, 'failed', 'gateway timeout']],
    lastError: 'gateway timeout',
  });
  assert.equal((await store.get('evt_retrying'))?.nextAttemptAt, RETRY_AT);
  assert.deepEqual(await summary('evt_dead'), {
    status: 'dead',
    attempts: 1,
    jobs: [['handlers', 'dead', 1, 4]],
    history: [['handlers', 1, 'failed', 'carrier rejected']],
    lastError: 'carrier rejected',
  });
  assert.deepEqual(await summary('evt_running'), {
    status: 'processing',
    attempts: 1,
    jobs: [['handlers', 'processing', 1, 4]],
    history: [['handlers', 1, 'running', null]],
    lastError: null,
  });
  assert.equal((await store.get('evt_running'))?.attemptHistory[0]?.worker, 'release-0.1:worker');
  assert.deepEqual(await summary('evt_unhandled_w'), {
    status: 'unhandled',
    attempts: 1,
    jobs: [['handlers', 'unhandled', 1, 4]],
    history: [['handlers', 1, 'succeeded', null]],
    lastError: null,
  });
  assert.deepEqual(await summary('evt_pending'), {
    status: 'pending',
    attempts: 0,
    jobs: [['handlers', 'pending', 0, 4]],
    history: [],
    lastError: null,
  });
  for (const id of ['evt_invalid', 'evt_unhandled']) {
    const e = await summary(id);
    assert.deepEqual(e.jobs, [], `${id} had no job and gets none`);
    assert.equal(e.attempts, 0);
  }
  assert.equal((await store.get('evt_invalid'))?.status, 'invalid');
  assert.equal((await store.get('evt_unhandled'))?.status, 'unhandled');
  assert.equal((await store.auditLog(10))[0]?.action, 'replay');
  assert.equal((await store.secretUsage()).length, 1);

  // The migrated store works: the old lease is recovered as an interrupted attempt, the pending
  // event is claimed, a dead letter is replayed.
  assert.equal(await store.expireLeases('release-0.1:'), 1);
  const batch = await store.claimDue({ owner: 'new', limit: 10, leaseMs: 60_000 });
  assert.deepEqual(batch.events.map((e) => [e.id, e.attempt]).sort(), [
    ['evt_pending', 1],
    ['evt_running', 2],
  ]);
  for (const claimed of batch.events)
    assert.equal(
      await store.complete(claimed, { startedAt: Date.now(), finishedAt: Date.now(), outcome: 'succeeded' }),
      true,
    );
  assert.deepEqual(
    (await store.get('evt_running'))?.attemptHistory.map((a) => a.outcome),
    ['interrupted', 'succeeded'],
  );
  assert.equal(await store.replay('evt_dead', 3), 'replayed');
  assert.equal((await store.get('evt_dead'))?.status, 'pending');
  assert.equal(
    (
      await store.insertIfAbsent({
        id: 'evt_processed',
        type: 'order.created',
        environment: 'production',
        status: 'pending',
        created: 1,
        rawBody: Buffer.from('{}'),
        deliveryId: 'dlv_again',
        timestampHeader: null,
        receivedAt: Date.now(),
        validationError: null,
        maxAttempts: 4,
        secretIndex: 0,
        sourceAddress: null,
      })
    ).outcome,
    'duplicate',
    'the dedupe keys survive',
  );
}

describe('migrating a database made by release 0.1.0', () => {
  it('SQLite: the file migrates in place', async () => {
    const tmp = tempDir();
    const path = join(tmp.dir, 'inbox.db');
    copyFileSync(new URL('inbox.db', FIXTURES), path);
    // Receipt order (the implicit rowid before 0005, `seq` after) is what lists sort by.
    const old = new Database(path, { readonly: true });
    const receiptOrder = old.prepare('SELECT id FROM events ORDER BY rowid DESC').pluck().all();
    old.close();
    const store = new SqliteStore({ path, mode: 'inline' });
    try {
      assert.deepEqual(
        (await store.list({ limit: 100 })).map((e) => e.id),
        receiptOrder,
        'lists keep the order of receipt',
      );
      await checkMigrated(store);
    } finally {
      await store.close();
      tmp.cleanup();
    }
  });

  it('PostgreSQL: the schema migrates in place', async () => {
    const schema = uniqueSchema('piq_release');
    const dump = readFileSync(new URL('postgres.sql', FIXTURES), 'utf8').replaceAll(
      'piq_release_010',
      schema,
    );
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      await client.query(dump);
    } finally {
      await client.end();
    }
    // The 0.1.0 fixture's retry time came from the database clock; pin it so it can be checked.
    const pin = new pg.Client({ connectionString: PG_URL });
    await pin.connect();
    await pin.query(`UPDATE "${schema}".events SET run_at = $1 WHERE id = 'evt_retrying'`, [RETRY_AT]);
    await pin.end();
    const store = new PostgresStore({ connectionString: PG_URL, schema });
    try {
      await checkMigrated(store);
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  });
});
