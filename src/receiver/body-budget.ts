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
  const shared: SharedBudget = {
    limit,
    sourceLimit: Math.floor(limit * (options.perSourceShare ?? 0.25)),
    used: 0,
    bySource: new Map(),
  };
  return {
    limit,
    get used() {
      return shared.used;
    },
    open: (source) => new Account(shared, source ?? 'unknown'),
  };
}

/** What every request's account shares. */
interface SharedBudget {
  readonly limit: number;
  readonly sourceLimit: number;
  used: number;
  readonly bySource: Map<string, number>;
}

/**
 * One request's account, opened per request: a class, so its getter and methods exist once, on
 * the prototype. An object literal with a getter of its own per request kept every request's
 * account with its shape in V8's old generation, to be promoted (see worker/attempt.ts).
 */
class Account implements BodyAccount {
  readonly #shared: SharedBudget;
  readonly #key: string;
  #held = 0;

  constructor(shared: SharedBudget, key: string) {
    this.#shared = shared;
    this.#key = key;
  }

  get held(): number {
    return this.#held;
  }

  take(bytes: number): 'ok' | 'budget' | 'source' {
    const budget = this.#shared;
    if (budget.used + bytes > budget.limit) return 'budget';
    const fromSource = budget.bySource.get(this.#key) ?? 0;
    if (fromSource + bytes > budget.sourceLimit) return 'source';
    budget.used += bytes;
    this.#held += bytes;
    budget.bySource.set(this.#key, fromSource + bytes);
    return 'ok';
  }

  release(): void {
    const held = this.#held;
    if (held === 0) return;
    const budget = this.#shared;
    budget.used -= held;
    const left = (budget.bySource.get(this.#key) ?? held) - held;
    if (left > 0) budget.bySource.set(this.#key, left);
    else budget.bySource.delete(this.#key);
    this.#held = 0;
  }
}
