import Database from 'better-sqlite3';
import pg from 'pg';
import { type DatabaseLocation, inboxSchema } from '../config/database-url.ts';
import type { Dialect } from './entity.ts';
import { PRODUCT_REJECTIONS } from './products.ts';
import { stageFor } from './registry.ts';
import { dataWithoutNul } from './statements.ts';

/** Runs a read query and returns its rows. */
export type RowReader = (sql: string, params: readonly unknown[]) => Promise<Record<string, unknown>[]>;

/** A read-only handle on the projected tables. */
export interface EntityReader {
  dialect: Dialect;
  read: RowReader;
  /** The same read, synchronous, where the driver is (SQLite). */
  readNow?: (sql: string, params: readonly unknown[]) => Record<string, unknown>[];
  close(): Promise<void>;
}

/** What a handler sees of its event's entity. */
export interface EntityView {
  /** The projected row as it stands (null before the entity's first event is projected). */
  entity: Record<string, unknown> | null;
  /** True when the row already reflects an event later than this one (by created, stage, id). */
  isStale: boolean;
}

type EventKey = { id: string; type: string; created: number; data: Record<string, unknown> };

/** The query that finds `event`'s entity, and its stage; null when no table projects it. */
function entityQuery(dialect: Dialect, event: EventKey) {
  const found = stageFor(event.type);
  if (!found) return null;
  const { entity, stage } = found;
  const p = dialect === 'sqlite' ? '?' : '$1';
  const byLink = entity.table === 'procureiq_products' && stage.type === PRODUCT_REJECTIONS.stage;
  const sql = byLink
    ? `SELECT * FROM ${entity.table} WHERE ${PRODUCT_REJECTIONS.linkColumn} = ${p} ORDER BY ${entity.key.column} LIMIT 1`
    : `SELECT * FROM ${entity.table} WHERE ${entity.key.column} = ${p}`;
  const { data } = dataWithoutNul(event);
  const key = byLink ? data[PRODUCT_REJECTIONS.key.field] : data[entity.key.field];
  if (typeof key !== 'string') return null;
  return { sql, key, rank: stage.rank, table: entity.table, column: entity.key.column, byLink };
}

function toView(row: Record<string, unknown> | undefined, event: EventKey, rank: number): EntityView {
  if (!row) return { entity: null, isStale: false };
  const created = Number(row.last_event_created);
  const rowRank = Number(row.last_stage_rank);
  const id = String(row.last_event_id);
  const isStale =
    created > event.created ||
    (created === event.created && (rowRank > rank || (rowRank === rank && id > event.id)));
  return { entity: row, isStale };
}

/**
 * The projected row of `event`'s entity, and whether it already reflects a later event. Events of
 * types no table projects get `{ entity: null, isStale: false }`.
 */
export async function readEntity(
  reader: Pick<EntityReader, 'dialect' | 'read'>,
  event: EventKey,
): Promise<EntityView> {
  const query = entityQuery(reader.dialect, event);
  if (!query) return { entity: null, isStale: false };
  return toView((await reader.read(query.sql, [query.key]))[0], event, query.rank);
}

/**
 * `readEntity` for a reader whose every read is a round trip (PostgreSQL): the reads asked for in
 * one turn of the event loop (a worker starts a claimed batch's attempts together) go out as one
 * query per table, `WHERE key = ANY($1)`, rather than one each on a small pool.
 */
export function entityLoader(reader: EntityReader): (event: EventKey) => Promise<EntityView> {
  type Waiter = {
    key: string;
    event: EventKey;
    rank: number;
    resolve: (v: EntityView) => void;
    reject: (e: unknown) => void;
  };
  let byTable = new Map<string, { column: string; waiters: Waiter[] }>();
  const flush = () => {
    const tables = byTable;
    byTable = new Map();
    for (const [table, { column, waiters }] of tables) {
      const keys = [...new Set(waiters.map((w) => w.key))];
      reader.read(`SELECT * FROM ${table} WHERE ${column} = ANY($1)`, [keys]).then(
        (rows) => {
          const found = new Map(rows.map((row) => [String(row[column]), row]));
          for (const w of waiters) w.resolve(toView(found.get(w.key), w.event, w.rank));
        },
        (error: unknown) => {
          for (const w of waiters) w.reject(error);
        },
      );
    }
  };
  return (event) => {
    const query = entityQuery(reader.dialect, event);
    if (!query) return Promise.resolve({ entity: null, isStale: false });
    if (query.byLink || reader.dialect !== 'postgres') return readEntity(reader, event);
    return new Promise<EntityView>((resolve, reject) => {
      if (byTable.size === 0) setImmediate(flush);
      let group = byTable.get(query.table);
      if (!group) {
        group = { column: query.column, waiters: [] };
        byTable.set(query.table, group);
      }
      group.waiters.push({ key: query.key, event, rank: query.rank, resolve, reject });
    });
  };
}

/**
 * The same, read when first asked for, on a reader that can read at once (SQLite): a handler that
 * never looks at ctx.entity costs no query. Undefined for a reader that cannot.
 */
export function lazyEntity(reader: EntityReader, event: EventKey): EntityView | undefined {
  const readNow = reader.readNow;
  if (!readNow) return undefined;
  return new LazyEntityView(() => {
    const query = entityQuery(reader.dialect, event);
    return query
      ? toView(readNow(query.sql, [query.key])[0], event, query.rank)
      : { entity: null, isStale: false };
  });
}

/**
 * A view read when first asked for. A class, so its getters exist once, on the prototype: as an
 * object literal, each view had getters of its own, which V8 kept with the object's shape in the
 * old generation, so every view and the event it holds were promoted (see worker/attempt.ts).
 */
class LazyEntityView implements EntityView {
  readonly #read: () => EntityView;
  #view: EntityView | undefined;

  constructor(read: () => EntityView) {
    this.#read = read;
  }

  get entity(): Record<string, unknown> | null {
    return this.#resolved().entity;
  }

  get isStale(): boolean {
    return this.#resolved().isStale;
  }

  #resolved(): EntityView {
    this.#view ??= this.#read();
    return this.#view;
  }
}

/**
 * Opens a read-only handle on the inbox's database for `readEntity`: a second SQLite connection
 * (WAL lets it read while the writer commits), or a small PostgreSQL pool on the inbox's schema.
 */
export function openEntityReader(location: DatabaseLocation): EntityReader {
  if (location.kind === 'sqlite') {
    const db = new Database(location.path, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    const statements = new Map<string, Database.Statement>();
    const readNow = (sql: string, params: readonly unknown[]) => {
      let statement = statements.get(sql);
      if (!statement) {
        statement = db.prepare(sql);
        statements.set(sql, statement);
      }
      return statement.all(...params) as Record<string, unknown>[];
    };
    return {
      dialect: 'sqlite',
      readNow,
      read: async (sql, params) => readNow(sql, params),
      close: async () => {
        db.close();
      },
    };
  }
  const schema = inboxSchema(location.schema);
  const pool = new pg.Pool({ connectionString: location.url, max: 2, options: `-c search_path=${schema}` });
  pool.on('error', () => {});
  return {
    dialect: 'postgres',
    read: async (sql, params) => (await pool.query(sql, [...params])).rows as Record<string, unknown>[],
    close: () => pool.end(),
  };
}
