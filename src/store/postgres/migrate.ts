import type pg from 'pg';
import { loadMigrations } from '../migrations.ts';

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

export const LATEST_MIGRATION = loadMigrations(MIGRATIONS_DIR).at(-1)?.version ?? 0;

/**
 * Applies pending migrations in one transaction that first takes an advisory lock for this
 * schema: instances starting together queue on the lock, and each later one finds the ledger
 * rows written and applies nothing.
 */
export async function migrate(client: pg.ClientBase, schema: string): Promise<number> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
      `procureiq-webhooks:migrate:${schema}`,
    ]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    let applied = 0;
    for (const migration of loadMigrations(MIGRATIONS_DIR)) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied++;
    }
    await client.query('COMMIT');
    return applied;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/** The highest applied migration version (0 when none). */
export async function currentVersion(client: pg.ClientBase | pg.Pool): Promise<number> {
  const exists = await client.query(
    "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'",
  );
  if (exists.rowCount === 0) return 0;
  const { rows } = await client.query<{ v: number | null }>(
    'SELECT MAX(version) AS v FROM schema_migrations',
  );
  return rows[0]?.v ?? 0;
}
