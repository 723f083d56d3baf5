// "A 200 means the event is on disk": when a commit fails, no caller whose write was in it may be
// told it was stored. Each engine's commit is made to fail on purpose, and every answer is checked
// against what is really in the database afterwards.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { InboxStore, InsertResult } from '../../src/store/inbox-store.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { dropSchema, PG_URL, tempDir, uniqueSchema } from '../helpers/index.ts';
import { newEvent } from './store-suite.ts';

/**
 * Sends writes in one turn so they share a commit with the doomed one, then checks each answer:
 * an event reported `inserted` is in the store; a rejected one is not.
 */
async function checkAnswers(store: InboxStore, tag: string): Promise<void> {
  const ids = [`ok_${tag}_1`, `doomed_${tag}_2`, `ok_${tag}_3`, `ok_${tag}_4`];
  const answers = await Promise.allSettled(ids.map((id) => store.insertIfAbsent(newEvent(id))));
  const doomed = answers[1];
  assert.equal(doomed?.status, 'rejected', 'the doomed write is refused');
  let refused = 0;
  for (const [i, answer] of answers.entries()) {
    const id = ids[i] as string;
    const stored = await store.get(id);
    if (answer.status === 'fulfilled') {
      assert.equal((answer.value as InsertResult).outcome, 'inserted');
      assert.ok(stored, `${id} was reported stored, so it must be in the store`);
    } else {
      refused++;
      assert.equal(stored, null, `${id} was refused, so it must not be in the store`);
      assert.match(String((answer.reason as Error).message), /commit|failpoint|refuses/i);
    }
  }
  assert.ok(refused >= 2, 'the writes that shared the failed commit are refused with it');
  // The store recovers: the same ids can be stored once the commit no longer fails.
  assert.equal((await store.insertIfAbsent(newEvent(`ok_${tag}_3`))).outcome, 'inserted');
}

describe('a failed commit acknowledges nothing', () => {
  for (const mode of ['thread', 'inline'] as const) {
    it(`SQLite (${mode}): every write in the failed commit is refused and absent`, async () => {
      const tmp = tempDir();
      process.env.PROCUREIQ_WEBHOOKS_FAILPOINT = 'fail-commit:doomed_';
      const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db'), mode });
      try {
        await store.migrate();
        await checkAnswers(store, mode);
      } finally {
        delete process.env.PROCUREIQ_WEBHOOKS_FAILPOINT;
        await store.close();
        tmp.cleanup();
      }
    });
  }

  describe('PostgreSQL: a batched INSERT whose commit fails', () => {
    const schema = uniqueSchema('piq_commit');
    let store: PostgresStore;
    before(async () => {
      store = new PostgresStore({ connectionString: PG_URL, schema });
      await store.migrate();
      // A deferred constraint trigger runs at COMMIT: the statement itself succeeds, the commit fails.
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`SET search_path = "${schema}"`);
      await client.query(`CREATE FUNCTION fail_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'deferred check refuses %', NEW.id; END $$`);
      await client.query(`CREATE CONSTRAINT TRIGGER doomed_fails_at_commit AFTER INSERT ON events
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id LIKE 'doomed\\_%') EXECUTE FUNCTION fail_doomed()`);
      await client.end();
    });
    after(async () => {
      await store.close();
      await dropSchema(schema);
    });

    it('every write in the failed commit is refused and absent', async () => {
      await checkAnswers(store, 'pg');
    });
  });
});
