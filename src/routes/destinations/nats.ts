import { type JetStreamClient, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { silentLogger } from '../../logging/logger.ts';
import type { Destination, NatsDestinationConfig, OutboundMessage, SendOutcome } from '../types.ts';
import {
  DEFAULT_BROKER_TIMEOUT_MS,
  DestinationError,
  type DestinationOptions,
  errorMessage,
  failAll,
  mapLimit,
  procureIqHeaders,
  redactUrl,
  renderTemplate,
  withTimeout,
} from './shared.ts';

/** Publishes of one batch awaiting their ack at once. */
const CONCURRENCY = 64;

interface Link {
  nc: NatsConnection;
  js: JetStreamClient;
}

/**
 * Publishes each message to JetStream on the templated subject with `msgID` = event id, so the
 * stream drops a re-send within its duplicate window (a duplicate ack still counts as delivered).
 * A message is delivered once the stream acked it. Reconnection is lazy: a closed connection is
 * replaced on the next send.
 */
export function createNatsDestination(
  config: NatsDestinationConfig,
  options: DestinationOptions = {},
): Destination {
  const logger = options.logger ?? silentLogger();
  const timeoutMs = options.timeoutMs ?? DEFAULT_BROKER_TIMEOUT_MS;
  const label = `nats destination "${config.name}"`;
  const target = redactUrl(config.url);
  let link: Link | undefined;
  let linking: Promise<Link> | undefined;
  let closed = false;

  async function open(): Promise<Link> {
    const nc = await withTimeout(
      // noAsyncTraces: otherwise every JetStream publish (a request) captures a stack trace for an
      // error it will almost never raise; the maintainers' opt-in for throughput. Failures still
      // carry their message, which is what the job's history records.
      connect({ servers: config.url, timeout: timeoutMs, reconnect: false, noAsyncTraces: true }),
      timeoutMs,
      `connecting to ${target}`,
      (late) => void late.close().catch(() => {}),
    );
    if (closed) {
      await nc.close().catch(() => {});
      throw new Error('the destination is closed');
    }
    const opened: Link = { nc, js: jetstream(nc, { timeout: timeoutMs }) };
    void nc.closed().then((err) => {
      if (link === opened) link = undefined;
      if (err)
        logger.warn(
          { destination: config.name, error: errorMessage(err) },
          'nats destination: connection closed',
        );
    });
    link = opened;
    return opened;
  }

  async function ensureLink(): Promise<Link> {
    if (closed) throw new Error('the destination is closed');
    if (link && !link.nc.isClosed()) return link;
    linking ??= open().finally(() => {
      linking = undefined;
    });
    return linking;
  }

  async function publish(current: Link, message: OutboundMessage): Promise<SendOutcome> {
    const subject = renderTemplate(config.subject, message);
    const h = headers();
    for (const [name, value] of Object.entries(procureIqHeaders(message))) h.set(name, value);
    h.set('content-type', message.contentType);
    try {
      await current.js.publish(subject, message.body, {
        msgID: message.eventId,
        headers: h,
        timeout: timeoutMs,
      });
      return { ok: true };
    } catch (e) {
      return { ok: false, error: `publish to "${subject}": ${describePublishError(e, subject)}` };
    }
  }

  return {
    type: 'nats',
    name: config.name,
    async send(batch) {
      if (batch.length === 0) return [];
      let current: Link;
      try {
        current = await ensureLink();
      } catch (e) {
        return failAll(batch.length, `${target}: ${errorMessage(e)}`);
      }
      return mapLimit(batch, CONCURRENCY, (message) => publish(current, message));
    },
    async check() {
      // The subject's template parts become wildcards: some stream must capture such subjects.
      const probe = probeSubject(config.subject);
      try {
        const current = await ensureLink();
        const jsm = await withTimeout(
          jetstreamManager(current.nc, { timeout: timeoutMs }),
          timeoutMs,
          'JetStream',
        );
        await withTimeout(jsm.streams.find(probe), timeoutMs, 'finding the stream');
      } catch (e) {
        const reason =
          (e as Error | null)?.name === 'StreamNotFoundError'
            ? `no JetStream stream covers subject "${probe}": add one whose subjects include it`
            : errorMessage(e);
        throw new DestinationError(`${label}: ${target}: ${reason}`, { cause: e });
      }
    },
    async close() {
      closed = true;
      await linking?.catch(() => {});
      const current = link;
      link = undefined;
      await current?.nc.close().catch(() => {});
    },
  };
}

/** `{environment}` -> `*`; `{type}` (which has dots) -> `>` at the end of the subject, else `*`. */
function probeSubject(template: string): string {
  return template
    .replaceAll('{environment}', '*')
    .replace(/\{type\}$/, '>')
    .replaceAll('{type}', '*');
}

function describePublishError(e: unknown, subject: string): string {
  const name = (e as Error | null)?.name;
  // With no stream on the subject nobody answers the publish; the client calls that "not enabled".
  if (name === 'JetStreamNotEnabled' || name === 'NoRespondersError')
    return `no JetStream stream covers subject "${subject}" (or JetStream is not enabled)`;
  return errorMessage(e);
}
