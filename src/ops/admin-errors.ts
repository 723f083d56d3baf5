import { randomUUID } from 'node:crypto';
import type { Logger } from '../logging/logger.ts';
import type { HttpResponse } from '../receiver/http-errors.ts';
import { AdminRequestError, InputError, StoreUnavailableError, toError } from '../util/errors.ts';

/**
 * The one place where admin API errors become HTTP answers. Only a `StoreUnavailableError` is
 * 503; anything unexpected is 500 with an `errorId` that is logged together with the error, so an
 * operator can find the stack without the API leaking it.
 */
export function toAdminResponse(error: unknown, logger: Logger): HttpResponse {
  const e = toError(error);
  if (e instanceof InputError) return { status: 400, body: { error: { code: e.code, message: e.message } } };
  if (e instanceof AdminRequestError)
    return { status: e.status, body: { error: { code: e.code, message: e.message } }, headers: e.headers };
  if (e instanceof StoreUnavailableError) {
    logger.warn({ err: e }, 'admin API: the store is unavailable');
    return {
      status: 503,
      body: { error: { code: 'store_unavailable', message: 'the store could not answer; try again' } },
      headers: { 'retry-after': '5' },
    };
  }
  const errorId = randomUUID();
  logger.error({ err: e, errorId }, 'admin API request failed');
  return {
    status: 500,
    body: {
      error: {
        code: 'internal_error',
        message: `internal error; the service log has the details under errorId ${errorId}`,
        errorId,
      },
    },
  };
}
