import { hostname } from 'node:os';
import { type AnyEvent, eventTypes } from '../events/catalogue.ts';
import type { Logger } from '../logging/logger.ts';
import type { EntityView } from '../projections/read-entity.ts';
import type {
  AttemptResult,
  ClaimBatch,
  ClaimedEvent,
  InboxStore,
  LeaseRequest,
  NewJob,
  TransactionalStatement,
} from '../store/inbox-store.ts';
import { ShutdownAbort, toError } from '../util/errors.ts';
import { lazyEventLogger, startAttempt } from './attempt.ts';
import type { HandlerRegistry } from './handlers.ts';
import { createOutcomeRecorder } from './record-outcome.ts';
import { createFinishingWrites, storeBackoff } from './store-backoff.ts';
import { createWakeTimer } from './wake-timer.ts';

/**
 * A worker's life, in order: `created` (not claiming yet), `active` (claiming and running
 * handlers), `stopping` (no new work; running handlers drain, the rest is given back), `stopped`.
 */
export const WORKER_STATES = {
  created: 'created',
  active: 'active',
  stopping: 'stopping',
  stopped: 'stopped',
} as const;
export type WorkerState = (typeof WORKER_STATES)[keyof typeof WORKER_STATES];

export interface DeadLetterInfo {
  id: string;
  type: string;
  attempts: number;
  error: string;
}

export interface AttemptInfo {
  id: string;
  type: string;
  environment: string;
  attempt: number;
  outcome: AttemptResult['outcome'] | 'unhandled';
  durationMs: number;
  /** From storing the delivery to the handler starting. */
  queuedMs: number;
}

export interface WorkerOptions {
  store: InboxStore;
  registry: HandlerRegistry;
  logger: Logger;
  /** Gives handlers their event's projected entity (`ctx.entity`, `ctx.isStale`). */
  readEntity?: (event: AnyEvent) => EntityView | Promise<EntityView>;
  /** The live tables' writes for a handled event, committed with its handler's success. */
  projectionStatements?: (event: ClaimedEvent, parsed: AnyEvent) => TransactionalStatement[];
  /**
   * Jobs an event of a type gets when its handlers job ends without a success (dead, also when a
   * claim finds its last attempt's lease expired, or no handler now): its projections job, so the
   * live tables still follow it. `onFollowUp` runs once they are stored.
   */
  followUpJobs?: (type: string) => NewJob[];
  onFollowUp?: () => void;
  /** Handlers running at once. @defaultValue 16 */
  concurrency?: number;
  /** @defaultValue 30s */
  handlerTimeoutMs?: number;
  /** Safety-net poll for due retries and events made due by another process. @defaultValue 1s */
  pollIntervalMs?: number;
  /** How long a claim holds before others may take the event over. @defaultValue handler timeout + 60s */
  leaseMs?: number;
  /** Recorded on leases and attempts. @defaultValue host:pid:random */
  owner?: string;
  onDeadLetter?: (info: DeadLetterInfo) => void;
  onAttempt?: (info: AttemptInfo) => void;
  random?: () => number;
}

/**
 * How the receiver hands new events to a local worker: it reserves room, asks the store to lease
 * the event in the same write that stores it, then passes the leased event on.
 */
export interface Dispatcher {
  /** A lease request if the worker has room for one more event now, else undefined. */
  reserve(): LeaseRequest | undefined;
  /** The reserved event was stored and leased: run it. */
  accept(event: ClaimedEvent): void;
  /** The reservation was not used (duplicate, or the write failed). */
  cancel(): void;
  /** A pending event was stored without a lease: claim soon. */
  wake(): void;
}

export interface Worker extends Dispatcher {
  /** Starts claiming. */
  start(): void;
  /**
   * Stops claiming, lets running handlers finish within `graceMs`, then aborts the rest through
   * their signal and gives their leases back.
   */
  stop(graceMs?: number): Promise<void>;
  readonly owner: string;
  /** Handlers running now. */
  readonly running: number;
  /** Where the worker is in its life: created, active, stopping, stopped. */
  readonly state: WorkerState;
}

/**
 * The background worker: leases due events from the inbox, runs their handler with a timeout,
 * and records the outcome: processed, retry by schedule, or dead-letter. Each attempt goes
 * run (`startAttempt`) -> classify (`classify`) -> record (`createOutcomeRecorder`).
 *
 * It holds up to `concurrency + max(concurrency, 64)` leased events: `concurrency` running, the
 * rest waiting in order. New events are leased as they are stored (no claim round trip) while
 * nothing else is due; once due events are known to wait (retries, a backlog), new events are
 * stored pending and queue behind them, so nothing starves.
 */
export function createWorker(options: WorkerOptions): Worker {
  const { store, registry, logger } = options;
  const concurrency = options.concurrency ?? 16;
  // Leased events held at once: the running ones plus a queue of ready ones.
  const capacity = concurrency + Math.max(concurrency, 64);
  const handlerTimeoutMs = options.handlerTimeoutMs ?? 30_000;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const leaseMs = options.leaseMs ?? handlerTimeoutMs + 60_000;
  const owner = options.owner ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const leaseRequest: LeaseRequest = { owner, leaseMs };
  /**
   * A leased event waits in the queue at most this long: started later, its handler could still be
   * running when the lease runs out (leases are not renewed), and another claim would take the
   * event and run it again. Past it, the event is given back (due at once, its attempt granted
   * back) and claimed afresh. With slow handlers and a full queue (concurrency 1 and 2 s handlers:
   * 64 queued took over two minutes) events ran twice, and were dead-lettered as interrupted.
   */
  const slackMs = leaseMs - handlerTimeoutMs;
  const maxQueueMs = Math.max(0, slackMs - Math.min(10_000, slackMs / 2));
  /** When each queued event was leased (as this process saw it). */
  const queuedAt = new WeakMap<ClaimedEvent, number>();

  let state: WorkerState = WORKER_STATES.created;
  /** Leased events waiting for a free slot, in order. */
  const waiting: ClaimedEvent[] = [];
  /** Running attempts, by event id, with the function that aborts each. */
  const running = new Map<string, (reason: Error) => void>();
  /** Every attempt and give-back whose outcome is not written yet. */
  const unsettled = new Set<Promise<void>>();
  /** Leases promised to the receiver for events it is storing now. */
  let reservedLeases = 0;
  let claiming = false;
  /** Some events may be due in the store: claim before taking new events straight from the receiver. */
  let mayHaveDue = false;
  let fillQueued = false;
  let claimFailures = 0;
  /** After a failed claim, no claim before this time (epoch ms), whoever asks for one. */
  let claimBackoffUntil = 0;
  let stopped: Promise<void> | undefined;
  // An outcome is written again while the store is unreachable; `stop` wakes those for a last try.
  const finishingWrites = createFinishingWrites({
    baseDelayMs: pollIntervalMs,
    leaseMs,
    keepTrying: () => state === WORKER_STATES.active,
    // Once per outage, like the projections runner and the route lanes: a batch of handlers
    // finishing while the database restarts used to log a warning per outcome per retry.
    onOutage: (error, retryInMs) =>
      logger.warn({ err: error.message, retryInMs }, 'cannot record attempt outcomes yet; trying again'),
  });

  const leasesHeld = () => running.size + waiting.length + reservedLeases;

  // The follow-up jobs of every known type, worked out once: for the outcomes the recorder writes,
  // and for claims that dead-letter an interrupted last attempt.
  const deadLetterJobs = options.followUpJobs
    ? Object.fromEntries(
        eventTypes
          .map((type): [string, NewJob[]] => [type, options.followUpJobs?.(type) ?? []])
          .filter(([, jobs]) => jobs.length > 0),
      )
    : undefined;

  const recorder = createOutcomeRecorder({
    store,
    registry,
    logger,
    random: options.random ?? Math.random,
    onAttempt: options.onAttempt,
    onDeadLetter: options.onDeadLetter,
    followUpJobs: deadLetterJobs && ((type) => deadLetterJobs[type] ?? []),
    onFollowUp: options.onFollowUp,
    onRetryScheduled: (runAt) => wakeTimer.dueAt(runAt),
    write: (write) => finishingWrites.run(write),
  });

  const wakeTimer = createWakeTimer(() => {
    mayHaveDue = true;
    fillSlots();
  });

  /** Starts waiting events while slots are free, then claims more if some may be due. */
  function fillSlots(): void {
    if (state !== WORKER_STATES.active) return;
    startWaiting();
    if (claiming || !mayHaveDue || leasesHeld() >= capacity) return;
    // The store is refusing claims: the wake timer claims when the backoff is over. A refused
    // delivery or a failed claim asking at once made hundreds of claims a second in an outage.
    if (Date.now() < claimBackoffUntil) return;
    claiming = true;
    void claimDueEvents().finally(() => {
      claiming = false;
      fillSlots();
    });
  }

  function startWaiting(): void {
    const now = Date.now();
    while (running.size < concurrency && waiting.length > 0) {
      const event = waiting.shift() as ClaimedEvent;
      if (now - (queuedAt.get(event) ?? now) > maxQueueMs) {
        // Too late to start on this lease (see maxQueueMs): claimed again, on a fresh one.
        giveBack(event, 'given back: it waited in the queue until its lease was too short to run on');
        mayHaveDue = true;
        continue;
      }
      track(runEvent(event), event.id);
    }
  }

  /** Queues leased events to start in order. */
  function enqueue(events: readonly ClaimedEvent[]): void {
    const now = Date.now();
    for (const event of events) {
      queuedAt.set(event, now);
      waiting.push(event);
    }
  }

  /** Fills slots after the current turn, so a delivery's 200 is written before any handler code runs. */
  function fillSlotsSoon(): void {
    if (fillQueued) return;
    fillQueued = true;
    setImmediate(() => {
      fillQueued = false;
      fillSlots();
    });
  }

  async function claimDueEvents(): Promise<void> {
    try {
      while (state === WORKER_STATES.active && mayHaveDue && leasesHeld() < capacity) {
        mayHaveDue = false;
        const limit = capacity - leasesHeld();
        const batch = await store.claimDue({ owner, limit, leaseMs, deadLetterJobs });
        storeIsBack();
        reportRecoveredDeadLetters(batch.deadLettered);
        if (batch.deadLettered.some((dead) => deadLetterJobs?.[dead.type]?.length)) options.onFollowUp?.();
        if (state !== WORKER_STATES.active) {
          for (const event of batch.events) giveBack(event);
          return;
        }
        enqueue(batch.events);
        startWaiting();
        // A full batch means more may be due.
        if (batch.events.length === limit) mayHaveDue = true;
      }
      wakeTimer.pollAt(Date.now() + pollIntervalMs);
    } catch (error) {
      // The store is unreachable: back off and try again; never crash.
      claimFailures++;
      mayHaveDue = true;
      const delay = storeBackoff(pollIntervalMs, claimFailures);
      logger.error({ err: toError(error), retryInMs: delay }, 'worker could not claim events');
      claimBackoffUntil = Date.now() + delay;
      wakeTimer.pollAt(claimBackoffUntil);
    }
  }

  /** A claim or an insert went through: claims need not wait out the backoff any more. */
  function storeIsBack(): void {
    claimFailures = 0;
    claimBackoffUntil = 0;
  }

  /** Events whose expired lease used up their last attempt: the claim dead-lettered them. */
  function reportRecoveredDeadLetters(deadLettered: ClaimBatch['deadLettered']): void {
    for (const dead of deadLettered) {
      logger.error(
        { eventId: dead.id, eventType: dead.type },
        'event dead-lettered: its last attempt was interrupted',
      );
      options.onDeadLetter?.({
        id: dead.id,
        type: dead.type,
        attempts: dead.attempts,
        error: 'last attempt was interrupted',
      });
    }
  }

  /** Runs one leased event's attempt and records its outcome. */
  async function runEvent(event: ClaimedEvent): Promise<void> {
    const eventLogger = lazyEventLogger(logger, event);
    const handler = registry.resolve(event.type);
    if (!handler) return recorder.recordUnhandled(event, eventLogger);
    const attempt = startAttempt(event, handler, {
      timeoutMs: handlerTimeoutMs,
      eventLogger,
      readEntity: options.readEntity,
      projectionStatements: options.projectionStatements,
    });
    running.set(event.id, attempt.abort);
    const run = await attempt.settled;
    // The slot frees when the handler settles; the outcome is written meanwhile.
    running.delete(event.id);
    fillSlots();
    await recorder.record(event, run, eventLogger);
  }

  /** Returns an event that never started (shutdown, or too late on its lease): due again at once. */
  function giveBack(event: ClaimedEvent, reason?: string): void {
    track(recorder.giveBack(event, reason), event.id);
  }

  /** Keeps `work` until it settles, so `stop` can wait for it; a failed write is logged, never thrown. */
  function track(work: Promise<void>, eventId: string): void {
    const settled = work.catch((error: unknown) => {
      logger.error({ err: toError(error), eventId }, 'could not record the outcome of an attempt');
    });
    unsettled.add(settled);
    void settled.finally(() => unsettled.delete(settled));
  }

  /** Waits up to `graceMs` for running handlers to finish on their own. */
  async function drain(graceMs: number): Promise<void> {
    if (running.size === 0) return;
    let graceTimer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      graceTimer = setTimeout(resolve, graceMs);
    });
    const drained = (async () => {
      while (running.size > 0) await Promise.race([...unsettled]);
    })();
    await Promise.race([drained, graceOver]);
    clearTimeout(graceTimer);
  }

  /** Waits for claims and inserts on their way, then for every outcome to be written. */
  async function settleAll(): Promise<void> {
    while (claiming || reservedLeases > 0 || unsettled.size > 0) {
      if (unsettled.size > 0) await Promise.all([...unsettled]);
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  return {
    owner,
    get running() {
      return running.size;
    },
    get state() {
      return state;
    },
    start() {
      if (state !== WORKER_STATES.created) return;
      state = WORKER_STATES.active;
      mayHaveDue = true;
      fillSlots();
    },
    reserve() {
      // While due events wait to be claimed, new ones queue behind them instead of jumping ahead.
      if (state !== WORKER_STATES.active || mayHaveDue || leasesHeld() >= capacity) return undefined;
      reservedLeases++;
      return leaseRequest;
    },
    accept(event) {
      reservedLeases--;
      storeIsBack();
      if (state !== WORKER_STATES.active) return giveBack(event);
      enqueue([event]);
      fillSlotsSoon();
    },
    cancel() {
      reservedLeases--;
      fillSlots();
    },
    wake() {
      // Called for an event just stored (or another process's signal): the store is back.
      storeIsBack();
      mayHaveDue = true;
      fillSlots();
    },
    stop(graceMs = 10_000) {
      stopped ??= (async () => {
        state = WORKER_STATES.stopping;
        wakeTimer.stop();
        finishingWrites.wakeAll();
        for (const event of waiting.splice(0)) giveBack(event);
        await drain(graceMs);
        for (const abort of running.values()) abort(new ShutdownAbort());
        await settleAll();
        state = WORKER_STATES.stopped;
      })();
      return stopped;
    },
  };
}
