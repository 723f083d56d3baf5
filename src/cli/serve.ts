import { type Command, Option } from 'commander';
import { redactUrl } from '../config/database-url.ts';
import {
  defaultText,
  optionText,
  type ServeOption,
  type ServeSwitch,
  serveOptions,
  serveSwitches,
} from '../config/options.ts';
import { resolveServeConfig, type ServeInput } from '../config/resolve-config.ts';
import { createConsumer } from '../consumer.ts';
import { createLogger } from '../logging/logger.ts';
import { loadRoutesFile } from '../routes/config.ts';
import { RoutesConfigError } from '../routes/problems.ts';
import type { RoutesConfig } from '../routes/types.ts';
import { toError } from '../util/errors.ts';
import { DEV_SECRET_PATH, ensureDevSecret } from './dev-secret.ts';
import { loadHandlers } from './load-handlers.ts';

export function registerServe(program: Command): void {
  const command = program
    .command('serve')
    .description('run the webhook consumer: receive, store durably, process in the background')
    .action(async (input: ServeInput) => {
      await serve(input);
    });
  // Flags and environment variables come from the options table; commander gives a flag
  // precedence over its variable, and resolveServeConfig applies the defaults.
  for (const option of Object.values(serveOptions) as ServeOption<unknown>[]) {
    command.addOption(new Option(option.flag, helpText(option)).env(option.env));
  }
  for (const option of Object.values(serveSwitches) as ServeSwitch[]) {
    command.addOption(new Option(option.flag, helpText(option)));
  }
}

function helpText(option: ServeOption<unknown> | ServeSwitch): string {
  const shown = defaultText(option);
  const text = shown === undefined ? option.description : `${option.description} (default: ${shown})`;
  return text.replaceAll('`', '');
}

async function serve(input: ServeInput): Promise<void> {
  let devSecret: { secret: string; generated: boolean } | undefined;
  if (input.dev && !input.secret?.trim()) devSecret = ensureDevSecret();
  const config = resolveServeConfig(devSecret ? { ...input, secret: devSecret.secret } : input);
  const logger = createLogger({ level: config.logLevel });
  const routes = config.routes === undefined ? undefined : await loadRoutesOrExit(config.routes);
  const consumer = createConsumer({
    secret: config.secrets,
    database: optionText('db', input.db) ?? '',
    logger,
    concurrency: config.workerConcurrency,
    handlerTimeout: config.handlerTimeoutMs,
    retrySchedule: config.retryScheduleMs,
    pollInterval: config.pollIntervalMs,
    shutdownGrace: config.shutdownGraceMs,
    maxBodyBytes: config.maxBodyBytes,
    maxInflightBodyBytes: config.maxInflightBodyBytes,
    bodyTimeout: config.bodyTimeoutMs,
    maxConnections: config.maxConnections,
    warmUp: config.warmUp,
    metricsPublic: config.metricsPublic,
    signatureFailuresPerMinute: config.signatureAlertThreshold,
    migrate: config.migrate,
    sqliteWriter: config.sqliteWriter,
    breakerThreshold: config.breakerThreshold,
    routeYield: config.routeYieldMs,
    projections:
      config.projections.entities.length === 0
        ? 'none'
        : config.projections.entities.map((e) => e.name).join(','),
    projectionEmails: config.projections.emails,
    ...(routes ? { routes } : {}),
    ...(config.sandboxSecrets.length > 0 ? { sandboxSecret: config.sandboxSecrets } : {}),
    ...(config.adminToken ? { adminToken: config.adminToken } : {}),
    ...(config.adminPort !== undefined ? { adminPort: config.adminPort } : {}),
    ...(config.adminHost !== undefined ? { adminHost: config.adminHost } : {}),
    ...(config.retentionMs !== undefined ? { retention: config.retentionMs } : {}),
    ...(config.alertWebhookUrl ? { alertWebhookUrl: config.alertWebhookUrl } : {}),
  });
  try {
    if (config.handlers) await loadHandlers(config.handlers, consumer);
    const { port, adminPort } = await consumer.listen({ port: config.port, host: config.host });
    const database =
      config.database.kind === 'sqlite' ? `sqlite:${config.database.path}` : redactUrl(config.database.url);
    logger.info(
      {
        port,
        database,
        secrets: config.secrets.length,
        handlers: config.handlers ?? null,
        workerConcurrency: config.workerConcurrency,
        retrySchedule: config.retryScheduleMs,
        sandbox: config.sandboxSecrets.length > 0,
        admin: config.adminToken ? `port ${adminPort ?? port}` : 'off',
        retentionMs: config.retentionMs ?? null,
      },
      `listening on port ${port}`,
    );
    if (config.dev) printDevBanner(port, devSecret, Boolean(config.handlers));
  } catch (error) {
    await consumer.close().catch(() => {});
    throw error;
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info(
      { signal, graceMs: config.shutdownGraceMs },
      'shutting down: refusing new deliveries, draining handlers',
    );
    consumer.close().then(
      () => {
        logger.info('stopped cleanly');
        logger.flush();
        process.exitCode = 0;
        setImmediate(() => process.exit(0));
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error during shutdown');
        logger.flush();
        setImmediate(() => process.exit(1));
      },
    );
  };
  const routesFile = config.routes;
  if (routesFile !== undefined) {
    // SIGHUP reloads the routes file: a valid one applies to events stored from now on; an invalid
    // one is refused with the same messages as at start-up, and the running routes stay.
    // One reload at a time, and a signal during one reads the file again after it: two loads
    // finishing out of order applied the older file last, and a failed reload went unhandled.
    let reloading = false;
    let again = false;
    const reload = async () => {
      if (reloading) {
        again = true;
        return;
      }
      reloading = true;
      try {
        do {
          again = false;
          let next: RoutesConfig;
          try {
            next = await loadRoutesFile(routesFile);
          } catch (error) {
            logger.error(
              { file: routesFile, problems: routeProblems(error) },
              'routes file refused on reload; the running routes stay',
            );
            continue;
          }
          try {
            await consumer.reloadRoutes(next);
            logger.info({ routes: next.routes.map((r) => r.name), file: routesFile }, 'routes reloaded');
          } catch (error) {
            logger.error(
              { file: routesFile, err: toError(error) },
              'routes reload failed; the running routes stay',
            );
          }
        } while (again);
      } finally {
        reloading = false;
      }
    };
    process.on('SIGHUP', () => void reload());
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** Loads the routes file; every problem is printed with its path, and start-up exits 1. */
async function loadRoutesOrExit(file: string): Promise<RoutesConfig> {
  try {
    return await loadRoutesFile(file);
  } catch (error) {
    // The message of `routes list` and the others: one format, RoutesConfigError's.
    const refused =
      error instanceof RoutesConfigError ? error : new RoutesConfigError(routeProblems(error), file);
    process.stderr.write(`procureiq-webhooks: ${refused.message}\n`);
    process.exit(1);
  }
}

function routeProblems(error: unknown): string[] {
  return error instanceof RoutesConfigError ? error.problems : [toError(error).message];
}

function printDevBanner(
  port: number,
  dev: { secret: string; generated: boolean } | undefined,
  hasHandlers: boolean,
) {
  const url = `http://localhost:${port}/webhooks/procureiq`;
  const lines = [
    '',
    `  procureiq-webhooks is running in dev mode on ${url}`,
    '',
    dev
      ? `  Signing secret: ${dev.secret}\n  (${dev.generated ? 'generated now and ' : ''}kept in ${DEV_SECRET_PATH}; restarts reuse it)`
      : '  Signing secret: from WEBHOOK_SECRET / --secret',
    '',
    '  Send a signed test event from another terminal:',
    `    npx procureiq-webhooks send order.created --url ${url}${dev ? ` --secret ${dev.secret}` : ''}`,
    '  Then see what was stored:',
    '    npx procureiq-webhooks events list',
    '',
    hasHandlers
      ? '  Events are processed by your handlers file.'
      : '  No --handlers file given: events are stored and marked "unhandled".\n  Try: npm start -- --handlers ./examples/handlers.ts',
    '',
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}
