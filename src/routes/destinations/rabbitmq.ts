import { type ChannelModel, type ConfirmChannel, connect, type Options } from 'amqplib';
import { silentLogger } from '../../logging/logger.ts';
import { ConfigError } from '../../util/errors.ts';
import type { Destination, OutboundMessage, RabbitMqDestinationConfig, SendOutcome } from '../types.ts';
import {
  DEFAULT_BROKER_TIMEOUT_MS,
  DestinationError,
  type DestinationOptions,
  errorMessage,
  failAll,
  procureIqHeaders,
  redactUrl,
  renderTemplate,
  withTimeout,
} from './shared.ts';

interface Link {
  connection: ChannelModel;
  channel: ConfirmChannel;
  /** A message came back unroutable: in queue mode the queue was deleted, so declare it again. */
  stale: boolean;
}

/**
 * Publishes persistent messages on a confirm channel: a message is delivered once the broker has
 * confirmed it. Messages are `mandatory`, so one the broker cannot route (no queue bound, or the
 * queue was deleted) comes back and is a failure rather than silently dropped.
 *
 * Queue mode declares a durable queue and publishes to it; exchange mode checks the exchange
 * exists and publishes with the templated routing key. The connection opens on first use; after a
 * connection or channel error the next send reconnects.
 */
export function createRabbitMqDestination(
  config: RabbitMqDestinationConfig,
  options: DestinationOptions = {},
): Destination {
  if (!config.queue === !config.exchange)
    throw new ConfigError(`rabbitmq destination "${config.name}": set exactly one of queue and exchange`);
  const logger = options.logger ?? silentLogger();
  const timeoutMs = options.timeoutMs ?? DEFAULT_BROKER_TIMEOUT_MS;
  const label = `rabbitmq destination "${config.name}"`;
  const target = redactUrl(config.url);
  const routingKey = config.routingKey ?? '{type}';

  let link: Link | undefined;
  let linking: Promise<Link> | undefined;
  let closed = false;
  /** Delivery ids published and not yet confirmed -> marks the message as returned (unroutable). */
  const awaitingConfirm = new Map<string, () => void>();

  function drop(stale: Link, reason: string): void {
    if (link !== stale) return;
    link = undefined;
    logger.warn({ destination: config.name, reason }, 'rabbitmq destination: connection dropped');
    stale.connection.close().catch(() => {});
  }

  async function open(): Promise<Link> {
    const connection = await withTimeout(
      connect(config.url, { timeout: timeoutMs }),
      timeoutMs,
      `connecting to ${target}`,
      (late) => void late.close().catch(() => {}),
    );
    try {
      const channel = await withTimeout(connection.createConfirmChannel(), timeoutMs, 'opening a channel');
      const opened: Link = { connection, channel, stale: false };
      connection.on('error', (e: unknown) => drop(opened, errorMessage(e)));
      connection.on('close', () => drop(opened, 'connection closed'));
      channel.on('error', (e: unknown) => drop(opened, errorMessage(e)));
      channel.on('close', () => drop(opened, 'channel closed'));
      // The broker returns an unroutable mandatory message before it confirms it.
      channel.on('return', (message: { properties: { headers?: Record<string, unknown> } }) => {
        const deliveryId = message.properties.headers?.['x-procureiq-delivery'];
        if (typeof deliveryId === 'string') awaitingConfirm.get(deliveryId)?.();
        if (config.queue) opened.stale = true;
      });
      if (config.queue) {
        await withTimeout(
          channel.assertQueue(config.queue, { durable: true }).catch((e: unknown) => {
            throw new Error(`queue "${config.queue}" cannot be declared: ${errorMessage(e)}`);
          }),
          timeoutMs,
          'declaring the queue',
        );
      } else if (config.exchange) {
        await withTimeout(
          channel.checkExchange(config.exchange).catch((e: unknown) => {
            throw new Error(`exchange "${config.exchange}" is not usable: ${errorMessage(e)}`);
          }),
          timeoutMs,
          'checking the exchange',
        );
      }
      return opened;
    } catch (e) {
      connection.close().catch(() => {});
      throw e;
    }
  }

  async function ensureLink(): Promise<Link> {
    if (closed) throw new Error('the destination is closed');
    if (link?.stale) drop(link, 'the queue is missing');
    if (link) return link;
    linking ??= open()
      .then((opened) => {
        if (closed) {
          opened.connection.close().catch(() => {});
          throw new Error('the destination is closed');
        }
        link = opened;
        return opened;
      })
      .finally(() => {
        linking = undefined;
      });
    return linking;
  }

  function publishOne(
    current: Link,
    message: OutboundMessage,
  ): { sent: boolean; outcome: Promise<SendOutcome> } {
    const properties: Options.Publish = {
      persistent: true,
      mandatory: true,
      messageId: message.eventId,
      type: message.type,
      timestamp: message.timestamp,
      contentType: message.contentType,
      headers: procureIqHeaders(message),
    };
    let returned = false;
    awaitingConfirm.set(message.deliveryId, () => {
      returned = true;
    });
    let sent = true;
    const outcome = new Promise<SendOutcome>((resolve) => {
      const onConfirm = (err: unknown): void => {
        awaitingConfirm.delete(message.deliveryId);
        if (err) resolve({ ok: false, error: `not confirmed by the broker: ${errorMessage(err)}` });
        else if (returned)
          resolve({
            ok: false,
            error: `unroutable: the broker has no queue for this message (${describeTarget(message)})`,
          });
        else resolve({ ok: true });
      };
      try {
        sent = config.queue
          ? current.channel.sendToQueue(config.queue, message.body, properties, onConfirm)
          : current.channel.publish(
              config.exchange ?? '',
              renderTemplate(routingKey, message),
              message.body,
              properties,
              onConfirm,
            );
      } catch (e) {
        awaitingConfirm.delete(message.deliveryId);
        resolve({ ok: false, error: `publish failed: ${errorMessage(e)}` });
      }
    });
    return { sent, outcome };
  }

  function describeTarget(message: OutboundMessage): string {
    return config.queue
      ? `queue "${config.queue}"`
      : `exchange "${config.exchange}", routing key "${renderTemplate(routingKey, message)}"`;
  }

  return {
    type: 'rabbitmq',
    name: config.name,
    async send(batch) {
      if (batch.length === 0) return [];
      let current: Link;
      try {
        current = await ensureLink();
      } catch (e) {
        return failAll(batch.length, `${target}: ${errorMessage(e)}`);
      }
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
        timer.unref();
      });
      try {
        const outcomes: Promise<SendOutcome>[] = [];
        for (const message of batch) {
          const { sent, outcome } = publishOne(current, message);
          outcomes.push(outcome);
          // The channel's buffer is full: wait for it to drain before writing more.
          if (!sent && link === current) {
            const drained = new Promise<void>((resolve) => {
              current.channel.once('drain', resolve);
              current.channel.once('close', resolve);
            });
            await Promise.race([drained, deadline]);
          }
        }
        const timedOut: SendOutcome = { ok: false, error: `no broker confirm within ${timeoutMs}ms` };
        const results = await Promise.all(
          outcomes.map((outcome) => Promise.race([outcome, deadline.then(() => timedOut)])),
        );
        // Unconfirmed messages leave the channel in an unknown state: start afresh next time.
        if (results.includes(timedOut)) drop(current, 'confirms timed out');
        return results;
      } finally {
        clearTimeout(timer);
      }
    },
    async check() {
      try {
        await ensureLink();
      } catch (e) {
        throw new DestinationError(`${label}: ${target}: ${errorMessage(e)}`, { cause: e });
      }
    },
    async close() {
      closed = true;
      await linking?.catch(() => {});
      const current = link;
      link = undefined;
      await current?.connection.close().catch(() => {});
    },
  };
}
