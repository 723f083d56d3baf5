import { readFileSync, truncateSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ConfigError } from '../../util/errors.ts';

/**
 * One serving process per SQLite file. The embedded store relies on it: at start-up every lease
 * in the file belongs to a process that is gone, so it can be recovered at once instead of
 * waiting for it to expire. Several instances need PostgreSQL.
 *
 * The lock is SQLite's own file lock on a small database next to the inbox (`<db>.lock`), held
 * by a write transaction for as long as the process serves. The kernel drops it when the process
 * dies (`kill -9` included, before it is even reaped), so a lock can never outlive its owner,
 * and nothing depends on pids, which are reused (after a container restart the old owner's pid
 * belongs to some other process). SQLite tracks locks per file within a process too, so two
 * stores opened on one file in one process conflict as well. The owner's pid is recorded in the
 * file only so the refusal can say who holds it.
 *
 * @returns a function that releases the lock (idempotent).
 */
export function acquireInstanceLock(databasePath: string): () => void {
  const lockPath = `${databasePath}.lock`;
  let db = new Database(lockPath, { timeout: 0 });
  try {
    if (!tryTake(db)) throw refusal(databasePath, ownerPid(db));
  } catch (error) {
    db.close();
    if (!isNotADatabase(error)) throw error;
    if (!isLegacyPidFile(lockPath)) {
      throw new ConfigError(
        `could not take the lock ${lockPath}: it is not a procureiq-webhooks lock file; remove it if no procureiq-webhooks process is running`,
      );
    }
    // Earlier versions wrote the owner's pid here as text. Such a file proves nothing about a
    // running process, so it is emptied in place (an empty file is an empty database). Never
    // unlinked: the inode is what a current holder's lock is on.
    truncateSync(lockPath, 0);
    db = new Database(lockPath, { timeout: 0 });
    try {
      if (!tryTake(db)) throw refusal(databasePath, ownerPid(db));
    } catch (retryError) {
      db.close();
      throw retryError;
    }
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    try {
      db.exec('ROLLBACK');
    } finally {
      db.close();
    }
  };
}

/**
 * Takes the lock: records this process's pid, then opens a write transaction (a RESERVED lock,
 * with `busy_timeout` 0) that is never committed. Other processes can still read the pid; none
 * can open a write transaction. Between the two steps another process may take the lock: then
 * this one does not hold it, and says so.
 */
function tryTake(db: Database.Database): boolean {
  if (!begin(db)) return false;
  try {
    db.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER NOT NULL, since INTEGER NOT NULL)');
    db.exec('DELETE FROM owner');
    db.prepare('INSERT INTO owner (pid, since) VALUES (?, ?)').run(process.pid, Date.now());
    db.exec('COMMIT');
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
  return begin(db);
}

function begin(db: Database.Database): boolean {
  try {
    db.exec('BEGIN IMMEDIATE');
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'SQLITE_BUSY') return false;
    throw error;
  }
}

function ownerPid(db: Database.Database): number | undefined {
  try {
    const row = db.prepare('SELECT pid FROM owner').get() as { pid: number } | undefined;
    return row?.pid;
  } catch {
    // Taken but not yet written by its owner.
    return undefined;
  }
}

function refusal(databasePath: string, pid: number | undefined): ConfigError {
  return new ConfigError(
    `another procureiq-webhooks process (pid ${pid ?? 'unknown'}) is serving ${databasePath}; stop it first, or use PostgreSQL (DATABASE_URL=postgres://…) to run several instances`,
  );
}

function isNotADatabase(error: unknown): boolean {
  return (error as { code?: unknown }).code === 'SQLITE_NOTADB';
}

function isLegacyPidFile(lockPath: string): boolean {
  try {
    return /^\s*\d*\s*$/.test(readFileSync(lockPath, 'latin1').slice(0, 64));
  } catch {
    return false;
  }
}
