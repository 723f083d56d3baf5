/**
 * Every default of procureiq-webhooks, in one place. Durations and sizes are written as a person
 * would write them in a flag or environment variable (`'30s'`, `'1mb'`); parse them with
 * `parseDuration` / `parseSize` where milliseconds or bytes are needed.
 */
export const defaults = {
  /** Port of the webhook endpoint. @defaultValue 3000 */
  port: 3000,
  /** Listen on all interfaces unless `HOST` is set. @defaultValue undefined */
  host: undefined as string | undefined,
  /** @defaultValue `sqlite:./data/procureiq-webhooks.db` */
  databaseUrl: 'sqlite:./data/procureiq-webhooks.db',
  /** @defaultValue `info` */
  logLevel: 'info',
  /** Largest accepted body; larger deliveries get 413. @defaultValue `1mb` */
  maxBodySize: '1mb',
  /** Consecutive failures that pause a route's destination. @defaultValue 5 */
  breakerThreshold: 5,
  /**
   * Longest a route waits between two claims while acknowledging webhooks saturates the event loop:
   * acks come first, and routes catch up once the burst passes. `0` turns this off. @defaultValue `1s`
   */
  routeYield: '1s',
  /**
   * Bytes of webhook bodies buffered at once across requests being read; past it a request gets
   * 503 with `Retry-After`. One source address may hold a quarter of it. @defaultValue `64mb`
   */
  maxInflightBodySize: '64mb',
  /** Deadline to receive a webhook body once its headers are in; slower ones get 408. @defaultValue `10s` */
  bodyTimeout: '10s',
  /** Connections the webhook server holds open at once; further ones are closed. @defaultValue 1024 */
  maxConnections: 1024,
  /**
   * Deliveries `serve` sends through its own request path (nothing stored) before it takes its
   * port, so the first real ones run compiled code. `0` turns this off. @defaultValue 5000
   */
  warmUp: 5000,
  /** Handlers running at once. Handlers mostly wait on I/O, so this is well above the core count. @defaultValue 16 */
  workerConcurrency: 16,
  /** @defaultValue `30s` */
  handlerTimeout: '30s',
  /** Delays between attempts, as the guide suggests: 1 + 3 attempts. @defaultValue `30s,2m,10m` */
  retrySchedule: '30s,2m,10m',
  /** How long in-flight handlers may finish after SIGTERM. @defaultValue `10s` */
  shutdownGrace: '10s',
  /** Safety-net poll for due retries and events replayed by another process. @defaultValue `1s` */
  pollInterval: '1s',
  /** Signature failures per minute that raise an alert. @defaultValue 10 */
  signatureAlertThreshold: 10,
  /** Whole-request deadline, so slow clients cannot hold sockets. @defaultValue `30s` */
  requestTimeout: '30s',
  /** Deadline for receiving the request headers. @defaultValue `10s` */
  headersTimeout: '10s',
  /** Idle keep-alive sockets are closed after this. @defaultValue `5s` */
  keepAliveTimeout: '5s',
  /**
   * Where SQLite commits run: `thread` (a writer thread, so fsyncs never block the event loop) or
   * `inline` (on the event loop). @defaultValue `thread`
   */
  sqliteWriter: 'thread' as 'thread' | 'inline',
  /** The environment a receiver serves when none is named. @defaultValue `production` */
  environment: 'production' as 'production' | 'sandbox',
  /**
   * How long a lease outlives the handler timeout: a claim holds an event for `handlerTimeout` +
   * this before another claim may take it over. @defaultValue `60s`
   */
  leaseGrace: '60s',
  /** Longest pause between a worker's claims while the store is unreachable. @defaultValue `30s` */
  workerMaxBackoff: '30s',
  /** The PostgreSQL schema of the inbox's tables, unless `?schema=` names one. @defaultValue `procureiq_webhooks` */
  postgresSchema: 'procureiq_webhooks',
  /** PostgreSQL connections in each instance's pool (LISTEN takes one more). @defaultValue 10 */
  poolSize: 10,
  /** Give up connecting to PostgreSQL after this, so deliveries get 503 rather than hang. @defaultValue `5s` */
  postgresConnectTimeout: '5s',
  /** Close pooled PostgreSQL connections idle for this long. @defaultValue `30s` */
  postgresIdleTimeout: '30s',
  /** First wait before re-establishing a dropped LISTEN connection; doubles each time. @defaultValue `500ms` */
  listenReconnectMin: '500ms',
  /** Longest wait between attempts to re-establish the LISTEN connection. @defaultValue `10s` */
  listenReconnectMax: '10s',
  /** How often retention purges old payloads, when `RETENTION` is set. @defaultValue `1m` */
  retentionInterval: '1m',
  /** Events purged per retention batch, so ingest never waits behind a purge. @defaultValue 500 */
  retentionBatch: 500,
} as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
