import { ROUTE_PREFIX, routeNameOf } from '../routes/route-jobs.ts';
import type { DestinationType } from '../routes/types.ts';
import {
  HANDLERS,
  type InboxStore,
  JOB_STATUSES,
  type JobStatus,
  type ListFilter,
} from '../store/inbox-store.ts';
import { InputError } from '../util/errors.ts';

// What `routes list`, `replay --route` and the admin API's routes share: job counts per route,
// orphaned consumers, and which events a route replay re-sends.

export type JobCounts = Record<JobStatus, number>;

/** A route as configured (from the routes file, or the running service's routes). */
export interface ConfiguredRoute {
  name: string;
  destination: string;
  destinationType: DestinationType;
}

export interface RouteOverview<R extends ConfiguredRoute> {
  routes: (R & { consumer: string; counts: JobCounts })[];
  /**
   * Route consumers with jobs in the store that no configured route names (the route was removed
   * or renamed): their jobs stay as they are and resume if a route of that name comes back.
   */
  orphaned: { consumer: string; route: string; counts: JobCounts }[];
}

/** Job statuses a route replay can re-open (finished jobs). */
export const REPLAYABLE_JOB_STATUSES: readonly JobStatus[] = ['processed', 'skipped', 'unhandled', 'dead'];

/** Far above any real inbox, below every engine's LIMIT bound. */
const ALL = 100_000_000;

export function emptyCounts(): JobCounts {
  return Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as JobCounts;
}

/** Each configured route with its job counts by status, and the orphaned route consumers. */
export async function routeOverview<R extends ConfiguredRoute>(
  store: InboxStore,
  routes: readonly R[],
): Promise<RouteOverview<R>> {
  const byConsumer = new Map<string, JobCounts>();
  for (const row of await store.countJobs()) {
    if (row.consumer === HANDLERS) continue;
    let counts = byConsumer.get(row.consumer);
    if (!counts) {
      counts = emptyCounts();
      byConsumer.set(row.consumer, counts);
    }
    counts[row.status] += Number(row.count);
  }
  const named = new Set<string>();
  const listed = routes.map((route) => {
    const consumer = `${ROUTE_PREFIX}${route.name}`;
    named.add(consumer);
    return { ...route, consumer, counts: byConsumer.get(consumer) ?? emptyCounts() };
  });
  const orphaned = [...byConsumer.entries()]
    .filter(([consumer]) => !named.has(consumer) && routeNameOf(consumer) !== undefined)
    .map(([consumer, counts]) => ({ consumer, route: routeNameOf(consumer) ?? consumer, counts }));
  return { routes: listed, orphaned };
}

/** A job status from an operator (`--status`, a filter's `status` on a route), checked. */
export function parseJobStatus(value: string | undefined, name = 'status'): JobStatus | undefined {
  if (value === undefined || value === '') return undefined;
  if ((JOB_STATUSES as readonly string[]).includes(value)) return value as JobStatus;
  throw new InputError(`${name} "${value}" is not a job status; use one of ${JOB_STATUSES.join(', ')}`);
}

/**
 * The events a replay on one route re-sends: those with a finished job on that route (of
 * `jobStatus` when given) that also match the event filter (type, environment, since, until, text;
 * the filter's own `status` is ignored, the job's status is what counts on a route). Only events
 * that have a job on the route are named, so a replay never gives an event a route it never
 * matched. Most recently changed first.
 */
export async function routeReplayTargets(
  store: InboxStore,
  consumer: string,
  jobStatus: JobStatus | undefined,
  filter: ListFilter,
): Promise<{ id: string; type: string }[]> {
  if (jobStatus !== undefined && !REPLAYABLE_JOB_STATUSES.includes(jobStatus)) return [];
  const jobs = (await store.listJobs({ consumer, status: jobStatus, limit: ALL })).filter((j) =>
    REPLAYABLE_JOB_STATUSES.includes(j.status),
  );
  const { status: _status, limit: _limit, before: _before, ...eventFilter } = filter;
  const narrowed = Object.values(eventFilter).some((v) => v !== undefined);
  if (!narrowed) return jobs.map((j) => ({ id: j.eventId, type: j.type }));
  const wanted = new Set<string>();
  let before: string | undefined;
  for (;;) {
    const page = await store.list({ ...eventFilter, limit: 500, before });
    for (const e of page) wanted.add(e.id);
    if (page.length < 500) break;
    before = page.at(-1)?.id;
  }
  return jobs.filter((j) => wanted.has(j.eventId)).map((j) => ({ id: j.eventId, type: j.type }));
}
