import type Database from 'better-sqlite3';
import { loadMigrations } from '../migrations.ts';

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

/**
 * Applies pending migrations. Each runs in a `BEGIN IMMEDIATE` transaction that also writes its
 * ledger row, so two processes starting together cannot both apply it: the second waits for the
 * write lock, then sees the version recorded and skips it.
 */
export function migrate(db: Database.Database): number {
  const migrations = loadMigrations(MIGRATIONS_DIR);
  // A current database needs no write lock: a CLI command opening it waits on no writer.
  const ledger = db.prepare(
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
  );
  if (ledger.pluck().get() !== undefined) {
    const done = db.prepare('SELECT MAX(version) FROM schema_migrations').pluck().get() as number | null;
    if ((done ?? 0) >= (migrations.at(-1)?.version ?? 0)) return 0;
  }
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`);
  let applied = 0;
  for (const migration of migrations) {
    const run = db.transaction(() => {
      const done = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(migration.version);
      if (done) return false;
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        migration.version,
        migration.name,
        Date.now(),
      );
      return true;
    });
    if (run.immediate()) applied++;
  }
  return applied;
}
