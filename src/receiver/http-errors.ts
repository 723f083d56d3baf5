import { ProcureIqWebhooksError, toError } from '../util/errors.ts';

export interface HttpResponse {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/**
 * The one place where errors become HTTP answers: the status is the error's own `status`. An
 * error of no class of ours is 500 `internal_error` and says nothing of its inside; pass the
 * `errorId` that was logged with it so an operator can find the log line.
 */
export function toHttpResponse(error: unknown, errorId?: string): HttpResponse {
  const e = toError(error);
  const known = e instanceof ProcureIqWebhooksError;
  const status = known ? e.status : 500;
  const code = known && status !== 500 ? e.code : 'internal_error';
  const message = status === 500 ? 'internal error' : e.message;
  const headers: Record<string, string> = status === 503 ? { 'retry-after': '5' } : {};
  const body = { error: errorId === undefined ? { code, message } : { code, message, errorId } };
  return { status, body, headers };
}
