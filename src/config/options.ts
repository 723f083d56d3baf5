import { ConfigError } from '../util/errors.ts';
import { type DatabaseLocation, parseDatabaseUrl } from './database-url.ts';
import { defaults, LOG_LEVELS, type LogLevel } from './defaults.ts';
import { checkTimerDuration, parseDuration, parseDurationList, parseSize } from './duration.ts';

/**
 * One option of `serve`: its flag, its environment variable, what it does, its default and how its
 * text is parsed. The table below is the only place these are written: the CLI's flags, the
 * environment variables, validation and the README's options table all come from it.
 */
export interface ServeOption<T> {
  /** The flag with its argument, as commander takes it: `--worker-concurrency <n>`. */
  readonly flag: string;
  /** The environment variable; the flag wins over it. */
  readonly env: string;
  readonly description: string;
  /** The default, written as the flag's value would be, and parsed like one. None when absent. */
  readonly default?: string;
  /** How the README and `--help` describe the default, when not simply `default`. */
  readonly defaultText?: string;
  /** Parses a non-blank value; throws a `ConfigError` that starts with `label`. */
  readonly parse: (text: string, label: string) => T;
}

/** An on/off flag of `serve` (no environment variable). */
export interface ServeSwitch {
  readonly flag: string;
  readonly description: string;
  readonly defaultText: string;
}

const text = (value: string): string => value;
const duration = (value: string, label: string): number => parseDuration(value, label);
/** A duration, or a bare `0` for "off". */
const durationOrOff = (value: string, label: string): number =>
  value.trim() === '0' ? 0 : parseDuration(value, label);
/** A duration that runs on a timer, so at most MAX_TIMER_MS. */
const timerDuration = (value: string, label: string): number =>
  checkTimerDuration(parseDuration(value, label), label);
/** A timer duration greater than 0. */
const positiveDuration = (value: string, label: string): number => {
  const ms = timerDuration(value, label);
  if (ms <= 0) throw new ConfigError(`${label}: must be greater than 0`);
  return ms;
};
const integer =
  (min: number, max: number) =>
  (value: string, label: string): number =>
    parseInteger(value, label, min, min, max);
const secrets = (value: string, label: string): string[] => {
  const list = parseSecrets(value);
  if (list.length === 0)
    throw new ConfigError(`${label}: holds only commas and spaces; give at least one non-empty secret`);
  return list;
};

/** The options of `serve`, keyed by the property commander gives each flag. */
export const serveOptions = {
  port: {
    flag: '--port <port>',
    env: 'PORT',
    description: 'port of the webhook endpoint',
    default: String(defaults.port),
    parse: integer(0, 65535),
  },
  host: {
    flag: '--host <host>',
    env: 'HOST',
    description: 'address to bind',
    defaultText: 'all interfaces',
    parse: text,
  },
  secret: {
    flag: '--secret <secrets>',
    env: 'WEBHOOK_SECRET',
    description: 'signing secret(s); comma-separate several while rotating',
    defaultText: 'required outside `--dev`',
    parse: secrets,
  },
  secretSandbox: {
    flag: '--secret-sandbox <secrets>',
    env: 'WEBHOOK_SECRET_SANDBOX',
    description: 'sandbox signing secret(s); enables `POST /webhooks/procureiq/sandbox`',
    defaultText: 'none: no sandbox endpoint',
    parse: secrets,
  },
  db: {
    flag: '--db <url>',
    env: 'DATABASE_URL',
    description: '`sqlite:./file.db` or `postgres://user@host:5432/db?schema=name`',
    default: defaults.databaseUrl,
    parse: (value: string): DatabaseLocation => parseDatabaseUrl(value),
  },
  logLevel: {
    flag: '--log-level <level>',
    env: 'LOG_LEVEL',
    description: `one of ${LOG_LEVELS.join(', ')}`,
    default: defaults.logLevel,
    parse: (value: string, label: string): LogLevel => parseLogLevel(value, label),
  },
  handlers: {
    flag: '--handlers <file>',
    env: 'HANDLERS',
    description: 'module (.ts or .js) whose default export maps event types to handlers',
    defaultText: 'none: events are stored `unhandled`',
    parse: text,
  },
  routes: {
    flag: '--routes <file>',
    env: 'ROUTES',
    description:
      'routes file (YAML or JSON) that sends matching events to HTTP, RabbitMQ, Redis Streams, BullMQ or NATS; SIGHUP reloads it',
    defaultText: 'none',
    parse: text,
  },
  projections: {
    flag: '--projections <list>',
    env: 'PROJECTIONS',
    description:
      'live tables of ProcureIQ entities in the inbox database: `all`, `none`, or a list such as `orders,payments`',
    default: 'all',
    parse: text,
  },
  projectionEmails: {
    flag: '--projection-emails <mode>',
    env: 'PROJECTION_EMAILS',
    description: 'what `procureiq_users.email` keeps: `keep`, `hash` (SHA-256) or `drop`',
    default: 'keep',
    parse: text,
  },
  breakerThreshold: {
    flag: '--breaker-threshold <n>',
    env: 'BREAKER_THRESHOLD',
    description: 'consecutive failures that pause a route destination (30 s, doubling up to 10 min)',
    default: String(defaults.breakerThreshold),
    parse: integer(1, 1_000),
  },
  routeYield: {
    flag: '--route-yield <duration>',
    env: 'ROUTE_YIELD',
    description:
      'while acknowledging webhooks saturates the event loop, each route (and, on PostgreSQL, the live tables) claims a batch at most this often, and catches up after; `0` turns this off',
    default: defaults.routeYield,
    parse: durationOrOff,
  },
  workerConcurrency: {
    flag: '--worker-concurrency <n>',
    env: 'WORKER_CONCURRENCY',
    description: 'handlers running at once (they mostly wait on I/O)',
    default: String(defaults.workerConcurrency),
    parse: integer(1, 10_000),
  },
  handlerTimeout: {
    flag: '--handler-timeout <duration>',
    env: 'HANDLER_TIMEOUT',
    description: 'fail an attempt that runs longer, and fire its `ctx.signal`',
    default: defaults.handlerTimeout,
    parse: positiveDuration,
  },
  retrySchedule: {
    flag: '--retry-schedule <durations>',
    env: 'RETRY_SCHEDULE',
    description: 'delays between attempts: N delays give 1 + N attempts',
    default: defaults.retrySchedule,
    parse: (value: string, label: string): number[] => parseDurationList(value, label),
  },
  maxBodySize: {
    flag: '--max-body-size <size>',
    env: 'MAX_BODY_SIZE',
    description: 'largest accepted body; larger deliveries get 413',
    default: defaults.maxBodySize,
    parse: (value: string, label: string): number => parseSize(value, label),
  },
  maxInflightBodyBytes: {
    flag: '--max-inflight-body-bytes <size>',
    env: 'MAX_INFLIGHT_BODY_BYTES',
    description: 'body bytes buffered at once across requests being read; past it 503 (see Security)',
    default: defaults.maxInflightBodySize,
    parse: (value: string, label: string): number => {
      const bytes = parseSize(value, label);
      if (bytes <= 0) throw new ConfigError(`${label}: must be greater than 0`);
      return bytes;
    },
  },
  bodyTimeout: {
    flag: '--body-timeout <duration>',
    env: 'BODY_TIMEOUT',
    description: 'deadline to receive a body once its headers are in; slower ones get 408',
    default: defaults.bodyTimeout,
    parse: positiveDuration,
  },
  maxConnections: {
    flag: '--max-connections <n>',
    env: 'MAX_CONNECTIONS',
    description: 'connections the webhook server holds open at once; further ones are closed',
    default: String(defaults.maxConnections),
    parse: integer(1, 1_000_000),
  },
  warmUp: {
    flag: '--warm-up <n>',
    env: 'WARM_UP',
    description:
      'signed deliveries sent through the request path on a local socket before listening (none is kept: SQLite runs each insert and rolls it back), so a start under load answers at full speed; `0` turns this off',
    default: String(defaults.warmUp),
    parse: integer(0, 1_000_000),
  },
  shutdownGrace: {
    flag: '--shutdown-grace <duration>',
    env: 'SHUTDOWN_GRACE',
    description: 'time for in-flight handlers to finish on SIGTERM',
    default: defaults.shutdownGrace,
    parse: timerDuration,
  },
  pollInterval: {
    flag: '--poll-interval <duration>',
    env: 'POLL_INTERVAL',
    description: 'safety-net poll for due events',
    default: defaults.pollInterval,
    parse: positiveDuration,
  },
  alertWebhookUrl: {
    flag: '--alert-webhook-url <url>',
    env: 'ALERT_WEBHOOK_URL',
    description: 'POST alerts here (Slack-compatible)',
    defaultText: 'none',
    parse: (value: string, label: string): string => parseHttpUrl(value, label),
  },
  signatureAlertThreshold: {
    flag: '--signature-alert-threshold <n>',
    env: 'SIGNATURE_ALERT_THRESHOLD',
    description: 'signature failures per minute that raise an alert',
    default: String(defaults.signatureAlertThreshold),
    parse: integer(1, 1_000_000),
  },
  adminToken: {
    flag: '--admin-token <token>',
    env: 'ADMIN_TOKEN',
    description: 'enables the admin API and dashboard at `/admin` (at least 16 characters)',
    defaultText: 'none: `/admin` answers 404',
    parse: (value: string, label: string): string => {
      if (value.length < 16)
        throw new ConfigError(
          `${label}: use at least 16 characters, e.g. the output of "openssl rand -hex 32"`,
        );
      return value;
    },
  },
  adminPort: {
    flag: '--admin-port <port>',
    env: 'ADMIN_PORT',
    description: 'serve `/admin` and `/metrics` on this port instead',
    defaultText: 'the webhook port',
    parse: integer(0, 65535),
  },
  adminHost: {
    flag: '--admin-host <host>',
    env: 'ADMIN_HOST',
    description: 'address to bind `ADMIN_PORT` to, e.g. `127.0.0.1`',
    defaultText: 'as `HOST`',
    parse: text,
  },
  metricsPublic: {
    flag: '--metrics-public <bool>',
    env: 'METRICS_PUBLIC',
    description: '`true`: `/metrics` on the webhook port needs no admin token (see Security)',
    default: 'false',
    parse: (value: string, label: string): boolean => {
      const v = value.toLowerCase();
      if (v === 'true' || v === 'false') return v === 'true';
      throw new ConfigError(`${label}: "${value}" must be "true" or "false"`);
    },
  },
  retention: {
    flag: '--retention <duration>',
    env: 'RETENTION',
    description: 'purge payloads and attempt logs of processed events older than this, e.g. `30d`',
    defaultText: 'off: kept forever',
    parse: duration,
  },
  sqliteWriter: {
    flag: '--sqlite-writer <mode>',
    env: 'SQLITE_WRITER',
    description: 'where SQLite commits run: `thread` (a writer thread) or `inline` (the event loop)',
    default: defaults.sqliteWriter,
    parse: (value: string, label: string): 'thread' | 'inline' => {
      if (value === 'thread' || value === 'inline') return value;
      throw new ConfigError(`${label}: "${value}" must be "thread" or "inline"`);
    },
  },
} as const satisfies Record<string, ServeOption<unknown>>;

/** The on/off flags of `serve`. */
export const serveSwitches = {
  migrate: {
    flag: '--no-migrate',
    description: 'do not apply migrations at start; run `procureiq-webhooks migrate` (PostgreSQL only)',
    defaultText: 'migrations run at start',
  },
  dev: {
    flag: '--dev',
    description: 'development mode: generate and keep a local secret when none is set',
    defaultText: 'off',
  },
} as const satisfies Record<string, ServeSwitch>;

export type ServeOptionName = keyof typeof serveOptions;
export type ServeOptionValue<K extends ServeOptionName> = ReturnType<(typeof serveOptions)[K]['parse']>;

/** The long flag alone: `--port`. */
export function longFlag(option: { flag: string }): string {
  return option.flag.split(' ')[0] ?? option.flag;
}

/** How messages name an option: `PORT (--port)`. */
export function optionLabel(option: ServeOption<unknown>): string {
  return `${option.env} (${longFlag(option)})`;
}

/** The default as the README and `--help` show it, or undefined when there is none to show. */
export function defaultText(option: ServeOption<unknown> | ServeSwitch): string | undefined {
  if (option.defaultText !== undefined) return option.defaultText;
  return 'default' in option && option.default !== undefined ? `\`${option.default}\`` : undefined;
}

/**
 * The value of one option: its text (from the flag, else the environment, as commander resolved
 * them) parsed, or its default parsed the same way; undefined when neither is set. A blank value
 * counts as unset.
 */
export function resolveOption<K extends ServeOptionName>(
  name: K,
  input: string | undefined,
): ServeOptionValue<K> | undefined {
  const option: ServeOption<unknown> = serveOptions[name];
  const value = optionText(name, input);
  if (value === undefined) return undefined;
  return option.parse(value, optionLabel(option)) as ServeOptionValue<K>;
}

/** The text an option resolves from: the value given, trimmed, else its default. */
export function optionText(name: ServeOptionName, input: string | undefined): string | undefined {
  const option: ServeOption<unknown> = serveOptions[name];
  const given = input?.trim();
  return given === undefined || given === '' ? option.default : given;
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

export function parseLogLevel(input: string | undefined, label = 'LOG_LEVEL (--log-level)'): LogLevel {
  const text = (input ?? defaults.logLevel).trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  throw new ConfigError(`${label}: "${input}" is not a level; use one of ${LOG_LEVELS.join(', ')}`);
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
