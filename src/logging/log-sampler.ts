import type { Logger } from './logger.ts';

export interface LogSamplerOptions {
  logger: Logger;
  /** Lines logged per source in each minute; the rest are counted. @defaultValue 5 */
  perMinute?: number;
  /** The summary line's message for `suppressed` lines; its fields are `source` and `suppressed`. */
  summary: (suppressed: number) => string;
  /** Sources tracked per minute; past it they share one `other` key. @defaultValue 1000 */
  maxSources?: number;
  /** @defaultValue Date.now */
  now?: () => number;
  /**
   * Runs `flush` when the minute is over, so a burst that stops still gets its summary. Return a
   * cancel function. @defaultValue an unref'd setTimeout
   */
  schedule?: (flush: () => void, ms: number) => () => void;
}

export interface LogSampler {
  /** True when the line about `source` should be logged now; otherwise it is counted. */
  allow(source: string | undefined): boolean;
  /** Logs the summary lines of the minute so far ("suppressed N more") and starts a new minute. */
  flush(): void;
}

const MINUTE = 60_000;

/**
 * The first few lines per source per minute, then one summary per source for the rest, so a flood
 * of refused requests cannot flood the log. Metrics count every one regardless.
 */
export function createLogSampler(options: LogSamplerOptions): LogSampler {
  const perMinute = options.perMinute ?? 5;
  const maxSources = options.maxSources ?? 1000;
  const now = options.now ?? Date.now;
  const schedule =
    options.schedule ??
    ((flush: () => void, ms: number) => {
      const timer = setTimeout(flush, ms);
      timer.unref();
      return () => clearTimeout(timer);
    });
  let windowStart = Number.NEGATIVE_INFINITY;
  const counts = new Map<string, number>();
  let cancel: (() => void) | undefined;

  function flush(): void {
    cancel?.();
    cancel = undefined;
    for (const [source, count] of counts) {
      if (count > perMinute) {
        const suppressed = count - perMinute;
        options.logger.warn({ source, suppressed }, options.summary(suppressed));
      }
    }
    counts.clear();
    windowStart = Number.NEGATIVE_INFINITY;
  }

  return {
    allow(source) {
      const at = now();
      if (at - windowStart >= MINUTE) {
        flush();
        windowStart = at;
      }
      let key = source ?? 'unknown';
      if (!counts.has(key) && counts.size >= maxSources) key = 'other';
      const count = (counts.get(key) ?? 0) + 1;
      counts.set(key, count);
      if (count === perMinute + 1 && !cancel) cancel = schedule(flush, windowStart + MINUTE - at);
      return count <= perMinute;
    },
    flush,
  };
}
