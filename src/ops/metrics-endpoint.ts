import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Gauge } from 'prom-client';
import type { Logger } from '../logging/logger.ts';
import type { BodyBudget } from '../receiver/body-budget.ts';
import { toError } from '../util/errors.ts';
import { bearerToken } from './bearer.ts';
import { createLoginLimiter, type LoginLimiter } from './login-limiter.ts';
import type { Metrics } from './metrics.ts';

export interface MetricsEndpointOptions {
  metrics: Metrics;
  logger: Logger;
  /**
   * Who may read: `open` (the admin port, or `METRICS_PUBLIC=true`), `token` (the webhook port:
   * `Authorization: Bearer <ADMIN_TOKEN>`), or `hidden` (the webhook port with no admin token: 404).
   */
  access: 'open' | 'token' | 'hidden';
  /** The admin token, for `access: 'token'`. */
  token?: string | undefined;
  /** Shared with the admin API, so /metrics is no way around its sign-in limit. */
  loginLimiter?: LoginLimiter;
}

/**
 * `GET /metrics` in Prometheus' text format. On the public webhook port it needs the admin bearer
 * token (Prometheus sends it with `authorization: { credentials: ... }`); wrong tokens count
 * against the admin sign-in limit and get 429 past it.
 */
export function createMetricsEndpoint(options: MetricsEndpointOptions) {
  const { metrics, logger } = options;
  const expected =
    options.access === 'token' && options.token
      ? createHash('sha256').update(options.token).digest()
      : undefined;
  const access = options.access === 'token' && !expected ? 'hidden' : options.access;
  const limiter = options.loginLimiter ?? createLoginLimiter();

  function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(body);
  }

  function signedIn(req: IncomingMessage): boolean {
    const token = bearerToken(req.headers.authorization);
    if (!token || !expected) return false;
    // Both sides hashed to equal length: timingSafeEqual needs it, and it hides the length.
    return timingSafeEqual(createHash('sha256').update(token).digest(), expected);
  }

  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    if ((q === -1 ? url : url.slice(0, q)) !== '/metrics' || req.method !== 'GET') return false;
    if (access === 'hidden') {
      answer(
        res,
        404,
        'not found: /metrics on the webhook port needs ADMIN_TOKEN (then send Authorization: Bearer <ADMIN_TOKEN>), ADMIN_PORT, or METRICS_PUBLIC=true\n',
      );
      return true;
    }
    if (access === 'token') {
      const address = req.socket.remoteAddress ?? 'unknown';
      const blockedMs = limiter.blockedFor(address);
      if (blockedMs > 0) {
        const seconds = String(Math.max(1, Math.ceil(blockedMs / 1000)));
        answer(res, 429, `too many failed sign-ins; try again in ${seconds}s\n`, { 'retry-after': seconds });
        return true;
      }
      if (!signedIn(req)) {
        const failures = limiter.fail(address);
        logger.warn({ remoteAddress: address, failures, path: '/metrics' }, 'metrics sign-in refused');
        answer(res, 401, 'send Authorization: Bearer <ADMIN_TOKEN>\n', { 'www-authenticate': 'Bearer' });
        return true;
      }
    }
    try {
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
      res.end(text);
    } catch (error) {
      logger.error({ err: toError(error) }, 'could not collect metrics');
      answer(res, 503, 'metrics unavailable\n');
    }
    return true;
  };
}

/** `procureiq_webhooks_inflight_body_bytes`: webhook body bytes held by requests being read. */
export function registerBodyBudgetGauge(metrics: Metrics, budget: BodyBudget): void {
  new Gauge({
    name: 'procureiq_webhooks_inflight_body_bytes',
    help: 'Webhook body bytes buffered by requests being read right now; past MAX_INFLIGHT_BODY_BYTES requests get 503.',
    registers: [metrics.registry],
    collect() {
      this.set(budget.used);
    },
  });
}
