import { type Command, Option } from 'commander';
import { redactUrl } from '../config/database-url.ts';
import { defaults } from '../config/defaults.ts';
import { resolveServeConfig, type ServeInput } from '../config/resolve-config.ts';
import { createConsumer } from '../consumer.ts';
import { createLogger } from '../logging/logger.ts';
import { DEV_SECRET_PATH, ensureDevSecret } from './dev-secret.ts';
import { loadHandlers } from './load-handlers.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the webhook consumer: receive, store durably, process in the background')
    .addOption(new Option('--port <port>', 'port to listen on').env('PORT'))
    .addOption(new Option('--host <host>', 'address to bind (default: all interfaces)').env('HOST'))
    .addOption(
      new Option('--secret <secrets>', 'signing secret(s), comma-separated while rotating').env(
        'WEBHOOK_SECRET',
      ),
    )
    .addOption(
      new Option(
        '--secret-sandbox <secrets>',
        'sandbox signing secret(s); enables POST /webhooks/procureiq/sandbox',
      ).env('WEBHOOK_SECRET_SANDBOX'),
    )
    .addOption(
      new Option('--admin-token <token>', 'enables the admin API and dashboard at /admin').env('ADMIN_TOKEN'),
    )
    .addOption(
      new Option('--admin-port <port>', 'serve /admin and /metrics on this port instead').env('ADMIN_PORT'),
    )
    .addOption(
      new Option(
        '--retention <duration>',
        'purge payloads of processed events older than this, e.g. 30d',
      ).env('RETENTION'),
    )
    .addOption(
      new Option('--db <url>', 'sqlite:./file.db (default sqlite:./data/procureiq-webhooks.db)').env(
        'DATABASE_URL',
      ),
    )
    .addOption(
      new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent').env('LOG_LEVEL'),
    )
    .addOption(
      new Option(
        '--handlers <file>',
        'module (.ts or .js) whose default export maps event types to handlers',
      ).env('HANDLERS'),
    )
    .addOption(
      new Option('--worker-concurrency <n>', 'handlers running at once (default 16)').env(
        'WORKER_CONCURRENCY',
      ),
    )
    .addOption(
      new Option('--handler-timeout <duration>', 'fail an attempt that runs longer (default 30s)').env(
        'HANDLER_TIMEOUT',
      ),
    )
    .addOption(
      new Option('--retry-schedule <durations>', 'delays between attempts (default 30s,2m,10m)').env(
        'RETRY_SCHEDULE',
      ),
    )
    .addOption(
      new Option('--max-body-size <size>', 'largest accepted body (default 1mb)').env('MAX_BODY_SIZE'),
    )
    .addOption(
      new Option('--shutdown-grace <duration>', 'time for in-flight handlers on SIGTERM (default 10s)').env(
        'SHUTDOWN_GRACE',
      ),
    )
    .addOption(
      new Option('--poll-interval <duration>', 'safety-net poll for due events (default 1s)').env(
        'POLL_INTERVAL',
      ),
    )
    .addOption(
      new Option('--alert-webhook-url <url>', 'POST alerts here (Slack-compatible)').env('ALERT_WEBHOOK_URL'),
    )
    .addOption(
      new Option(
        '--signature-alert-threshold <n>',
        'signature failures per minute that raise an alert (default 10)',
      ).env('SIGNATURE_ALERT_THRESHOLD'),
    )
    .option(
      '--no-migrate',
      'do not apply database migrations at start (run "procureiq-webhooks migrate" instead)',
    )
    .option('--dev', 'development mode: generate and keep a local secret when none is set')
    .action(async (input: ServeInput) => {
      await serve(input);
    });
}

async function serve(input: ServeInput): Promise<void> {
  let devSecret: { secret: string; generated: boolean } | undefined;
  if (input.dev && !input.secret?.trim()) devSecret = ensureDevSecret();
  const config = resolveServeConfig(devSecret ? { ...input, secret: devSecret.secret } : input);
  const logger = createLogger({ level: config.logLevel });
  const consumer = createConsumer({
    secret: config.secrets,
    database: input.db ?? defaults.databaseUrl,
    logger,
    concurrency: config.workerConcurrency,
    handlerTimeout: config.handlerTimeoutMs,
    retrySchedule: config.retryScheduleMs,
    pollInterval: config.pollIntervalMs,
    shutdownGrace: config.shutdownGraceMs,
    maxBodyBytes: config.maxBodyBytes,
    signatureFailuresPerMinute: config.signatureAlertThreshold,
    migrate: input.migrate !== false,
    sqliteWriter: config.sqliteWriter,
    ...(config.sandboxSecrets.length > 0 ? { sandboxSecret: config.sandboxSecrets } : {}),
    ...(config.adminToken ? { adminToken: config.adminToken } : {}),
    ...(config.adminPort !== undefined ? { adminPort: config.adminPort } : {}),
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
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
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
