// The projection writes, as SQL per dialect. Every write is an idempotent, commutative upsert, so
// any order and any repetition of a history gives the same rows:
// - a stage's own columns (tracking_number, shipped_at, …) come from that stage's latest event,
//   by (created, event id), whichever order the events arrive in;
// - the "current" columns (environment, last_event_*) follow the latest event of any stage by
//   (created, stage rank, event id): on a tie in `created`, the later stage wins;
// - `status` follows the latest event that sets a status. Its version is the version of the stage
//   the stored status names, so it needs no columns of its own;
// - `updated_at` is the latest receipt time (epoch ms) of any event applied to the row.
import type { Environment, TransactionalStatement } from '../store/inbox-store.ts';
import { withoutNul } from '../util/text.ts';
import { type Dialect, type EntitySpec, type StageSpec, stageColumns, versionColumns } from './entity.ts';
import { PRODUCT_REJECTIONS } from './products.ts';
import {
  type EmailMode,
  ENTITIES,
  type ProjectionsConfig,
  projectEmail,
  projects,
  stageFor,
} from './registry.ts';

/** What a projection needs of a stored event. */
export interface ProjectedEvent {
  id: string;
  type: string;
  /** The envelope's `created` (unix seconds). */
  created: number;
  environment: Environment;
  /** When the event was stored (epoch ms). */
  receivedAt: number;
  data: Record<string, unknown>;
}

/** An event type's statements and how an event binds its values to them. */
interface Statements {
  sql: readonly string[];
  bind: (event: ProjectedEvent, emails: EmailMode) => unknown[][];
}

interface Plan extends Statements {
  /** Each statement's name (`projection:TYPE:i`), which the SQLite writer caches its text by. */
  names: readonly string[];
}

const ALL: ProjectionsConfig = { entities: ENTITIES, emails: 'keep' };

/**
 * The statements that project `event` (a valid event of a known type), to run in the transaction
 * that marks its projections job processed. Empty when its entity is not projected.
 *
 * @example
 * await store.complete(lease, result, projectionStatements(store.dialect, event, config));
 */
export function projectionStatements(
  dialect: Dialect,
  event: ProjectedEvent,
  config: ProjectionsConfig = ALL,
): TransactionalStatement[] {
  if (!projects(config, event.type)) return [];
  const plan = planFor(dialect, event.type);
  const params = plan.bind(dataWithoutNul(event), config.emails);
  const statements: TransactionalStatement[] = [];
  for (let i = 0; i < plan.sql.length; i++)
    statements.push({ sql: plan.sql[i] as string, params: params[i] ?? [], name: plan.names[i] as string });
  return statements;
}

/**
 * `event` with each text value of its `data` through `withoutNul` (U+0000 as U+FFFD): a valid event
 * carrying one (a rejection reason, say) failed its projection write at every attempt on
 * PostgreSQL, and stopped `projections rebuild` for good.
 */
export function dataWithoutNul<T extends { data: Record<string, unknown> }>(event: T): T {
  let data: Record<string, unknown> | undefined;
  for (const field in event.data) {
    const value = event.data[field];
    if (typeof value === 'string') {
      const text = withoutNul(value);
      if (text !== value) {
        data ??= { ...event.data };
        data[field] = text;
      }
    }
  }
  return data ? { ...event, data } : event;
}

// Built once per dialect and type; an event binds its values to the plan (this runs per event on
// the HTTP thread, so the bindings walk precomputed lists rather than the specs).
const plans: Record<Dialect, Map<string, Plan>> = { sqlite: new Map(), postgres: new Map() };

function planFor(dialect: Dialect, type: string): Plan {
  let plan = plans[dialect].get(type);
  if (!plan) {
    const found = stageFor(type);
    if (!found) throw new Error(`no projection for event type ${type}`);
    const statements = buildPlan(dialect, found.entity, found.stage);
    plan = { ...statements, names: statements.sql.map((_, i) => `projection:${type}:${i}`) };
    plans[dialect].set(type, plan);
  }
  return plan;
}

/** `?` for SQLite, `$1…` for PostgreSQL. */
function placeholders(dialect: Dialect, n: number, from = 1): string {
  return Array.from({ length: n }, (_, i) => (dialect === 'sqlite' ? '?' : `$${from + i}`)).join(', ');
}

export function isoSeconds(created: number): string {
  return new Date(created * 1000).toISOString();
}

/**
 * Appends the values of a stage's columns, from its event, to `out` (its data fields, its time
 * unless a data field is the time, then its version), in the order of stageColumns().
 */
type StageBinder = (out: unknown[], event: ProjectedEvent, emails: EmailMode) => void;

function stageBinder(stage: StageSpec): StageBinder {
  const fields = Object.entries(stage.columns).map(([field, { column }]) => ({
    field,
    email: column === 'email',
  }));
  const timeIsOwn = Object.values(stage.columns).some((c) => c.column === stage.timeColumn);
  return (out, event, emails) => {
    for (const { field, email } of fields) {
      const value = event.data[field] ?? null;
      out.push(email ? projectEmail(value, emails) : value);
    }
    if (!timeIsOwn) out.push(isoSeconds(event.created));
    out.push(event.id, event.created);
  };
}

/** Where an applied stage's values come from: the upsert's `excluded` row, or a joined table. */
interface Source {
  col: (column: string) => string;
  eventId: string;
  created: string;
  rank: string;
  environment: string;
  updatedAt: string;
}

/** The SET list that applies one stage's values from `src` to the stored row of `entity`. */
function applyStage(dialect: Dialect, entity: EntitySpec, stage: StageSpec, src: Source): string {
  const t = (c: string) => `${entity.table}.${c}`;
  const version = versionColumns(stage);
  const stageWins = `(${t(version.id)} IS NULL OR (${src.col(version.created)}, ${src.col(version.id)}) >= (${t(version.created)}, ${t(version.id)}))`;
  const incoming = `(${src.created}, ${src.rank}, ${src.eventId})`;
  const latest = `${incoming} >= (${t('last_event_created')}, ${t('last_stage_rank')}, ${t('last_event_id')})`;
  const greatest = dialect === 'sqlite' ? 'MAX' : 'GREATEST';
  const sets = stageColumns(stage).map(
    ({ column }) => `${column} = CASE WHEN ${stageWins} THEN ${src.col(column)} ELSE ${t(column)} END`,
  );
  sets.push(
    `environment = CASE WHEN ${latest} THEN ${src.environment} ELSE ${t('environment')} END`,
    `last_event_id = CASE WHEN ${latest} THEN ${src.eventId} ELSE ${t('last_event_id')} END`,
    `last_event_created = CASE WHEN ${latest} THEN ${src.created} ELSE ${t('last_event_created')} END`,
    `last_stage_rank = CASE WHEN ${latest} THEN ${src.rank} ELSE ${t('last_stage_rank')} END`,
    `updated_at = ${greatest}(${t('updated_at')}, ${src.updatedAt})`,
  );
  for (const { column } of Object.values(entity.current ?? {})) {
    sets.push(
      `${column} = CASE WHEN ${latest} THEN COALESCE(${src.col(column)}, ${t(column)}) ELSE COALESCE(${t(column)}, ${src.col(column)}) END`,
    );
  }
  if (entity.statuses && stage.status) {
    const byStatus = entity.stages.filter((s) => s.status !== null);
    const pick = (value: (s: StageSpec) => string) =>
      `CASE ${t('status')} ${byStatus.map((s) => `WHEN '${s.status}' THEN ${value(s)}`).join(' ')} END`;
    const statusVersion = `(${pick((s) => t(versionColumns(s).created))}, ${pick((s) => String(s.rank))}, ${pick((s) => t(versionColumns(s).id))})`;
    sets.push(
      `status = CASE WHEN ${t('status')} IS NULL OR ${incoming} >= ${statusVersion} THEN '${stage.status}' ELSE ${t('status')} END`,
    );
  }
  return sets.join(',\n    ');
}

function buildPlan(dialect: Dialect, entity: EntitySpec, stage: StageSpec): Statements {
  if (entity.table === 'procureiq_products' && stage.type === PRODUCT_REJECTIONS.stage)
    return rejectionPlan(dialect, entity, stage);
  const upsert = upsertPlan(dialect, entity, stage);
  if (entity.table === 'procureiq_products' && stage.type === PRODUCT_REJECTIONS.linkingStage) {
    // The approval links a merchant product to the listing: a rejection stored first applies now.
    const apply = `UPDATE ${entity.table} SET
    ${applyStage(dialect, entity, rejectedStage(entity), rejectionSource())}
  FROM ${PRODUCT_REJECTIONS.table} r
  WHERE ${entity.table}.${entity.key.column} = ${placeholders(dialect, 1)}
    AND r.merchant_product_id = ${entity.table}.${PRODUCT_REJECTIONS.linkColumn}`;
    return withLinkLock(dialect, {
      sql: [upsert.sql, apply],
      bind: (event, emails) => [upsert.bind(event, emails), [event.data[entity.key.field]]],
    });
  }
  return { sql: [upsert.sql], bind: (event, emails) => [upsert.bind(event, emails)] };
}

function upsertPlan(
  dialect: Dialect,
  entity: EntitySpec,
  stage: StageSpec,
): { sql: string; bind: (event: ProjectedEvent, emails: EmailMode) => unknown[] } {
  const current = Object.entries(entity.current ?? {});
  const columns = [
    entity.key.column,
    'environment',
    ...(entity.statuses ? ['status'] : []),
    'last_event_id',
    'last_event_created',
    'last_stage_rank',
    'updated_at',
    ...current.map(([, c]) => c.column),
    ...stageColumns(stage).map((c) => c.column),
  ];
  const sql = `INSERT INTO ${entity.table} (${columns.join(', ')})
  VALUES (${placeholders(dialect, columns.length)})
  ON CONFLICT (${entity.key.column}) DO UPDATE SET
    ${applyStage(dialect, entity, stage, {
      col: (c) => `excluded.${c}`,
      eventId: 'excluded.last_event_id',
      created: 'excluded.last_event_created',
      rank: 'excluded.last_stage_rank',
      environment: 'excluded.environment',
      updatedAt: 'excluded.updated_at',
    })}`;
  const statuses = entity.statuses !== null;
  const currentFields = current.map(([field]) => field);
  const bindStage = stageBinder(stage);
  const bind = (event: ProjectedEvent, emails: EmailMode): unknown[] => {
    const values: unknown[] = [event.data[entity.key.field], event.environment];
    if (statuses) values.push(stage.status);
    values.push(event.id, event.created, stage.rank, event.receivedAt);
    for (const field of currentFields) values.push(event.data[field] ?? null);
    bindStage(values, event, emails);
    return values;
  };
  return { sql, bind };
}

function rejectedStage(entity: EntitySpec): StageSpec {
  const stage = entity.stages.find((s) => s.type === PRODUCT_REJECTIONS.stage);
  if (!stage) throw new Error('products have no rejected stage');
  return stage;
}

function rejectionSource(): Source {
  return {
    col: (c) => `r.${c}`,
    eventId: 'r.rejected_event_id',
    created: 'r.rejected_event_created',
    rank: 'r.rank',
    environment: 'r.environment',
    updatedAt: 'r.updated_at',
  };
}

/**
 * `product.rejected` names a merchant product: it is kept (latest rejection wins) by merchant
 * product, then applied to every listing that merchant product is linked to.
 */
function rejectionPlan(dialect: Dialect, entity: EntitySpec, stage: StageSpec): Statements {
  const { table, key } = PRODUCT_REJECTIONS;
  const own = stageColumns(stage).map((c) => c.column);
  const columns = [key.column, 'environment', 'rank', 'updated_at', ...own];
  const t = (c: string) => `${table}.${c}`;
  const version = versionColumns(stage);
  const wins = `(${t(version.id)} IS NULL OR (excluded.${version.created}, excluded.${version.id}) >= (${t(version.created)}, ${t(version.id)}))`;
  const greatest = dialect === 'sqlite' ? 'MAX' : 'GREATEST';
  const keep = `INSERT INTO ${table} (${columns.join(', ')})
  VALUES (${placeholders(dialect, columns.length)})
  ON CONFLICT (${key.column}) DO UPDATE SET
    ${[...own, 'environment']
      .map((c) => `${c} = CASE WHEN ${wins} THEN excluded.${c} ELSE ${t(c)} END`)
      .join(',\n    ')},
    updated_at = ${greatest}(${t('updated_at')}, excluded.updated_at)`;
  const apply = `UPDATE ${entity.table} SET
    ${applyStage(dialect, entity, stage, rejectionSource())}
  FROM ${table} r
  WHERE r.${key.column} = ${placeholders(dialect, 1)}
    AND ${entity.table}.${PRODUCT_REJECTIONS.linkColumn} = r.${key.column}`;
  const bindStage = stageBinder(stage);
  return withLinkLock(dialect, {
    sql: [keep, apply],
    bind: (event, emails) => {
      const values: unknown[] = [event.data[key.field], event.environment, stage.rank, event.receivedAt];
      bindStage(values, event, emails);
      return [values, [event.data[key.field]]];
    },
  });
}

/**
 * On PostgreSQL, an approval and a rejection of one merchant product committing at the same time
 * would each miss the other's uncommitted row: both take a lock on the merchant product first.
 * (SQLite has one writer.)
 */
function withLinkLock(dialect: Dialect, plan: Statements): Statements {
  if (dialect === 'sqlite') return plan;
  return {
    sql: ['SELECT pg_advisory_xact_lock(hashtext($1))', ...plan.sql],
    bind: (event, emails) => [
      [`procureiq-webhooks:product:${String(event.data.merchantProductId)}`],
      ...plan.bind(event, emails),
    ],
  };
}
