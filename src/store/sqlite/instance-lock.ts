import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../../util/errors.ts';

/**
 * One serving process per SQLite file. The embedded store relies on it: at start-up every lease
 * in the file belongs to a process that is gone, so it can be recovered at once instead of
 * waiting for it to expire. Several instances need PostgreSQL.
 *
 * The lock is a file holding the owner's pid; a lock left by a process that was killed is taken
 * over.
 */
export function acquireInstanceLock(databasePath: string): () => void {
  const lockPath = `${databasePath}.lock`;
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(lockPath, 'utf8').trim() === String(process.pid)) unlinkSync(lockPath);
        } catch {
          // Already gone.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(readFileSync(lockPath, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new ConfigError(
          `another procureiq-webhooks process (pid ${owner}) is serving ${databasePath}; stop it first, or use PostgreSQL (DATABASE_URL=postgres://…) to run several instances`,
        );
      }
      unlinkSync(lockPath);
    }
  }
  throw new ConfigError(
    `could not take the lock ${lockPath}; remove it if no procureiq-webhooks process is running`,
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
