import { escapeChatText } from '../logging/escape.ts';
import type { Logger } from '../logging/logger.ts';
import { toError } from '../util/errors.ts';

export type AlertKind = 'dead_letter' | 'signature_failures' | 'environment_mismatch' | 'destination_paused';

export interface AlerterOptions {
  logger: Logger;
  /** Where to POST a JSON summary (Slack-compatible `text`). */
  webhookUrl?: string | undefined;
  /** Signature failures within one minute that raise an alert. @defaultValue 10 */
  signatureFailuresPerMinute?: number;
  /** @defaultValue 5s */
  sendTimeoutMs?: number;
}

export interface Alerter {
  deadLetter(info: { id: string; type: string; attempts: number; error: string }): void;
  /** A route's job is dead: its other routes and handlers are unaffected. */
  routeDeadLetter(info: { id: string; type: string; route: string; attempts: number; error: string }): void;
  /** A destination's circuit breaker opened. */
  breakerOpened(info: { destination: string; failures: number; pauseMs: number; error: string }): void;
  signatureFailure(remoteAddress: string | undefined): void;
  environmentMismatch(info: { id: string; type: string; endpoint: string; claimed: string }): void;
  /** Waits for alerts still being sent. */
  flush(): Promise<void>;
}

/**
 * Alerts as the guide asks: on dead letters and on bursts of signature failures. Each is an
 * error-level log line with a stable `alert` field, and, when configured, a POST to a chat webhook.
 * Sending failures are logged and never thrown.
 */
export function createAlerter(options: AlerterOptions): Alerter {
  const threshold = options.signatureFailuresPerMinute ?? 10;
  const sending = new Set<Promise<void>>();
  let windowStart = 0;
  let windowCount = 0;
  let windowAlerted = false;
  const sources = new Set<string>();

  /**
   * `text` is for people: a chat message built from `fields` whose untrusted values (event ids,
   * types, error text) are escaped by `chat`. The log line's message is fixed per kind, and every
   * value stays in its fields, where the JSON encoding (or pino-pretty's quoting) keeps it inert.
   */
  function raise(alert: AlertKind, text: string, fields: Record<string, unknown>): void {
    options.logger.error({ alert, ...fields }, LOG_MESSAGES[alert]);
    const url = options.webhookUrl;
    if (!url) return;
    const body = JSON.stringify({ text: `[procureiq-webhooks] ${text}`, alert, ...fields });
    const p = fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(options.sendTimeoutMs ?? 5000),
    })
      .then((res) => {
        if (!res.ok)
          options.logger.warn({ alert, status: res.status }, 'alert webhook answered with an error');
      })
      .catch((error: unknown) => {
        options.logger.warn(
          { alert, err: toError(error).message },
          'could not send alert to ALERT_WEBHOOK_URL',
        );
      })
      .finally(() => sending.delete(p));
    sending.add(p);
  }

  return {
    deadLetter(info) {
      raise(
        'dead_letter',
        `event ${chat(info.id)} (${chat(info.type)}) was dead-lettered after ${info.attempts} attempt(s): ${chat(info.error, 500)}`,
        {
          eventId: info.id,
          eventType: info.type,
          attempts: info.attempts,
          error: info.error,
        },
      );
    },
    routeDeadLetter(info) {
      raise(
        'dead_letter',
        `event ${chat(info.id)} (${chat(info.type)}) was dead-lettered on route ${chat(info.route)} after ${info.attempts} attempt(s): ${chat(info.error)}`,
        {
          eventId: info.id,
          eventType: info.type,
          route: info.route,
          attempts: info.attempts,
          error: info.error,
        },
      );
    },
    breakerOpened(info) {
      raise(
        'destination_paused',
        `destination ${chat(info.destination)} failed ${info.failures} times in a row and is paused for ${Math.round(info.pauseMs / 1000)}s: ${chat(info.error)}`,
        { destination: info.destination, pauseMs: info.pauseMs, error: info.error },
      );
    },
    environmentMismatch(info) {
      raise(
        'environment_mismatch',
        `event ${chat(info.id)} (${chat(info.type)}) says it is ${chat(info.claimed)} but came to the ${chat(info.endpoint)} endpoint; stored as invalid`,
        { eventId: info.id, eventType: info.type, endpoint: info.endpoint, claimed: info.claimed },
      );
    },
    signatureFailure(remoteAddress) {
      const now = Date.now();
      if (now - windowStart >= 60_000) {
        windowStart = now;
        windowCount = 0;
        windowAlerted = false;
        sources.clear();
      }
      windowCount++;
      if (remoteAddress && sources.size < 20) sources.add(remoteAddress);
      if (windowCount >= threshold && !windowAlerted) {
        windowAlerted = true;
        raise(
          'signature_failures',
          `${windowCount} deliveries failed signature verification within a minute`,
          {
            count: windowCount,
            thresholdPerMinute: threshold,
            sources: [...sources],
          },
        );
      }
    },
    async flush() {
      await Promise.all([...sending]);
    },
  };
}

const LOG_MESSAGES: Record<AlertKind, string> = {
  dead_letter: 'alert: an event was dead-lettered',
  signature_failures: 'alert: a burst of signature failures',
  environment_mismatch: 'alert: an event came to the endpoint of another environment',
  destination_paused: 'alert: a route destination was paused by its circuit breaker',
};

/** Untrusted text for a chat line: escaped, and cut to `max` characters. */
function chat(value: string, max = 200): string {
  const cut = value.length > max ? `${value.slice(0, max)}…` : value;
  return escapeChatText(cut);
}
