import { AdminRequestError, InputError } from '../util/errors.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type Params = Readonly<Record<string, string>>;

/** One route: a method and a path pattern whose `:name` segments become decoded params. */
export interface Route<H> {
  method: Method;
  /** e.g. `/events/:id/replay`; literal segments match exactly. */
  pattern: string;
  handler: H;
}

/**
 * A route table: `(method, path) -> handler + params`. Each param is percent-decoded once, here;
 * a malformed escape is bad input (400), not a failure. A path that exists under another method is
 * 405 with `Allow`; one that matches nothing is 404.
 *
 * @example
 * const table = createRouteTable([{ method: 'GET', pattern: '/events/:id', handler: showEvent }]);
 * const { handler, params } = table.match('GET', '/events/evt_1'); // params.id === 'evt_1'
 */
export function createRouteTable<H>(routes: readonly Route<H>[]) {
  const compiled = routes.map((route) => ({ ...route, segments: route.pattern.split('/').slice(1) }));

  function capture(segments: string[], path: string[]): Record<string, string> | undefined {
    if (segments.length !== path.length) return undefined;
    const raw: Record<string, string> = {};
    for (const [i, segment] of segments.entries()) {
      const actual = path[i] ?? '';
      if (segment.startsWith(':')) {
        if (actual === '') return undefined;
        raw[segment.slice(1)] = actual;
      } else if (segment !== actual) return undefined;
    }
    return raw;
  }

  return {
    match(method: string, pathname: string): { handler: H; params: Params } {
      const path = pathname.split('/').slice(1);
      const allowed: string[] = [];
      for (const route of compiled) {
        const raw = capture(route.segments, path);
        if (!raw) continue;
        if (route.method !== method) {
          allowed.push(route.method);
          continue;
        }
        const params: Record<string, string> = {};
        for (const [name, value] of Object.entries(raw)) params[name] = decodeSegment(value, name);
        return { handler: route.handler, params };
      }
      if (allowed.length > 0)
        throw new AdminRequestError(405, 'method_not_allowed', `${pathname} answers ${allowed.join(', ')}`, {
          allow: allowed.join(', '),
        });
      throw new AdminRequestError(404, 'not_found', `no admin route for ${method} ${pathname}`);
    },
  };
}

function decodeSegment(value: string, name: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new InputError(`the ${name} in the path has a malformed percent-escape: "${value}"`);
  }
}
