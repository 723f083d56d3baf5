import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { silentLogger } from '../../logging/logger.ts';
import type { BullMqDestinationConfig, Destination, OutboundMessage, SendOutcome } from '../types.ts';
import { createRedisLink, describeRedisError } from './redis-connection.ts';
import {
  DEFAULT_BROKER_TIMEOUT_MS,
  DestinationError,
  type DestinationOptions,
  redactUrl,
  withTimeout,
} from './shared.ts';

/**
 * Adds one job per message (`addBulk` per batch), named after the event type, with the event id as
 * its `jobId`: BullMQ keeps the first job of an id, so a re-send is not a second job. The job's data
 * is the parsed envelope when the body is JSON, else the body as a string.
 */
export function createBullMqDestination(
  config: BullMqDestinationConfig,
  options: DestinationOptions = {},
): Destination {
  const logger = options.logger ?? silentLogger();
  const timeoutMs = options.timeoutMs ?? DEFAULT_BROKER_TIMEOUT_MS;
  const target = redactUrl(config.url);
  const redis = createRedisLink(config.url, timeoutMs, logger, config.name);
  let bound: { client: Redis; queue: Queue } | undefined;

  /** The queue on the current connection; a new connection gets a new Queue. */
  async function queue(): Promise<Queue> {
    const client = await redis.get();
    if (bound?.client === client) return bound.queue;
    if (bound) void bound.queue.close().catch(() => {});
    const fresh = new Queue(config.queue, { connection: client });
    fresh.on('error', (e: unknown) => {
      logger.warn(
        { destination: config.name, error: describeRedisError(e) },
        'bullmq destination: queue error',
      );
    });
    bound = { client, queue: fresh };
    await withTimeout(fresh.waitUntilReady(), timeoutMs, 'preparing the queue');
    return fresh;
  }

  return {
    type: 'bullmq',
    name: config.name,
    async send(batch) {
      if (batch.length === 0) return [];
      const outcomes: (SendOutcome | undefined)[] = batch.map((m) => {
        const invalid = invalidJobId(m.eventId);
        return invalid ? { ok: false, error: invalid } : undefined;
      });
      const jobs = batch.filter((_, i) => outcomes[i] === undefined);
      if (jobs.length > 0) {
        try {
          const q = await queue();
          await withTimeout(
            q.addBulk(jobs.map((m) => ({ name: m.type, data: jobData(m), opts: { jobId: m.eventId } }))),
            timeoutMs,
            'adding the jobs',
          );
        } catch (e) {
          redis.reset();
          const error = `${target}: ${describeRedisError(e)}`;
          return outcomes.map((o) => o ?? { ok: false, error });
        }
      }
      return outcomes.map((o) => o ?? { ok: true });
    },
    async check() {
      try {
        await queue();
      } catch (e) {
        redis.reset();
        throw new DestinationError(
          `bullmq destination "${config.name}": ${target}: ${describeRedisError(e)}`,
          {
            cause: e,
          },
        );
      }
    },
    async close() {
      const current = bound;
      bound = undefined;
      await current?.queue.close().catch(() => {});
      await redis.close();
    },
  };
}

function jobData(message: OutboundMessage): unknown {
  const text = message.body.toString('utf8');
  if (/\bjson\b/i.test(message.contentType)) {
    try {
      return JSON.parse(text);
    } catch {
      // A transform may label non-JSON output as JSON: forward it as it is.
    }
  }
  return text;
}

/** BullMQ refuses integer ids (they collide with its own counters) and ids with `:`. */
function invalidJobId(id: string): string | undefined {
  if (`${Number.parseInt(id, 10)}` === id)
    return `event id "${id}" cannot be a BullMQ job id: it is an integer`;
  if (id.includes(':')) return `event id "${id}" cannot be a BullMQ job id: it contains ":"`;
  return undefined;
}
