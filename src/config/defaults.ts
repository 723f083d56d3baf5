/** Every default of procureiq-webhooks, in one place. */
export const defaults = {
  /** @defaultValue 3000 */
  port: 3000,
  /** Listen on all interfaces unless `HOST` is set. @defaultValue undefined */
  host: undefined as string | undefined,
  /** @defaultValue `sqlite:./data/procureiq-webhooks.db` */
  databaseUrl: 'sqlite:./data/procureiq-webhooks.db',
  /** @defaultValue `info` */
  logLevel: 'info',
  /** Largest accepted body; larger deliveries get 413. @defaultValue `1mb` */
  maxBodySize: '1mb',
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
} as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
