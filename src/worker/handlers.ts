import type { AnyEvent, EventOf, EventType } from '../events/catalogue.ts';
import type { Logger } from '../logging/logger.ts';
import type { Environment } from '../store/inbox-store.ts';

/**
 * What a handler gets besides the event. `entity`, `isStale`, `logger` and `signal` are getters on
 * the context's prototype (each is worked out only when read): read them from `ctx`, as a copy
 * made with `{ ...ctx }` leaves them out.
 */
export interface HandlerContext {
  /** The event id. Pass it as the idempotency key of downstream calls: an attempt may run again. */
  readonly idempotencyKey: string;
  readonly eventId: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly environment: Environment;
  readonly deliveryId: string | null;
  /** When the delivery was stored (epoch ms). */
  readonly receivedAt: number;
  /** A logger bound to this event and attempt. */
  readonly logger: Logger;
  /** Fires when the attempt times out, or when the service shuts down. Pass it to `fetch` and friends. */
  readonly signal: AbortSignal;
  /**
   * Queues a SQL statement to commit in the same transaction that marks the event processed (the
   * inbox's own database). If the attempt fails, or another worker took the event over, the
   * statement is not applied: exactly-once effects for database-side work.
   * @example ctx.sql('INSERT INTO shipments (order_id, tracking) VALUES (?, ?)', [event.data.orderId, event.data.trackingNumber])
   */
  sql(statement: string, params?: readonly unknown[]): void;
  /**
   * The projected row of this event's entity (`procureiq_orders`, …) as it stood when the attempt
   * started; null when projections are off, the type has no table, or the entity is new. Also
   * always null when the consumer cannot open a second, read-only connection to the tables: on
   * `sqlite::memory:`, and when `createConsumer` was given a `store` object rather than a
   * `database` URL.
   */
  readonly entity: Record<string, unknown> | null;
  /**
   * True when that row already reflects a later event (by created, then lifecycle stage): e.g.
   * skip the "order confirmed" email for an order already shipped.
   */
  readonly isStale: boolean;
}

/** A handler for one event type: `event.data` is typed by the catalogue. */
export type Handler<T extends EventType> = (event: EventOf<T>, ctx: HandlerContext) => Promise<void> | void;
/** A handler for any event, including types the catalogue does not know yet. */
export type AnyHandler = (event: AnyEvent, ctx: HandlerContext) => Promise<void> | void;

/** The default export of a handlers file: handlers by event type, `'*'` for any other type. */
export type HandlerMap = { [T in EventType]?: Handler<T> } & { '*'?: AnyHandler };

export interface HandlerOptions {
  /** Delays between attempts for this type (e.g. `['5s', '1m']`), overriding the consumer's. */
  retrySchedule?: readonly (string | number)[];
}

interface Registration {
  handler: AnyHandler;
  retryScheduleMs: number[] | undefined;
}

/** Handlers by type, and the retry schedule that applies to each type. */
export class HandlerRegistry {
  private readonly byType = new Map<string, Registration>();
  private fallback: AnyHandler | undefined;

  constructor(
    private readonly defaultScheduleMs: readonly number[],
    private readonly parseDelay: (value: string | number) => number,
  ) {}

  on<T extends EventType>(type: T, handler: Handler<T>, options: HandlerOptions = {}): void {
    if (this.byType.has(type)) throw new Error(`a handler for "${type}" is already registered`);
    this.byType.set(type, {
      handler: handler as unknown as AnyHandler,
      retryScheduleMs: options.retrySchedule?.map((d) => this.parseDelay(d)),
    });
  }

  onAny(handler: AnyHandler): void {
    if (this.fallback) throw new Error('an onAny handler is already registered');
    this.fallback = handler;
  }

  /** The handler for a type: its own, else the catch-all, else none. */
  resolve(type: string): AnyHandler | undefined {
    return this.byType.get(type)?.handler ?? this.fallback;
  }

  has(type: string): boolean {
    return this.byType.has(type) || this.fallback !== undefined;
  }

  retryScheduleFor(type: string): readonly number[] {
    return this.byType.get(type)?.retryScheduleMs ?? this.defaultScheduleMs;
  }

  /** 1 + the number of retries: a schedule of N delays allows 1 + N attempts. */
  maxAttemptsFor(type: string): number {
    return 1 + this.retryScheduleFor(type).length;
  }
}
