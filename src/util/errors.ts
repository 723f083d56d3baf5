/** Base class: every error of this package has a stable `code`. */
export class ProcureIqWebhooksError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The delivery's signature is missing, malformed, repeated or does not match any secret. */
export class SignatureError extends ProcureIqWebhooksError {
  constructor(message: string) {
    super('signature_invalid', message);
  }
}

/** The delivery's body is not an acceptable ProcureIQ envelope. */
export class PayloadError extends ProcureIqWebhooksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('payload_invalid', message, options);
  }
}

/** The store could not durably record or read an event. */
export class StoreUnavailableError extends ProcureIqWebhooksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store_unavailable', message, options);
  }
}

/** An option or environment variable has a value that cannot be used. */
export class ConfigError extends ProcureIqWebhooksError {
  constructor(message: string) {
    super('config_invalid', message);
  }
}

/**
 * Throw from a handler to dead-letter the event at once, without further retries
 * (e.g. the payload refers to something that will never exist).
 *
 * @example
 * consumer.on('order.shipped', async (event) => {
 *   if (!knownCarrier(event.data.carrierId)) throw new NonRetryableError('unknown carrier');
 * });
 */
export class NonRetryableError extends ProcureIqWebhooksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('non_retryable', message, options);
  }
}

/** A handler ran past its timeout. */
export class HandlerTimeoutError extends ProcureIqWebhooksError {
  constructor(ms: number) {
    super('handler_timeout', `handler timed out after ${ms}ms`);
  }
}

/** Coerces anything thrown into an `Error`, once, so callers never assume `e.message`. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  try {
    return new Error(JSON.stringify(value));
  } catch {
    return new Error(String(value));
  }
}
