/**
 * Counts failed admin sign-ins per source address. Once an address has failed `limit` times
 * within a window (which starts at its first failure), it is blocked until that window ends.
 * Memory stays bounded: windows that ended are dropped, and past `maxAddresses` the oldest go.
 */
export interface LoginLimiter {
  /** Milliseconds until `address` may try again, or 0 when it is not blocked. */
  blockedFor(address: string): number;
  /** Records a failure; returns how many this address has in its current window. */
  fail(address: string): number;
}

export interface LoginLimiterOptions {
  /** @defaultValue 10 */
  limit?: number;
  /** @defaultValue 60_000 */
  windowMs?: number;
  /** @defaultValue 10_000 */
  maxAddresses?: number;
  now?: () => number;
}

export function createLoginLimiter(options: LoginLimiterOptions = {}): LoginLimiter {
  const limit = options.limit ?? 10;
  const windowMs = options.windowMs ?? 60_000;
  const maxAddresses = options.maxAddresses ?? 10_000;
  const now = options.now ?? Date.now;
  const windows = new Map<string, { start: number; failures: number }>();

  const current = (address: string, at: number) => {
    const w = windows.get(address);
    if (w && at - w.start < windowMs) return w;
    if (w) windows.delete(address);
    return undefined;
  };

  return {
    blockedFor(address) {
      const at = now();
      const w = current(address, at);
      return w && w.failures >= limit ? w.start + windowMs - at : 0;
    },
    fail(address) {
      const at = now();
      const w = current(address, at);
      if (w) {
        w.failures++;
        return w.failures;
      }
      if (windows.size >= maxAddresses) {
        for (const [key, value] of windows) if (at - value.start >= windowMs) windows.delete(key);
        // Map order is insertion order: the first keys are the oldest windows.
        for (const key of windows.keys()) {
          if (windows.size < maxAddresses) break;
          windows.delete(key);
        }
      }
      windows.set(address, { start: at, failures: 1 });
      return 1;
    },
  };
}
