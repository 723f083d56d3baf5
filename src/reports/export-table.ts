import { once } from 'node:events';
import type { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import pg from 'pg';
import { type DatabaseLocation, inboxSchema } from '../config/database-url.ts';
import { ENTITIES } from '../projections/registry.ts';
import { InputError } from '../util/errors.ts';
import { csvRecord } from './csv.ts';
import { byBytes } from './report.ts';

export type ExportFormat = 'csv' | 'ndjson';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['csv', 'ndjson'];

/** The projected table a name means: `procureiq_orders` or its entity name `orders`. */
export function exportableTable(name: string): { table: string; key: string } {
  const entity = ENTITIES.find((e) => e.table === name || e.name === name);
  if (!entity)
    throw new InputError(
      `no projected table "${name}"; export one of ${ENTITIES.map((e) => e.table).join(', ')}`,
    );
  return { table: entity.table, key: entity.key.column };
}

/** Rows as they come from the database, a batch at a time, with the column names first. */
interface RowSource {
  columns: string[];
  batches: AsyncIterable<unknown[][]>;
  close(): Promise<void>;
}

const BATCH = 1000;
const PG_INT8 = 20;

async function openSource(location: DatabaseLocation, table: string, key: string): Promise<RowSource> {
  // Only a table name from the registry is ever pasted into the statement.
  // Byte order on both engines (PostgreSQL's default collation may sort text otherwise).
  const select = `SELECT * FROM ${table} ORDER BY ${key} ${byBytes[location.kind]}`;
  if (location.kind === 'sqlite') {
    const db = new Database(location.path, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    const statement = db.prepare(select).raw(true);
    const columns = statement.columns().map((c) => c.name);
    async function* batches() {
      let batch: unknown[][] = [];
      for (const row of statement.iterate() as Iterable<unknown[]>) {
        batch.push(row);
        if (batch.length === BATCH) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
    }
    return { columns, batches: batches(), close: async () => void db.close() };
  }
  const schema = inboxSchema(location.schema);
  const client = new pg.Client({ connectionString: location.url, options: `-c search_path=${schema}` });
  await client.connect();
  // A server-side cursor: PostgreSQL hands the rows over a batch at a time.
  await client.query('BEGIN READ ONLY');
  await client.query(`DECLARE export_rows NO SCROLL CURSOR FOR ${select}`);
  const first = await client.query({ text: `FETCH ${BATCH} FROM export_rows`, rowMode: 'array' });
  const int8 = first.fields.map((f) => f.dataTypeID === PG_INT8);
  // bigint columns arrive as strings; their values (epoch ms, unix seconds) fit a JS number.
  const convert = (rows: unknown[][]) =>
    rows.map((row) => row.map((v, i) => (int8[i] && typeof v === 'string' ? Number(v) : v)));
  async function* batches() {
    let rows = first.rows as unknown[][];
    while (rows.length > 0) {
      yield convert(rows);
      if (rows.length < BATCH) return;
      rows = (await client.query({ text: `FETCH ${BATCH} FROM export_rows`, rowMode: 'array' })).rows;
    }
  }
  return {
    columns: first.fields.map((f) => f.name),
    batches: batches(),
    close: async () => {
      await client.query('COMMIT').catch(() => {});
      await client.end();
    },
  };
}

/**
 * Streams a projected table to `out` as CSV (a header row, RFC 4180 quoting) or NDJSON (one JSON
 * object per row), ordered by its key. Rows are read a batch at a time and written as `out`
 * drains, so a table of any size takes little memory. Returns the number of rows written.
 */
export async function exportTable(
  location: DatabaseLocation,
  name: string,
  format: ExportFormat,
  out: Writable,
): Promise<number> {
  const { table, key } = exportableTable(name);
  const source = await openSource(location, table, key);
  let failed: Error | undefined;
  const onError = (error: Error) => {
    failed = error;
  };
  out.on('error', onError);
  const write = async (chunk: string) => {
    if (failed) throw failed;
    if (!out.write(chunk)) await Promise.race([once(out, 'drain'), once(out, 'close')]);
    if (failed) throw failed;
  };
  let count = 0;
  try {
    if (format === 'csv') await write(csvRecord(source.columns));
    for await (const batch of source.batches) {
      const text =
        format === 'csv'
          ? batch.map(csvRecord).join('')
          : batch
              .map(
                (row) => `${JSON.stringify(Object.fromEntries(source.columns.map((c, i) => [c, row[i]])))}\n`,
              )
              .join('');
      await write(text);
      count += batch.length;
    }
    return count;
  } finally {
    out.off('error', onError);
    await source.close();
  }
}
