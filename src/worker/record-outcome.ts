import type { Logger } from '../logging/logger.ts';
import type { AttemptResult, ClaimedEvent, InboxStore, NewJob } from '../store/inbox-store.ts';
import { StoreUnavailableError, toError } from '../util/errors.ts';
import { classify, classifyFailure, type FailureVerdict, type HandlerRun } from './attempt.ts';
import type { HandlerRegistry } from './handlers.ts';
import { retryDelay } from './retry-schedule.ts';
import type { AttemptInfo, DeadLetterInfo } from './worker.ts';

export interface OutcomeRecorderOptions {
  store: InboxStore;
  registry: HandlerRegistry;
  logger: Logger;
  random: () => number;
  onAttempt: ((info: AttemptInfo) => void) | undefined;
  onDeadLetter: ((info: DeadLetterInfo) => void) | undefined;
  /** Jobs an event gets when its handlers job ends dead or unhandled (WorkerOptions.followUpJobs). */
  followUpJobs: ((type: string) => NewJob[]) | undefined;
  /** Follow-up jobs were stored. */
  onFollowUp: (() => void) | undefined;
  /** A retry was scheduled: the event falls due again at `runAt` (epoch ms). */
  onRetryScheduled: (runAt: number) => void;
  /**
   * Runs one of the store's finishing writes. The worker's tries it again while the store is
   * unreachable: an outcome never written leaves its event `processing` until the lease expires.
   */
  write: <T>(write: () => Promise<T>) => Promise<T>;
}

/**
 * Writes what an attempt came to: processed, retry by schedule, dead-letter, or lease given back,
 * each fenced by the lease (a lost lease changes nothing), then logs it and raises its alerts.
 */
export interface OutcomeRecorder {
  /** Records a settled handler run, classified by `classify`. */
  record(event: ClaimedEvent, run: HandlerRun, eventLogger: () => Logger): Promise<void>;
  /** Records an event whose type has no handler. */
  recordUnhandled(event: ClaimedEvent, eventLogger: () => Logger): Promise<void>;
  /** Returns a leased event that never started: due again at once, its attempt granted back. */
  giveBack(event: ClaimedEvent, reason?: string): Promise<void>;
}

export function createOutcomeRecorder(options: OutcomeRecorderOptions): OutcomeRecorder {
  const { store, registry, logger, write } = options;

  /** Writes a final outcome that gives the event its follow-up jobs; true if the lease held. */
  async function endWith(
    event: ClaimedEvent,
    finish: (then: readonly NewJob[]) => Promise<boolean>,
  ): Promise<boolean> {
    const then = options.followUpJobs?.(event.type) ?? [];
    const held = await write(() => finish(then));
    if (held && then.length > 0) options.onFollowUp?.();
    return held;
  }

  function report(
    event: ClaimedEvent,
    outcome: AttemptInfo['outcome'],
    startedAt: number,
    finishedAt: number,
  ) {
    options.onAttempt?.({
      id: event.id,
      type: event.type,
      environment: event.environment,
      attempt: event.attempt,
      outcome,
      durationMs: finishedAt - startedAt,
      queuedMs: startedAt - event.receivedAt,
    });
  }

  async function recordSuccess(
    event: ClaimedEvent,
    run: HandlerRun,
    eventLogger: () => Logger,
  ): Promise<void> {
    const result: AttemptResult = {
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      outcome: 'succeeded',
    };
    if (!(await write(() => store.complete(event, result, run.statements)))) {
      eventLogger().warn(
        { outcome: 'fenced' },
        'lease was lost before completion; another attempt owns this event',
      );
      return;
    }
    if (logger.isLevelEnabled('info')) {
      eventLogger().info(
        { outcome: 'processed', durationMs: result.finishedAt - run.startedAt },
        'event processed',
      );
    }
    report(event, 'succeeded', run.startedAt, result.finishedAt);
  }

  async function recordAborted(
    event: ClaimedEvent,
    run: HandlerRun,
    error: Error,
    eventLogger: () => Logger,
  ) {
    const result: AttemptResult = {
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      outcome: 'aborted',
      errorMessage: error.message,
    };
    await write(() => store.release(event, result));
    eventLogger().warn({ outcome: 'aborted' }, 'attempt aborted by shutdown; the event will run again');
    report(event, 'aborted', run.startedAt, result.finishedAt);
  }

  async function recordFailure(
    event: ClaimedEvent,
    run: HandlerRun,
    verdict: FailureVerdict,
    eventLogger: () => Logger,
  ): Promise<void> {
    const { error, outcome } = verdict;
    const { finishedAt } = run;
    const result: AttemptResult = {
      startedAt: run.startedAt,
      finishedAt,
      outcome,
      errorMessage: error.message,
      errorStack: error.stack,
    };
    report(event, outcome, run.startedAt, finishedAt);
    if (verdict.kind === 'dead') {
      if (!(await endWith(event, (then) => store.deadLetter(event, result, then)))) return;
      eventLogger().error(
        { outcome: 'dead', err: error, attempts: event.attempt },
        verdict.reason === 'refused'
          ? 'handler refused the event (NonRetryableError); dead-lettered'
          : 'attempts exhausted; dead-lettered',
      );
      options.onDeadLetter?.({
        id: event.id,
        type: event.type,
        attempts: event.attempt,
        error: error.message,
      });
      return;
    }
    const delay = retryDelay(
      registry.retryScheduleFor(event.type),
      event.attempt,
      options.random,
      event.maxAttempts,
    );
    const runAt = finishedAt + delay;
    if (!(await write(() => store.scheduleRetry(event, result, runAt)))) return;
    eventLogger().warn(
      { outcome, err: error, retryInMs: delay, nextAttempt: event.attempt + 1 },
      'attempt failed; retry scheduled',
    );
    options.onRetryScheduled(runAt);
  }

  return {
    async record(event, run, eventLogger) {
      const verdict = classify(event, run.error);
      switch (verdict.kind) {
        case 'succeeded':
          try {
            return await recordSuccess(event, run, eventLogger);
          } catch (caught) {
            // The store could not take the outcome (an outage outlasting the lease, or shutdown):
            // the handler did not fail, so no attempt is spent on it. The lease runs out and the
            // event runs again (at least once), as the projections runner does. Counted as a
            // failure, it was retried, or dead-lettered with an alert on its last attempt.
            if (caught instanceof StoreUnavailableError) throw caught;
            // The handler's own statements failed: the event is not processed, so this is a failed attempt.
            return await recordFailure(event, run, classifyFailure(event, toError(caught)), eventLogger);
          }
        case 'aborted':
          return recordAborted(event, run, verdict.error, eventLogger);
        default:
          return recordFailure(event, run, verdict, eventLogger);
      }
    },

    async recordUnhandled(event, eventLogger) {
      const now = Date.now();
      const result: AttemptResult = { startedAt: now, finishedAt: now, outcome: 'succeeded' };
      await endWith(event, (then) => store.markUnhandled(event, result, then));
      eventLogger().info({ outcome: 'unhandled' }, 'no handler for this event type; stored as unhandled');
      report(event, 'unhandled', now, now);
    },

    async giveBack(event, reason = 'released at shutdown before it started') {
      const now = Date.now();
      await write(() =>
        store.release(event, { startedAt: now, finishedAt: now, outcome: 'aborted', errorMessage: reason }),
      );
    },
  };
}
