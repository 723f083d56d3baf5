import { Redis } from 'ioredis';
import type { Logger } from '../../logging/logger.ts';
import { errorMessage, withTimeout } from './shared.ts';

/** An ioredis error as an operator should read it. */
export function describeRedisError(e: unknown): string {
  const message = errorMessage(e);
  // What ioredis says of a command sent on a connection that was just lost.
  if (message.startsWith("Stream isn't writeable")) return 'the connection to Redis was lost';
  return message;
}

/**
 * One Redis connection opened on demand and replaced after it ends. ioredis' own reconnect loop
 * and offline queue are off: while Redis is down a command fails at once instead of waiting in a
 * queue, and the next use dials again. Every command is bounded by `timeoutMs`.
 */
export interface RedisLink {
  /** A ready client, connecting first if there is none. Rejects within `timeoutMs`. */
  get(): Promise<Redis>;
  /** Ends the current client so the next `get` dials again (after a timeout, say). */
  reset(): void;
  close(): Promise<void>;
}

export function createRedisLink(url: string, timeoutMs: number, logger: Logger, name: string): RedisLink {
  let client: Redis | undefined;
  let connecting: Promise<Redis> | undefined;
  let closed = false;

  async function dial(): Promise<Redis> {
    const fresh = new Redis(url, {
      // Named, so an operator can tell it apart in CLIENT LIST.
      connectionName: `procureiq-webhooks:${name.replace(/[^\w.:-]/g, '_')}`,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
    });
    fresh.on('error', (e: unknown) => {
      logger.warn({ destination: name, error: errorMessage(e) }, 'redis destination: connection error');
    });
    try {
      await withTimeout(fresh.connect(), timeoutMs, 'connecting to Redis');
    } catch (e) {
      fresh.disconnect();
      throw e;
    }
    if (closed) {
      fresh.disconnect();
      throw new Error('the destination is closed');
    }
    client = fresh;
    return fresh;
  }

  return {
    async get() {
      if (closed) throw new Error('the destination is closed');
      if (client?.status === 'ready') return client;
      client?.disconnect();
      client = undefined;
      connecting ??= dial().finally(() => {
        connecting = undefined;
      });
      return connecting;
    },
    reset() {
      client?.disconnect();
      client = undefined;
    },
    async close() {
      closed = true;
      await connecting?.catch(() => {});
      const current = client;
      client = undefined;
      if (current?.status === 'ready') await current.quit().catch(() => current.disconnect());
      else current?.disconnect();
    },
  };
}
