import { randomUUID } from 'node:crypto';
import type { Logger } from '../logging/logger.ts';
import type { IngestPriority } from '../routes/ingest-priority.ts';
import type { AttemptResult, ClaimedEvent, InboxStore, Lease } from '../store/inbox-store.ts';
import { StoreUnavailableError, toError } from '../util/errors.ts';
import { retryDelay } from '../worker/retry-schedule.ts';
import { createFinishingWrites } from '../worker/store-backoff.ts';
import { toProjectedEvent } from './parse-event.ts';
import { PROJECTIONS_CONSUMER, type ProjectionsConfig } from './registry.ts';
import { projectionStatements } from './statements.ts';

export interface ProjectionRunnerOptions {
  store: InboxStore;
  logger: Logger;
  config: ProjectionsConfig;
  /** Delays (ms) before each retry of a failed projection write: the service's retry schedule. */
  retrySchedule: readonly number[];
  /** Identifies the runner on its leases. @defaultValue `projections:<random>` */
  owner?: string;
  /** Jobs claimed at once; their writes go out together (one group commit on SQLite). @defaultValue 200 */
  batchSize?: number;
  /** @defaultValue 30000 */
  leaseMs?: number;
  /** How often to look for due jobs without a wake-up (ms). @defaultValue 1000 */
  pollMs?: number;
  /**
   * While ingest is saturated, the runner waits its turn before claiming, like a route lane (see
   * routes/ingest-priority.ts): the tables catch up once the burst passes.
   */
  priority?: IngestPriority;
  /** A projections job went dead (the event is dead-lettered): raise the alert a dead letter gets. */
  onDeadLetter?: (info: { id: string; type: string; attempts: number; error: string }) => void;
}

export interface ProjectionRunner {
  start(): void;
  /** Stops claiming and waits up to `graceMs` for the writes in flight. */
  stop(graceMs?: number): Promise<void>;
  /** Looks for due jobs now (a new event was stored). */
  wake(): void;
}

/**
 * The `projections` consumer: claims its jobs in batches and completes each with the event's
 * projection statements, so the tables change in the same transaction that marks the job
 * processed. A write that fails (a table dropped by hand) is retried on the schedule, then the job
 * is dead-lettered with the SQL error in its history. An invalid event is skipped, never projected.
 * A store that is unreachable (a database restart) is not the projection's failure: the finishing
 * write is tried again with backoff until it goes through, the runner stops, or the lease expires.
 */
export function createProjectionRunner(options: ProjectionRunnerOptions): ProjectionRunner {
  const { store, logger, config } = options;
  const owner = options.owner ?? `projections:${randomUUID()}`;
  const batchSize = options.batchSize ?? 200;
  const leaseMs = options.leaseMs ?? 30_000;
  const pollMs = options.pollMs ?? 1000;
  let running = false;
  let loop: Promise<void> | undefined;
  let wakeUp: (() => void) | undefined;
  let woken = false;
  let nextRetryAt = Number.POSITIVE_INFINITY;

  const rest = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken || !running) {
        woken = false;
        resolve();
        return;
      }
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        woken = false;
        resolve();
      }
      wakeUp = done;
    });

  // A job's finishing write is tried again while the store is unreachable; `stop` wakes those for
  // a last try.
  const finishingWrites = createFinishingWrites({
    baseDelayMs: pollMs,
    leaseMs,
    keepTrying: () => running,
    onOutage: (error, retryInMs) =>
      logger.warn({ err: error.message, retryInMs }, 'cannot record projection outcomes yet; trying again'),
  });
  const finish = finishingWrites.run;

  async function project(job: ClaimedEvent): Promise<void> {
    const lease: Lease = { id: job.id, consumer: job.consumer, attempt: job.attempt, owner: job.owner };
    const startedAt = Date.now();
    try {
      const event = toProjectedEvent(job);
      if (!event) {
        const skipped: AttemptResult = { startedAt, finishedAt: Date.now(), outcome: 'skipped' };
        await finish(() => store.markSkipped(lease, skipped));
        return;
      }
      const statements = projectionStatements(store.dialect, event, config);
      const succeeded: AttemptResult = { startedAt, finishedAt: Date.now(), outcome: 'succeeded' };
      await finish(() => store.complete(lease, succeeded, statements));
    } catch (caught) {
      if (caught instanceof StoreUnavailableError) {
        // Still unreachable as the runner stops or the lease runs out: the projection did not
        // fail, so no attempt is spent; the next claim after the lease expires runs it again.
        logger.warn(
          { eventId: job.id, err: caught.message },
          'cannot record projection outcome; the job runs again once its lease expires',
        );
        return;
      }
      const error = toError(caught);
      const finishedAt = Date.now();
      const result: AttemptResult = {
        startedAt,
        finishedAt,
        outcome: 'failed',
        errorMessage: error.message,
        errorStack: error.stack,
      };
      try {
        if (job.attempt >= job.maxAttempts) {
          if (await finish(() => store.deadLetter(lease, result))) {
            logger.error({ eventId: job.id, type: job.type, err: error.message }, 'projection dead-lettered');
            options.onDeadLetter?.({
              id: job.id,
              type: job.type,
              attempts: job.attempt,
              error: `projection: ${error.message}`,
            });
          }
        } else {
          const runAt =
            finishedAt + retryDelay(options.retrySchedule, job.attempt, Math.random, job.maxAttempts);
          await finish(() => store.scheduleRetry(lease, result, runAt));
          nextRetryAt = Math.min(nextRetryAt, runAt);
          logger.warn(
            { eventId: job.id, type: job.type, err: error.message },
            'projection failed; will retry',
          );
        }
      } catch (recordError) {
        // The lease expires and the next claim recovers the job.
        logger.warn(
          { eventId: job.id, err: toError(recordError).message },
          'cannot record projection failure',
        );
      }
    }
  }

  async function run(): Promise<void> {
    const gate = options.priority?.gate();
    while (running) {
      let claimed: ClaimedEvent[];
      if (gate) {
        await gate.turn();
        if (!running) break;
      }
      try {
        const batch = await store.claimDue({
          owner,
          consumers: [PROJECTIONS_CONSUMER],
          limit: batchSize,
          leaseMs,
        });
        for (const dead of batch.deadLettered) {
          logger.error(
            { eventId: dead.id, type: dead.type },
            'projection dead-lettered after its lease expired',
          );
          options.onDeadLetter?.({
            id: dead.id,
            type: dead.type,
            attempts: dead.attempts,
            error: 'projection: last attempt was interrupted',
          });
        }
        claimed = batch.events;
      } catch (error) {
        logger.warn({ err: toError(error).message }, 'cannot claim projection jobs');
        await rest(pollMs);
        continue;
      }
      if (claimed.length > 0) {
        // Writes are commutative, so a batch may complete in any order, all at once.
        await Promise.all(claimed.map(project));
        continue;
      }
      const now = Date.now();
      if (nextRetryAt <= now) nextRetryAt = Number.POSITIVE_INFINITY;
      await rest(Math.max(0, Math.min(pollMs, nextRetryAt - now)));
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    async stop(graceMs = 10_000) {
      running = false;
      wakeUp?.();
      finishingWrites.wakeAll();
      if (!loop) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([loop, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    },
    wake() {
      woken = true;
      wakeUp?.();
    },
  };
}
