// The SQLite instance lock within one process: SQLite tracks its file locks per file, not per
// process, so two stores opened on one file here conflict as two processes would.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createConsumer } from '../../src/consumer.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { acquireInstanceLock } from '../../src/store/sqlite/instance-lock.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { SECRET, tempDir } from '../helpers/index.ts';

const refused = (pid: number) => (error: unknown) => {
  assert.ok(error instanceof ConfigError);
  assert.match(error.message, new RegExp(`another procureiq-webhooks process \\(pid ${pid}\\) is serving`));
  return true;
};

describe('instance lock within one process', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('a second lock on one file is refused until the first is released', () => {
    const db = join(tmp.dir, 'inbox.db');
    const release = acquireInstanceLock(db);
    assert.throws(() => acquireInstanceLock(db), refused(process.pid));
    release();
    release(); // idempotent
    const again = acquireInstanceLock(db);
    again();
  });

  it('locks on different files do not conflict', () => {
    const a = acquireInstanceLock(join(tmp.dir, 'a.db'));
    const b = acquireInstanceLock(join(tmp.dir, 'b.db'));
    a();
    b();
  });

  it('a lock file in the old pid format is taken over, whoever the pid names', () => {
    const db = join(tmp.dir, 'inbox.db');
    writeFileSync(`${db}.lock`, `${process.pid}\n`);
    const release = acquireInstanceLock(db);
    assert.throws(() => acquireInstanceLock(db), refused(process.pid));
    release();
  });

  it('a lock file that is neither a lock database nor a pid is left alone, with a message', () => {
    const db = join(tmp.dir, 'inbox.db');
    writeFileSync(`${db}.lock`, 'something else entirely, written by someone else');
    assert.throws(
      () => acquireInstanceLock(db),
      /could not take the lock .*inbox\.db\.lock: it is not a procureiq-webhooks lock file; remove it if/,
    );
  });

  it('two consumers on one SQLite file in one process: the second is refused', async () => {
    const database = `sqlite:${join(tmp.dir, 'inbox.db')}`;
    const logger = createLogger({ level: 'silent' });
    const first = createConsumer({ secret: SECRET, database, logger });
    try {
      await first.start();
      assert.throws(() => createConsumer({ secret: SECRET, database, logger }), refused(process.pid));
    } finally {
      await first.close();
    }
    const second = createConsumer({ secret: SECRET, database, logger });
    await second.start();
    await second.close();
  });
});
