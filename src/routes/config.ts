import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { redactUrl } from '../config/database-url.ts';
import { MAX_TIMER_MS, parseDuration } from '../config/duration.ts';
import type { Environment } from '../store/inbox-store.ts';
import { ConfigError, toError } from '../util/errors.ts';
import { GLOB_PATTERN } from './glob.ts';
import { didYouMean, RoutesConfigError } from './problems.ts';
import { loadTransform, TRANSFORM_EXTENSIONS } from './transform.ts';
import {
  DESTINATION_TYPES,
  type DestinationConfig,
  type DestinationType,
  type RouteConfig,
  type RoutesConfig,
} from './types.ts';
import { compileWhere, isDottedPath } from './where.ts';

/**
 * The routes file (`--routes FILE` / `ROUTES=FILE`), YAML or JSON:
 *
 * ```yaml
 * destinations:
 *   fulfilment:
 *     type: http                    # http | rabbitmq | redis-stream | bullmq | nats
 *     url: https://fulfilment.internal/hooks/procureiq
 *     secret: ${FULFILMENT_SIGNING_SECRET}
 * routes:
 *   - name: big-orders
 *     match: { types: [order.*], where: { data.totalAmount: { $gte: 500 } } }
 *     to: fulfilment
 * ```
 *
 * `${VAR}` in any string value is replaced from the environment (a missing variable is an error).
 * Everything is validated at start-up and every problem is reported together, each naming its
 * path (`routes[1].to: no destination "fulfilmnet" (did you mean "fulfilment"?)`).
 */
export interface ResolveRoutesOptions {
  /** Where `${VAR}` values come from. @defaultValue `process.env` */
  env?: Readonly<Record<string, string | undefined>>;
  /** Transform paths are relative to it (the routes file's folder). @defaultValue `process.cwd()` */
  baseDir?: string;
  /** The file, named in the error message. */
  source?: string;
}

/** Route and destination names become metric labels and job consumer names. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/i;
const NAME_RULE = 'use letters, digits, ".", "_" and "-", starting with a letter or digit, up to 64';

const ENVIRONMENTS: readonly Environment[] = ['production', 'sandbox'];
const TEMPLATE_FIELDS = ['type', 'environment'];

const TOP_KEYS = ['destinations', 'routes'];
const ROUTE_KEYS = ['name', 'match', 'to', 'retrySchedule', 'orderBy', 'rateLimit', 'transform'];
const MATCH_KEYS = ['types', 'environment', 'where'];
const DESTINATION_KEYS: Record<DestinationType, string[]> = {
  http: ['type', 'url', 'secret', 'timeout', 'headers'],
  rabbitmq: ['type', 'url', 'queue', 'exchange', 'routingKey'],
  'redis-stream': ['type', 'url', 'stream', 'maxLength'],
  bullmq: ['type', 'url', 'queue'],
  nats: ['type', 'url', 'subject'],
};
const PROTOCOLS: Record<DestinationType, string[]> = {
  http: ['http:', 'https:'],
  rabbitmq: ['amqp:', 'amqps:'],
  'redis-stream': ['redis:', 'rediss:'],
  bullmq: ['redis:', 'rediss:'],
  nats: ['nats:', 'tls:'],
};
/** @defaultValue the HTTP destination's timeout */
const DEFAULT_HTTP_TIMEOUT = '10s';

/**
 * Reads, parses and validates a routes file, and loads each transform once to check that it
 * exports a function. Throws a `RoutesConfigError` listing every problem.
 */
export async function loadRoutesFile(
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<RoutesConfig> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === 'ENOENT'
        ? `ROUTES (--routes): no file at ${file}`
        : `ROUTES (--routes): cannot read ${file}: ${toError(error).message}`,
    );
  }
  const input = parseRoutesText(text, file);
  const { config, problems } = collect(input, { env, baseDir: dirname(file), source: file });
  // Transforms run user code, so only once the rest is known to be sound.
  if (problems.length === 0) {
    const loaded = new Map<string, string | undefined>();
    for (const [i, route] of config.routes.entries()) {
      if (!route.transform) continue;
      if (!loaded.has(route.transform)) {
        try {
          await loadTransform(route.transform);
          loaded.set(route.transform, undefined);
        } catch (error) {
          loaded.set(route.transform, toError(error).message.replace(/^transform: /, ''));
        }
      }
      const problem = loaded.get(route.transform);
      if (problem !== undefined) problems.push(`routes[${i}].transform: ${problem}`);
    }
  }
  if (problems.length > 0) throw new RoutesConfigError(problems, file);
  return config;
}

/** Parses a routes file's text: JSON for `.json`, YAML (a superset of JSON) otherwise. */
export function parseRoutesText(text: string, source?: string): unknown {
  if (source && extname(source).toLowerCase() === '.json') {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new RoutesConfigError([`not valid JSON: ${toError(error).message}`], source);
    }
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    throw new RoutesConfigError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        const at = `line ${pos.line}, column ${pos.col}: `;
        // A bare `*` starts a YAML alias; the usual cause is `types: [*]`.
        const hint = /alias/i.test(e.message) ? ' (quote a bare * as "*")' : '';
        return `${at}${e.message.split('\n')[0]}${hint}`;
      }),
      source,
    );
  }
  return doc.toJS();
}

/** Validates an already parsed routes file. Throws a `RoutesConfigError` listing every problem. */
export function resolveRoutes(input: unknown, options: ResolveRoutesOptions = {}): RoutesConfig {
  const { config, problems } = collect(input, options);
  if (problems.length > 0) throw new RoutesConfigError(problems, options.source);
  return config;
}

function collect(
  rawInput: unknown,
  options: ResolveRoutesOptions,
): { config: RoutesConfig; problems: string[] } {
  const problems: string[] = [];
  const env = options.env ?? process.env;
  const baseDir = options.baseDir ?? process.cwd();
  const unset = new Set<string>();
  const input = substitute(rawInput, '', env, problems, unset);
  // A value whose variable is missing is reported once, not again as a bad URL or empty string.
  const reported = problems.length;
  const config: RoutesConfig = { destinations: new Map(), routes: [] };

  if (!isObject(input)) {
    problems.push('the routes file must be an object with "destinations" and "routes"');
    return { config, problems };
  }
  unknownKeys(input, TOP_KEYS, '', problems);

  const destinationNames = new Set<string>();
  if (input.destinations === undefined) {
    problems.push(
      'destinations: required; name each place events go, e.g. { fulfilment: { type: http, url: … } }',
    );
  } else if (!isObject(input.destinations)) {
    problems.push('destinations: must be an object of named destinations');
  } else {
    for (const [name, raw] of Object.entries(input.destinations)) {
      destinationNames.add(name);
      const destination = resolveDestination(name, raw, `destinations.${name}`, problems);
      if (destination) config.destinations.set(name, destination);
    }
  }

  if (input.routes === undefined) {
    problems.push(
      'routes: required; a list of routes, e.g. [{ name: big-orders, match: { types: [order.*] }, to: fulfilment }]',
    );
  } else if (!Array.isArray(input.routes)) {
    // An empty list is a file that routes nothing (yet): a SIGHUP can turn every route off, and
    // their jobs wait, orphaned, until a route of that name comes back.
    problems.push('routes: must be a list of routes');
  } else {
    const seen = new Map<string, number>();
    input.routes.forEach((raw, i) => {
      const path = `routes[${i}]`;
      const route = resolveRoute(raw, path, destinationNames, baseDir, problems);
      // Names are compared case-insensitively: they also name metrics and job consumers.
      const name = isObject(raw) && typeof raw.name === 'string' ? raw.name : undefined;
      const first = name === undefined ? undefined : seen.get(name.toLowerCase());
      if (name !== undefined && first !== undefined) {
        problems.push(`${path}.name: "${name}" is already the name of routes[${first}]`);
        return;
      }
      if (name !== undefined) seen.set(name.toLowerCase(), i);
      if (route) config.routes.push(route);
    });
  }
  const rest = problems.splice(reported).filter((p) => !unset.has(p.slice(0, p.indexOf(': '))));
  problems.push(...rest);
  return { config, problems };
}

function resolveDestination(
  name: string,
  raw: unknown,
  path: string,
  problems: string[],
): DestinationConfig | undefined {
  const before = problems.length;
  if (!NAME_PATTERN.test(name)) problems.push(`${path}: "${name}" is not a safe name; ${NAME_RULE}`);
  if (!isObject(raw)) {
    problems.push(`${path}: must be an object with a type and a url`);
    return undefined;
  }
  const types: readonly string[] = DESTINATION_TYPES;
  if (raw.type === undefined) {
    problems.push(`${path}.type: required; one of ${types.join(', ')}`);
    return undefined;
  }
  if (typeof raw.type !== 'string' || !types.includes(raw.type)) {
    problems.push(
      `${path}.type: unknown destination type "${String(raw.type)}"${didYouMean(String(raw.type), types)}; use one of ${types.join(', ')}`,
    );
    return undefined;
  }
  const type = raw.type as DestinationType;
  unknownKeys(raw, DESTINATION_KEYS[type], path, problems, ` for ${describeType(type)}`);
  const url = checkUrl(raw.url, type, `${path}.url`, problems);

  let destination: DestinationConfig | undefined;
  switch (type) {
    case 'http': {
      const secret = optionalString(raw.secret, `${path}.secret`, problems);
      const timeoutMs = duration(raw.timeout ?? DEFAULT_HTTP_TIMEOUT, `${path}.timeout`, problems);
      if (timeoutMs === 0) problems.push(`${path}.timeout: must be greater than 0`);
      else if (timeoutMs !== undefined && timeoutMs > MAX_TIMER_MS)
        problems.push(
          `${path}.timeout: at most ${MAX_TIMER_MS} ms (about 24 days), which Node's timers can wait`,
        );
      const headers = checkHeaders(raw.headers, `${path}.headers`, problems);
      destination = { type, name, url, secret, timeoutMs: timeoutMs ?? 0, headers };
      break;
    }
    case 'rabbitmq': {
      const queue = optionalString(raw.queue, `${path}.queue`, problems);
      const exchange = optionalString(raw.exchange, `${path}.exchange`, problems);
      let routingKey = optionalString(raw.routingKey, `${path}.routingKey`, problems);
      if (queue !== undefined && exchange !== undefined) {
        problems.push(`${path}: give either queue or exchange, not both`);
      } else if (
        queue === undefined &&
        exchange === undefined &&
        raw.queue === undefined &&
        raw.exchange === undefined
      ) {
        problems.push(
          `${path}: needs a queue (a durable queue, declared if missing) or an exchange (with a routingKey)`,
        );
      }
      for (const [key, value] of [
        ['queue', queue],
        ['exchange', exchange],
      ] as const) {
        if (value !== undefined && Buffer.byteLength(value) > 255) {
          problems.push(`${path}.${key}: longer than 255 bytes, the AMQP limit`);
        }
      }
      if (routingKey !== undefined && queue !== undefined) {
        problems.push(`${path}.routingKey: only used with an exchange; a queue receives every message`);
      }
      if (exchange !== undefined) {
        routingKey ??= '{type}';
        checkTemplate(routingKey, `${path}.routingKey`, problems);
      }
      destination = { type, name, url, queue, exchange, routingKey };
      break;
    }
    case 'redis-stream': {
      const stream = requiredString(raw.stream, `${path}.stream`, problems, 'e.g. procureiq:events');
      let maxLength: number | undefined;
      if (raw.maxLength !== undefined) {
        maxLength = wholeNumber(raw.maxLength);
        if (maxLength === undefined || maxLength < 1) {
          problems.push(
            `${path}.maxLength: ${JSON.stringify(raw.maxLength)} must be a whole number of at least 1`,
          );
        }
      }
      destination = { type, name, url, stream, maxLength };
      break;
    }
    case 'bullmq': {
      const queue = requiredString(raw.queue, `${path}.queue`, problems, 'e.g. support-tickets');
      // BullMQ refuses queue names with ":" (it uses ":" to build its Redis keys).
      if (queue.includes(':')) problems.push(`${path}.queue: "${queue}" must not contain ":"`);
      destination = { type, name, url, queue };
      break;
    }
    case 'nats': {
      const subject = requiredString(raw.subject, `${path}.subject`, problems, 'e.g. procureiq.{type}');
      if (subject !== '' && checkTemplate(subject, `${path}.subject`, problems)) {
        const filled = subject.replace(/\{[^}]*\}/g, 'x');
        if (/[\s*>]/.test(filled) || filled.split('.').some((t) => t === '')) {
          problems.push(
            `${path}.subject: "${subject}" is not a NATS subject to publish to; use dot-separated tokens without spaces, "*" or ">"`,
          );
        }
      }
      destination = { type, name, url, subject };
      break;
    }
  }
  return problems.length === before ? destination : undefined;
}

function resolveRoute(
  raw: unknown,
  path: string,
  destinations: ReadonlySet<string>,
  baseDir: string,
  problems: string[],
): RouteConfig | undefined {
  const before = problems.length;
  if (!isObject(raw)) {
    problems.push(`${path}: must be an object with a name, a match and a destination (to)`);
    return undefined;
  }
  unknownKeys(raw, ROUTE_KEYS, path, problems);

  const name = requiredString(raw.name, `${path}.name`, problems, 'e.g. big-orders');
  if (name !== '' && !NAME_PATTERN.test(name)) {
    problems.push(`${path}.name: "${name}" is not a safe name; ${NAME_RULE}`);
  }

  const match: RouteConfig['match'] = { types: [] };
  if (raw.match === undefined) {
    problems.push(`${path}.match: required, e.g. { types: [order.*] }`);
  } else if (!isObject(raw.match)) {
    problems.push(`${path}.match: must be an object, e.g. { types: [order.*] }`);
  } else {
    const m = raw.match;
    unknownKeys(m, MATCH_KEYS, `${path}.match`, problems);
    if (m.types === undefined) {
      problems.push(
        `${path}.match.types: required; a list of type globs, e.g. [order.*] ("*" is every type)`,
      );
    } else if (!Array.isArray(m.types) || m.types.length === 0) {
      problems.push(`${path}.match.types: must be a non-empty list of type globs, e.g. [order.*]`);
    } else {
      m.types.forEach((glob, j) => {
        if (typeof glob !== 'string' || !GLOB_PATTERN.test(glob)) {
          problems.push(
            `${path}.match.types[${j}]: ${JSON.stringify(glob)} is not a type glob; use letters, digits, ".", "_", "-" and "*"`,
          );
        } else {
          match.types.push(glob);
        }
      });
    }
    if (m.environment !== undefined) {
      if (typeof m.environment === 'string' && (ENVIRONMENTS as readonly string[]).includes(m.environment)) {
        match.environment = m.environment as Environment;
      } else {
        problems.push(
          `${path}.match.environment: ${JSON.stringify(m.environment)} must be "production" or "sandbox"${didYouMean(String(m.environment), ENVIRONMENTS)}`,
        );
      }
    }
    if (m.where !== undefined) {
      compileWhere(m.where, `${path}.match.where`, problems);
      match.where = m.where as Record<string, unknown>;
    }
  }

  const to = requiredString(raw.to, `${path}.to`, problems, 'the name of a destination');
  if (to !== '' && !destinations.has(to)) {
    problems.push(`${path}.to: no destination "${to}"${didYouMean(to, destinations)}`);
  }

  const route: RouteConfig = { name, match, to };

  if (raw.retrySchedule !== undefined) {
    if (!Array.isArray(raw.retrySchedule) || raw.retrySchedule.length === 0) {
      problems.push(`${path}.retrySchedule: must be a non-empty list of durations, e.g. [10s, 1m, 10m]`);
    } else {
      route.retryScheduleMs = raw.retrySchedule.map(
        (d, j) => duration(d, `${path}.retrySchedule[${j}]`, problems) ?? 0,
      );
    }
  }

  if (raw.orderBy !== undefined) {
    if (typeof raw.orderBy !== 'string' || !isDottedPath(raw.orderBy)) {
      problems.push(
        `${path}.orderBy: ${JSON.stringify(raw.orderBy)} must be a dotted path, e.g. data.orderId`,
      );
    } else {
      route.orderBy = raw.orderBy;
    }
  }

  if (raw.rateLimit !== undefined) {
    const m = /^\s*(\d+)\s*\/\s*(s|m)\s*$/.exec(String(raw.rateLimit));
    const count = m ? Number(m[1]) : 0;
    if (!m || typeof raw.rateLimit !== 'string' || count <= 0 || !Number.isSafeInteger(count)) {
      problems.push(
        `${path}.rateLimit: ${JSON.stringify(raw.rateLimit)} is not a rate; write n/s or n/m with n > 0, e.g. "50/s"`,
      );
    } else {
      route.rateLimit = { count, perMs: m[2] === 's' ? 1000 : 60_000 };
    }
  }

  if (raw.transform !== undefined) {
    if (typeof raw.transform !== 'string' || raw.transform.trim() === '') {
      problems.push(`${path}.transform: must be the path of a module, e.g. ./transforms/slim.ts`);
    } else {
      const file = resolve(baseDir, raw.transform);
      if (!TRANSFORM_EXTENSIONS.has(extname(file))) {
        problems.push(`${path}.transform: ${file} must be a .ts, .mts, .cts, .js, .mjs or .cjs module`);
      } else if (!existsSync(file)) {
        problems.push(`${path}.transform: no file at ${file}`);
      } else {
        route.transform = file;
      }
    }
  }

  return problems.length === before ? route : undefined;
}

/** Replaces `${VAR}` in every string value, recording each missing variable with its path. */
function substitute(
  value: unknown,
  path: string,
  env: Readonly<Record<string, string | undefined>>,
  problems: string[],
  unset: Set<string>,
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([^}]*)\}/g, (whole, name: string) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        problems.push(`${path || '(root)'}: "${whole}" is not a valid environment variable reference`);
        return whole;
      }
      const found = env[name];
      if (found === undefined || found === '') {
        unset.add(path);
        problems.push(
          `${path || '(root)'}: environment variable ${name} is ${found === undefined ? 'not set' : 'empty'}`,
        );
        return '';
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, `${path}[${i}]`, env, problems, unset));
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substitute(v, join(path, k), env, problems, unset);
    return out;
  }
  return value;
}

function unknownKeys(
  object: Record<string, unknown>,
  known: readonly string[],
  path: string,
  problems: string[],
  context = '',
): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) {
      problems.push(`${join(path, key)}: unknown key${context}${didYouMean(key, known)}`);
    }
  }
}

function checkUrl(value: unknown, type: DestinationType, path: string, problems: string[]): string {
  const protocols = PROTOCOLS[type];
  const schemes = protocols.map((p) => `${p}//`).join(' or ');
  if (value === undefined) {
    problems.push(`${path}: required, a ${schemes} URL`);
    return '';
  }
  if (typeof value !== 'string') {
    problems.push(`${path}: must be a ${schemes} URL`);
    return '';
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`${path}: "${redactUrl(value)}" is not a URL; give a full ${schemes} address`);
    return '';
  }
  if (!protocols.includes(url.protocol)) {
    problems.push(`${path}: "${redactUrl(value)}" must use ${schemes} for ${describeType(type)}`);
  }
  return value;
}

function checkHeaders(value: unknown, path: string, problems: string[]): Record<string, string> {
  if (value === undefined) return {};
  if (!isObject(value)) {
    problems.push(`${path}: must be an object of header names to values, e.g. { x-team: ops }`);
    return {};
  }
  const headers: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) {
      problems.push(`${path}.${key}: not a valid header name`);
    } else if (typeof v !== 'string') {
      problems.push(`${path}.${key}: must be a string (quote it)`);
    } else if (/[\r\n\0]/.test(v)) {
      problems.push(`${path}.${key}: must not contain line breaks`);
    } else {
      headers[key.toLowerCase()] = v;
    }
  }
  return headers;
}

/** Checks `{type}`/`{environment}` placeholders; false when one is unknown. */
function checkTemplate(template: string, path: string, problems: string[]): boolean {
  let ok = true;
  for (const [, field] of template.matchAll(/\{([^}]*)\}/g)) {
    if (field === undefined || !TEMPLATE_FIELDS.includes(field)) {
      ok = false;
      const guess = didYouMean(field ?? '', TEMPLATE_FIELDS).replace(/"([^"]+)"/, '"{$1}"');
      problems.push(`${path}: unknown placeholder "{${field}}"${guess}; use {type} or {environment}`);
    }
  }
  return ok;
}

function duration(value: unknown, path: string, problems: string[]): number | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') {
    problems.push(`${path}: must be a duration with a unit, e.g. "10s"`);
    return undefined;
  }
  try {
    return parseDuration(String(value), path);
  } catch (error) {
    problems.push(toError(error).message);
    return undefined;
  }
}

function describeType(type: DestinationType): string {
  return `${type === 'http' ? 'an' : 'a'} ${type} destination`;
}

function requiredString(value: unknown, path: string, problems: string[], example: string): string {
  if (value === undefined) {
    problems.push(`${path}: required, ${example}`);
    return '';
  }
  if (typeof value !== 'string' || value.trim() === '') {
    problems.push(`${path}: must be a non-empty string, ${example}`);
    return '';
  }
  return value;
}

function optionalString(value: unknown, path: string, problems: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    problems.push(`${path}: must be a non-empty string`);
    return undefined;
  }
  return value;
}

function wholeNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}
