import { existsSync } from 'node:fs';
import type { DatabaseLocation } from '../config/database-url.ts';
import { ConfigError } from '../util/errors.ts';
import type { InboxStore } from './inbox-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';

export interface OpenStoreOptions {
  /** `thread` for servers (writer thread, group commit), `inline` for short CLI commands. */
  mode?: 'thread' | 'inline';
  /** Refuse to create a database that does not exist yet (read-only CLI commands). */
  mustExist?: boolean;
}

/** Opens the store a `DATABASE_URL` names. */
export function openStore(location: DatabaseLocation, options: OpenStoreOptions = {}): InboxStore {
  if (location.kind === 'postgres') {
    throw new ConfigError(
      'DATABASE_URL: the PostgreSQL backend is not available in this version yet; use sqlite:./path/to/file.db',
    );
  }
  if (options.mustExist && location.path !== ':memory:' && !existsSync(location.path)) {
    throw new ConfigError(
      `no inbox database at ${location.path}; start the service first ("procureiq-webhooks serve"), or point --db / DATABASE_URL at it`,
    );
  }
  return new SqliteStore({ path: location.path, mode: options.mode ?? 'thread' });
}
