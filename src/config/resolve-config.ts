import { type ProjectionsConfig, resolveProjectionsConfig } from '../projections/registry.ts';
import { ConfigError, toError } from '../util/errors.ts';
import type { DatabaseLocation } from './database-url.ts';
import { defaults, type LogLevel } from './defaults.ts';
import { parseDuration } from './duration.ts';
import {
  optionLabel,
  resolveOption,
  type ServeOptionName,
  type ServeOptionValue,
  serveOptions,
  type serveSwitches,
} from './options.ts';

export { parseInteger, parseLogLevel, parseSecrets } from './options.ts';

/**
 * Options for `serve` as given by flags and environment variables (all strings, unvalidated),
 * keyed as in the options table (`serveOptions`).
 */
export type ServeInput = { [K in ServeOptionName]?: string | undefined } & {
  [K in keyof typeof serveSwitches]?: boolean | undefined;
};

/** Validated options for `serve`. */
export interface ServeConfig {
  port: number;
  host: string | undefined;
  /** Secrets that verify deliveries; empty only in dev mode before a secret is generated. */
  secrets: string[];
  database: DatabaseLocation;
  logLevel: LogLevel;
  handlers: string | undefined;
  routes: string | undefined;
  projections: ProjectionsConfig;
  breakerThreshold: number;
  routeYieldMs: number;
  workerConcurrency: number;
  handlerTimeoutMs: number;
  retryScheduleMs: number[];
  maxBodyBytes: number;
  maxInflightBodyBytes: number;
  bodyTimeoutMs: number;
  maxConnections: number;
  warmUp: number;
  shutdownGraceMs: number;
  pollIntervalMs: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  alertWebhookUrl: string | undefined;
  signatureAlertThreshold: number;
  dev: boolean;
  /** Apply pending migrations at start (`--no-migrate` turns it off). */
  migrate: boolean;
  sqliteWriter: 'thread' | 'inline';
  sandboxSecrets: string[];
  adminToken: string | undefined;
  adminPort: number | undefined;
  adminHost: string | undefined;
  /** Serve `/metrics` on the webhook port without a token. */
  metricsPublic: boolean;
  retentionMs: number | undefined;
}

/**
 * Resolves and validates `serve` options once, by the options table: the value given (flag, else
 * environment variable), else the default. Every problem is reported together, each with what
 * to change, so start-up fails with one actionable message.
 */
export function resolveServeConfig(input: ServeInput): ServeConfig {
  const problems: string[] = [];
  const read = <K extends ServeOptionName>(name: K): ServeOptionValue<K> | undefined => {
    try {
      return resolveOption(name, input[name]);
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
      return undefined;
    }
  };

  const port = read('port');
  const logLevel = read('logLevel');
  const database = read('db');
  const secrets = read('secret') ?? [];
  // A blank secret counts as unset; one of only commas was reported by `read`.
  if (secrets.length === 0 && !input.dev && (input.secret ?? '').trim() === '') {
    problems.push(
      `${optionLabel(serveOptions.secret)} is required: set it to the signing secret from your ProcureIQ webhook settings (several may be given, comma-separated, while rotating), or run "serve --dev" to use a generated local secret`,
    );
  }
  const workerConcurrency = read('workerConcurrency');
  const handlerTimeoutMs = read('handlerTimeout');
  const retryScheduleMs = read('retrySchedule');
  const maxBodyBytes = read('maxBodySize');
  const maxInflightBodyBytes = read('maxInflightBodyBytes');
  const bodyTimeoutMs = read('bodyTimeout');
  const maxConnections = read('maxConnections');
  const warmUp = read('warmUp');
  const metricsPublic = read('metricsPublic');
  const shutdownGraceMs = read('shutdownGrace');
  const pollIntervalMs = read('pollInterval');
  const signatureAlertThreshold = read('signatureAlertThreshold');
  const alertWebhookUrl = read('alertWebhookUrl');
  const sqliteWriter = read('sqliteWriter');
  const sandboxSecrets = read('secretSandbox') ?? [];
  if (sandboxSecrets.some((secret) => secrets.includes(secret))) {
    problems.push(
      `${optionLabel(serveOptions.secretSandbox)}: a sandbox secret is also a production secret; each environment needs its own, or sandbox events would verify on the production endpoint`,
    );
  }
  const adminToken = read('adminToken');
  const adminPort = read('adminPort');
  const retentionMs = read('retention');
  const breakerThreshold = read('breakerThreshold');
  const routeYieldMs = read('routeYield');
  let projections: ProjectionsConfig | undefined;
  try {
    projections = resolveProjectionsConfig({
      projections: read('projections'),
      projectionEmails: read('projectionEmails'),
    });
  } catch (error) {
    problems.push(toError(error).message);
  }
  const adminHost = read('adminHost');
  if (adminHost !== undefined && adminPort === undefined) {
    problems.push(
      `${optionLabel(serveOptions.adminHost)} needs ${optionLabel(serveOptions.adminPort)}: without it the admin surface shares the webhook port and HOST`,
    );
  }

  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
  // Every option with a default has a value here: only a problem, reported above, leaves it unset.
  return {
    port: port!,
    host: read('host') ?? defaults.host,
    secrets,
    database: database!,
    logLevel: logLevel!,
    handlers: read('handlers'),
    routes: read('routes'),
    projections: projections!,
    breakerThreshold: breakerThreshold!,
    routeYieldMs: routeYieldMs!,
    workerConcurrency: workerConcurrency!,
    handlerTimeoutMs: handlerTimeoutMs!,
    retryScheduleMs: retryScheduleMs!,
    maxBodyBytes: maxBodyBytes!,
    maxInflightBodyBytes: maxInflightBodyBytes!,
    bodyTimeoutMs: bodyTimeoutMs!,
    maxConnections: maxConnections!,
    warmUp: warmUp!,
    shutdownGraceMs: shutdownGraceMs!,
    pollIntervalMs: pollIntervalMs!,
    requestTimeoutMs: parseDuration(defaults.requestTimeout),
    headersTimeoutMs: parseDuration(defaults.headersTimeout),
    alertWebhookUrl,
    signatureAlertThreshold: signatureAlertThreshold!,
    dev: input.dev === true,
    migrate: input.migrate !== false,
    sqliteWriter: sqliteWriter!,
    sandboxSecrets,
    adminToken,
    adminPort,
    adminHost,
    metricsPublic: metricsPublic!,
    retentionMs,
  };
}
