import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { Environment } from '../store/inbox-store.ts';
import { ConfigError } from '../util/errors.ts';
import type { Dialect, EntitySpec } from './entity.ts';
import { toProjectedEvent } from './parse-event.ts';
import { PRODUCT_REJECTIONS, products } from './products.ts';
import type { ProjectionsConfig } from './registry.ts';
import { projectionStatements } from './statements.ts';

/** The database a rebuild works on directly: the SQLite file, or the inbox's PostgreSQL schema. */
export type ProjectionDatabase =
  | { dialect: 'sqlite'; db: Database.Database }
  | { dialect: 'postgres'; client: pg.ClientBase };

export interface RebuildProgress {
  /** Events applied so far, this run and any interrupted run it resumes. */
  done: number;
  total: number;
}

export interface RebuildOptions {
  config: ProjectionsConfig;
  /** Events per transaction. @defaultValue 5000 */
  batchSize?: number;
  /** Called after each committed batch. */
  onProgress?: (progress: RebuildProgress) => void;
  /** Starts over even if an interrupted rebuild of the same tables could resume. */
  restart?: boolean;
  /** Stops after the batch in flight commits; the next call resumes from there. */
  signal?: AbortSignal;
}

export interface RebuildResult extends RebuildProgress {
  /** True when it went on from an interrupted rebuild rather than starting over. */
  resumed: boolean;
}

interface StoredRow {
  seq: number;
  id: string;
  type: string;
  environment: Environment;
  received_at: number;
  raw_body: Uint8Array | null;
}

/** The operations a rebuild needs, per engine. */
interface Session {
  dialect: Dialect;
  query<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  run(sql: string, params: readonly unknown[]): Promise<void>;
  transaction<T>(work: () => Promise<T>): Promise<T>;
}

/**
 * Recomputes the projected tables of `config.entities` from the stored events: empties them, then
 * applies every stored valid event of their types in receipt order, `batchSize` events per
 * transaction, recording the last one applied in `projection_rebuild`. Interrupted (a crash, Ctrl-C,
 * `signal`), the next call goes on from there. Because every projection write is commutative and
 * idempotent, the tables equal what live processing of the same events gives, whatever the order
 * (so receipt order, which needs no sort, is as good as `created` order), and events the live
 * runner projects meanwhile change nothing. Events whose body retention purged cannot be replayed.
 */
export async function rebuildProjections(
  target: ProjectionDatabase,
  options: RebuildOptions,
): Promise<RebuildResult> {
  const session = target.dialect === 'sqlite' ? sqliteSession(target.db) : postgresSession(target.client);
  const entities = options.config.entities;
  const batchSize = options.batchSize ?? 5000;
  const types = entities.flatMap((e) => e.stages.map((s) => s.type));
  if (types.length === 0) return { done: 0, total: 0, resumed: false };
  // What the tables hold depends on the email mode too: a rebuild resumes only with both unchanged
  // (interrupted with keep and resumed with hash, half the rows would keep raw emails).
  const key = `${entities.map((e) => e.name).join(',')};emails=${options.config.emails}`;
  const p = (i: number) => (session.dialect === 'sqlite' ? '?' : `$${i}`);
  const typeList = types.map((_, i) => p(i + 2)).join(', ');
  const eligible = `type IN (${typeList}) AND status <> 'invalid' AND raw_body IS NOT NULL`;

  const state = (
    await session.query<{ entities: string; last_seq: number }>(
      'SELECT entities, last_seq FROM projection_rebuild WHERE id = 1',
    )
  )[0];
  const resumed = state !== undefined && state.entities === key && options.restart !== true;
  if (state !== undefined && !resumed && options.restart !== true) {
    // Starting over on other tables would leave the interrupted rebuild's half-built ones behind,
    // with nothing to say they need one: they were silently abandoned.
    const names = entities.map((e) => e.name);
    const before = (state.entities.split(';')[0] ?? '').split(',').filter((n) => n !== '');
    const left = before.filter((n) => !names.includes(n));
    if (left.length > 0)
      throw new ConfigError(
        `projections rebuild: an interrupted rebuild of ${before.join(', ')} has not finished, and this one ` +
          `(${names.join(', ') || 'no tables'}) would leave ${left.join(', ')} half-built. Run it again with ` +
          `PROJECTIONS=${before.join(',')} to finish it, or pass --restart to start over anyway.`,
      );
  }
  let lastSeq = resumed ? Number(state.last_seq) : 0;
  if (!resumed) {
    await session.transaction(async () => {
      for (const table of tablesOf(entities)) await session.run(`DELETE FROM ${table}`, []);
      await session.run('DELETE FROM projection_rebuild', []);
      await session.run(
        `INSERT INTO projection_rebuild (id, entities, last_seq, started_at) VALUES (1, ${p(1)}, 0, ${p(2)})`,
        [key, Date.now()],
      );
    });
  }
  const count = async (upTo: number) =>
    Number(
      (
        await session.query<{ n: number }>(
          `SELECT COUNT(*) AS n FROM events WHERE seq <= ${p(1)} AND ${eligible}`,
          [upTo, ...types],
        )
      )[0]?.n ?? 0,
    );
  const total = await count(Number.MAX_SAFE_INTEGER);
  let done = lastSeq > 0 ? await count(lastSeq) : 0;
  options.onProgress?.({ done, total });

  // Both engines number events in receipt order: SQLite's seq is its rowid, PostgreSQL's a sequence.
  const select = `SELECT seq, id, type, environment, received_at, raw_body FROM events
    WHERE seq > ${p(1)} AND ${eligible} ORDER BY seq LIMIT ${Number(batchSize)}`;
  for (;;) {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('rebuild aborted');
    const rows = await session.query<StoredRow>(select, [lastSeq, ...types]);
    if (rows.length === 0) break;
    const last = Number(rows.at(-1)?.seq);
    await session.transaction(async () => {
      for (const row of rows) {
        const event = toProjectedEvent({
          id: row.id,
          type: row.type,
          environment: row.environment,
          receivedAt: Number(row.received_at),
          rawBody: row.raw_body,
        });
        if (!event) continue;
        for (const s of projectionStatements(session.dialect, event, options.config))
          await session.run(s.sql, s.params);
      }
      await session.run(`UPDATE projection_rebuild SET last_seq = ${p(1)} WHERE id = 1`, [last]);
    });
    lastSeq = last;
    done += rows.length;
    options.onProgress?.({ done, total: Math.max(total, done) });
  }
  await session.run('DELETE FROM projection_rebuild', []);
  return { done, total: Math.max(total, done), resumed };
}

function tablesOf(entities: readonly EntitySpec[]): string[] {
  return entities.flatMap((e) => (e === products ? [e.table, PRODUCT_REJECTIONS.table] : [e.table]));
}

function sqliteSession(db: Database.Database): Session {
  const statements = new Map<string, Database.Statement>();
  const prepared = (sql: string) => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  return {
    dialect: 'sqlite',
    query: async <T>(sql: string, params: readonly unknown[] = []) => prepared(sql).all(...params) as T[],
    run: async (sql, params) => {
      prepared(sql).run(...params);
    },
    // The work's awaits resolve at once (better-sqlite3 is synchronous), so nothing else runs on
    // this connection between BEGIN and COMMIT.
    transaction: async (work) => {
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await work();
        db.exec('COMMIT');
        return result;
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw error;
      }
    },
  };
}

function postgresSession(client: pg.ClientBase): Session {
  return {
    dialect: 'postgres',
    query: async <T>(sql: string, params: readonly unknown[] = []) =>
      (await client.query(sql, [...params])).rows as T[],
    run: async (sql, params) => {
      await client.query(sql, [...params]);
    },
    transaction: async (work) => {
      await client.query('BEGIN');
      try {
        const result = await work();
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    },
  };
}
