import { createHash } from 'node:crypto';
import { PROJECTIONS } from '../store/inbox-store.ts';
import { ConfigError } from '../util/errors.ts';
import { adCampaigns } from './ad-campaigns.ts';
import type { EntitySpec, StageSpec } from './entity.ts';
import { orders } from './orders.ts';
import { payments } from './payments.ts';
import { products } from './products.ts';
import { searches } from './searches.ts';
import { supportTickets } from './support-tickets.ts';
import { users } from './users.ts';

/** Every projected entity, in the order `PROJECTIONS` documents them. */
export const ENTITIES: readonly EntitySpec[] = [
  orders,
  payments,
  products,
  users,
  supportTickets,
  adCampaigns,
  searches,
];

/** The consumer whose jobs project events into the tables. */
export const PROJECTIONS_CONSUMER = PROJECTIONS;

export type EmailMode = 'keep' | 'hash' | 'drop';
export const EMAIL_MODES: readonly EmailMode[] = ['keep', 'hash', 'drop'];

/** Resolved projection settings. */
export interface ProjectionsConfig {
  /** The entities projected; empty when `PROJECTIONS=none`. */
  entities: readonly EntitySpec[];
  /** What `procureiq_users.email` holds: the address, its SHA-256 (hex, of the trimmed lower-case address), or null. */
  emails: EmailMode;
}

/** Raw settings, as the config module reads them (`PROJECTIONS`, `PROJECTION_EMAILS`). */
export interface ProjectionsOptions {
  /** `none`, `all`, or a comma-separated list of entity names. @defaultValue all */
  projections?: string | undefined;
  /** @defaultValue `keep` */
  projectionEmails?: string | undefined;
}

/** Validates the settings once, with messages a person can act on. */
export function resolveProjectionsConfig(options: ProjectionsOptions = {}): ProjectionsConfig {
  const emails = (options.projectionEmails ?? 'keep').trim().toLowerCase() || 'keep';
  if (!EMAIL_MODES.includes(emails as EmailMode))
    throw new ConfigError(`PROJECTION_EMAILS must be one of ${EMAIL_MODES.join(', ')}, not "${emails}"`);
  const list = (options.projections ?? 'all').trim().toLowerCase();
  if (list === '' || list === 'all') return { entities: ENTITIES, emails: emails as EmailMode };
  if (list === 'none') return { entities: [], emails: emails as EmailMode };
  const names = list
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const unknown = names.filter((n) => !ENTITIES.some((e) => e.name === n));
  if (unknown.length > 0)
    throw new ConfigError(
      `PROJECTIONS: unknown projection ${unknown.map((n) => `"${n}"`).join(', ')}; use none, all, or a list of ${ENTITIES.map((e) => e.name).join(', ')}`,
    );
  return { entities: ENTITIES.filter((e) => names.includes(e.name)), emails: emails as EmailMode };
}

const stageOf = new Map<string, { entity: EntitySpec; stage: StageSpec }>(
  ENTITIES.flatMap((entity) => entity.stages.map((stage) => [stage.type, { entity, stage }] as const)),
);

/** The entity and stage an event type projects to, if any. */
export function stageFor(type: string): { entity: EntitySpec; stage: StageSpec } | undefined {
  return stageOf.get(type);
}

/** Whether `config` projects events of `type`. */
export function projects(config: ProjectionsConfig, type: string): boolean {
  const found = stageOf.get(type);
  return found !== undefined && config.entities.includes(found.entity);
}

/** `user.registered`'s email as `PROJECTION_EMAILS` says. */
export function projectEmail(email: unknown, mode: EmailMode): unknown {
  if (mode === 'keep' || typeof email !== 'string') return mode === 'drop' ? null : email;
  if (mode === 'drop') return null;
  return createHash('sha256').update(email.trim().toLowerCase()).digest('hex');
}
