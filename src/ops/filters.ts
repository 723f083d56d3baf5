import { parseDuration } from '../config/duration.ts';
import { EVENT_STATUSES, type EventStatus, type ListFilter } from '../store/inbox-store.ts';
import { InputError } from '../util/errors.ts';

/** Bad input from an operator (admin API: 400; CLI: exit 2), with what to fix. */

const TYPE_PATTERN = /^[A-Za-z0-9_.*-]{1,100}$/;

/** `status`, `type` (wildcards like `order.*`), `environment`, `since`/`until`, `q`, `limit`, `before`. */
export function parseFilter(params: URLSearchParams): ListFilter {
  const known = new Set(['status', 'type', 'environment', 'since', 'until', 'q', 'limit', 'before']);
  for (const key of params.keys())
    if (!known.has(key)) throw new InputError(`unknown filter "${key}"; use ${[...known].join(', ')}`);
  const filter: ListFilter = { limit: parseLimit(params.get('limit'), 50) };
  const status = params.get('status');
  if (status) {
    if (!(EVENT_STATUSES as readonly string[]).includes(status)) {
      throw new InputError(`status "${status}" is not one of ${EVENT_STATUSES.join(', ')}`);
    }
    filter.status = status as EventStatus;
  }
  const type = params.get('type');
  if (type) {
    if (!TYPE_PATTERN.test(type))
      throw new InputError(`type "${type}" may hold letters, digits, ".", "_", "-" and "*" only`);
    filter.type = type;
  }
  const environment = parseEnvironment(params.get('environment'));
  if (environment) filter.environment = environment;
  const since = params.get('since');
  if (since) filter.since = parseTime(since, 'since');
  const until = params.get('until');
  if (until) filter.until = parseTime(until, 'until');
  const q = params.get('q');
  if (q) {
    if (q.length > 200) throw new InputError('q (text to search in payloads) is limited to 200 characters');
    filter.text = q;
  }
  const before = params.get('before');
  if (before) filter.before = before;
  return filter;
}

export function parseEnvironment(value: string | null): 'production' | 'sandbox' | undefined {
  if (!value) return undefined;
  if (value !== 'production' && value !== 'sandbox')
    throw new InputError(`environment "${value}" must be production or sandbox`);
  return value;
}

export function parseLimit(value: string | null, fallback: number): number {
  if (value === null || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 500)
    throw new InputError(`limit "${value}" must be a whole number from 1 to 500`);
  return n;
}

/** An ISO time, epoch milliseconds, or a duration ago (`2h` = two hours ago). */
export function parseTime(value: string, name: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  if (/^\d+(\.\d+)?(ms|s|m|h|d)$/.test(value)) return Date.now() - parseDuration(value);
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new InputError(
      `${name} "${value}" is not a time: use an ISO time, epoch ms, or a duration ago like 2h`,
    );
  return t;
}
