import { silentLogger } from '../../logging/logger.ts';
import type { Destination, RedisStreamDestinationConfig, SendOutcome } from '../types.ts';
import { createRedisLink, describeRedisError } from './redis-connection.ts';
import {
  DEFAULT_BROKER_TIMEOUT_MS,
  DestinationError,
  type DestinationOptions,
  failAll,
  redactUrl,
  withTimeout,
} from './shared.ts';

/**
 * Appends each message to a stream with `XADD` (fields `id`, `type`, `environment`, `created`,
 * `body`: the exact bytes), one pipeline per batch; `maxLength` trims with `MAXLEN ~`. A message is
 * delivered once its `XADD` answered with an entry id.
 */
export function createRedisStreamDestination(
  config: RedisStreamDestinationConfig,
  options: DestinationOptions = {},
): Destination {
  const logger = options.logger ?? silentLogger();
  const timeoutMs = options.timeoutMs ?? DEFAULT_BROKER_TIMEOUT_MS;
  const target = redactUrl(config.url);
  const redis = createRedisLink(config.url, timeoutMs, logger, config.name);
  const trim = config.maxLength === undefined ? [] : ['MAXLEN', '~', String(config.maxLength)];

  return {
    type: 'redis-stream',
    name: config.name,
    async send(batch) {
      if (batch.length === 0) return [];
      try {
        const client = await redis.get();
        const pipeline = client.pipeline();
        for (const m of batch) {
          pipeline.xadd(
            config.stream,
            ...trim,
            '*',
            'id',
            m.eventId,
            'type',
            m.type,
            'environment',
            m.environment,
            'created',
            String(m.created),
            'body',
            m.body,
          );
        }
        const results = await withTimeout(pipeline.exec(), timeoutMs, 'XADD pipeline');
        if (!results) return failAll(batch.length, `${target}: the pipeline was discarded`);
        // Redis answering an error (WRONGTYPE, OOM) leaves the connection sound; anything else
        // (a lost connection ioredis has not noticed yet) means dialing again next time.
        if (results.some(([err]) => err && (err as Error).name !== 'ReplyError')) redis.reset();
        return batch.map((_, i): SendOutcome => {
          const [err, entryId] = results[i] ?? [new Error('no reply')];
          if (err) return { ok: false, error: `XADD ${config.stream}: ${describeRedisError(err)}` };
          return typeof entryId === 'string'
            ? { ok: true }
            : { ok: false, error: 'XADD answered no entry id' };
        });
      } catch (e) {
        redis.reset();
        return failAll(batch.length, `${target}: ${describeRedisError(e)}`);
      }
    },
    async check() {
      let kind: string;
      try {
        const client = await redis.get();
        kind = await client.type(config.stream);
      } catch (e) {
        redis.reset();
        throw new DestinationError(
          `redis-stream destination "${config.name}": ${target}: ${describeRedisError(e)}`,
          {
            cause: e,
          },
        );
      }
      // A missing key is fine: the first XADD creates the stream.
      if (kind !== 'stream' && kind !== 'none')
        throw new DestinationError(
          `redis-stream destination "${config.name}": key "${config.stream}" holds a ${kind}, not a stream`,
        );
    },
    close: () => redis.close(),
  };
}
