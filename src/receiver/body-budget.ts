/**
 * The bytes of request bodies buffered at once, across every request being read. The body must be
 * read whole before its signature can be checked, so without a cap unsigned uploads that stop just
 * short of their end could pin memory. One source address may hold at most `perSourceShare` of
 * the budget, so a flood from one address leaves room for ProcureIQ's own deliveries.
 *
 * @example
 * const budget = createBodyBudget(64 * 1024 * 1024);
 * const account = budget.open(req.socket.remoteAddress);
 * res.once('close', () => account.release());
 */
export interface BodyBudget {
  /** Bytes all requests together may hold. */
  readonly limit: number;
  /** Bytes held now. */
  readonly used: number;
  /** Opens the account of one request from `source`; release it on every way the request ends. */
  open(source: string | undefined): BodyAccount;
}

export interface BodyAccount {
  /**
   * Holds `bytes` more for this request, or answers why not ('budget' when all requests together
   * would pass the limit, 'source' when this address would pass its share); nothing is held then.
   */
  take(bytes: number): 'ok' | 'budget' | 'source';
  /** Gives back everything this request holds. Idempotent. */
  release(): void;
  readonly held: number;
}

export interface BodyBudgetOptions {
  /** The fraction of `limit` one source address may hold. @defaultValue 0.25 */
  perSourceShare?: number;
}

export function createBodyBudget(limit: number, options: BodyBudgetOptions = {}): BodyBudget {
  const sourceLimit = Math.floor(limit * (options.perSourceShare ?? 0.25));
  let used = 0;
  const bySource = new Map<string, number>();

  return {
    limit,
    get used() {
      return used;
    },
    open(source) {
      const key = source ?? 'unknown';
      let held = 0;
      return {
        get held() {
          return held;
        },
        take(bytes) {
          if (used + bytes > limit) return 'budget';
          const fromSource = bySource.get(key) ?? 0;
          if (fromSource + bytes > sourceLimit) return 'source';
          used += bytes;
          held += bytes;
          bySource.set(key, fromSource + bytes);
          return 'ok';
        },
        release() {
          if (held === 0) return;
          used -= held;
          const left = (bySource.get(key) ?? held) - held;
          if (left > 0) bySource.set(key, left);
          else bySource.delete(key);
          held = 0;
        },
      };
    },
  };
}
