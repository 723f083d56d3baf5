import { withoutNul } from '../util/text.ts';
import type { RouteConfig } from './types.ts';
import { compilePath } from './where.ts';

const readers = new Map<string, (root: unknown) => unknown>();

/**
 * The ordering key of an event on a route with `orderBy`: the value at that dotted path of the
 * envelope, as a string. Jobs of one route with the same key go out one at a time, in order.
 * Null when the route has no `orderBy`, or when the value is missing, null, an object or a list
 * (such an event is not held behind any other).
 */
export function orderKey(route: Pick<RouteConfig, 'orderBy'>, envelope: unknown): string | null {
  if (route.orderBy === undefined) return null;
  let read = readers.get(route.orderBy);
  if (!read) {
    read = compilePath(route.orderBy);
    readers.set(route.orderBy, read);
  }
  const value = read(envelope);
  // U+0000 as U+FFFD, as the live tables store it: PostgreSQL's text cannot hold it.
  if (typeof value === 'string') return withoutNul(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return null;
}
