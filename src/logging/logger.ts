import { pino } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from '../config/defaults.ts';

export type Logger = pino.Logger;

/** Paths that must never reach a log line, wherever they appear. */
const REDACT = [
  'secret',
  'secrets',
  '*.secret',
  '*.secrets',
  'headers["x-procureiq-signature"]',
  'headers.authorization',
  'adminToken',
  '*.adminToken',
  'config.secrets',
];

/**
 * Structured JSON logs (pino); human-readable when stdout is a terminal.
 * @example const log = createLogger({ level: 'debug' });
 */
export function createLogger(
  options: { level?: LogLevel; pretty?: boolean; destination?: NodeJS.WritableStream } = {},
) {
  const usePretty = options.pretty ?? (process.stdout.isTTY === true && !options.destination);
  const base = {
    level: options.level ?? 'info',
    base: { service: 'procureiq-webhooks' },
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  if (usePretty)
    return pino(
      base,
      pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' }),
    );
  return pino(base, options.destination ?? pino.destination({ dest: 1, sync: false, minLength: 0 }));
}

/** A logger that drops everything, for tests and for library users who bring none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
