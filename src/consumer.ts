import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { parseDatabaseUrl } from './config/database-url.ts';
import { defaults } from './config/defaults.ts';
import { parseDuration, parseDurationList } from './config/duration.ts';
import type { EventType } from './events/catalogue.ts';
import { createLogger, type Logger } from './logging/logger.ts';
import { createAlerter } from './ops/alerts.ts';
import { expressMiddleware } from './receiver/express.ts';
import { createNodeServer } from './receiver/node-server.ts';
import { createReceiver, type DeliveryOutcome, type Receiver } from './receiver/receiver.ts';
import { webHandler } from './receiver/web.ts';
import type { InboxStore } from './store/inbox-store.ts';
import { openStore } from './store/open-store.ts';
import { acquireInstanceLock } from './store/sqlite/instance-lock.ts';
import { ConfigError } from './util/errors.ts';
import {
  type AnyHandler,
  type Handler,
  type HandlerMap,
  type HandlerOptions,
  HandlerRegistry,
} from './worker/handlers.ts';
import { type AttemptInfo, createWorker, type Worker } from './worker/worker.ts';

/** A duration: milliseconds, or a string with a unit (`'30s'`). */
export type Duration = number | string;

export interface ConsumerOptions {
  /** The signing secret(s). Several verify side by side while a secret is being rotated. */
  secret: string | readonly string[];
  /** @defaultValue `sqlite:./data/procureiq-webhooks.db` */
  database?: string;
  /** A store of your own, instead of `database`. */
  store?: InboxStore;
  /** @defaultValue a pino logger at `info` */
  logger?: Logger;
  /** Handlers running at once. @defaultValue 16 */
  concurrency?: number;
  /** @defaultValue `'30s'` */
  handlerTimeout?: Duration;
  /** Delays between attempts; N delays allow 1 + N attempts. @defaultValue `['30s', '2m', '10m']` */
  retrySchedule?: readonly Duration[];
  /** @defaultValue `'1s'` */
  pollInterval?: Duration;
  /** @defaultValue `'10s'` */
  shutdownGrace?: Duration;
  /** @defaultValue 1 MiB */
  maxBodyBytes?: number;
  /** POST alerts (dead letters, signature-failure bursts) here, Slack-compatible. */
  alertWebhookUrl?: string;
  /** @defaultValue 10 */
  signatureFailuresPerMinute?: number;
  /** Handlers to register at once, like a handlers file's default export. */
  handlers?: HandlerMap;
  /** Run the background worker in this process. @defaultValue true */
  worker?: boolean;
  /** Apply pending migrations at start. (The embedded SQLite store always does.) @defaultValue true */
  migrate?: boolean;
  /** PostgreSQL connections in the pool. @defaultValue 10 */
  poolSize?: number;
  /**
   * Where SQLite commits run: `thread` (a writer thread; fsyncs never block the event loop) or
   * `inline` (on the event loop, still grouped per turn). Kept for comparison. @defaultValue 'thread'
   */
  sqliteWriter?: 'thread' | 'inline';
  /** Called for every delivery (metrics). */
  onDelivery?: (outcome: DeliveryOutcome) => void;
  /** Called for every finished attempt (metrics, benchmarks). */
  onAttempt?: (info: AttemptInfo) => void;
}

export interface ListenOptions {
  /** @defaultValue 3000; 0 picks a free port */
  port?: number;
  host?: string | undefined;
}

/**
 * A ProcureIQ webhook consumer: receiver, durable inbox and background worker.
 *
 * @example
 * const consumer = createConsumer({ secret: process.env.WEBHOOK_SECRET! });
 * consumer.on('order.shipped', async (event, ctx) => {
 *   await notifyCustomer(event.data.orderId, event.data.trackingNumber, { idempotencyKey: ctx.idempotencyKey });
 * });
 * await consumer.listen({ port: 3000 });
 */
export interface Consumer {
  /** Handles one event type; `event.data` is typed by the catalogue. */
  on<T extends EventType>(type: T, handler: Handler<T>, options?: HandlerOptions): Consumer;
  /** Handles every type without a handler of its own, including types ProcureIQ adds later. */
  onAny(handler: AnyHandler): Consumer;
  /** Registers a handler map (`{ 'order.created': fn, '*': fn }`). */
  use(handlers: HandlerMap): Consumer;
  /** Opens the store, recovers interrupted attempts and starts the worker. Idempotent. */
  start(): Promise<void>;
  /** Runs the standalone server: `POST /webhooks/procureiq`, `/healthz`, `/readyz`. */
  listen(options?: ListenOptions): Promise<{ port: number; server: Server }>;
  /** Express middleware for the webhook route; mount it before `express.json()`. */
  middleware(): ReturnType<typeof expressMiddleware>;
  /** A web-standard `(Request) => Promise<Response>` handler. */
  fetchHandler(): (request: Request) => Promise<Response>;
  /** Graceful shutdown: refuse new deliveries (503), drain handlers, close the store. */
  close(): Promise<void>;
  readonly store: InboxStore;
  readonly receiver: Receiver;
  readonly logger: Logger;
}

export function createConsumer(options: ConsumerOptions): Consumer {
  const logger = options.logger ?? createLogger();
  const secrets = (typeof options.secret === 'string' ? [options.secret] : [...options.secret]).filter(
    (s) => s !== '',
  );
  if (secrets.length === 0)
    throw new ConfigError('createConsumer: `secret` must hold at least one non-empty secret');
  const toMs = (value: Duration, name: string) =>
    typeof value === 'number' ? value : parseDuration(value, name);
  const schedule = (options.retrySchedule ?? parseDurationList(defaults.retrySchedule, 'retrySchedule')).map(
    (d) => toMs(d, 'retrySchedule'),
  );
  const registry = new HandlerRegistry(schedule, (d) => toMs(d, 'retrySchedule'));
  const shutdownGraceMs = toMs(options.shutdownGrace ?? defaults.shutdownGrace, 'shutdownGrace');

  let releaseLock: (() => void) | undefined;
  let store: InboxStore;
  if (options.store) {
    store = options.store;
  } else {
    const location = parseDatabaseUrl(options.database ?? defaults.databaseUrl);
    if (location.kind === 'sqlite' && location.path !== ':memory:') {
      // Taken before the store opens, so a second instance fails fast with a clear message.
      mkdirSync(dirname(location.path), { recursive: true });
      releaseLock = acquireInstanceLock(location.path);
    }
    store = openStore(location, {
      logger,
      mode: options.sqliteWriter ?? 'thread',
      ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    });
  }

  const alerter = createAlerter({
    logger,
    webhookUrl: options.alertWebhookUrl,
    signatureFailuresPerMinute: options.signatureFailuresPerMinute ?? defaults.signatureAlertThreshold,
  });
  const runWorker = options.worker ?? true;
  const worker: Worker | undefined = runWorker
    ? createWorker({
        store,
        registry,
        logger,
        concurrency: options.concurrency ?? defaults.workerConcurrency,
        handlerTimeoutMs: toMs(options.handlerTimeout ?? defaults.handlerTimeout, 'handlerTimeout'),
        pollIntervalMs: toMs(options.pollInterval ?? defaults.pollInterval, 'pollInterval'),
        onDeadLetter: (info) => alerter.deadLetter(info),
        ...(options.onAttempt ? { onAttempt: options.onAttempt } : {}),
      })
    : undefined;

  let accepting = true;
  let startPromise: Promise<void> | undefined;
  let unsubscribe: (() => Promise<void>) | undefined;
  let server: Server | undefined;
  let closed: Promise<void> | undefined;

  const receiver = createReceiver({
    secrets,
    store,
    logger,
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    // Decided at insert time: events no handler wants never cost the worker a claim.
    initialStatus: (type) => (registry.has(type) || !runWorker ? 'pending' : 'unhandled'),
    maxAttemptsFor: (type) => registry.maxAttemptsFor(type),
    ...(worker ? { dispatcher: worker } : {}),
    onOutcome: (outcome) => {
      if (outcome.outcome === 'bad_signature') alerter.signatureFailure(outcome.remoteAddress);
      options.onDelivery?.(outcome);
    },
    isAccepting: () => accepting,
  });
  // Adapters may be called before start(): the first delivery waits for the store to open.
  const startedReceiver: Receiver = {
    maxBodyBytes: receiver.maxBodyBytes,
    tooLarge: () => receiver.tooLarge(),
    handle: async (delivery) => {
      await consumer.start();
      return receiver.handle(delivery);
    },
  };

  const consumer: Consumer = {
    store,
    receiver: startedReceiver,
    logger,
    on(type, handler, handlerOptions) {
      registry.on(type, handler, handlerOptions);
      return consumer;
    },
    onAny(handler) {
      registry.onAny(handler);
      return consumer;
    },
    use(handlers) {
      for (const [type, handler] of Object.entries(handlers)) {
        if (type === '*') registry.onAny(handler as AnyHandler);
        else registry.on(type as EventType, handler as Handler<EventType>);
      }
      return consumer;
    },
    start() {
      startPromise ??= (async () => {
        if (options.migrate !== false || store.exclusive) await store.migrate();
        else await store.ping();
        if (store.exclusive) {
          // One process serves this store, so every lease in it is left over from a process
          // that died: recover those attempts now rather than after their lease expires.
          const orphans = await store.expireLeases();
          if (orphans > 0)
            logger.warn({ events: orphans }, 'recovering attempts interrupted by a previous crash');
        }
        // Other instances (or an operator's replay) make events due here too: wake on their signal.
        if (worker && store.subscribe) unsubscribe = store.subscribe(() => worker.wake());
        worker?.start();
      })();
      return startPromise;
    },
    async listen(listenOptions = {}) {
      await consumer.start();
      const s = createNodeServer({
        routes: { '/webhooks/procureiq': receiver },
        logger,
        readiness: () => store.ping(),
      });
      server = s;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(listenOptions.port ?? defaults.port, listenOptions.host, () => {
          s.off('error', reject);
          resolve();
        });
      });
      return { port: (s.address() as AddressInfo).port, server: s };
    },
    middleware: () => expressMiddleware(startedReceiver),
    fetchHandler: () => webHandler(startedReceiver),
    close() {
      closed ??= (async () => {
        accepting = false;
        const serverClosed = server
          ? new Promise<void>((resolve) => server?.close(() => resolve()))
          : Promise.resolve();
        server?.closeIdleConnections();
        if (startPromise) await startPromise.catch(() => {});
        await worker?.stop(shutdownGraceMs);
        await unsubscribe?.();
        await alerter.flush();
        await store.close();
        releaseLock?.();
        server?.closeAllConnections();
        await serverClosed;
      })();
      return closed;
    },
  };
  if (options.handlers) consumer.use(options.handlers);
  return consumer;
}
