import { createHash } from 'node:crypto';
import type { Environment, NewJob } from '../store/inbox-store.ts';
import { matchRoutes } from './match.ts';
import { orderKey } from './ordering.ts';
import type { RouteConfig } from './types.ts';

/** A route's jobs belong to the consumer `route:NAME`. */
export const ROUTE_PREFIX = 'route:';

export function routeConsumer(routeName: string): string {
  return `${ROUTE_PREFIX}${routeName}`;
}

/** The route a consumer name stands for, or undefined for other consumers (handlers). */
export function routeNameOf(consumer: string): string | undefined {
  return consumer.startsWith(ROUTE_PREFIX) ? consumer.slice(ROUTE_PREFIX.length) : undefined;
}

/** Attempts a route's job gets: one, plus one per entry of its retry schedule. */
export function routeMaxAttempts(route: RouteConfig, defaultScheduleMs: readonly number[]): number {
  return 1 + (route.retryScheduleMs ?? defaultScheduleMs).length;
}

/**
 * The jobs of every route an event matches, decided when the event is stored (in the same write),
 * so nothing can be lost between storing and routing. The caller never asks for invalid events.
 */
export function routeJobs(
  routes: readonly RouteConfig[],
  event: { type: string; environment: Environment; envelope: unknown },
  defaultScheduleMs: readonly number[],
): NewJob[] {
  return matchRoutes(routes, event).map((route) => ({
    consumer: routeConsumer(route.name),
    maxAttempts: routeMaxAttempts(route, defaultScheduleMs),
    orderKey: route.orderBy === undefined ? null : orderKey(route, event.envelope),
  }));
}

/**
 * `x-procureiq-delivery` of a forwarded event: the same for every re-send of one event on one
 * route, so the receiver can dedupe; different across routes. A valid UUID (RFC 9562 version 8,
 * the layout for name-based UUIDs from a hash other than SHA-1; here SHA-256 of route and event),
 * so a receiver that checks UUIDs accepts it.
 */
export function forwardedDeliveryId(eventId: string, routeName: string): string {
  const h = createHash('sha256').update(`${routeName}\u0000${eventId}`).digest('hex');
  // The variant's two high bits are 10: the first hex digit of the fourth group is 8, 9, a or b.
  const variant = ((Number.parseInt(h[16] as string, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
