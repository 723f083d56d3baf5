import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ListenOptions } from 'node:net';
import type { Logger } from '../logging/logger.ts';
import { type BodyBudget, createBodyBudget } from './body-budget.ts';
import { createHandler } from './create-handler.ts';
import { type HttpResponse, toHttpResponse } from './http-errors.ts';
import { readRawBody } from './read-body.ts';
import type { Receiver } from './receiver.ts';

export interface NodeServerOptions {
  /** Receivers by path, e.g. `{ '/webhooks/procureiq': receiver }`. */
  routes: Record<string, Receiver>;
  logger: Logger;
  /** Answers `/readyz`: resolves when the store is reachable. */
  readiness?: () => Promise<void>;
  /** Whole-request deadline; slow clients are cut off. @defaultValue 30s */
  requestTimeoutMs?: number;
  /** Deadline to receive the headers. @defaultValue 10s */
  headersTimeoutMs?: number;
  /**
   * How often open connections are checked against `headersTimeoutMs` and `requestTimeoutMs`. A
   * slow client is cut at most this long after its deadline (Node's own default is 30s, which let
   * a client trickling headers hold a socket for 40s). @defaultValue 1s
   */
  connectionsCheckingIntervalMs?: number;
  /** Idle keep-alive sockets are closed after this. @defaultValue 5s */
  keepAliveTimeoutMs?: number;
  /** Deadline to receive a webhook body once its headers are in; slower ones get 408. @defaultValue 10s */
  bodyTimeoutMs?: number;
  /**
   * Caps the webhook bodies buffered at once, across requests; a request that would pass it gets
   * 503 with `Retry-After` and its connection closed. Pass your own to read `used`.
   * @defaultValue a budget of 64 MiB
   */
  bodyBudget?: BodyBudget;
  /** Connections open at once; further ones are closed as they arrive. @defaultValue 1024 */
  maxConnections?: number;
  /** Called after each webhook response: route, status and seconds since the request arrived. */
  onResponse?: (route: string, status: number, seconds: number) => void;
  /** Extra routes (admin, metrics) tried before answering 404. Return true when handled. */
  extra?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
}

/**
 * Starts `server` listening on a port (`{ port, host }`) or a local socket path; resolves once it
 * listens, rejects with its error (a port in use), and leaves no listener of its own behind.
 */
export function listenServer(server: Server, target: ListenOptions | string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const listening = () => {
      server.off('error', failed);
      resolve();
    };
    const failed = (error: Error) => {
      server.off('listening', listening);
      reject(error);
    };
    server.once('error', failed);
    server.once('listening', listening);
    server.listen(target);
  });
}

/** The standalone HTTP server: webhook routes, `/healthz` and `/readyz`. */
export function createNodeServer(options: NodeServerOptions): Server {
  const checking = { connectionsCheckingInterval: options.connectionsCheckingIntervalMs ?? 1_000 };
  const receive = nodeHandler(
    options.bodyBudget ?? createBodyBudget(64 * 1024 * 1024),
    options.bodyTimeoutMs ?? 10_000,
  );
  const server = createServer(checking, (req, res) => {
    void route(req, res, options, receive).catch((error: unknown) => {
      options.logger.error({ err: error }, 'request failed');
      if (!res.headersSent) send(res, toHttpResponse(error));
      else res.destroy();
    });
  });
  server.requestTimeout = options.requestTimeoutMs ?? 30_000;
  server.headersTimeout = options.headersTimeoutMs ?? 10_000;
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
  // Idle sockets with no request in flight are cut after this, too.
  server.timeout = options.requestTimeoutMs ?? 30_000;
  server.maxConnections = options.maxConnections ?? 1024;
  return server;
}

type NodeHandler = ReturnType<typeof nodeHandler>;

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  options: NodeServerOptions,
  receive: NodeHandler,
): Promise<void> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const receiver = options.routes[path];
  if (receiver) {
    if (req.method !== 'POST') {
      send(res, {
        status: 405,
        body: { error: { code: 'method_not_allowed', message: 'use POST' } },
        headers: { allow: 'POST' },
      });
      return;
    }
    const started = process.hrtime.bigint();
    await receive(receiver, req, res);
    options.onResponse?.(path, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    return;
  }
  if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
    send(res, { status: 200, body: { status: 'ok' } });
    return;
  }
  if (path === '/readyz' && (req.method === 'GET' || req.method === 'HEAD')) {
    try {
      await options.readiness?.();
      send(res, { status: 200, body: { status: 'ready' } });
    } catch (error) {
      send(res, {
        status: 503,
        body: { status: 'not_ready', reason: error instanceof Error ? error.message : String(error) },
      });
    }
    return;
  }
  if (options.extra && (await options.extra(req, res))) return;
  send(res, {
    status: 404,
    body: { error: { code: 'not_found', message: `no route for ${req.method} ${path}` } },
  });
}

function nodeHandler(budget: BodyBudget, timeoutMs: number) {
  return createHandler<IncomingMessage, ServerResponse, void>({
    getPayload(req, limit, res) {
      const account = budget.open(req.socket.remoteAddress);
      // 'close' comes on every way a request ends: answered, refused, timed out, or its socket gone.
      res.once('close', () => account.release());
      return readRawBody(req, limit, { account, timeoutMs });
    },
    getRequestHeaders: (req) => req.headers,
    getRemoteAddress: (req) => req.socket.remoteAddress,
    handleResponse(response, { req, res, close }) {
      if (!close) return send(res, response);
      // Answer at once and close the connection rather than read the rest of the upload.
      res.setHeader('connection', 'close');
      send(res, response);
      res.on('finish', () => req.socket.destroySoon());
    },
    handlePayloadError(_error, { req }) {
      req.socket.destroy();
    },
  });
}

const JSON_TYPE = 'application/json; charset=utf-8';
const serialized = new WeakMap<object, string>();

/** Writes a JSON response in one go (writeHead with all headers, then the body). */
export function send(res: ServerResponse, response: HttpResponse): void {
  // Acknowledgements are shared constant objects: serialize each once.
  let payload = serialized.get(response.body);
  if (payload === undefined) {
    payload = JSON.stringify(response.body);
    if (Object.isFrozen(response.body)) serialized.set(response.body, payload);
  }
  const headers: Record<string, string | number> = {
    'content-type': JSON_TYPE,
    'content-length': Buffer.byteLength(payload),
  };
  if (response.headers) Object.assign(headers, response.headers);
  if (res.hasHeader('connection')) headers.connection = String(res.getHeader('connection'));
  res.writeHead(response.status, headers);
  res.end(payload);
}
