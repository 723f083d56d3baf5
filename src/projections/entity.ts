import type { EventType } from '../events/catalogue.ts';

/** The SQL dialect a projection statement is written in. */
export type Dialect = 'sqlite' | 'postgres';

/** SQL type of a projected column. */
export type ColumnType = 'text' | 'real';

/**
 * One lifecycle stage of an entity: the event type that reaches it, what it sets and how it ranks.
 * A stage's own columns are kept from its latest event (by `created`, then event id), whenever
 * that event arrives; they carry the stage's version in `<name>_event_created` and
 * `<name>_event_id`.
 */
export interface StageSpec {
  type: EventType;
  /** Prefixes the stage's version columns (`shipped_event_id`). */
  name: string;
  /** Breaks ties on `created`: the later stage wins. Unique within the entity. */
  rank: number;
  /** The status this stage sets, or null when it sets none (a CSAT rating). */
  status: string | null;
  /** The stage's time column (ISO 8601): from `timeField` of the data, else the envelope's `created`. */
  timeColumn: string;
  timeField?: string;
  /** Data field → column, for the stage's own fields (the entity's key field excluded). */
  columns: Readonly<Record<string, { column: string; type: ColumnType }>>;
}

/** One ProcureIQ entity projected into its own table. */
export interface EntitySpec {
  /** The name `PROJECTIONS` lists (`orders`). */
  name: string;
  table: string;
  key: { field: string; column: string };
  /** The statuses the table's CHECK allows; null when the entity has no status. */
  statuses: readonly string[] | null;
  stages: readonly StageSpec[];
  /** Fields every stage's event carries: kept from the latest event (payments' order id). */
  current?: Readonly<Record<string, { column: string; type: ColumnType }>>;
}

export const text = (column: string) => ({ column, type: 'text' as const });
export const real = (column: string) => ({ column, type: 'real' as const });

/** The version columns of a stage. */
export function versionColumns(stage: StageSpec): { created: string; id: string } {
  return { created: `${stage.name}_event_created`, id: `${stage.name}_event_id` };
}

/** Every column a stage sets, its time and version columns included, in table order. */
export function stageColumns(stage: StageSpec): { column: string; type: ColumnType | 'integer' }[] {
  const own = Object.values(stage.columns);
  const version = versionColumns(stage);
  return [
    ...own,
    ...(own.some((c) => c.column === stage.timeColumn)
      ? []
      : [{ column: stage.timeColumn, type: 'text' as const }]),
    { column: version.id, type: 'text' },
    { column: version.created, type: 'integer' },
  ];
}
