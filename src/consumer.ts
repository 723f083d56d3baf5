import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { type DatabaseLocation, parseDatabaseUrl } from './config/database-url.ts';
import { defaults } from './config/defaults.ts';
import { parseDuration, parseDurationList, parseSize } from './config/duration.ts';
import type { AnyEvent, EventType } from './events/catalogue.ts';
import { createLogger, type Logger } from './logging/logger.ts';
import { createAdminHandler } from './ops/admin-api.ts';
import { createAlerter } from './ops/alerts.ts';
import { createLoginLimiter } from './ops/login-limiter.ts';
import { createMetrics, type Metrics, registerRouteYieldGauge } from './ops/metrics.ts';
import { createMetricsEndpoint, registerBodyBudgetGauge } from './ops/metrics-endpoint.ts';
import { MinuteSeries } from './ops/minute-series.ts';
import { storeReadiness } from './ops/readiness.ts';
import { createRetention } from './ops/retention.ts';
import { createSecretUsageTracker } from './ops/secret-usage.ts';
import { projectionJobs } from './projections/jobs.ts';
import { projectedFrom } from './projections/parse-event.ts';
import { type EntityReader, entityLoader, lazyEntity, openEntityReader } from './projections/read-entity.ts';
import { resolveProjectionsConfig } from './projections/registry.ts';
import { createProjectionRunner } from './projections/runner.ts';
import { projectionStatements } from './projections/statements.ts';
import { createBodyBudget } from './receiver/body-budget.ts';
import { expressMiddleware } from './receiver/express.ts';
import { createNodeServer, listenServer } from './receiver/node-server.ts';
import {
  createReceiver,
  type DeliveryOutcome,
  type Receiver,
  type ReceiverStore,
} from './receiver/receiver.ts';
import { warmUp } from './receiver/warm-up.ts';
import { webHandler } from './receiver/web.ts';
import { buildReport, type ReportQuery } from './reports/report.ts';
import { breakerDefaults } from './routes/breaker.ts';
import { resolveRoutes } from './routes/config.ts';
import {
  createRouteDispatcher,
  type RouteDeliveryInfo,
  type RouteDispatcher,
  type RouteState,
} from './routes/dispatcher.ts';
import { createIngestPriority } from './routes/ingest-priority.ts';
import { routeJobs, routeMaxAttempts, routeNameOf } from './routes/route-jobs.ts';
import type { RoutesConfig } from './routes/types.ts';
import type { ClaimedEvent, Environment, InboxStore, InsertResult } from './store/inbox-store.ts';
import { openStore } from './store/open-store.ts';
import { acquireInstanceLock } from './store/sqlite/instance-lock.ts';
import { ConfigError, toError } from './util/errors.ts';
import {
  type AnyHandler,
  type Handler,
  type HandlerMap,
  type HandlerOptions,
  HandlerRegistry,
} from './worker/handlers.ts';
import { type AttemptInfo, createWorker, type Dispatcher, type Worker } from './worker/worker.ts';

/** A duration: milliseconds, or a string with a unit (`'30s'`). */
export type Duration = number | string;

export interface ConsumerOptions {
  /** The production signing secret(s). Several verify side by side while a secret is being rotated. */
  secret: string | readonly string[];
  /** The sandbox signing secret(s); enables `POST /webhooks/procureiq/sandbox`. */
  sandboxSecret?: string | readonly string[];
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
  /** POST alerts (dead letters, signature-failure bursts, environment mismatches) here, Slack-compatible. */
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
  /** Enables the admin API (`/admin/api`) and dashboard (`/admin`). Without it they answer 404. */
  adminToken?: string;
  /** Serve the admin surface and `/metrics` on this port instead of next to the webhook endpoint. */
  adminPort?: number;
  /** Bind `adminPort` to this address (e.g. `127.0.0.1`). @defaultValue the `host` given to `listen` */
  adminHost?: string;
  /**
   * Serve `/metrics` on the webhook port without a token. Otherwise, there (no `adminPort`), it needs
   * `Authorization: Bearer <adminToken>`, and answers 404 with no admin token. @defaultValue false
   */
  metricsPublic?: boolean;
  /** Webhook body bytes buffered at once across requests being read; past it 503. @defaultValue 64 MiB */
  maxInflightBodyBytes?: number;
  /** Deadline to receive a webhook body once its headers are in (408). @defaultValue `'10s'` */
  bodyTimeout?: Duration;
  /** Connections the webhook server holds open at once. @defaultValue 1024 */
  maxConnections?: number;
  /** Purge payloads and attempt logs of processed events older than this. Off by default. */
  retention?: Duration;
  /**
   * Routes events to HTTP endpoints, RabbitMQ, Redis Streams, BullMQ or NATS without code: the
   * routes file's content as an object (`destinations` and `routes`, `${VAR}` replaced from the
   * environment), or an already resolved config (`loadRoutesFile`). Validated at once.
   */
  routes?: RoutesConfig | Record<string, unknown>;
  /**
   * Live SQL tables of ProcureIQ's entities (procureiq_orders, procureiq_payments, …) in the
   * inbox's database: `all`, `none`, or a list (`orders,payments`). @defaultValue `all`
   */
  projections?: string;
  /** What `procureiq_users.email` keeps: the address, its SHA-256, or nothing. @defaultValue `keep` */
  projectionEmails?: 'keep' | 'hash' | 'drop';
  /** Consecutive failures that pause a destination. @defaultValue 5 */
  breakerThreshold?: number;
  /**
   * Longest a route, or the projections runner of a store that does not project at insert
   * (PostgreSQL), waits between two claims while acknowledging webhooks saturates ingest (acks
   * come first; they catch up after). `0` turns this off. @defaultValue `'1s'`
   */
  routeYield?: Duration;
  /**
   * Signed deliveries `listen()` first sends through its own server and receiver, on a local
   * socket before the server takes its port, while the store keeps nothing and nothing is counted,
   * so the first real deliveries run compiled code (see receiver/warm-up.ts). `serve` sends 5000.
   * @defaultValue 0
   */
  warmUp?: number;
  /** Called for every delivery. */
  onDelivery?: (outcome: DeliveryOutcome) => void;
  /** Called for every finished route job (benchmarks). */
  onRouteDelivery?: (info: RouteDeliveryInfo) => void;
  /** Called for every finished attempt (benchmarks). */
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
  /**
   * Runs the standalone server: `POST /webhooks/procureiq` (and `/sandbox`), `/healthz`,
   * `/readyz`, `/metrics`, and the admin surface when `adminToken` is set.
   */
  listen(options?: ListenOptions): Promise<{ port: number; server: Server; adminPort?: number }>;
  /** Express middleware for one environment's webhook route; mount it before `express.json()`. */
  middleware(options?: { environment?: Environment }): ReturnType<typeof expressMiddleware>;
  /** A web-standard `(Request) => Promise<Response>` handler for one environment. */
  fetchHandler(options?: { environment?: Environment }): (request: Request) => Promise<Response>;
  /** Prometheus metrics of this consumer. */
  readonly metrics: Metrics;
  /**
   * Swaps in a new routes config (SIGHUP): events stored from now on are routed by it. A consumer
   * that runs a worker needs `routes` at creation (an empty `{ destinations: {}, routes: [] }` will
   * do) to have a dispatcher to reload.
   */
  reloadRoutes(routes: RoutesConfig): Promise<void>;
  /** The routes in force, with each one's breaker state; empty without routes. */
  routeStates(): RouteState[];
  /** Graceful shutdown: refuse new deliveries (503), drain handlers, close the store. */
  close(): Promise<void>;
  readonly store: InboxStore;
  readonly receiver: Receiver;
  readonly logger: Logger;
}

export function createConsumer(options: ConsumerOptions): Consumer {
  const logger = options.logger ?? createLogger();
  const secretList = (value: string | readonly string[] | undefined) =>
    (value === undefined ? [] : typeof value === 'string' ? [value] : [...value]).filter((s) => s !== '');
  const secrets = secretList(options.secret);
  const sandboxSecrets = secretList(options.sandboxSecret);
  if (secrets.length === 0) {
    throw new ConfigError('createConsumer: `secret` must hold at least one non-empty secret');
  }
  const toMs = (value: Duration, name: string) =>
    typeof value === 'number' ? value : parseDuration(value, name);
  const schedule = (options.retrySchedule ?? parseDurationList(defaults.retrySchedule, 'retrySchedule')).map(
    (d) => toMs(d, 'retrySchedule'),
  );
  const registry = new HandlerRegistry(schedule, (d) => toMs(d, 'retrySchedule'));
  const shutdownGraceMs = toMs(options.shutdownGrace ?? defaults.shutdownGrace, 'shutdownGrace');

  let releaseLock: (() => void) | undefined;
  let store: InboxStore;
  let location: DatabaseLocation | undefined;
  if (options.store) {
    store = options.store;
  } else {
    location = parseDatabaseUrl(options.database ?? defaults.databaseUrl);
    if (location.kind === 'sqlite' && location.path !== ':memory:') {
      // Taken before the store opens, so a second instance fails fast with a clear message.
      mkdirSync(dirname(location.path), { recursive: true });
      releaseLock = acquireInstanceLock(location.path);
    }
    try {
      store = openStore(location, {
        logger,
        mode: options.sqliteWriter ?? defaults.sqliteWriter,
        poolSize: options.poolSize ?? defaults.poolSize,
      });
    } catch (error) {
      releaseLock?.();
      throw error;
    }
  }

  const metrics = createMetrics(store);
  const secretUsage = createSecretUsageTracker(store, logger);
  const signatureFailures = new MinuteSeries();
  const alerter = createAlerter({
    logger,
    webhookUrl: options.alertWebhookUrl,
    signatureFailuresPerMinute: options.signatureFailuresPerMinute ?? defaults.signatureAlertThreshold,
  });
  const runWorker = options.worker ?? true;
  const projections = resolveProjectionsConfig({
    projections: options.projections,
    projectionEmails: options.projectionEmails,
  });
  const projecting = projections.entities.length > 0;
  // Routes, and the projections runner where the store does not project at insert (PostgreSQL),
  // yield to a saturating burst of deliveries and catch up after it (routes/ingest-priority.ts).
  const ingestPriority =
    runWorker && (options.routes !== undefined || (projecting && !store.projectsAtInsert))
      ? createIngestPriority({ maxWaitMs: toMs(options.routeYield ?? defaults.routeYield, 'routeYield') })
      : undefined;
  if (ingestPriority) registerRouteYieldGauge(metrics, ingestPriority);
  const projectionRunner =
    runWorker && projecting
      ? createProjectionRunner({
          store,
          logger,
          config: projections,
          retrySchedule: schedule,
          pollMs: toMs(options.pollInterval ?? defaults.pollInterval, 'pollInterval'),
          // A dead projections job dead-letters its event: the same alert as a handler's.
          onDeadLetter: (info) => alerter.deadLetter(info),
          // On SQLite its jobs are only the rare fallback for a failed write at insert: no need.
          ...(ingestPriority && !store.projectsAtInsert ? { priority: ingestPriority } : {}),
        })
      : undefined;
  // Handlers see their event's projected row (ctx.entity) through a read-only connection of their own.
  let entityReader: EntityReader | undefined;
  let loadEntity: ReturnType<typeof entityLoader> | undefined;
  const readEntityFor =
    projecting && location && !(location.kind === 'sqlite' && location.path === ':memory:')
      ? (event: AnyEvent) => {
          entityReader ??= openEntityReader(location as DatabaseLocation);
          const key = {
            id: event.id,
            type: event.type,
            created: event.created,
            data: (event.data ?? {}) as Record<string, unknown>,
          };
          // SQLite reads only if the handler looks; PostgreSQL reads before the handler runs,
          // one query for the attempts that start together.
          loadEntity ??= entityLoader(entityReader);
          return lazyEntity(entityReader, key) ?? loadEntity(key);
        }
      : undefined;
  const worker: Worker | undefined = runWorker
    ? createWorker({
        store,
        registry,
        logger,
        ...(readEntityFor ? { readEntity: readEntityFor } : {}),
        // A handled event's projection commits with its handler's success: ctx.entity is the row
        // before it, and a failing projection write fails the attempt like a handler error.
        ...(projecting
          ? {
              projectionStatements: (event: ClaimedEvent, parsed: AnyEvent) => {
                const projected = projectedFrom(event, parsed);
                return projected ? projectionStatements(store.dialect, projected, projections) : [];
              },
              // One whose handler gave up (dead, or no handler now) is projected by a job of its own.
              followUpJobs: (type: string) =>
                projectionJobs({ type, status: 'pending' }, projections, 1 + schedule.length),
              onFollowUp: () => projectionRunner?.wake(),
            }
          : {}),
        concurrency: options.concurrency ?? defaults.workerConcurrency,
        handlerTimeoutMs: toMs(options.handlerTimeout ?? defaults.handlerTimeout, 'handlerTimeout'),
        pollIntervalMs: toMs(options.pollInterval ?? defaults.pollInterval, 'pollInterval'),
        onDeadLetter: (info) => alerter.deadLetter(info),
        onAttempt: (info) => {
          metrics.attempt(info);
          options.onAttempt?.(info);
        },
      })
    : undefined;
  let routesConfig: RoutesConfig | undefined =
    options.routes === undefined
      ? undefined
      : options.routes.destinations instanceof Map
        ? (options.routes as RoutesConfig)
        : resolveRoutes(options.routes);
  const routeDispatcher: RouteDispatcher | undefined =
    runWorker && routesConfig
      ? createRouteDispatcher({
          store,
          routes: routesConfig,
          logger,
          ...(ingestPriority ? { priority: ingestPriority } : {}),
          defaultRetryScheduleMs: schedule,
          pollIntervalMs: toMs(options.pollInterval ?? defaults.pollInterval, 'pollInterval'),
          ...(options.breakerThreshold !== undefined ? { breakerThreshold: options.breakerThreshold } : {}),
          onDelivery: (info) => {
            metrics.routeDelivery(info);
            options.onRouteDelivery?.(info);
          },
          onDeadLetter: (info) => alerter.routeDeadLetter(info),
          onBreakerChange: (destination, change) => {
            if (change.to === 'open')
              alerter.breakerOpened({
                destination,
                failures: options.breakerThreshold ?? breakerDefaults.failureThreshold,
                pauseMs: change.pauseMs ?? 0,
                error: change.error ?? 'unknown error',
              });
          },
        })
      : undefined;
  if (routeDispatcher) metrics.watchRoutes(() => routeDispatcher.states());
  const retention =
    options.retention === undefined
      ? undefined
      : createRetention(store, logger, toMs(options.retention, 'retention'));

  let accepting = true;
  let startPromise: Promise<void> | undefined;
  let unsubscribe: (() => Promise<void>) | undefined;
  const servers: Server[] = [];
  let closed: Promise<void> | undefined;

  /**
   * True while `listen()` warms the request path up (receiver/warm-up.ts). The warm-up's own
   * deliveries (ids starting with `warmUpIds`, random to this process) are then rehearsals that
   * no store keeps (NewEvent.rehearsal), counted nowhere; any other delivery (through the Express
   * middleware, say) is stored as ever, and no lease or wake is handed out meanwhile (the next poll
   * finds its jobs).
   */
  let warming = 0;
  const warmUpIds = `evt_warmup_${randomBytes(6).toString('hex')}_`;
  const isWarmUp = (id: string | undefined) => warming > 0 && id?.startsWith(warmUpIds) === true;
  const warmUpInserted: InsertResult = { outcome: 'inserted', claimed: null };
  const receiverStore: ReceiverStore = {
    get projectsAtInsert() {
      return store.projectsAtInsert;
    },
    insertIfAbsent: (event, lease) =>
      // A warm-up delivery takes the store's own way too, as a rehearsal that keeps nothing (on a
      // store that rehearses). Answered without it, the service then promoted 3-4 times more to
      // V8's old generation per scavenge under load (0.6 MB against 0.17 at 5,000/s), with a full
      // GC every 1.5-2.5 s.
      isWarmUp(event.id)
        ? store.rehearses
          ? store.insertIfAbsent({ ...event, rehearsal: true })
          : Promise.resolve(warmUpInserted)
        : store.insertIfAbsent(event, lease),
  };
  const receiverDispatcher: Dispatcher | undefined = worker && {
    reserve: () => (warming > 0 ? undefined : worker.reserve()),
    cancel: () => worker.cancel(),
    accept: (claimed) => worker.accept(claimed),
    wake: () => {
      if (warming === 0) worker.wake();
    },
  };
  const makeReceiver = (environment: Environment, envSecrets: string[]) =>
    createReceiver({
      environment,
      secrets: envSecrets,
      store: receiverStore,
      logger,
      maxBodyBytes: options.maxBodyBytes ?? parseSize(defaults.maxBodySize),
      // Decided at insert time: events no handler wants never cost the worker a claim.
      initialStatus: (type) => (registry.has(type) || !runWorker ? 'pending' : 'unhandled'),
      maxAttemptsFor: (type) => registry.maxAttemptsFor(type),
      ...(receiverDispatcher ? { dispatcher: receiverDispatcher } : {}),
      routeJobs: (event) => (routesConfig ? routeJobs(routesConfig.routes, event, schedule) : []),
      // Events no handler takes are projected as they are stored, on a store that can (SQLite);
      // otherwise, or should that write fail, by a projections job of their own.
      projectionJobs: (event) =>
        registry.has(event.type) || !runWorker
          ? []
          : projectionJobs({ type: event.type, status: 'pending' }, projections, 1 + schedule.length),
      projectionStatements: (event) => projectionStatements(store.dialect, event, projections),
      onRouted: () => {
        if (warming === 0) routeDispatcher?.wake();
      },
      onProjectionJob: () => {
        if (warming === 0) projectionRunner?.wake();
      },
      onOutcome: (delivery) => {
        if (isWarmUp(delivery.eventId)) return;
        ingestPriority?.delivery(delivery.storeMs ?? 0);
        metrics.delivery(delivery);
        if (delivery.secretIndex !== undefined && delivery.outcome !== 'bad_request') {
          const now = Date.now();
          secretUsage.used(delivery.environment, delivery.secretIndex, now);
          metrics.secretUsed(delivery.environment, delivery.secretIndex, now);
        }
        if (delivery.outcome === 'bad_signature') {
          signatureFailures.add();
          alerter.signatureFailure(delivery.remoteAddress);
        }
        if (delivery.environmentMismatch && delivery.eventId && delivery.eventType) {
          alerter.environmentMismatch({
            id: delivery.eventId,
            type: delivery.eventType,
            endpoint: delivery.environment,
            claimed: delivery.environmentMismatch,
          });
        }
        options.onDelivery?.(delivery);
      },
      unlogged: isWarmUp,
      isAccepting: () => accepting,
    });
  /**
   * `options.warmUp` deliveries through the real server and production receiver, on a local
   * socket, before the server listens on its port (receiver/warm-up.ts). Only a speed-up: should
   * it fail, the service starts cold.
   */
  async function warmUpRequestPath(server: Server, path: string): Promise<void> {
    const deliveries = options.warmUp ?? 0;
    if (deliveries <= 0) return;
    const began = performance.now();
    // A count, not a flag: two listen() calls may warm up at once.
    warming++;
    try {
      // Its connections stay under MAX_CONNECTIONS: each loop holds a kept-alive socket and, one
      // delivery in eight, one of its own.
      const maxConnections = options.maxConnections ?? defaults.maxConnections;
      const concurrency = Math.max(1, Math.min(16, Math.floor((maxConnections - 1) / 2)));
      const answered = await warmUp({
        server,
        path,
        secret: secrets[0] as string,
        deliveries,
        idPrefix: warmUpIds,
        concurrency,
      });
      const fields = { deliveries, answered, ms: Math.round(performance.now() - began) };
      // Anything but 200 means the warm-up compiled some other path than real deliveries take.
      if (answered[200] === deliveries) logger.info(fields, 'warmed up the request path');
      else logger.warn(fields, 'warm-up deliveries were not all accepted');
    } catch (error) {
      logger.warn({ err: toError(error).message }, 'could not warm up the request path; starting cold');
    } finally {
      warming--;
    }
  }
  const receivers: Partial<Record<Environment, Receiver>> = {
    production: makeReceiver('production', secrets),
  };
  if (sandboxSecrets.length > 0) receivers.sandbox = makeReceiver('sandbox', sandboxSecrets);
  const receiverFor = (environment: Environment = 'production'): Receiver => {
    const receiver = receivers[environment];
    if (!receiver)
      throw new ConfigError(`createConsumer: no ${environment} secret is configured (sandboxSecret)`);
    // Adapters may be called before start(): the first delivery waits for the store to open.
    return {
      maxBodyBytes: receiver.maxBodyBytes,
      tooLarge: () => receiver.tooLarge(),
      handle: async (delivery) => {
        await consumer.start();
        return receiver.handle(delivery);
      },
    };
  };

  const loginLimiter = createLoginLimiter();
  const admin = createAdminHandler({
    store,
    token: options.adminToken,
    logger,
    // A route job replayed gets its route's own budget (its retrySchedule), not the handlers'.
    replayBudget: (type, consumer) => {
      const name = consumer === undefined ? undefined : routeNameOf(consumer);
      const route = name === undefined ? undefined : routesConfig?.routes.find((r) => r.name === name);
      return route ? routeMaxAttempts(route, schedule) : registry.maxAttemptsFor(type);
    },
    signatureFailures,
    secretsConfigured: { production: secrets.length, sandbox: sandboxSecrets.length },
    loginLimiter,
    routeStates: () => routeDispatcher?.states() ?? [],
    ...(location && !(location.kind === 'sqlite' && location.path === ':memory:')
      ? {
          reports: (query: ReportQuery) => {
            entityReader ??= openEntityReader(location as DatabaseLocation);
            return buildReport(entityReader, query);
          },
        }
      : {}),
  });
  // On the admin port /metrics is open; on the public webhook port it needs the admin token.
  const publicMetrics = createMetricsEndpoint({
    metrics,
    logger,
    access: options.metricsPublic ? 'open' : 'token',
    token: options.adminToken,
    loginLimiter,
  });
  const adminMetrics = createMetricsEndpoint({ metrics, logger, access: 'open' });
  const opsRoutes =
    (serveMetrics: typeof adminMetrics) => async (req: IncomingMessage, res: ServerResponse) =>
      (await serveMetrics(req, res)) || (await admin(req, res));
  const bodyBudget = createBodyBudget(
    options.maxInflightBodyBytes ?? parseSize(defaults.maxInflightBodySize),
  );
  registerBodyBudgetGauge(metrics, bodyBudget);

  const consumer: Consumer = {
    store,
    receiver: receiverFor('production'),
    logger,
    metrics,
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
        if ((worker || routeDispatcher || projectionRunner) && store.subscribe)
          unsubscribe = store.subscribe((kinds) => {
            if (!kinds || kinds.has('handlers')) worker?.wake();
            if (!kinds || kinds.has('routes')) routeDispatcher?.wake();
            if (!kinds || kinds.has('projections')) projectionRunner?.wake();
          });
        // First the routes: a transform that cannot be loaded (not a function) fails start-up.
        await routeDispatcher?.start();
        worker?.start();
        projectionRunner?.start();
        retention?.start();
      })();
      return startPromise;
    },
    async listen(listenOptions = {}) {
      await consumer.start();
      const routes: Record<string, Receiver> = {};
      if (receivers.production) routes['/webhooks/procureiq'] = receivers.production;
      if (receivers.sandbox) routes['/webhooks/procureiq/sandbox'] = receivers.sandbox;
      const separateAdmin = options.adminPort !== undefined;
      const main = createNodeServer({
        routes,
        logger,
        ...serverTimeouts,
        readiness: storeReadiness(store, logger),
        onResponse: (route, status, seconds) => {
          if (warming === 0) metrics.ack(route, status, seconds);
        },
        bodyBudget,
        bodyTimeoutMs: toMs(options.bodyTimeout ?? defaults.bodyTimeout, 'bodyTimeout'),
        maxConnections: options.maxConnections ?? defaults.maxConnections,
        ...(separateAdmin ? {} : { extra: opsRoutes(publicMetrics) }),
      });
      await warmUpRequestPath(main, '/webhooks/procureiq');
      // close() during the warm-up or the listen: the server must not hold its port after the
      // consumer closed.
      const closedWhileStarting = () => new Error('the consumer was closed while it was starting');
      if (closed) throw closedWhileStarting();
      const port = await listenOn(main, listenOptions.port ?? defaults.port, listenOptions.host);
      if (closed) {
        main.close();
        throw closedWhileStarting();
      }
      servers.push(main);
      if (!separateAdmin) return { port, server: main };
      const adminServer = createNodeServer({
        routes: {},
        logger,
        ...serverTimeouts,
        readiness: storeReadiness(store, logger),
        extra: opsRoutes(adminMetrics),
      });
      const adminHost = options.adminHost ?? listenOptions.host;
      const adminPort = await listenOn(adminServer, options.adminPort ?? 0, adminHost);
      servers.push(adminServer);
      return { port, server: main, adminPort };
    },
    async reloadRoutes(next) {
      // Without a dispatcher the new routes' jobs would be stored and never sent.
      if (runWorker && !routeDispatcher)
        throw new ConfigError(
          'reloadRoutes: this consumer was created without routes, so nothing here would deliver them; create it with `routes` (an empty { destinations: {}, routes: [] } will do)',
        );
      // The dispatcher first: if its new lanes cannot open, the receiver keeps matching the old
      // routes. Once they have opened, new events get the new routes' jobs at once, while the old
      // lanes finish their rounds (a slow batch took minutes, and a removed route's jobs were
      // stored meanwhile, orphaned).
      await routeDispatcher?.reload(next, {
        onOpened: () => {
          routesConfig = next;
        },
      });
      routesConfig = next;
    },
    routeStates: () => routeDispatcher?.states() ?? [],
    middleware: (o = {}) => expressMiddleware(receiverFor(o.environment)),
    fetchHandler: (o = {}) => webHandler(receiverFor(o.environment)),
    close() {
      closed ??= (async () => {
        accepting = false;
        const serversClosed = Promise.all(
          servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
        );
        for (const s of servers) s.closeIdleConnections();
        if (startPromise) await startPromise.catch(() => {});
        retention?.stop();
        ingestPriority?.stop();
        await Promise.all([
          worker?.stop(shutdownGraceMs),
          routeDispatcher?.stop(shutdownGraceMs),
          projectionRunner?.stop(shutdownGraceMs),
        ]);
        await entityReader?.close();
        await unsubscribe?.();
        await secretUsage.close();
        await alerter.flush();
        await store.close();
        releaseLock?.();
        for (const s of servers) s.closeAllConnections();
        await serversClosed;
      })();
      return closed;
    },
  };
  if (options.handlers) consumer.use(options.handlers);
  return consumer;
}

const serverTimeouts = {
  requestTimeoutMs: parseDuration(defaults.requestTimeout),
  headersTimeoutMs: parseDuration(defaults.headersTimeout),
  keepAliveTimeoutMs: parseDuration(defaults.keepAliveTimeout),
};

async function listenOn(server: Server, port: number, host: string | undefined): Promise<number> {
  await listenServer(server, host === undefined ? { port } : { port, host });
  return (server.address() as AddressInfo).port;
}
