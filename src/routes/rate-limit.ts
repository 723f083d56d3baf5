/** A route's limit: at most `count` messages per `perMs` (`50/s` is `{ count: 50, perMs: 1000 }`). */
export interface RateLimit {
  count: number;
  perMs: number;
}

export interface RateLimiterOptions {
  /** The clock, in milliseconds. @defaultValue `Date.now` */
  now?: () => number;
}

/**
 * A token bucket for one route. It starts full (a burst of `count` may go at once) and refills
 * continuously at `count` per `perMs`, never above `count`.
 */
export interface RateLimiter {
  /** Takes up to `n` tokens and answers how many messages may go now (0 to `n`). */
  take(n?: number): number;
  /** When (clock milliseconds) the next message may go: now when a token is available. */
  nextAt(): number;
  /** Returns `n` tokens taken but not used (a claim found fewer jobs than it was allowed). */
  giveBack(n: number): void;
}

/**
 * Creates a token bucket. Credit is kept in integer "token·ms" units (one token is `perMs` units,
 * refilled at `count` units per ms), so a fake clock gives exact, drift-free answers.
 *
 * @example
 * const limiter = createRateLimiter({ count: 50, perMs: 1000 });
 * const n = limiter.take(batch.length); // send batch.slice(0, n); retry the rest at limiter.nextAt()
 */
export function createRateLimiter(limit: RateLimit, options: RateLimiterOptions = {}): RateLimiter {
  const { count, perMs } = limit;
  if (!(Number.isInteger(count) && count > 0) || !(Number.isInteger(perMs) && perMs > 0)) {
    throw new RangeError(`rate limit must be a positive whole count per positive whole ms`);
  }
  const now = options.now ?? Date.now;
  const capacity = count * perMs;
  let credit = capacity;
  let last = now();

  const refill = (): number => {
    const t = now();
    // A clock that steps back never takes credit away, and never grants any either.
    if (t > last) {
      credit = Math.min(capacity, credit + (t - last) * count);
      last = t;
    }
    return t;
  };

  return {
    take(n = 1) {
      refill();
      const granted = Math.max(0, Math.min(Math.floor(n), Math.floor(credit / perMs)));
      credit -= granted * perMs;
      return granted;
    },
    giveBack(n) {
      refill();
      if (n > 0) credit = Math.min(capacity, credit + Math.floor(n) * perMs);
    },
    nextAt() {
      const t = refill();
      if (credit >= perMs) return t;
      return t + Math.ceil((perMs - credit) / count);
    },
  };
}
