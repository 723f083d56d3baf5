import { BodyTooLargeError } from '../util/errors.ts';
import { createHandler } from './create-handler.ts';
import type { Receiver } from './receiver.ts';

/**
 * A web-standard handler, `(Request) => Promise<Response>`, for Hono, Next.js route handlers,
 * Deno, Bun or any fetch-style server.
 * @example app.post('/webhooks/procureiq', (c) => handler(c.req.raw)) // Hono
 */
export function webHandler(receiver: Receiver): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== 'POST') {
      return json(405, { error: { code: 'method_not_allowed', message: 'use POST' } }, { allow: 'POST' });
    }
    return handleWeb(receiver, request, undefined);
  };
}

const handleWeb = createHandler<Request, undefined, Response>({
  getPayload: readLimited,
  getRequestHeaders(request) {
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => {
      headers[key] = value;
    });
    return headers;
  },
  handleResponse(response, { close }) {
    return json(
      response.status,
      response.body,
      close ? { ...response.headers, connection: 'close' } : response.headers,
    );
  },
  handlePayloadError(error) {
    throw error;
  },
});

async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) throw new BodyTooLargeError(limit);
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new BodyTooLargeError(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}
