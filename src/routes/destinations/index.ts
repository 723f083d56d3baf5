import type { Destination, DestinationConfig } from '../types.ts';
import { createBullMqDestination } from './bullmq.ts';
import { createHttpDestination } from './http.ts';
import { createNatsDestination } from './nats.ts';
import { createRabbitMqDestination } from './rabbitmq.ts';
import { createRedisStreamDestination } from './redis-stream.ts';
import type { DestinationOptions } from './shared.ts';

export type { DestinationOptions } from './shared.ts';
export { DestinationError } from './shared.ts';

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
  switch (config.type) {
    case 'http':
      return createHttpDestination(config, options);
    case 'rabbitmq':
      return createRabbitMqDestination(config, options);
    case 'redis-stream':
      return createRedisStreamDestination(config, options);
    case 'bullmq':
      return createBullMqDestination(config, options);
    case 'nats':
      return createNatsDestination(config, options);
  }
}
