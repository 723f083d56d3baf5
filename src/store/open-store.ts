import { existsSync } from 'node:fs';
import type { DatabaseLocation } from '../config/database-url.ts';
import type { Logger } from '../logging/logger.ts';
import { ConfigError } from '../util/errors.ts';
import type { InboxStore } from './inbox-store.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';

export interface OpenStoreOptions {
  /** `thread` for servers (writer thread, group commit), `inline` for short CLI commands. */
  mode?: 'thread' | 'inline';
  /** Refuse to create a database that does not exist yet (read-only CLI commands). */
  mustExist?: boolean;
  logger?: Logger;
  /** PostgreSQL connections in the pool. */
  poolSize?: number;
}

/** Opens the store a `DATABASE_URL` names. */
export function openStore(location: DatabaseLocation, options: OpenStoreOptions = {}): InboxStore {
  if (location.kind === 'postgres') {
    return new PostgresStore({
      connectionString: location.url,
      ...(location.schema ? { schema: location.schema } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    });
  }
  if (options.mustExist && location.path !== ':memory:' && !existsSync(location.path)) {
    throw new ConfigError(
      `no inbox database at ${location.path}; start the service first ("procureiq-webhooks serve"), or point --db / DATABASE_URL at it`,
    );
  }
  return new SqliteStore({ path: location.path, mode: options.mode ?? 'thread' });
}
