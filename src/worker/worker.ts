import { hostname } from 'node:os';
import sjson from 'secure-json-parse';
import type { AnyEvent } from '../events/catalogue.ts';
import type { Logger } from '../logging/logger.ts';
import type {
  AttemptResult,
  ClaimedEvent,
  InboxStore,
  Lease,
  TransactionalStatement,
} from '../store/inbox-store.ts';
import { HandlerTimeoutError, NonRetryableError, ProcureIqWebhooksError, toError } from '../util/errors.ts';
import type { HandlerContext, HandlerRegistry } from './handlers.ts';
import { retryDelay } from './retry-schedule.ts';

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

export interface Worker {
  /** Starts claiming. */
  start(): void;
  /** Claim now: an event was just stored. Cheap to call often; calls coalesce. */
  wake(): void;
  /**
   * Stops claiming, lets in-flight handlers finish within `graceMs`, then aborts the rest
   * through their signal and gives their leases back.
   */
  stop(graceMs?: number): Promise<void>;
  readonly owner: string;
  /** Handlers running now. */
  readonly running: number;
}

interface InFlight {
  controller: AbortController;
  lease: Lease;
  settled: Promise<void>;
}

/**
 * The background worker: claims due events from the inbox under a lease, runs their handler with
 * a timeout, and records the outcome: processed, retry by schedule, or dead-letter.
 */
export function createWorker(options: WorkerOptions): Worker {
  const { store, registry, logger } = options;
  const concurrency = options.concurrency ?? 16;
  const handlerTimeoutMs = options.handlerTimeoutMs ?? 30_000;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const leaseMs = options.leaseMs ?? handlerTimeoutMs + 60_000;
  const owner = options.owner ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const random = options.random ?? Math.random;

  const inFlight = new Map<string, InFlight>();
  let started = false;
  let stopping = false;
  let claiming = false;
  let wakeRequested = false;
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let failures = 0;

  function wakeAt(at: number): void {
    if (stopping || !started) return;
    if (timer && at >= timerAt) return;
    if (timer) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(
      () => {
        timer = undefined;
        timerAt = Number.POSITIVE_INFINITY;
        pump();
      },
      Math.max(0, at - Date.now()),
    );
    timer.unref?.();
  }

  function pump(): void {
    if (stopping || !started) return;
    if (claiming) {
      wakeRequested = true;
      return;
    }
    claiming = true;
    void claimLoop().finally(() => {
      claiming = false;
      if (wakeRequested && inFlight.size < concurrency && !stopping) pump();
    });
  }

  async function claimLoop(): Promise<void> {
    try {
      while (!stopping && inFlight.size < concurrency) {
        wakeRequested = false;
        const batch = await store.claimDue({ owner, limit: concurrency - inFlight.size, leaseMs });
        failures = 0;
        for (const dead of batch.deadLettered) {
          const info = {
            id: dead.id,
            type: dead.type,
            attempts: 0,
            error: 'last attempt was interrupted (lease expired)',
          };
          logger.error(
            { eventId: dead.id, eventType: dead.type },
            'event dead-lettered: its last attempt was interrupted',
          );
          options.onDeadLetter?.(info);
        }
        if (stopping) {
          // Claimed while shutting down: give these back untouched.
          const now = Date.now();
          for (const event of batch.events) {
            await store.release(
              { id: event.id, attempt: event.attempt },
              {
                startedAt: now,
                finishedAt: now,
                outcome: 'aborted',
                errorMessage: 'the service is shutting down',
              },
            );
          }
          return;
        }
        for (const event of batch.events) startAttempt(event);
        if (batch.events.length === 0 && !wakeRequested) break;
      }
      wakeAt(Date.now() + pollIntervalMs);
    } catch (error) {
      // The store is unreachable: back off (up to 30s) and try again, never crash.
      failures++;
      const delay = Math.min(30_000, pollIntervalMs * 2 ** Math.min(failures, 5));
      logger.error({ err: toError(error), retryInMs: delay }, 'worker could not claim events');
      wakeAt(Date.now() + delay);
    }
  }

  function startAttempt(event: ClaimedEvent): void {
    const controller = new AbortController();
    const entry: InFlight = {
      controller,
      lease: { id: event.id, attempt: event.attempt },
      settled: Promise.resolve(),
    };
    inFlight.set(event.id, entry);
    entry.settled = runAttempt(event, controller)
      .catch((error: unknown) => {
        logger.error(
          { err: toError(error), eventId: event.id },
          'could not record the outcome of an attempt',
        );
      })
      .finally(() => {
        inFlight.delete(event.id);
        pump();
      });
  }

  async function runAttempt(event: ClaimedEvent, controller: AbortController): Promise<void> {
    const startedAt = Date.now();
    const lease: Lease = { id: event.id, attempt: event.attempt };
    const log = logger.child({ eventId: event.id, eventType: event.type, attempt: event.attempt });
    const report = (outcome: AttemptInfo['outcome'], finishedAt: number) =>
      options.onAttempt?.({
        id: event.id,
        type: event.type,
        attempt: event.attempt,
        outcome,
        durationMs: finishedAt - startedAt,
        queuedMs: startedAt - event.receivedAt,
      });

    const handler = registry.resolve(event.type);
    if (!handler) {
      const result: AttemptResult = { startedAt, finishedAt: Date.now(), outcome: 'succeeded' };
      await store.markUnhandled(lease, result);
      log.info({ outcome: 'unhandled' }, 'no handler for this event type; stored as unhandled');
      report('unhandled', result.finishedAt);
      return;
    }

    const statements: TransactionalStatement[] = [];
    let error: Error | undefined;
    let timeout: NodeJS.Timeout | undefined;
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
        logger: log,
        signal: controller.signal,
        sql(statement, params = []) {
          statements.push({ sql: statement, params: [...params] });
        },
      };
      const aborted = new Promise<never>((_, reject) => {
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
      });
      aborted.catch(() => {});
      timeout = setTimeout(
        () => controller.abort(new HandlerTimeoutError(handlerTimeoutMs)),
        handlerTimeoutMs,
      );
      await Promise.race([Promise.resolve().then(() => handler(parsed, ctx)), aborted]);
    } catch (caught) {
      error = toError(caught);
    } finally {
      clearTimeout(timeout);
    }

    if (error instanceof ShutdownAbort) {
      const result: AttemptResult = {
        startedAt,
        finishedAt: Date.now(),
        outcome: 'aborted',
        errorMessage: error.message,
      };
      await store.release(lease, result);
      log.warn({ outcome: 'aborted' }, 'attempt aborted by shutdown; the event will run again');
      report('aborted', result.finishedAt);
      return;
    }

    if (!error) {
      const result: AttemptResult = { startedAt, finishedAt: Date.now(), outcome: 'succeeded' };
      try {
        const held = await store.complete(lease, result, statements);
        if (held) {
          log.info({ outcome: 'processed', durationMs: result.finishedAt - startedAt }, 'event processed');
          report('succeeded', result.finishedAt);
        } else {
          log.warn(
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
    const exhausted = event.attempt >= event.maxAttempts;
    if (error instanceof NonRetryableError || exhausted) {
      const held = await store.deadLetter(lease, result);
      if (!held) return;
      log.error(
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
    const held = await store.scheduleRetry(lease, result, runAt);
    if (!held) return;
    log.warn(
      { outcome, err: error, retryInMs: delay, nextAttempt: event.attempt + 1 },
      'attempt failed; retry scheduled',
    );
    wakeAt(runAt);
  }

  return {
    owner,
    get running() {
      return inFlight.size;
    },
    start() {
      if (started) return;
      started = true;
      pump();
    },
    wake() {
      pump();
    },
    async stop(graceMs = 10_000) {
      stopping = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      const all = () => Promise.all([...inFlight.values()].map((e) => e.settled));
      if (inFlight.size > 0) {
        let graceTimer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<void>((resolve) => {
          graceTimer = setTimeout(resolve, graceMs);
        });
        await Promise.race([all(), graceOver]);
        clearTimeout(graceTimer);
      }
      for (const entry of inFlight.values()) entry.controller.abort(new ShutdownAbort());
      await all();
      // A claim that was on its way when we stopped may still land; let it settle.
      while (claiming) await new Promise((r) => setTimeout(r, 5));
      for (const entry of inFlight.values()) entry.controller.abort(new ShutdownAbort());
      await all();
    },
  };
}
