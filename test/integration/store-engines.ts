// The engines the worker's integration tests run against: a SQLite file in a temp dir, and a fresh
// schema on the local PostgreSQL. Each `open` gives migrated stores and a cleanup that removes them.
import { join } from 'node:path';
import type { InboxStore } from '../../src/store/inbox-store.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { dropSchema, PG_URL, tempDir, uniqueSchema } from '../helpers/index.ts';

export interface OpenedStores {
  /** Two handles on one inbox: two instances of the service, as far as the engine allows. */
  a: InboxStore;
  b: InboxStore;
  close: () => Promise<void>;
}

export interface Engine {
  name: string;
  open: () => Promise<OpenedStores>;
}

export const ENGINES: readonly Engine[] = [
  {
    // One process serves a SQLite inbox, so both "instances" share its one store.
    name: 'SQLite',
    open: async () => {
      const tmp = tempDir();
      const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
      await store.migrate();
      return {
        a: store,
        b: store,
        close: async () => {
          await store.close();
          tmp.cleanup();
        },
      };
    },
  },
  {
    name: 'PostgreSQL',
    open: async () => {
      const schema = uniqueSchema();
      const a = new PostgresStore({ connectionString: PG_URL, schema });
      const b = new PostgresStore({ connectionString: PG_URL, schema });
      await a.migrate();
      await b.migrate();
      return {
        a,
        b,
        close: async () => {
          await a.close();
          await b.close();
          await dropSchema(schema);
        },
      };
    },
  },
];
