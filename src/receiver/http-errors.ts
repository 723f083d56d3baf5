import {
  PayloadError,
  ProcureIqWebhooksError,
  SignatureError,
  StoreUnavailableError,
  toError,
} from '../util/errors.ts';

/** The body is larger than the configured limit. */
export class BodyTooLargeError extends ProcureIqWebhooksError {
  constructor(limit: number) {
    super('body_too_large', `request body exceeds the limit of ${limit} bytes`);
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
}

/** The service is shutting down and takes no new deliveries; ProcureIQ will retry. */
export class ShuttingDownError extends ProcureIqWebhooksError {
  constructor() {
    super('shutting_down', 'the service is shutting down; retry later');
  }
}

export interface HttpResponse {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** The one place where errors become HTTP statuses. Unknown errors are 500 and say nothing inside. */
export function toHttpResponse(error: unknown): HttpResponse {
  const e = toError(error);
  const status =
    e instanceof BodyTooLargeError
      ? 413
      : e instanceof UnsupportedMediaTypeError
        ? 415
        : e instanceof SignatureError
          ? 401
          : e instanceof PayloadError
            ? 400
            : e instanceof StoreUnavailableError || e instanceof ShuttingDownError
              ? 503
              : 500;
  const code = e instanceof ProcureIqWebhooksError ? e.code : 'internal_error';
  const message = status === 500 ? 'internal error' : e.message;
  const headers: Record<string, string> = status === 503 ? { 'retry-after': '5' } : {};
  return { status, body: { error: { code, message } }, headers };
}
