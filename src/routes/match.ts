import type { Environment } from '../store/inbox-store.ts';
import { compileGlobs, type TypeMatcher } from './glob.ts';
import type { RouteConfig } from './types.ts';
import { compileWhere, type EnvelopePredicate } from './where.ts';

/** What matching needs to know about one stored event. */
export interface RoutableEvent {
  type: string;
  environment: Environment;
  /** The parsed envelope (`where` paths such as `data.totalAmount` are read from it). */
  envelope: unknown;
}

interface CompiledRoute {
  types: TypeMatcher;
  environment: Environment | undefined;
  where: EnvelopePredicate | undefined;
}

const compiled = new WeakMap<RouteConfig, CompiledRoute>();

function compileRoute(route: RouteConfig): CompiledRoute {
  let entry = compiled.get(route);
  if (!entry) {
    entry = {
      types: compileGlobs(route.match.types),
      environment: route.match.environment,
      where: route.match.where === undefined ? undefined : compileWhere(route.match.where),
    };
    compiled.set(route, entry);
  }
  return entry;
}

/**
 * The routes an event goes to, in the order they are listed. Each route is compiled once (globs to
 * predicates, `where` to a predicate) on first use and cached, so no event re-parses a filter.
 *
 * - An event goes to every route whose type glob, environment (when given) and `where` all match.
 * - An event type the catalogue does not know is routed only where a glob matches it: `*` and
 *   `order.*` do, an exact `order.created` does not.
 * - Events that failed validation (`invalid`) are never routed; the caller filters them out before
 *   asking, since only the caller knows an event's validation status.
 */
export function matchRoutes(routes: readonly RouteConfig[], event: RoutableEvent): RouteConfig[] {
  const matched: RouteConfig[] = [];
  for (const route of routes) {
    const c = compileRoute(route);
    if (!c.types(event.type)) continue;
    if (c.environment !== undefined && c.environment !== event.environment) continue;
    if (c.where && !c.where(event.envelope)) continue;
    matched.push(route);
  }
  return matched;
}
