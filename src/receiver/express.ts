import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHandler } from './create-handler.ts';
import { toHttpResponse } from './http-errors.ts';
import { send } from './node-server.ts';
import { readRawBody } from './read-body.ts';
import type { Receiver } from './receiver.ts';

type ExpressLikeRequest = IncomingMessage & { body?: unknown };
type Next = (error?: unknown) => void;

const handleExpress = createHandler<ExpressLikeRequest, { res: ServerResponse; next: Next }, void>({
  getPayload(req, limit) {
    if (Buffer.isBuffer(req.body)) return Promise.resolve(req.body);
    if (req.body !== undefined && typeof req.body === 'object' && req.readableEnded) {
      return Promise.reject(
        new Error(
          'procureiq-webhooks: the request body was already parsed (express.json() or similar ran first), so the raw bytes needed to verify the signature are gone. Mount the procureiq-webhooks middleware before any body parser, or on its own path.',
        ),
      );
    }
    return readRawBody(req, limit);
  },
  getRequestHeaders: (req) => req.headers,
  getRemoteAddress: (req) => req.socket.remoteAddress,
  handleResponse(response, { res: { res }, close }) {
    if (close) res.setHeader('connection', 'close');
    send(res, response);
  },
  handlePayloadError(error, { res: { next } }) {
    next(error);
  },
});

/**
 * Express (or Connect) middleware for one webhook route. It reads the raw body itself, so mount it
 * *before* `express.json()`, or on its own path: once a JSON parser has consumed the stream the
 * exact bytes are gone and no signature can be verified. If `express.raw()` ran first, its Buffer
 * is used as is.
 */
export function expressMiddleware(receiver: Receiver) {
  return (req: ExpressLikeRequest, res: ServerResponse, next: Next): void => {
    handleExpress(receiver, req, { res, next }).catch((error: unknown) => {
      if (!res.headersSent) send(res, toHttpResponse(error));
    });
  };
}
