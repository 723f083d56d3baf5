import { type EventLoopUtilization, performance } from 'node:perf_hooks';

/**
 * Acknowledging webhooks comes before forwarding them. While ingest is saturated, route lanes claim
 * at most one batch per `maxWaitMs` each, so a burst is acknowledged at nearly the speed of ingest
 * alone, and the routes catch up as soon as it passes. Below saturation nothing waits, and routes
 * deliver as events arrive.
 *
 * Saturated means: over the last window, the receiver took at least `minDeliveries` deliveries (so
 * a lane draining a backlog alone never slows itself down), and either the event loop was busy at
 * least `busyAbove` of the time, or deliveries queued for the store: on average `queueAbove` or
 * more of them were waiting for their write to commit (Little's law: the sum of their waits over
 * the window's length). Below saturation a commit takes a few of them at a time; when the store
 * (SQLite's one writer, or PostgreSQL) is what limits ingest, they pile up.
 */
export interface IngestPriority {
  /** The receiver answered a delivery; `storeMs` is how long its write took (0 when none). */
  delivery(storeMs: number): void;
  /** True while ingest is saturated (as of the last window). */
  readonly busy: boolean;
  /** A turn-taker for one lane: see `LaneGate`. */
  gate(): LaneGate;
  /** Stops sampling and lets every waiting turn go. */
  stop(): void;
}

export interface LaneGate {
  /**
   * Resolves when the lane may claim: at once unless ingest is busy; while it is, once
   * `maxWaitMs` has passed since this lane's last turn, or as soon as ingest is no longer busy.
   */
  turn(): Promise<void>;
}

export interface IngestPriorityOptions {
  /** Longest a lane waits for its turn while ingest is busy. 0 turns the priority off. */
  maxWaitMs: number;
  /** @defaultValue 100 */
  windowMs?: number;
  /** @defaultValue 0.9 */
  busyAbove?: number;
  /** Deliveries per window, at least, for the loop to count as busy with ingest. @defaultValue 20 */
  minDeliveries?: number;
  /** Deliveries waiting for the store, on average, that count as saturated. @defaultValue 16 */
  queueAbove?: number;
}

export function createIngestPriority(options: IngestPriorityOptions): IngestPriority {
  const windowMs = options.windowMs ?? 100;
  const busyAbove = options.busyAbove ?? 0.9;
  const minDeliveries = options.minDeliveries ?? 20;
  const queueAbove = options.queueAbove ?? 16;
  let deliveries = 0;
  let storeMs = 0;
  let busy = false;
  let stopped = options.maxWaitMs <= 0;
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  let lastAt = performance.now();
  /** Turns waiting for the next window. */
  let waiting: (() => void)[] = [];

  const sampler = stopped
    ? undefined
    : setInterval(() => {
        const now = performance.eventLoopUtilization();
        const utilization = performance.eventLoopUtilization(now, last).utilization;
        last = now;
        // The timer fires late when the loop is busy: divide by the window as it really was.
        const at = performance.now();
        const queued = storeMs / Math.max(1, at - lastAt);
        lastAt = at;
        busy = deliveries >= minDeliveries && (utilization >= busyAbove || queued >= queueAbove);
        deliveries = 0;
        storeMs = 0;
        const woken = waiting;
        waiting = [];
        sampler?.unref();
        for (const wake of woken) wake();
      }, windowMs);
  sampler?.unref();

  const nextWindow = () =>
    new Promise<void>((resolve) => {
      // A turn waiting keeps the process alive, as the timer it waits for would.
      if (waiting.length === 0) sampler?.ref();
      waiting.push(resolve);
    });

  return {
    delivery(ms) {
      deliveries++;
      storeMs += ms;
    },
    get busy() {
      return busy && !stopped;
    },
    gate() {
      let lastTurn = 0;
      let queue: Promise<void> = Promise.resolve();
      const take = async () => {
        while (busy && !stopped && Date.now() < lastTurn + options.maxWaitMs) await nextWindow();
        lastTurn = Date.now();
      };
      return {
        turn() {
          // One turn at a time per lane, so its rounds in flight share the one turn per wait.
          queue = queue.then(take);
          return queue;
        },
      };
    },
    stop() {
      stopped = true;
      clearInterval(sampler);
      const woken = waiting;
      waiting = [];
      for (const wake of woken) wake();
    },
  };
}
