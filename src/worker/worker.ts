import { hostname } from 'node:os';
import sjson from 'secure-json-parse';
import type { AnyEvent } from '../events/catalogue.ts';
import type { Logger } from '../logging/logger.ts';
import type {
  AttemptResult,
  ClaimedEvent,
  InboxStore,
  LeaseRequest,
  TransactionalStatement,
} from '../store/inbox-store.ts';
import { HandlerTimeoutError, NonRetryableError, ProcureIqWebhooksError, toError } from '../util/errors.ts';
import type { HandlerContext, HandlerRegistry } from './handlers.ts';
import { retryDelay } from './retry-schedule.ts';
import { createWakeTimer } from './wake-timer.ts';

/** Raised inside an attempt's signal when the service shuts down. */
class ShutdownAbort extends ProcureIqWebhooksError {
  constructor() {
    super('shutdown', 'the service is shutting down');
  }
}

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
}

/**
 * The background worker: leases due events from the inbox, runs their handler with a timeout,
 * and records the outcome: processed, retry by schedule, or dead-letter.
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
  const random = options.random ?? Math.random;
  const leaseRequest: LeaseRequest = { owner, leaseMs };

  const waiting: ClaimedEvent[] = [];
  /** Running attempts, by event id, with the function that aborts each. */
  const running = new Map<string, (reason: Error) => void>();
  const settling = new Set<Promise<void>>();
  let reserved = 0;
  let started = false;
  let stopping = false;
  let claiming = false;
  let dueHint = false;
  let pumpScheduled = false;
  let failures = 0;

  const held = () => running.size + waiting.length + reserved;

  const wakeTimer = createWakeTimer(() => {
    dueHint = true;
    pump();
  });

  /** Starts waiting events while there is room, then claims more if some may be due. */
  function pump(): void {
    if (!started) return;
    while (!stopping && running.size < concurrency && waiting.length > 0)
      begin(waiting.shift() as ClaimedEvent);
    if (stopping || claiming || !dueHint || held() >= capacity) return;
    claiming = true;
    void claimLoop().finally(() => {
      claiming = false;
      pump();
    });
  }

  async function claimLoop(): Promise<void> {
    try {
      while (!stopping && dueHint && held() < capacity) {
        dueHint = false;
        const limit = capacity - held();
        const batch = await store.claimDue({ owner, limit, leaseMs });
        failures = 0;
        for (const dead of batch.deadLettered) {
          logger.error(
            { eventId: dead.id, eventType: dead.type },
            'event dead-lettered: its last attempt was interrupted',
          );
          options.onDeadLetter?.({
            id: dead.id,
            type: dead.type,
            attempts: 0,
            error: 'last attempt was interrupted',
          });
        }
        if (stopping) {
          for (const event of batch.events) giveBack(event, Date.now());
          return;
        }
        waiting.push(...batch.events);
        while (running.size < concurrency && waiting.length > 0) begin(waiting.shift() as ClaimedEvent);
        // A full batch means more may be due.
        if (batch.events.length === limit) dueHint = true;
      }
      wakeTimer.pollAt(Date.now() + pollIntervalMs);
    } catch (error) {
      // The store is unreachable: back off (up to 30s) and try again; never crash.
      failures++;
      dueHint = true;
      const delay = Math.min(30_000, pollIntervalMs * 2 ** Math.min(failures, 5));
      logger.error({ err: toError(error), retryInMs: delay }, 'worker could not claim events');
      wakeTimer.pollAt(Date.now() + delay);
    }
  }

  function begin(event: ClaimedEvent): void {
    track(
      runAttempt(
        event,
        (abort) => running.set(event.id, abort),
        () => {
          // The slot frees when the handler settles; the outcome is written meanwhile.
          running.delete(event.id);
          pump();
        },
      ),
      event.id,
    );
  }

  function track(p: Promise<void>, eventId: string): void {
    const settled = p.catch((error: unknown) => {
      logger.error({ err: toError(error), eventId }, 'could not record the outcome of an attempt');
    });
    settling.add(settled);
    void settled.finally(() => settling.delete(settled));
  }

  /** Returns an event that never started (shutdown): due again at once, budget untouched. */
  function giveBack(event: ClaimedEvent, now: number): void {
    track(
      store
        .release(event, {
          startedAt: now,
          finishedAt: now,
          outcome: 'aborted',
          errorMessage: 'released at shutdown before it started',
        })
        .then(() => {}),
      event.id,
    );
  }

  async function runAttempt(
    event: ClaimedEvent,
    started: (abort: (reason: Error) => void) => void,
    done: () => void,
  ): Promise<void> {
    const startedAt = Date.now();
    let log: Logger | undefined;
    // A child logger costs more than a no-op handler: make it only when someone logs.
    const eventLogger = () => {
      log ??= logger.child({ eventId: event.id, eventType: event.type, attempt: event.attempt });
      return log;
    };
    const report = (outcome: AttemptInfo['outcome'], finishedAt: number) =>
      options.onAttempt?.({
        id: event.id,
        type: event.type,
        environment: event.environment,
        attempt: event.attempt,
        outcome,
        durationMs: finishedAt - startedAt,
        queuedMs: startedAt - event.receivedAt,
      });

    const handler = registry.resolve(event.type);
    if (!handler) {
      done();
      const result: AttemptResult = { startedAt, finishedAt: Date.now(), outcome: 'succeeded' };
      await store.markUnhandled(event, result);
      eventLogger().info({ outcome: 'unhandled' }, 'no handler for this event type; stored as unhandled');
      report('unhandled', result.finishedAt);
      return;
    }

    const statements: TransactionalStatement[] = [];
    let error: Error | undefined;
    let timeout: NodeJS.Timeout | undefined;
    // The AbortController is made only if the handler asks for ctx.signal; the race below is what
    // ends an attempt on timeout or shutdown either way.
    let controller: AbortController | undefined;
    let abortedWith: Error | undefined;
    let rejectRace: (reason: Error) => void = () => {};
    const abort = (reason: Error) => {
      if (abortedWith) return;
      abortedWith = reason;
      controller?.abort(reason);
      rejectRace(reason);
    };
    started(abort);
    try {
      const payload = Buffer.from(event.rawBody.buffer, event.rawBody.byteOffset, event.rawBody.byteLength);
      const parsed = sjson.parse(payload.toString('utf8'), undefined, {
        protoAction: 'remove',
        constructorAction: 'remove',
      }) as AnyEvent;
      const ctx: HandlerContext = {
        idempotencyKey: event.id,
        eventId: event.id,
        attempt: event.attempt,
        maxAttempts: event.maxAttempts,
        environment: event.environment,
        deliveryId: event.deliveryId,
        receivedAt: event.receivedAt,
        get logger() {
          return eventLogger();
        },
        get signal() {
          if (!controller) {
            controller = new AbortController();
            if (abortedWith) controller.abort(abortedWith);
          }
          return controller.signal;
        },
        sql(statement, params = []) {
          statements.push({ sql: statement, params: [...params] });
        },
      };
      const aborted = new Promise<never>((_, reject) => {
        rejectRace = reject;
      });
      timeout = setTimeout(() => abort(new HandlerTimeoutError(handlerTimeoutMs)), handlerTimeoutMs);
      await Promise.race([Promise.resolve().then(() => handler(parsed, ctx)), aborted]);
    } catch (caught) {
      error = toError(caught);
    } finally {
      clearTimeout(timeout);
      // Nothing listens to the race after this point: a late abort must not surface as unhandled.
      rejectRace = () => {};
      done();
    }

    if (error instanceof ShutdownAbort) {
      const result: AttemptResult = {
        startedAt,
        finishedAt: Date.now(),
        outcome: 'aborted',
        errorMessage: error.message,
      };
      await store.release(event, result);
      eventLogger().warn({ outcome: 'aborted' }, 'attempt aborted by shutdown; the event will run again');
      report('aborted', result.finishedAt);
      return;
    }

    if (!error) {
      const result: AttemptResult = { startedAt, finishedAt: Date.now(), outcome: 'succeeded' };
      try {
        if (await store.complete(event, result, statements)) {
          if (logger.isLevelEnabled('info')) {
            eventLogger().info(
              { outcome: 'processed', durationMs: result.finishedAt - startedAt },
              'event processed',
            );
          }
          report('succeeded', result.finishedAt);
        } else {
          eventLogger().warn(
            { outcome: 'fenced' },
            'lease was lost before completion; another attempt owns this event',
          );
        }
        return;
      } catch (caught) {
        // The handler's own statements failed: the event is not processed, so this is a failed attempt.
        error = toError(caught);
      }
    }

    const finishedAt = Date.now();
    const outcome = error instanceof HandlerTimeoutError ? 'timed_out' : 'failed';
    const result: AttemptResult = {
      startedAt,
      finishedAt,
      outcome,
      errorMessage: error.message,
      errorStack: error.stack,
    };
    report(outcome, finishedAt);
    if (error instanceof NonRetryableError || event.attempt >= event.maxAttempts) {
      if (!(await store.deadLetter(event, result))) return;
      eventLogger().error(
        { outcome: 'dead', err: error, attempts: event.attempt },
        error instanceof NonRetryableError
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
    const delay = retryDelay(registry.retryScheduleFor(event.type), event.attempt, random);
    const runAt = finishedAt + delay;
    if (!(await store.scheduleRetry(event, result, runAt))) return;
    eventLogger().warn(
      { outcome, err: error, retryInMs: delay, nextAttempt: event.attempt + 1 },
      'attempt failed; retry scheduled',
    );
    wakeTimer.dueAt(runAt);
  }

  return {
    owner,
    get running() {
      return running.size;
    },
    start() {
      if (started) return;
      started = true;
      dueHint = true;
      pump();
    },
    reserve() {
      // While due events wait to be claimed, new ones queue behind them instead of jumping ahead.
      if (!started || stopping || dueHint || held() >= capacity) return undefined;
      reserved++;
      return leaseRequest;
    },
    accept(event) {
      reserved--;
      if (stopping) return giveBack(event, Date.now());
      waiting.push(event);
      // Start it after the current turn, so the delivery's 200 is written before any handler code runs.
      if (!pumpScheduled) {
        pumpScheduled = true;
        setImmediate(() => {
          pumpScheduled = false;
          pump();
        });
      }
    },
    cancel() {
      reserved--;
      pump();
    },
    wake() {
      dueHint = true;
      pump();
    },
    async stop(graceMs = 10_000) {
      stopping = true;
      wakeTimer.stop();
      const now = Date.now();
      for (const event of waiting.splice(0)) giveBack(event, now);
      if (running.size > 0) {
        let graceTimer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<void>((resolve) => {
          graceTimer = setTimeout(resolve, graceMs);
        });
        const drained = (async () => {
          while (running.size > 0) await Promise.race([...settling]);
        })();
        await Promise.race([drained, graceOver]);
        clearTimeout(graceTimer);
      }
      for (const abort of running.values()) abort(new ShutdownAbort());
      // Wait for claims and inserts on their way, then for every outcome to be written.
      while (claiming || reserved > 0 || settling.size > 0) {
        if (settling.size > 0) await Promise.all([...settling]);
        else await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}
