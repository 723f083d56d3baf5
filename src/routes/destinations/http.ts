import { Agent, request } from 'undici';
import { silentLogger } from '../../logging/logger.ts';
import { SIGNATURE_HEADER, sign } from '../../signature/sign.ts';
import type { Destination, HttpDestinationConfig, OutboundMessage, SendOutcome } from '../types.ts';
import { DestinationError, type DestinationOptions, errorMessage, mapLimit, redactUrl } from './shared.ts';

/** Requests of one batch in flight at once. */
const CONCURRENCY = 16;
/** A message the batch's deadline stopped before it left. */
const NOT_SENT: SendOutcome = {
  ok: false,
  error: 'not sent: the batch reached its deadline (its leases would have run out)',
  notSent: true,
};
/** How much of an error answer's body goes into the outcome's error. */
const EXCERPT_BYTES = 200;

/**
 * Delivers each message as a POST of its exact bytes, signed like ProcureIQ signs its own
 * deliveries (`x-procureiq-signature: sha256=<HMAC of the body>`; the timestamp is not signed), so
 * a receiver written from the ProcureIQ guide accepts a forwarded event unchanged.
 *
 * 2xx is delivered; 429 and 503 carry `Retry-After` as `retryAfterMs`; any other answer, a timeout
 * or a connection error is a failure. Connections are kept alive between batches.
 */
export function createHttpDestination(
  config: HttpDestinationConfig,
  options: DestinationOptions = {},
): Destination {
  const logger = options.logger ?? silentLogger();
  const target = redactUrl(config.url);
  // Lower-cased, so a configured `Content-Type` cannot go out next to ours.
  const extraHeaders = Object.fromEntries(
    Object.entries(config.headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  let agent: Agent | undefined;
  const dispatcher = (): Agent => {
    agent ??= new Agent({
      connect: { timeout: config.timeoutMs },
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
      keepAliveTimeout: 30_000,
    });
    return agent;
  };

  async function post(message: OutboundMessage): Promise<SendOutcome> {
    const headers: Record<string, string> = {
      ...extraHeaders,
      'content-type': message.contentType,
      'x-procureiq-event': message.type,
      'x-procureiq-timestamp': String(message.timestamp),
      'x-procureiq-delivery': message.deliveryId,
      'idempotency-key': message.eventId,
    };
    if (config.secret) headers[SIGNATURE_HEADER] = sign(config.secret, message.body);
    try {
      const res = await request(config.url, {
        method: 'POST',
        dispatcher: dispatcher(),
        headers,
        body: message.body,
        signal: AbortSignal.timeout(config.timeoutMs),
      });
      if (res.statusCode >= 200 && res.statusCode < 300) {
        await res.body.dump();
        return { ok: true };
      }
      const excerpt = await readExcerpt(res.body);
      const error = `HTTP ${res.statusCode}${excerpt ? `: ${excerpt}` : ''}`;
      if (res.statusCode === 429 || res.statusCode === 503) {
        const retryAfterMs = parseRetryAfter(headerValue(res.headers['retry-after']), Date.now());
        if (retryAfterMs !== undefined) return { ok: false, error, retryAfterMs };
      }
      return { ok: false, error };
    } catch (e) {
      const error = isTimeout(e) ? `timed out after ${config.timeoutMs}ms` : errorMessage(e);
      logger.debug({ destination: config.name, url: target, error }, 'http destination: request failed');
      return { ok: false, error: `POST ${target}: ${error}` };
    }
  }

  return {
    type: 'http',
    name: config.name,
    // 16 at a time, so a batch of 250 to a slow endpoint takes many timeouts: past `startBy`, the
    // rest are answered not sent rather than sent after their leases ran out (and sent again).
    send: (batch, options) =>
      mapLimit(batch, CONCURRENCY, (message) =>
        options?.startBy !== undefined && Date.now() > options.startBy
          ? Promise.resolve(NOT_SENT)
          : post(message),
      ),
    async check() {
      // Any HTTP answer proves the endpoint is reachable: receivers often refuse HEAD (405).
      try {
        const res = await request(config.url, {
          method: 'HEAD',
          dispatcher: dispatcher(),
          signal: AbortSignal.timeout(config.timeoutMs),
        });
        await res.body.dump();
      } catch (e) {
        const reason = isTimeout(e) ? `timed out after ${config.timeoutMs}ms` : errorMessage(e);
        throw new DestinationError(`http destination "${config.name}": ${target} is unreachable: ${reason}`, {
          cause: e,
        });
      }
    },
    async close() {
      const closing = agent;
      agent = undefined;
      await closing?.close();
    },
  };
}

/**
 * `Retry-After` as milliseconds from `now`: delay-seconds or an HTTP date (a date in the past is
 * 0). Undefined when absent or unparsable.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date names its weekday or month; Date.parse alone would take '-5' as a year.
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function isTimeout(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  const code = (e as { code?: unknown } | null)?.code;
  return (
    name === 'TimeoutError' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  );
}

/** The start of an error answer's body, on one line; the rest is discarded. */
async function readExcerpt(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= EXCERPT_BYTES) break;
    }
  } catch {
    // A body cut short still leaves the status to report.
  }
  body.destroy();
  const text = Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString('utf8').replace(/\s+/g, ' ');
  return size > EXCERPT_BYTES ? `${text.trim()}…` : text.trim();
}
