import { ConfigError } from '../util/errors.ts';
import { type DatabaseLocation, parseDatabaseUrl } from './database-url.ts';
import { defaults, LOG_LEVELS, type LogLevel } from './defaults.ts';
import { parseDuration, parseDurationList, parseSize } from './duration.ts';

/** Options for `serve` as given by flags and environment variables (all strings, unvalidated). */
export interface ServeInput {
  port?: string | undefined;
  host?: string | undefined;
  secret?: string | undefined;
  db?: string | undefined;
  logLevel?: string | undefined;
  handlers?: string | undefined;
  workerConcurrency?: string | undefined;
  handlerTimeout?: string | undefined;
  retrySchedule?: string | undefined;
  maxBodySize?: string | undefined;
  shutdownGrace?: string | undefined;
  pollInterval?: string | undefined;
  alertWebhookUrl?: string | undefined;
  signatureAlertThreshold?: string | undefined;
  dev?: boolean | undefined;
  migrate?: boolean | undefined;
  sqliteWriter?: string | undefined;
  secretSandbox?: string | undefined;
  adminToken?: string | undefined;
  adminPort?: string | undefined;
  retention?: string | undefined;
}

/** Validated options for `serve`. */
export interface ServeConfig {
  port: number;
  host: string | undefined;
  /** Secrets that verify deliveries; empty only in dev mode before a secret is generated. */
  secrets: string[];
  database: DatabaseLocation;
  logLevel: LogLevel;
  handlers: string | undefined;
  workerConcurrency: number;
  handlerTimeoutMs: number;
  retryScheduleMs: number[];
  maxBodyBytes: number;
  shutdownGraceMs: number;
  pollIntervalMs: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  alertWebhookUrl: string | undefined;
  signatureAlertThreshold: number;
  dev: boolean;
  sqliteWriter: 'thread' | 'inline';
  sandboxSecrets: string[];
  adminToken: string | undefined;
  adminPort: number | undefined;
  retentionMs: number | undefined;
}

/**
 * Resolves and validates `serve` options once. Every problem is reported together, each with what
 * to change, so start-up fails with one actionable message.
 */
export function resolveServeConfig(input: ServeInput): ServeConfig {
  const problems: string[] = [];
  const attempt = <T>(fn: () => T, fallback: T): T => {
    try {
      return fn();
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
      return fallback;
    }
  };

  const port = attempt(
    () => parseInteger(input.port, 'PORT (--port)', defaults.port, 0, 65535),
    defaults.port,
  );
  const logLevel = attempt(() => parseLogLevel(input.logLevel), 'info' as LogLevel);
  const database = attempt(
    () => parseDatabaseUrl(input.db ?? defaults.databaseUrl),
    parseDatabaseUrl(defaults.databaseUrl),
  );
  const secrets = parseSecrets(input.secret);
  if (input.secret !== undefined && input.secret.trim() !== '' && secrets.length === 0) {
    problems.push(
      'WEBHOOK_SECRET (--secret): holds only commas and spaces; give at least one non-empty secret',
    );
  }
  if (secrets.length === 0 && !input.dev) {
    problems.push(
      'WEBHOOK_SECRET (--secret) is required: set it to the signing secret from your ProcureIQ webhook settings (several may be given, comma-separated, while rotating), or run "serve --dev" to use a generated local secret',
    );
  }
  const workerConcurrency = attempt(
    () =>
      parseInteger(
        input.workerConcurrency,
        'WORKER_CONCURRENCY (--worker-concurrency)',
        defaults.workerConcurrency,
        1,
        10_000,
      ),
    defaults.workerConcurrency,
  );
  const handlerTimeoutMs = attempt(
    () =>
      parseDuration(input.handlerTimeout ?? defaults.handlerTimeout, 'HANDLER_TIMEOUT (--handler-timeout)'),
    30_000,
  );
  const retryScheduleMs = attempt(() => {
    const list = parseDurationList(
      input.retrySchedule ?? defaults.retrySchedule,
      'RETRY_SCHEDULE (--retry-schedule)',
    );
    return list;
  }, [] as number[]);
  const maxBodyBytes = attempt(
    () => parseSize(input.maxBodySize ?? defaults.maxBodySize, 'MAX_BODY_SIZE (--max-body-size)'),
    1024 * 1024,
  );
  const shutdownGraceMs = attempt(
    () => parseDuration(input.shutdownGrace ?? defaults.shutdownGrace, 'SHUTDOWN_GRACE (--shutdown-grace)'),
    10_000,
  );
  const pollIntervalMs = attempt(
    () => parseDuration(input.pollInterval ?? defaults.pollInterval, 'POLL_INTERVAL (--poll-interval)'),
    1000,
  );
  const signatureAlertThreshold = attempt(
    () =>
      parseInteger(
        input.signatureAlertThreshold,
        'SIGNATURE_ALERT_THRESHOLD (--signature-alert-threshold)',
        defaults.signatureAlertThreshold,
        1,
        1_000_000,
      ),
    defaults.signatureAlertThreshold,
  );
  let alertWebhookUrl: string | undefined;
  if (input.alertWebhookUrl) {
    alertWebhookUrl = attempt(
      () => parseHttpUrl(input.alertWebhookUrl ?? '', 'ALERT_WEBHOOK_URL (--alert-webhook-url)'),
      undefined,
    );
  }
  const sqliteWriter = input.sqliteWriter?.trim() || 'thread';
  if (sqliteWriter !== 'thread' && sqliteWriter !== 'inline') {
    problems.push(`SQLITE_WRITER (--sqlite-writer): "${input.sqliteWriter}" must be "thread" or "inline"`);
  }
  const sandboxSecrets = parseSecrets(input.secretSandbox);
  const overlap = sandboxSecrets.filter((secret) => secrets.includes(secret));
  if (overlap.length > 0) {
    problems.push(
      'WEBHOOK_SECRET_SANDBOX (--secret-sandbox): a sandbox secret is also a production secret; each environment needs its own, or sandbox events would verify on the production endpoint',
    );
  }
  const adminToken = input.adminToken?.trim() || undefined;
  if (adminToken !== undefined && adminToken.length < 16) {
    problems.push(
      'ADMIN_TOKEN (--admin-token): use at least 16 characters, e.g. the output of "openssl rand -hex 32"',
    );
  }
  const adminPort =
    input.adminPort === undefined || input.adminPort.trim() === ''
      ? undefined
      : attempt(() => parseInteger(input.adminPort, 'ADMIN_PORT (--admin-port)', 0, 0, 65535), undefined);
  const retentionMs =
    input.retention === undefined || input.retention.trim() === ''
      ? undefined
      : attempt(() => parseDuration(input.retention ?? '', 'RETENTION (--retention)'), undefined);
  if (pollIntervalMs <= 0) problems.push('POLL_INTERVAL (--poll-interval): must be greater than 0');
  if (handlerTimeoutMs <= 0) problems.push('HANDLER_TIMEOUT (--handler-timeout): must be greater than 0');

  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
  return {
    port,
    host: input.host?.trim() || defaults.host,
    secrets,
    database,
    logLevel,
    handlers: input.handlers?.trim() || undefined,
    workerConcurrency,
    handlerTimeoutMs,
    retryScheduleMs,
    maxBodyBytes,
    shutdownGraceMs,
    pollIntervalMs,
    requestTimeoutMs: parseDuration(defaults.requestTimeout),
    headersTimeoutMs: parseDuration(defaults.headersTimeout),
    alertWebhookUrl,
    signatureAlertThreshold,
    dev: input.dev === true,
    sqliteWriter: sqliteWriter === 'inline' ? 'inline' : 'thread',
    sandboxSecrets,
    adminToken,
    adminPort,
    retentionMs,
  };
}

/** Splits `WEBHOOK_SECRET` on commas; empty entries are dropped, never used as keys. */
export function parseSecrets(input: string | undefined): string[] {
  if (!input) return [];
  return input
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function parseInteger(
  input: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (input === undefined || input.trim() === '') return fallback;
  const text = input.trim();
  if (!/^\d+$/.test(text)) throw new ConfigError(`${name}: "${input}" is not a whole number`);
  const value = Number(text);
  if (value < min || value > max)
    throw new ConfigError(`${name}: ${value} is out of range; use ${min} to ${max}`);
  return value;
}

export function parseLogLevel(input: string | undefined): LogLevel {
  const text = (input ?? defaults.logLevel).trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  throw new ConfigError(
    `LOG_LEVEL (--log-level): "${input}" is not a level; use one of ${LOG_LEVELS.join(', ')}`,
  );
}

function parseHttpUrl(input: string, name: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ConfigError(`${name}: "${input}" is not a URL; give a full http(s):// address`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name}: "${input}" must use http:// or https://`);
  }
  return url.toString();
}
