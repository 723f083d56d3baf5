import type { NewEvent, NewJob } from '../store/inbox-store.ts';
import { PROJECTIONS_CONSUMER, type ProjectionsConfig, projects } from './registry.ts';

/**
 * The projections job to store with a new event: one for a valid event of a known type whose
 * entity is projected, none otherwise. The receiver adds it to `NewEvent.jobs` (and stores the
 * event `pending`, since a consumer now wants it).
 */
export function projectionJobs(
  event: Pick<NewEvent, 'type' | 'status'>,
  config: ProjectionsConfig,
  maxAttempts: number,
): NewJob[] {
  if (event.status === 'invalid' || !projects(config, event.type)) return [];
  return [{ consumer: PROJECTIONS_CONSUMER, maxAttempts }];
}
