import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyTooLargeError } from '../util/errors.ts';
import { toHttpResponse } from './http-errors.ts';
import { send } from './node-server.ts';
import { readRawBody } from './read-body.ts';
import type { Receiver } from './receiver.ts';

type ExpressLikeRequest = IncomingMessage & { body?: unknown };
type Next = (error?: unknown) => void;

/**
 * Express (or Connect) middleware for one webhook route. It reads the raw body itself, so mount it
 * *before* `express.json()`, or on its own path: once a JSON parser has consumed the stream the
 * exact bytes are gone and no signature can be verified. If `express.raw()` ran first, its Buffer
 * is used as is.
 */
export function expressMiddleware(receiver: Receiver) {
  return (req: ExpressLikeRequest, res: ServerResponse, next: Next): void => {
    void (async () => {
      let body: Buffer;
      if (Buffer.isBuffer(req.body)) {
        body = req.body;
      } else if (req.body !== undefined && typeof req.body === 'object' && req.readableEnded) {
        next(
          new Error(
            'procureiq-webhooks: the request body was already parsed (express.json() or similar ran first), so the raw bytes needed to verify the signature are gone. Mount the procureiq-webhooks middleware before any body parser, or on its own path.',
          ),
        );
        return;
      } else {
        try {
          body = await readRawBody(req, receiver.maxBodyBytes);
        } catch (error) {
          if (error instanceof BodyTooLargeError) {
            res.setHeader('connection', 'close');
            send(res, receiver.tooLarge());
            return;
          }
          next(error);
          return;
        }
      }
      const response = await receiver.handle({
        headers: req.headers,
        body,
        remoteAddress: req.socket.remoteAddress,
      });
      send(res, response);
    })().catch((error: unknown) => {
      if (!res.headersSent) send(res, toHttpResponse(error));
    });
  };
}
