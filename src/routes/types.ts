/**
 * Routes: declarative delivery of stored events to the user's own systems (HTTP, RabbitMQ, Redis
 * Streams, BullMQ, NATS JetStream). A route matches events and names a destination; each matching
 * (event, route) becomes its own job with its own attempts, retry schedule and dead letter.
 *
 * These are the resolved (validated) shapes. `config.ts` turns a routes file (YAML or JSON) into
 * them; `destinations/` turns a destination into a client.
 */
import type { Environment } from '../store/inbox-store.ts';

export const DESTINATION_TYPES = ['http', 'rabbitmq', 'redis-stream', 'bullmq', 'nats'] as const;
export type DestinationType = (typeof DESTINATION_TYPES)[number];

export interface HttpDestinationConfig {
  type: 'http';
  name: string;
  url: string;
  /** Signs what is forwarded (`x-procureiq-signature: sha256=…`) when set. */
  secret?: string | undefined;
  /** @defaultValue 10s */
  timeoutMs: number;
  headers: Record<string, string>;
}

export interface RabbitMqDestinationConfig {
  type: 'rabbitmq';
  name: string;
  url: string;
  /** A durable queue, declared if missing; or `exchange` with a templated `routingKey`. */
  queue?: string | undefined;
  exchange?: string | undefined;
  /** Template: `{type}`, `{environment}` are replaced. @defaultValue `{type}` */
  routingKey?: string | undefined;
}

export interface RedisStreamDestinationConfig {
  type: 'redis-stream';
  name: string;
  url: string;
  stream: string;
  /** Approximate trimming (`MAXLEN ~`). */
  maxLength?: number | undefined;
}

export interface BullMqDestinationConfig {
  type: 'bullmq';
  name: string;
  url: string;
  queue: string;
}

export interface NatsDestinationConfig {
  type: 'nats';
  name: string;
  url: string;
  /** Template: `{type}`, `{environment}` are replaced. A JetStream stream must cover it. */
  subject: string;
}

export type DestinationConfig =
  | HttpDestinationConfig
  | RabbitMqDestinationConfig
  | RedisStreamDestinationConfig
  | BullMqDestinationConfig
  | NatsDestinationConfig;

/** A JSON filter over the envelope: dotted paths and `$eq $ne $in $nin $gt $gte $lt $lte $exists $startsWith $endsWith $and $or $not`. */
export type WhereFilter = Record<string, unknown>;

export interface RouteConfig {
  name: string;
  match: {
    /** Globs over the event type; `*` is every type, `order.*` a family. */
    types: string[];
    environment?: Environment | undefined;
    where?: WhereFilter | undefined;
  };
  /** The destination's name. */
  to: string;
  /** Delays between attempts; the service's RETRY_SCHEDULE when omitted. */
  retryScheduleMs?: number[] | undefined;
  /** A dotted path into the envelope: jobs with the same key go out in order. */
  orderBy?: string | undefined;
  rateLimit?: { count: number; perMs: number } | undefined;
  /** Absolute path of a transform module. */
  transform?: string | undefined;
}

export interface RoutesConfig {
  destinations: Map<string, DestinationConfig>;
  routes: RouteConfig[];
}

/** One event on its way to a destination. */
export interface OutboundMessage {
  eventId: string;
  type: string;
  environment: Environment;
  /** The envelope's `created` (unix seconds). */
  created: number;
  /** Stable per (event, route), so a receiver can dedupe re-sends. */
  deliveryId: string;
  /** The exact bytes to send: the original raw body, or a transform's output. */
  body: Buffer;
  contentType: string;
  /** Unix seconds, sent as `x-procureiq-timestamp`. */
  timestamp: number;
}

/** What happened to one message of a batch. */
export type SendOutcome =
  | { ok: true }
  | {
      ok: false;
      error: string;
      /** The destination asked to wait this long (HTTP 429/503 `Retry-After`). */
      retryAfterMs?: number | undefined;
      /**
       * The message never left: the batch reached `SendOptions.startBy` first. Its job is given back
       * without spending an attempt.
       */
      notSent?: boolean | undefined;
    };

export interface SendOptions {
  /**
   * Clock milliseconds after which no message of the batch may start sending (each answers
   * `notSent`), so a batch sent a few at a time never outlives its jobs' leases. A destination that
   * sends the whole batch at once may ignore it.
   */
  startBy?: number | undefined;
}

/**
 * One destination client. `send` delivers a batch and answers one outcome per message, in order;
 * a message counts as delivered only when the destination has confirmed it (broker confirm,
 * JetStream ack, 2xx). `check` connects and verifies the target exists; `close` releases
 * connections. A new destination type is one module implementing this.
 */
export interface Destination {
  readonly type: DestinationType;
  readonly name: string;
  send(batch: readonly OutboundMessage[], options?: SendOptions): Promise<SendOutcome[]>;
  check(): Promise<void>;
  close(): Promise<void>;
}
