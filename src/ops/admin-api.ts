import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { parseDuration } from '../config/duration.ts';
import { envelopeKeyProblem } from '../events/envelope.ts';
import type { Logger } from '../logging/logger.ts';
import type { HttpResponse } from '../receiver/http-errors.ts';
import { send } from '../receiver/node-server.ts';
import { readRawBody } from '../receiver/read-body.ts';
import type { Report, ReportQuery } from '../reports/report.ts';
import type { RouteState } from '../routes/dispatcher.ts';
import { routeConsumer } from '../routes/route-jobs.ts';
import type { EventSummary, InboxStore, ListFilter } from '../store/inbox-store.ts';
import {
  AdminRequestError,
  BodyBudgetError,
  BodyTimeoutError,
  BodyTooLargeError,
  InputError,
  toError,
} from '../util/errors.ts';
import { toAdminResponse } from './admin-errors.ts';
import { bearerToken } from './bearer.ts';
import { detailJson, summaryJson } from './event-json.ts';
import { parseEnvironment, parseFilter, parseLimit, parseTime } from './filters.ts';
import { createLoginLimiter, type LoginLimiter } from './login-limiter.ts';
import type { MinuteSeries } from './minute-series.ts';
import { parseJobStatus, routeOverview, routeReplayTargets } from './route-overview.ts';
import { createRouteTable, type Params } from './route-table.ts';

export interface AdminOptions {
  store: InboxStore;
  /** The bearer token. Without one the admin surface does not exist (404). */
  token: string | undefined;
  logger: Logger;
  /** Attempts a replayed event gets, by type; on one route (`route:NAME`), that route's budget. */
  replayBudget: (type: string, consumer?: string) => number;
  /** Refused signatures per minute (never stored, so counted in memory). */
  signatureFailures: MinuteSeries;
  /** How many secrets each environment has configured. */
  secretsConfigured: { production: number; sandbox: number };
  /** Counts failed sign-ins per address. @defaultValue 10 a minute, then 429 for the rest of it */
  loginLimiter?: LoginLimiter;
  /** The running routes with their breaker states (`consumer.routeStates`); none when omitted. */
  routeStates?: () => RouteState[];
  /** Reads the reporting tables (`GET /admin/api/reports`); without it that route answers 404. */
  reports?: (query: ReportQuery) => Promise<Report>;
}

const DASHBOARD = new URL('./dashboard/', import.meta.url);
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
/** An id the receiver would accept (printable, at most 256 bytes): the admin API refused ids over 200. */
const isEventId = (id: string) => id.length > 0 && envelopeKeyProblem(id) === null;
const MUTATING = new Set(['POST', 'PUT', 'DELETE']);
// The dashboard loads nothing from elsewhere, is never framed, and posts no forms anywhere else.
const DASHBOARD_CSP =
  "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** What a route handler gets: the request, its decoded path params, and who is asking. */
interface RouteContext {
  req: IncomingMessage;
  url: URL;
  params: Params;
  actor: string;
}
type Reply = { status?: number; body: Record<string, unknown> };
type Handler = (ctx: RouteContext) => Promise<Reply>;

/**
 * The admin surface: a JSON API under `/admin/api` and the dashboard at `/admin`. Every API route
 * needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time; with no token configured
 * the whole surface answers 404. Failed sign-ins are logged with the source address (never the
 * token), and an address with 10 of them in a minute gets 429 until that minute is over. Mutating
 * calls must be `application/json` and are written to the audit log.
 *
 * Returns a request handler that answers true when it handled the request.
 */
export function createAdminHandler(options: AdminOptions) {
  const { store, logger } = options;
  const expected = options.token ? createHash('sha256').update(options.token).digest() : undefined;
  const fingerprint = options.token
    ? createHash('sha256').update(options.token).digest('hex').slice(0, 8)
    : '';
  const limiter = options.loginLimiter ?? createLoginLimiter();

  /** Why the request is not signed in, or undefined when it is. */
  function refusal(req: IncomingMessage): 'missing' | 'malformed' | 'wrong' | undefined {
    if (!expected) return 'wrong';
    const header = req.headers.authorization;
    if (!header) return 'missing';
    const token = bearerToken(header);
    if (!token) return 'malformed';
    // Hash both sides to equal length first: timingSafeEqual needs it, and it hides the length.
    return timingSafeEqual(createHash('sha256').update(token).digest(), expected) ? undefined : 'wrong';
  }

  function authenticate(req: IncomingMessage, address: string): void {
    const blockedMs = limiter.blockedFor(address);
    if (blockedMs > 0) {
      const seconds = Math.max(1, Math.ceil(blockedMs / 1000));
      throw new AdminRequestError(
        429,
        'too_many_failed_logins',
        `too many failed sign-ins from ${address}; try again in ${seconds}s`,
        { 'retry-after': String(seconds) },
      );
    }
    const reason = refusal(req);
    if (!reason) return;
    const failures = limiter.fail(address);
    logger.warn({ remoteAddress: address, reason, failures }, 'admin sign-in refused');
    throw new AdminRequestError(401, 'unauthorized', 'send Authorization: Bearer <ADMIN_TOKEN>', {
      'www-authenticate': 'Bearer',
    });
  }

  const audit = async (actor: string, action: string, details: Record<string, unknown>) => {
    await store.audit({ at: Date.now(), actor, action, details });
    logger.info({ audit: action, actor, ...details }, `admin: ${action}`);
  };

  const notFound = (id: string) => new AdminRequestError(404, 'not_found', `no event with id ${id}`);

  /** The event id param, checked. */
  const eventId = (params: Params): string => {
    const id = params.id ?? '';
    if (!isEventId(id)) throw new InputError('event id is malformed');
    return id;
  };

  /** A page's cursor must name a stored event: an unknown one matched nothing, a 200 with no events. */
  const checkCursor = async (filter: ListFilter) => {
    if (filter.before !== undefined && (await store.get(filter.before)) === null)
      throw new InputError(
        `before "${filter.before}" is no stored event (give the \`next\` of the previous page)`,
      );
  };

  const listEvents: Handler = async ({ url }) => {
    const filter = parseFilter(url.searchParams);
    await checkCursor(filter);
    const events = await store.list(filter);
    const limit = filter.limit ?? 50;
    return {
      body: {
        events: events.map(summaryJson),
        next: events.length === limit ? (events.at(-1)?.id ?? null) : null,
      },
    };
  };

  const showEvent: Handler = async ({ params }) => {
    const id = eventId(params);
    const event = await store.get(id);
    if (!event) throw notFound(id);
    return { body: { event: detailJson(event) } };
  };

  const replayEvent: Handler = async ({ params, actor }) => {
    const id = eventId(params);
    const event = await store.get(id);
    if (!event) throw notFound(id);
    const outcome = await store.replay(id, options.replayBudget(event.type));
    if (outcome === 'purged')
      throw new AdminRequestError(
        409,
        'payload_purged',
        `event ${id}'s payload was purged by retention; there is nothing to replay`,
      );
    if (outcome !== 'replayed') {
      throw new AdminRequestError(
        409,
        'not_replayable',
        `event ${id} is ${event.status}; only processed, dead, invalid or unhandled events are replayed`,
      );
    }
    await audit(actor, 'replay', { id });
    return { body: { id, outcome } };
  };

  const replayByFilter: Handler = async ({ req, actor }) => {
    const body = await readJson(req);
    const filter = parseFilter(new URLSearchParams(stringRecord(body.filter, 'filter')));
    const dryRun = body.dryRun !== false;
    const matching = await allMatching(filter);
    if (dryRun) {
      return {
        body: { dryRun: true, matching: matching.length, sample: matching.slice(0, 20).map((e) => e.id) },
      };
    }
    let replayed = 0;
    for (const e of matching)
      if ((await store.replay(e.id, options.replayBudget(e.type))) === 'replayed') replayed++;
    await audit(actor, 'replay_by_filter', { filter: body.filter, matching: matching.length, replayed });
    return { body: { dryRun: false, matching: matching.length, replayed } };
  };

  const listDeadLetters: Handler = async ({ url }) => {
    const filter = { ...parseFilter(url.searchParams), status: 'dead' as const, excludeDiscarded: true };
    await checkCursor(filter);
    const events = await store.list(filter);
    return {
      body: {
        events: events.map(summaryJson),
        next: events.length === (filter.limit ?? 50) ? (events.at(-1)?.id ?? null) : null,
      },
    };
  };

  const replayDeadLetters: Handler = async ({ req, actor }) => {
    const body = await readJson(req);
    const ids =
      body.all === true
        ? (await allMatching({ status: 'dead', excludeDiscarded: true })).map((e) => e.id)
        : idList(body.ids);
    let replayed = 0;
    for (const id of ids) {
      const event = await store.get(id);
      if (
        event?.status === 'dead' &&
        (await store.replay(id, options.replayBudget(event.type))) === 'replayed'
      )
        replayed++;
    }
    await audit(actor, 'replay_dead_letters', { ids, replayed });
    return { body: { replayed } };
  };

  const discardDeadLetters: Handler = async ({ req, actor }) => {
    const ids = idList((await readJson(req)).ids);
    const discarded = await store.discard(ids);
    await audit(actor, 'discard', { ids, discarded });
    return { body: { discarded } };
  };

  const stats: Handler = async ({ url }) => {
    const windowMs = url.searchParams.has('window')
      ? parseWindow(url.searchParams.get('window') ?? '')
      : 3_600_000;
    const environment = parseEnvironment(url.searchParams.get('environment'));
    const since = Date.now() - windowMs;
    const result = await store.stats({ since, environment });
    return {
      body: {
        since,
        ...result,
        oldestWaitingAgeSeconds:
          result.oldestWaitingAt === null ? 0 : Math.round((Date.now() - result.oldestWaitingAt) / 1000),
        signatureFailuresPerMinute: options.signatureFailures.since(since),
      },
    };
  };

  const secrets: Handler = async () => {
    const uses = await store.secretUsage();
    const list = (['production', 'sandbox'] as const).flatMap((environment) =>
      Array.from({ length: options.secretsConfigured[environment] }, (_, index) => {
        const use = uses.find((u) => u.environment === environment && u.secretIndex === index);
        return {
          environment,
          index,
          lastVerifiedAt: use ? new Date(use.lastVerifiedAt).toISOString() : null,
        };
      }),
    );
    return { body: { secrets: list } };
  };

  const auditLog: Handler = async ({ url }) => {
    const limit = parseLimit(url.searchParams.get('limit'), 100);
    const entries = await store.auditLog(limit);
    return { body: { entries: entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) } };
  };

  const listRoutes: Handler = async () => {
    const overview = await routeOverview(store, options.routeStates?.() ?? []);
    return { body: { routes: overview.routes, orphaned: overview.orphaned } };
  };

  /**
   * Re-sends stored events on one route: `{ "ids": [...] }`, or `{ "filter": {...} }` whose
   * `status` is the route job's (processed, skipped, unhandled, dead). A dry run unless
   * `"dryRun": false`, like `/replay`. Only that route's job is re-opened.
   */
  const replayRoute: Handler = async ({ req, params, actor }) => {
    const name = params.name ?? '';
    const states = options.routeStates?.() ?? [];
    if (!states.some((r) => r.name === name)) {
      throw new AdminRequestError(
        404,
        'not_found',
        states.length === 0
          ? `no route named "${name}": the service runs without routes`
          : `no route named "${name}"; the routes are ${states.map((r) => r.name).join(', ')}`,
      );
    }
    const consumer = routeConsumer(name);
    const body = await readJson(req);
    if (body.ids !== undefined && body.filter !== undefined)
      throw new InputError('send "ids" or "filter", not both');
    let targets: { id: string; type: string }[];
    if (body.ids !== undefined) {
      targets = [];
      for (const id of routeIdList(body.ids)) {
        const event = await store.get(id);
        // Only events with a job on this route: a replay never gives an event a new route.
        if (event?.jobs.some((j) => j.consumer === consumer)) targets.push({ id, type: event.type });
      }
    } else {
      const { status, ...rest } = stringRecord(body.filter, 'filter');
      const jobStatus = parseJobStatus(status, 'filter.status');
      const { limit: _limit, ...filter } = parseFilter(new URLSearchParams(rest));
      targets = await routeReplayTargets(store, consumer, jobStatus, filter);
    }
    if (body.dryRun !== false) {
      return {
        body: {
          route: name,
          dryRun: true,
          matching: targets.length,
          sample: targets.slice(0, 20).map((t) => t.id),
        },
      };
    }
    let replayed = 0;
    for (const t of targets)
      if ((await store.replay(t.id, options.replayBudget(t.type, consumer), consumer)) === 'replayed')
        replayed++;
    await audit(actor, 'replay_route', {
      route: name,
      ...(body.ids !== undefined ? { ids: body.ids } : { filter: body.filter ?? {} }),
      matching: targets.length,
      replayed,
    });
    return { body: { route: name, dryRun: false, matching: targets.length, replayed } };
  };

  const reports: Handler = async ({ url }) => {
    if (!options.reports)
      throw new AdminRequestError(
        404,
        'reports_unavailable',
        'reports read the reporting tables through a second connection: use a SQLite file or PostgreSQL, not sqlite::memory:',
      );
    for (const key of url.searchParams.keys())
      if (key !== 'since' && key !== 'environment')
        throw new InputError(`unknown parameter "${key}"; use since, environment`);
    const since = parseTime(url.searchParams.get('since') || '7d', 'since');
    const environment = parseEnvironment(url.searchParams.get('environment'));
    return { body: { ...(await options.reports({ since, environment })) } };
  };

  const table = createRouteTable<Handler>([
    { method: 'GET', pattern: '/routes', handler: listRoutes },
    { method: 'POST', pattern: '/routes/:name/replay', handler: replayRoute },
    { method: 'GET', pattern: '/events', handler: listEvents },
    { method: 'GET', pattern: '/events/:id', handler: showEvent },
    { method: 'POST', pattern: '/events/:id/replay', handler: replayEvent },
    { method: 'POST', pattern: '/replay', handler: replayByFilter },
    { method: 'GET', pattern: '/dead-letters', handler: listDeadLetters },
    { method: 'POST', pattern: '/dead-letters/replay', handler: replayDeadLetters },
    { method: 'POST', pattern: '/dead-letters/discard', handler: discardDeadLetters },
    { method: 'GET', pattern: '/stats', handler: stats },
    { method: 'GET', pattern: '/secrets', handler: secrets },
    { method: 'GET', pattern: '/audit', handler: auditLog },
    { method: 'GET', pattern: '/reports', handler: reports },
  ]);

  async function api(req: IncomingMessage, url: URL): Promise<Reply> {
    const address = req.socket.remoteAddress ?? 'unknown';
    authenticate(req, address);
    const method = req.method ?? 'GET';
    const { handler, params } = table.match(method, url.pathname.slice('/admin/api'.length));
    if (MUTATING.has(method)) requireJson(req);
    return handler({ req, url, params, actor: `admin:${fingerprint}@${address}` });
  }

  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    if (path !== '/admin' && !path.startsWith('/admin/')) return false;
    if (!expected) {
      send(res, {
        status: 404,
        body: {
          error: { code: 'not_found', message: 'the admin surface is off: set ADMIN_TOKEN to enable it' },
        },
      });
      return true;
    }
    if (!path.startsWith('/admin/api/')) {
      await serveDashboard(path, res);
      return true;
    }
    // Admin answers hold event data: never cached, never sniffed into something else.
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('cache-control', 'no-store');
    let response: HttpResponse;
    try {
      const reply = await api(req, url);
      response = { status: reply.status ?? 200, body: reply.body };
      // Rendering can fail too (it is where a too-deep payload used to overflow the stack).
      send(res, response);
    } catch (error) {
      if (res.headersSent) {
        logger.error({ err: toError(error) }, 'admin API response failed after its headers were sent');
        res.destroy();
        return true;
      }
      send(res, toAdminResponse(error, logger));
    }
    return true;
  };

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

function requireJson(req: IncomingMessage): void {
  const contentType = req.headers['content-type'];
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  if (mediaType === 'application/json') return;
  throw new AdminRequestError(
    415,
    'unsupported_media_type',
    contentType
      ? `content-type "${contentType}" is not accepted; admin POST, PUT and DELETE calls must send content-type: application/json`
      : 'content-type header is missing; admin POST, PUT and DELETE calls must send content-type: application/json',
  );
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readRawBody(req, 64 * 1024).catch((error: unknown) => {
    // Each refusal with its own status, as the receiver's: too large, too slow, no memory to spare.
    if (error instanceof BodyTooLargeError)
      throw new AdminRequestError(413, 'payload_too_large', 'request body must be JSON of at most 64 KiB');
    if (error instanceof BodyTimeoutError)
      throw new AdminRequestError(408, 'request_timeout', 'request body arrived too slowly');
    if (error instanceof BodyBudgetError)
      throw new AdminRequestError(503, 'busy', 'too many request bodies in flight; try again', {
        'retry-after': '1',
      });
    throw new InputError('request body could not be read');
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

/** 1 to 1000 event ids; `hint` ends the message of a list that is not (what else to send). */
function idList(value: unknown, hint = ' (or send {"all": true} to replay every dead letter)'): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 1000)
    throw new InputError(`"ids" must be an array of 1 to 1000 event ids${hint}`);
  for (const id of value)
    if (typeof id !== 'string' || !isEventId(id)) throw new InputError('"ids" must hold event id strings');
  return value as string[];
}

const routeIdList = (value: unknown) => idList(value, '');

function parseWindow(value: string): number {
  try {
    return Math.min(parseDuration(value, 'window'), 7 * 86_400_000);
  } catch (error) {
    throw new InputError(toError(error).message);
  }
}

// Charts: uPlot's files, copied into dist/ops/dashboard/vendor/ by the build; run from src/, they
// are read from the installed package. Nothing is loaded from a CDN.
const VENDOR: Record<string, string> = {
  'vendor/uPlot.iife.min.js': 'uplot/dist/uPlot.iife.min.js',
  'vendor/uPlot.min.css': 'uplot/dist/uPlot.min.css',
};

async function readDashboardFile(file: string): Promise<Buffer> {
  const vendored = VENDOR[file];
  if (!vendored) return readFile(new URL(file, DASHBOARD));
  return readFile(new URL(file, DASHBOARD)).catch(() =>
    readFile(createRequire(import.meta.url).resolve(vendored)),
  );
}

async function serveDashboard(path: string, res: ServerResponse): Promise<void> {
  const file = path === '/admin' || path === '/admin/' ? 'index.html' : path.slice('/admin/'.length);
  if (!/^[a-z0-9-]+\.(html|js|css|svg)$/.test(file) && !Object.hasOwn(VENDOR, file)) {
    send(res, { status: 404, body: { error: { code: 'not_found', message: `no dashboard file ${file}` } } });
    return;
  }
  try {
    const content = await readDashboardFile(file);
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      'content-security-policy': DASHBOARD_CSP,
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    });
    res.end(content);
  } catch {
    send(res, { status: 404, body: { error: { code: 'not_found', message: `no dashboard file ${file}` } } });
  }
}
