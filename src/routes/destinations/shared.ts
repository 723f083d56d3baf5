import type { Logger } from '../../logging/logger.ts';
import { ProcureIqWebhooksError, toError } from '../../util/errors.ts';
import type { OutboundMessage, SendOutcome } from '../types.ts';

/** What every destination factory accepts besides its config. */
export interface DestinationOptions {
  /** Connection trouble is logged at `warn`; messages and secrets never are. @defaultValue silent */
  logger?: Logger | undefined;
  /**
   * Bounds every broker operation (connect, confirm, ack) of the brokers, whose configs carry no
   * timeout. The HTTP destination uses its config's `timeoutMs`. @defaultValue 10s
   */
  timeoutMs?: number | undefined;
}

export const DEFAULT_BROKER_TIMEOUT_MS = 10_000;

/** A destination cannot be reached, or its target (queue, stream, exchange) is missing. */
export class DestinationError extends ProcureIqWebhooksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('destination_unavailable', message, options);
  }
}

/** The metadata every destination forwards alongside the body (headers, message properties). */
export function procureIqHeaders(message: OutboundMessage): Record<string, string> {
  return {
    'x-procureiq-event': message.type,
    'x-procureiq-timestamp': String(message.timestamp),
    'x-procureiq-delivery': message.deliveryId,
    'x-procureiq-environment': message.environment,
  };
}

/** Replaces `{type}` and `{environment}` in a routing key or subject template. */
export function renderTemplate(
  template: string,
  message: Pick<OutboundMessage, 'type' | 'environment'>,
): string {
  return template.replaceAll('{type}', message.type).replaceAll('{environment}', message.environment);
}

/** The URL without its password, for error messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable url)';
  }
}

export function errorMessage(value: unknown): string {
  const error = toError(value);
  // Aggregate errors (e.g. a refused connection tried on IPv4 and IPv6) carry an empty message.
  if (error.message) return error.message;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error.name;
}

export function failAll(count: number, error: string): SendOutcome[] {
  return Array.from({ length: count }, () => ({ ok: false, error }));
}

/**
 * Settles `promise` or rejects after `ms`. The timer never keeps the process alive. `onLate` gets
 * the value if it arrives after the deadline, so a connection opened too late can be closed.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  onLate?: (value: T) => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`${what} timed out after ${ms}ms`));
    }, ms);
    timer.unref();
  });
  promise.then(
    (value) => {
      if (timedOut) onLate?.(value);
    },
    () => {},
  );
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
