import { StoreUnavailableError, toError } from '../util/errors.ts';

/** The longest wait before trying the store again while it is unreachable. */
export const MAX_STORE_BACKOFF_MS = 30_000;

/** The wait after `failures` failed tries in a row: `baseMs` doubled per failure (at most ×32), at most 30 s. */
export function storeBackoff(baseMs: number, failures: number): number {
  return Math.min(MAX_STORE_BACKOFF_MS, baseMs * 2 ** Math.min(failures, 5));
}

export interface FinishingWritesOptions {
  /** The wait after the first failure; it doubles with each one after. */
  baseDelayMs: number;
  /** The lease of the job being finished: once it has surely expired, another claim recovers the job. */
  leaseMs: number;
  /** False once the owner is stopping: the write is tried once more (`wakeAll`), then given up. */
  keepTrying: () => boolean;
  /**
   * The first write refused since one went through: once per outage, however many writes wait
   * (a batch may hold hundreds), for a single warning.
   */
  onOutage?: (error: Error, retryInMs: number) => void;
}

/**
 * The finishing writes of one worker or runner (complete, retry, dead-letter, release).
 */
export interface FinishingWrites {
  /**
   * Runs `write`, trying it again with backoff while it fails with `StoreUnavailableError` (a
   * database restart), until the owner stops or the lease has surely expired; any other error, or
   * the last one, is thrown. Finishing writes are fenced by the lease, so a late one changes
   * nothing. Dropped at the first failure, the job stayed `processing` until its lease expired,
   * long after the store was back.
   */
  run<T>(write: () => Promise<T>): Promise<T>;
  /** Wakes every write waiting to try again, for a last try (the owner is stopping). */
  wakeAll(): void;
}

export function createFinishingWrites(options: FinishingWritesOptions): FinishingWrites {
  /** Writes waiting to try again, each with the function that wakes it. */
  const waiting = new Set<() => void>();
  /** A write was refused since the last one that went through. */
  let inOutage = false;

  function pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        waiting.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      waiting.add(wake);
    });
  }

  return {
    async run(write) {
      const giveUpAt = Date.now() + options.leaseMs;
      for (let failures = 0; ; failures++) {
        try {
          const written = await write();
          inOutage = false;
          return written;
        } catch (error) {
          const delay = storeBackoff(options.baseDelayMs, failures);
          const retry =
            error instanceof StoreUnavailableError && options.keepTrying() && Date.now() + delay < giveUpAt;
          if (!retry) throw error;
          if (!inOutage) {
            inOutage = true;
            options.onOutage?.(toError(error), delay);
          }
          await pause(delay);
        }
      }
    },
    wakeAll() {
      for (const wake of [...waiting]) wake();
    },
  };
}
