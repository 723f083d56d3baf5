/**
 * A circuit breaker for one destination.
 *
 * - `closed`: messages go out. After `failureThreshold` consecutive failures it opens.
 * - `open`: nothing goes out (`canSend()` is false) until the pause has passed; jobs wait without
 *   spending attempts. The first pause is `basePauseMs`; each re-open doubles it, up to
 *   `maxPauseMs`.
 * - `half-open`: after the pause, `canSend()` answers true exactly once: one probe. Its success
 *   closes the breaker (and resets the pause); its failure re-opens it with the doubled pause.
 *
 * While open, late results of sends started before it opened are ignored: only the probe decides.
 * In half-open, the first result recorded decides. A probe that never reached the destination (no
 * job to send, a claim the store refused, no rate-limit token, every job skipped) is handed back
 * with `releaseProbe()`, so the next send is the probe: without that, the breaker stayed half-open
 * with its one probe out, and the destination got nothing until a restart.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerStateChange {
  from: BreakerState;
  to: BreakerState;
  /** Clock milliseconds of the change. */
  at: number;
  /** When opening: how long this pause lasts. */
  pauseMs?: number | undefined;
  /** When opening: the failure that tripped it. */
  error?: string | undefined;
}

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. @defaultValue 5 */
  failureThreshold?: number;
  /** The first pause. @defaultValue 30 000 (30 s) */
  basePauseMs?: number;
  /** The longest pause. @defaultValue 600 000 (10 min) */
  maxPauseMs?: number;
  /** The clock, in milliseconds. @defaultValue `Date.now` */
  now?: () => number;
  /** Called on every state change (for alerts and metrics). */
  onStateChange?: (change: BreakerStateChange) => void;
}

export const breakerDefaults = {
  failureThreshold: 5,
  basePauseMs: 30_000,
  maxPauseMs: 600_000,
} as const;

export interface CircuitBreaker {
  readonly state: BreakerState;
  /** May a message go now? In half-open, true once (the probe), then false until its result. */
  canSend(): boolean;
  recordSuccess(): void;
  recordFailure(error?: string): void;
  /**
   * Counts the probes given out: read it right after the `canSend()` that gave one, and pass it to
   * `releaseProbe`.
   */
  readonly probeGeneration: number;
  /**
   * In half-open, hands back the probe numbered `generation` if it recorded no result: the next
   * `canSend()` is the probe. A later probe (the breaker re-opened and probed again meanwhile) is
   * not this round's to hand back.
   */
  releaseProbe(generation: number): void;
  /** While open, when (clock ms) the probe may go; otherwise null. */
  nextProbeAt(): number | null;
  /** The pause of the current (or last) opening: doubles on each re-open, resets on close. */
  readonly pauseMs: number;
}

export function createCircuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreaker {
  const failureThreshold = options.failureThreshold ?? breakerDefaults.failureThreshold;
  const basePauseMs = options.basePauseMs ?? breakerDefaults.basePauseMs;
  const maxPauseMs = options.maxPauseMs ?? breakerDefaults.maxPauseMs;
  if (!(Number.isInteger(failureThreshold) && failureThreshold >= 1)) {
    throw new RangeError('failureThreshold must be a whole number of at least 1');
  }
  if (!(basePauseMs > 0 && maxPauseMs >= basePauseMs)) {
    throw new RangeError('basePauseMs must be positive and at most maxPauseMs');
  }
  const now = options.now ?? Date.now;

  let state: BreakerState = 'closed';
  let failures = 0;
  let pauseMs = basePauseMs;
  let openUntil = 0;
  let probeOut = false;
  let probeGeneration = 0;

  const change = (to: BreakerState, extra: Partial<BreakerStateChange> = {}) => {
    const from = state;
    state = to;
    options.onStateChange?.({ from, to, at: now(), ...extra });
  };

  const open = (error: string | undefined) => {
    openUntil = now() + pauseMs;
    probeOut = false;
    change('open', { pauseMs, error });
  };

  return {
    get state() {
      return state;
    },
    get pauseMs() {
      return pauseMs;
    },
    canSend() {
      if (state === 'closed') return true;
      if (state === 'open') {
        if (now() < openUntil) return false;
        change('half-open');
      }
      if (probeOut) return false;
      probeOut = true;
      probeGeneration += 1;
      return true;
    },
    recordSuccess() {
      if (state === 'open') return;
      failures = 0;
      if (state === 'half-open') {
        pauseMs = basePauseMs;
        probeOut = false;
        change('closed');
      }
    },
    recordFailure(error) {
      if (state === 'open') return;
      if (state === 'half-open') {
        pauseMs = Math.min(maxPauseMs, pauseMs * 2);
        open(error);
        return;
      }
      failures += 1;
      if (failures >= failureThreshold) {
        failures = 0;
        open(error);
      }
    },
    get probeGeneration() {
      return probeGeneration;
    },
    releaseProbe(generation) {
      if (state === 'half-open' && generation === probeGeneration) probeOut = false;
    },
    nextProbeAt() {
      return state === 'open' ? openUntil : null;
    },
  };
}
