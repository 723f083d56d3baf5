import type { Destination, DestinationConfig, DestinationType } from '../types.ts';
import type { DestinationOptions } from './shared.ts';

export type { DestinationOptions } from './shared.ts';
export { DestinationError } from './shared.ts';

type Factory = (config: DestinationConfig, options: DestinationOptions) => Destination;

/**
 * Each type's module, loaded on first use: its client library (amqplib, ioredis, bullmq, NATS,
 * undici) costs start-up time and memory only when a destination of that type is configured.
 */
const FACTORIES: Record<DestinationType, () => Promise<Factory>> = {
  http: async () => (await import('./http.ts')).createHttpDestination as Factory,
  rabbitmq: async () => (await import('./rabbitmq.ts')).createRabbitMqDestination as Factory,
  'redis-stream': async () => (await import('./redis-stream.ts')).createRedisStreamDestination as Factory,
  bullmq: async () => (await import('./bullmq.ts')).createBullMqDestination as Factory,
  nats: async () => (await import('./nats.ts')).createNatsDestination as Factory,
};

/**
 * The client for one configured destination. Nothing connects until the first `send` or `check`;
 * `send` never throws: a destination that is down answers a failure per message within its
 * timeout.
 *
 * @example
 * const dest = createDestination({ type: 'redis-stream', name: 'events', url: 'redis://127.0.0.1:6379', stream: 'piq' });
 * await dest.check();
 * const outcomes = await dest.send(messages); // one SendOutcome per message, in order
 * await dest.close();
 */
export function createDestination(config: DestinationConfig, options: DestinationOptions = {}): Destination {
  let client: Promise<Destination> | undefined;
  const open = () => {
    client ??= FACTORIES[config.type]().then((create) => create(config, options));
    return client;
  };
  return {
    type: config.type,
    name: config.name,
    send: async (batch, options) => (await open()).send(batch, options),
    check: async () => (await open()).check(),
    close: async () => {
      if (client) await (await client).close();
    },
  };
}
