/**
 * Every error class of this package, in one place. Each has a stable `code` and the HTTP `status`
 * a webhook response answers with when it reaches one (read only by `toHttpResponse`).
 */
export class ProcureIqWebhooksError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /** The HTTP status of a webhook response that fails with this error. @defaultValue 500 */
  get status(): number {
    return 500;
  }
}

/** An operator's request (admin API or CLI filter) is malformed: 400. */
export class InputError extends ProcureIqWebhooksError {
  constructor(message: string) {
    super('invalid_request', message);
  }
  override get status(): number {
    return 400;
  }
}

/**
 * An admin API answer other than success with a status of its own (401, 404, 405, 409, 415, 429),
 * and any headers it needs (`allow`, `retry-after`).
 */
export class AdminRequestError extends ProcureIqWebhooksError {
  readonly #status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(code, message);
    this.#status = status;
    this.headers = headers;
  }
  override get status(): number {
    return this.#status;
  }
}

/** The delivery's signature is missing, malformed, repeated or does not match any secret. */
export class SignatureError extends ProcureIqWebhooksError {
  constructor(message: string) {
    super('signature_invalid', message);
  }
  override get status(): number {
    return 401;
  }
}

/** The delivery's body is not an acceptable ProcureIQ envelope. */
export class PayloadError extends ProcureIqWebhooksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('payload_invalid', message, options);
  }
  override get status(): number {
    return 400;
  }
}

/** The body is larger than the configured limit. */
export class BodyTooLargeError extends ProcureIqWebhooksError {
  constructor(limit: number) {
    super('body_too_large', `request body exceeds the limit of ${limit} bytes`);
  }
  override get status(): number {
    return 413;
  }
}

/**
 * Request bodies being read right now already hold the in-flight budget (or this source's share of
 * it): 503, so ProcureIQ retries once the pressure is gone.
 */
export class BodyBudgetError extends ProcureIqWebhooksError {
  constructor(message: string) {
    super('server_busy', message);
  }
  override get status(): number {
    return 503;
  }
}

/** The body did not arrive in time. */
export class BodyTimeoutError extends ProcureIqWebhooksError {
  constructor(ms: number) {
    super('body_timeout', `request body did not arrive within ${ms}ms`);
  }
  override get status(): number {
    return 408;
  }
}

/** The content type is not JSON. */
export class UnsupportedMediaTypeError extends ProcureIqWebhooksError {
  constructor(contentType: string | undefined) {
    super(
      'unsupported_media_type',
      contentType
        ? `content-type "${contentType}" is not accepted; ProcureIQ deliveries are application/json`
        : 'content-type header is missing; ProcureIQ deliveries are application/json',
    );
  }
  override get status(): number {
    return 415;
  }
}

/**
 * The store is really unavailable (unreachable, closed, busy, disk failing), so the event could
 * not be recorded durably; ProcureIQ should retry. Content the store cannot hold is not this.
 */
export class StoreUnavailableError extends ProcureIqWebhooksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store_unavailable', message, options);
  }
  override get status(): number {
    return 503;
  }
}

/**
 * The database's schema is older than the code (`serve --no-migrate` before `migrate`). Its
 * message is ours (versions, the command to run), so `/readyz` may show it.
 */
export class MigrationsBehindError extends StoreUnavailableError {
  constructor(current: number, latest: number) {
    super(`migrations are behind (${current} of ${latest}); run "procureiq-webhooks migrate"`);
  }
}

/** The service is shutting down and takes no new deliveries; ProcureIQ will retry. */
export class ShuttingDownError extends ProcureIqWebhooksError {
  constructor() {
    super('shutting_down', 'the service is shutting down; retry later');
  }
  override get status(): number {
    return 503;
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

/** An error as it crosses a thread boundary (structured clone keeps no class). */
export interface SerializedError {
  name: string;
  message: string;
  code?: string | undefined;
}

export function serializeError(value: unknown): SerializedError {
  const e = toError(value);
  const code = (e as { code?: unknown }).code;
  return { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) };
}

const CLASSES: Record<string, { prototype: ProcureIqWebhooksError }> = {
  ProcureIqWebhooksError,
  SignatureError,
  PayloadError,
  BodyTooLargeError,
  BodyBudgetError,
  BodyTimeoutError,
  UnsupportedMediaTypeError,
  StoreUnavailableError,
  ShuttingDownError,
  ConfigError,
  NonRetryableError,
  HandlerTimeoutError,
};

/**
 * Rebuilds a serialized error: one of this package's classes when the name is one of them (so
 * `instanceof` and `status` hold on this side), otherwise a plain `Error` with `name` and `code`.
 */
export function deserializeError(parts: SerializedError): Error {
  const error = new Error(parts.message);
  const known = Object.hasOwn(CLASSES, parts.name) ? CLASSES[parts.name] : undefined;
  // The constructors take different arguments (a limit, a content type), so the instance is a real
  // Error given the class's prototype rather than a second call of the constructor.
  if (known) Object.setPrototypeOf(error, known.prototype);
  error.name = parts.name;
  if (parts.code !== undefined) Object.assign(error, { code: parts.code });
  return error;
}

/** Raised inside an attempt's signal when the service shuts down; the lease is given back. */
export class ShutdownAbort extends ProcureIqWebhooksError {
  constructor() {
    super('shutdown', 'the service is shutting down');
  }
}
