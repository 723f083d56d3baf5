import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import { parseDuration } from '../config/duration.ts';
import type { Logger } from '../logging/logger.ts';
import { send } from '../receiver/node-server.ts';
import { readRawBody } from '../receiver/read-body.ts';
import type { EventSummary, InboxStore, ListFilter } from '../store/inbox-store.ts';
import { toError } from '../util/errors.ts';
import { detailJson, summaryJson } from './event-json.ts';
import { InputError, parseEnvironment, parseFilter, parseLimit } from './filters.ts';
import type { MinuteSeries } from './minute-series.ts';

export interface AdminOptions {
  store: InboxStore;
  /** The bearer token. Without one the admin surface does not exist (404). */
  token: string | undefined;
  logger: Logger;
  /** Attempts a replayed event gets, by type. */
  replayBudget: (type: string) => number;
  /** Refused signatures per minute (never stored, so counted in memory). */
  signatureFailures: MinuteSeries;
  /** How many secrets each environment has configured. */
  secretsConfigured: { production: number; sandbox: number };
}

const DASHBOARD = new URL('./dashboard/', import.meta.url);
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
const ID_PATTERN = /^[^\s]{1,200}$/;

/**
 * The admin surface: a JSON API under `/admin/api` and the dashboard at `/admin`. Every API route
 * needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time; with no token configured
 * the whole surface answers 404. Every mutating call is written to the audit log.
 *
 * Returns a request handler that answers true when it handled the request.
 */
export function createAdminHandler(options: AdminOptions) {
  const { store, logger } = options;
  const expected = options.token ? createHash('sha256').update(options.token).digest() : undefined;
  const fingerprint = options.token
    ? createHash('sha256').update(options.token).digest('hex').slice(0, 8)
    : '';

  function authorized(req: IncomingMessage): boolean {
    if (!expected) return false;
    const header = req.headers.authorization ?? '';
    const match = /^Bearer (.+)$/.exec(header);
    if (!match?.[1]) return false;
    // Hash both sides to equal length first: timingSafeEqual needs it, and it hides the length.
    return timingSafeEqual(createHash('sha256').update(match[1]).digest(), expected);
  }

  const fail = (
    res: ServerResponse,
    status: number,
    code: string,
    message: string,
    headers?: Record<string, string>,
  ) => send(res, { status, body: { error: { code, message } }, ...(headers ? { headers } : {}) });

  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    if (path !== '/admin' && !path.startsWith('/admin/')) return false;
    if (!expected) {
      fail(res, 404, 'not_found', 'the admin surface is off: set ADMIN_TOKEN to enable it');
      return true;
    }
    if (!path.startsWith('/admin/api/')) {
      await serveDashboard(path, res);
      return true;
    }
    if (!authorized(req)) {
      fail(res, 401, 'unauthorized', 'send Authorization: Bearer <ADMIN_TOKEN>', {
        'www-authenticate': 'Bearer',
      });
      return true;
    }
    const actor = `admin:${fingerprint}@${req.socket.remoteAddress ?? 'unknown'}`;
    try {
      await route(req, res, url, actor);
    } catch (error) {
      if (error instanceof InputError) {
        fail(res, 400, error.code, error.message);
      } else {
        logger.error({ err: toError(error) }, 'admin API request failed');
        fail(res, 503, 'store_unavailable', 'the store could not answer; try again');
      }
    }
    return true;
  };

  async function route(req: IncomingMessage, res: ServerResponse, url: URL, actor: string): Promise<void> {
    const path = url.pathname.slice('/admin/api'.length);
    const method = req.method ?? 'GET';
    const ok = (body: Record<string, unknown>, status = 200) => send(res, { status, body });
    const audit = async (action: string, details: Record<string, unknown>) => {
      await store.audit({ at: Date.now(), actor, action, details });
      logger.info({ audit: action, actor, ...details }, `admin: ${action}`);
    };

    if (method === 'GET' && path === '/events') {
      const filter = parseFilter(url.searchParams);
      const events = await store.list(filter);
      const limit = filter.limit ?? 50;
      ok({
        events: events.map(summaryJson),
        next: events.length === limit ? (events.at(-1)?.id ?? null) : null,
      });
      return;
    }
    const eventMatch = /^\/events\/([^/]+)(\/replay)?$/.exec(path);
    if (eventMatch?.[1]) {
      const id = decodeURIComponent(eventMatch[1]);
      if (!ID_PATTERN.test(id)) throw new InputError('event id is malformed');
      if (method === 'GET' && !eventMatch[2]) {
        const event = await store.get(id);
        if (!event) return fail(res, 404, 'not_found', `no event with id ${id}`);
        ok({ event: detailJson(event) });
        return;
      }
      if (method === 'POST' && eventMatch[2]) {
        const event = await store.get(id);
        if (!event) return fail(res, 404, 'not_found', `no event with id ${id}`);
        const outcome = await store.replay(id, options.replayBudget(event.type));
        if (outcome !== 'replayed') {
          return fail(
            res,
            409,
            'not_replayable',
            `event ${id} is ${event.status}; only processed, dead, invalid or unhandled events are replayed`,
          );
        }
        await audit('replay', { id });
        ok({ id, outcome });
        return;
      }
    }
    if (method === 'POST' && path === '/replay') {
      const body = await readJson(req);
      const filter = parseFilter(new URLSearchParams(stringRecord(body.filter, 'filter')));
      const dryRun = body.dryRun !== false;
      const matching = await allMatching(filter);
      if (dryRun) {
        ok({ dryRun: true, matching: matching.length, sample: matching.slice(0, 20).map((e) => e.id) });
        return;
      }
      let replayed = 0;
      for (const e of matching)
        if ((await store.replay(e.id, options.replayBudget(e.type))) === 'replayed') replayed++;
      await audit('replay_by_filter', { filter: body.filter, matching: matching.length, replayed });
      ok({ dryRun: false, matching: matching.length, replayed });
      return;
    }
    if (method === 'GET' && path === '/dead-letters') {
      const filter = { ...parseFilter(url.searchParams), status: 'dead' as const, excludeDiscarded: true };
      const events = await store.list(filter);
      ok({
        events: events.map(summaryJson),
        next: events.length === (filter.limit ?? 50) ? (events.at(-1)?.id ?? null) : null,
      });
      return;
    }
    if (method === 'POST' && (path === '/dead-letters/replay' || path === '/dead-letters/discard')) {
      const body = await readJson(req);
      let ids: string[];
      if (body.all === true && path === '/dead-letters/replay') {
        ids = (await allMatching({ status: 'dead', excludeDiscarded: true })).map((e) => e.id);
      } else {
        ids = idList(body.ids);
      }
      if (path === '/dead-letters/discard') {
        const discarded = await store.discard(ids);
        await audit('discard', { ids, discarded });
        ok({ discarded });
        return;
      }
      let replayed = 0;
      for (const id of ids) {
        const event = await store.get(id);
        if (
          event?.status === 'dead' &&
          (await store.replay(id, options.replayBudget(event.type))) === 'replayed'
        )
          replayed++;
      }
      await audit('replay_dead_letters', { ids, replayed });
      ok({ replayed });
      return;
    }
    if (method === 'GET' && path === '/stats') {
      const windowMs = url.searchParams.has('window')
        ? parseWindow(url.searchParams.get('window') ?? '')
        : 3_600_000;
      const environment = parseEnvironment(url.searchParams.get('environment'));
      const since = Date.now() - windowMs;
      const stats = await store.stats({ since, environment });
      ok({
        since,
        ...stats,
        oldestWaitingAgeSeconds:
          stats.oldestWaitingAt === null ? 0 : Math.round((Date.now() - stats.oldestWaitingAt) / 1000),
        signatureFailuresPerMinute: options.signatureFailures.since(since),
      });
      return;
    }
    if (method === 'GET' && path === '/secrets') {
      const uses = await store.secretUsage();
      const secrets = (['production', 'sandbox'] as const).flatMap((environment) =>
        Array.from({ length: options.secretsConfigured[environment] }, (_, index) => {
          const use = uses.find((u) => u.environment === environment && u.secretIndex === index);
          return {
            environment,
            index,
            lastVerifiedAt: use ? new Date(use.lastVerifiedAt).toISOString() : null,
          };
        }),
      );
      ok({ secrets });
      return;
    }
    if (method === 'GET' && path === '/audit') {
      const limit = parseLimit(url.searchParams.get('limit'), 100);
      const entries = await store.auditLog(limit);
      ok({ entries: entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) });
      return;
    }
    fail(res, 404, 'not_found', `no admin route for ${method} ${url.pathname}`);
  }

  /** Every event matching a filter (keyset pages of 500). */
  async function allMatching(filter: ListFilter): Promise<EventSummary[]> {
    const out: EventSummary[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await store.list({ ...filter, limit: 500, before });
      out.push(...page);
      if (page.length < 500) return out;
      before = page.at(-1)?.id;
    }
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readRawBody(req, 64 * 1024).catch(() => {
    throw new InputError('request body must be JSON of at most 64 KiB');
  });
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new InputError('request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InputError('request body must be a JSON object');
  return value as Record<string, unknown>;
}

function stringRecord(value: unknown, name: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InputError(`"${name}" must be an object`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string' && typeof v !== 'number')
      throw new InputError(`"${name}.${k}" must be a string`);
    out[k] = String(v);
  }
  return out;
}

function idList(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 1000) {
    throw new InputError(
      '"ids" must be an array of 1 to 1000 event ids (or send {"all": true} to replay every dead letter)',
    );
  }
  for (const id of value)
    if (typeof id !== 'string' || !ID_PATTERN.test(id))
      throw new InputError('"ids" must hold event id strings');
  return value as string[];
}

function parseWindow(value: string): number {
  try {
    return Math.min(parseDuration(value, 'window'), 7 * 86_400_000);
  } catch (error) {
    throw new InputError(toError(error).message);
  }
}

async function serveDashboard(path: string, res: ServerResponse): Promise<void> {
  const file = path === '/admin' || path === '/admin/' ? 'index.html' : path.slice('/admin/'.length);
  if (!/^[a-z0-9-]+\.(html|js|css|svg)$/.test(file)) {
    send(res, { status: 404, body: { error: { code: 'not_found', message: `no dashboard file ${file}` } } });
    return;
  }
  try {
    const content = await readFile(new URL(file, DASHBOARD));
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      // The dashboard loads nothing from elsewhere and is never framed.
      'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
    });
    res.end(content);
  } catch {
    send(res, { status: 404, body: { error: { code: 'not_found', message: `no dashboard file ${file}` } } });
  }
}
