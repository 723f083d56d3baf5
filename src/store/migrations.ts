import { readdirSync, readFileSync } from 'node:fs';

/** One numbered SQL migration: `NNNN_name.sql`. Released migrations are never edited. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Reads an engine's `migrations/NNNN_name.sql` files, in order. */
export function loadMigrations(dir: URL): Migration[] {
  return readdirSync(dir)
    .map((file) => ({ file, match: FILE.exec(file) }))
    .filter((entry) => entry.match !== null)
    .map(({ file, match }) => ({
      version: Number(match?.[1]),
      name: match?.[2] ?? file,
      sql: readFileSync(new URL(file, dir), 'utf8'),
    }))
    .sort((a, b) => a.version - b.version);
}
