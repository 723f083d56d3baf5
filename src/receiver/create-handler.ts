import { BodyBudgetError, BodyTimeoutError, BodyTooLargeError } from '../util/errors.ts';
import { type HttpResponse, toHttpResponse } from './http-errors.ts';
import type { IncomingDelivery, Receiver } from './receiver.ts';

/**
 * How one runtime reads its request and writes its answer; everything else is `createHandler`'s
 * (as octokit/webhooks' `createMiddleware` takes getPayload / getRequestHeader / handleResponse).
 * `Req` and `Res` are the runtime's request and response objects, `Out` what a handler returns.
 */
export interface RuntimeBindings<Req, Res, Out> {
  /**
   * The exact raw body; rejects with `BodyTooLargeError` once it passes `limit` bytes, and may
   * reject with `BodyBudgetError` (503) or `BodyTimeoutError` (408).
   */
  getPayload(req: Req, limit: number, res: Res): Promise<Uint8Array>;
  /** Request headers, names lower-cased. */
  getRequestHeaders(req: Req): IncomingDelivery['headers'];
  getRemoteAddress?(req: Req): string | undefined;
  /** Writes the receiver's answer. `close`: the body was cut off, so close the connection. */
  handleResponse(response: HttpResponse, context: { req: Req; res: Res; close: boolean }): Out;
  /** The body could not be read for a reason other than its size (client gone, a parser ran first). */
  handlePayloadError(error: unknown, context: { req: Req; res: Res }): Out;
}

/**
 * The one HTTP flow of every adapter: read the raw body (413 past the receiver's limit, 503 past
 * the in-flight budget, 408 when it is too slow; each closes the connection), hand it
 * to the receiver with the headers, write the answer.
 */
export function createHandler<Req, Res, Out>(bindings: RuntimeBindings<Req, Res, Out>) {
  return async function handleRequest(receiver: Receiver, req: Req, res: Res): Promise<Out> {
    let body: Uint8Array;
    try {
      body = await bindings.getPayload(req, receiver.maxBodyBytes, res);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        return bindings.handleResponse(receiver.tooLarge(), { req, res, close: true });
      }
      if (error instanceof BodyBudgetError || error instanceof BodyTimeoutError) {
        return bindings.handleResponse(toHttpResponse(error), { req, res, close: true });
      }
      return bindings.handlePayloadError(error, { req, res });
    }
    const response = await receiver.handle({
      headers: bindings.getRequestHeaders(req),
      body,
      remoteAddress: bindings.getRemoteAddress?.(req),
    });
    return bindings.handleResponse(response, { req, res, close: false });
  };
}
