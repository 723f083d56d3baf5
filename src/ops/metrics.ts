import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isKnownEventType } from '../events/catalogue.ts';
import type { DeliveryOutcome } from '../receiver/receiver.ts';
import type { RouteDeliveryInfo } from '../routes/dispatcher.ts';
import { routeNameOf } from '../routes/route-jobs.ts';
import { EVENT_STATUSES, type InboxStore } from '../store/inbox-store.ts';
import type { AttemptInfo } from '../worker/worker.ts';
import { LatestValues, Tally } from './tally.ts';

/**
 * Prometheus metrics on a registry of their own. Event types become label values only when the
 * catalogue knows them (others count as `other`), so a flood of made-up types cannot blow up the
 * number of series.
 */
export interface Metrics {
  readonly registry: Registry;
  delivery(outcome: DeliveryOutcome): void;
  attempt(info: AttemptInfo): void;
  ack(route: string, status: number, seconds: number): void;
  secretUsed(environment: string, secretIndex: number, at: number): void;
  /** One route job's outcome. */
  routeDelivery(info: RouteDeliveryInfo): void;
  /**
   * Where the configured routes and their breakers are read from at each scrape, so every route
   * has its `route_breaker_open` and `route_queue_depth` series (0 until something happens), and a
   * reload's routes replace the old ones.
   */
  watchRoutes(states: () => readonly { name: string; breaker: string }[]): void;
}

const typeLabel = (type: string | undefined) =>
  type === undefined ? 'none' : isKnownEventType(type) ? type : 'other';

export function createMetrics(store: InboxStore): Metrics {
  const registry = new Registry();
  const prefix = 'procureiq_webhooks_';
  // Counters bumped per request, attempt or route job count in plain numbers (Tally) and reach
  // prom-client at each scrape; histograms still observe each value.
  const deliveries = new Tally(['type', 'environment', 'outcome']);
  new Counter({
    name: `${prefix}deliveries_total`,
    help: 'Deliveries received, by event type, environment and outcome (ok, duplicate, invalid, unhandled, bad_signature, bad_request, too_large, unsupported_media_type, unavailable).',
    labelNames: ['type', 'environment', 'outcome'],
    registers: [registry],
    collect() {
      deliveries.drain((labels, n) => this.inc(labels, n));
    },
  });
  const verified = new Tally(['environment', 'secret_index']);
  new Counter({
    name: `${prefix}signature_verified_total`,
    help: 'Deliveries whose signature verified, by environment and the index of the secret that matched.',
    labelNames: ['environment', 'secret_index'],
    registers: [registry],
    collect() {
      verified.drain((labels, n) => this.inc(labels, n));
    },
  });
  const lastVerified = new LatestValues(['environment', 'secret_index']);
  new Gauge({
    name: `${prefix}secret_last_verified_timestamp_seconds`,
    help: 'When each secret last verified a delivery (seen by this process). An old secret whose value stops moving is safe to remove.',
    labelNames: ['environment', 'secret_index'],
    registers: [registry],
    collect() {
      lastVerified.drain((labels, value) => this.set(labels, value));
    },
  });
  const attempts = new Tally(['type', 'environment', 'outcome']);
  new Counter({
    name: `${prefix}attempts_total`,
    help: 'Processing attempts, by event type, environment and outcome (succeeded, failed, timed_out, aborted, unhandled).',
    labelNames: ['type', 'environment', 'outcome'],
    registers: [registry],
    collect() {
      attempts.drain((labels, n) => this.inc(labels, n));
    },
  });
  const attemptDuration = new Histogram({
    name: `${prefix}attempt_duration_seconds`,
    help: 'How long handlers ran, by event type and environment.',
    labelNames: ['type', 'environment'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
    registers: [registry],
  });
  const handlerLag = new Histogram({
    name: `${prefix}receive_to_handler_seconds`,
    help: 'From storing a delivery to its handler starting.',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
    registers: [registry],
  });
  const ackLatency = new Histogram({
    name: `${prefix}ack_duration_seconds`,
    help: 'From receiving a webhook request to answering it, by route and status.',
    labelNames: ['route', 'status'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  new Gauge({
    name: `${prefix}queue_depth`,
    help: 'Events in the inbox by status.',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const counts = await store.countByStatus();
      for (const status of EVENT_STATUSES) this.set({ status }, counts[status]);
    },
  });
  const routeDeliveries = new Tally(['route', 'destination_type', 'outcome']);
  new Counter({
    name: `${prefix}route_deliveries_total`,
    help: 'Route jobs finished, by route, destination type and outcome (delivered, skipped, failed, dead).',
    labelNames: ['route', 'destination_type', 'outcome'],
    registers: [registry],
    collect() {
      routeDeliveries.drain((labels, n) => this.inc(labels, n));
    },
  });
  const routeDuration = new Histogram({
    name: `${prefix}route_delivery_duration_seconds`,
    help: "How long a route's sends took (a batch counts once per job in it), by route.",
    labelNames: ['route'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
    registers: [registry],
  });
  let routeStates: () => readonly { name: string; breaker: string }[] = () => [];
  new Gauge({
    name: `${prefix}route_breaker_open`,
    help: "1 while a route's destination is paused by its circuit breaker, else 0.",
    labelNames: ['route'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { name, breaker } of routeStates()) this.set({ route: name }, breaker === 'open' ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}route_queue_depth`,
    help: 'Route jobs waiting or in flight (pending, retrying, processing), by route (orphaned routes too).',
    labelNames: ['route'],
    registers: [registry],
    async collect() {
      // Counted first, then reset and filled in one turn: two scrapes at once never add up.
      const rows = await store.countJobs({ unfinished: true });
      this.reset();
      for (const { name } of routeStates()) this.set({ route: name }, 0);
      for (const row of rows) {
        const route = routeNameOf(row.consumer);
        if (route === undefined) continue;
        this.inc({ route }, Number(row.count));
      }
    },
  });
  new Gauge({
    name: `${prefix}oldest_waiting_age_seconds`,
    help: 'Age of the oldest event waiting to be processed (pending or retrying); 0 when none waits.',
    registers: [registry],
    async collect() {
      const oldestWaitingAt = await store.oldestWaitingAt();
      this.set(oldestWaitingAt === null ? 0 : Math.max(0, (Date.now() - oldestWaitingAt) / 1000));
    },
  });

  return {
    registry,
    delivery(o) {
      deliveries.add(typeLabel(o.eventType), o.environment, o.outcome);
      if (o.secretIndex !== undefined) verified.add(o.environment, String(o.secretIndex));
    },
    attempt(info) {
      const type = typeLabel(info.type);
      attempts.add(type, info.environment, info.outcome);
      attemptDuration.observe({ type, environment: info.environment }, info.durationMs / 1000);
      if (info.attempt === 1) handlerLag.observe(Math.max(0, info.queuedMs) / 1000);
    },
    ack(route, status, seconds) {
      ackLatency.observe({ route, status: String(status) }, seconds);
    },
    secretUsed(environment, secretIndex, at) {
      lastVerified.set(at / 1000, environment, String(secretIndex));
    },
    routeDelivery(info) {
      routeDeliveries.add(info.route, info.destinationType, info.outcome);
      routeDuration.observe({ route: info.route }, info.seconds);
    },
    watchRoutes(states) {
      routeStates = states;
    },
  };
}

/** `procureiq_webhooks_routes_yielding`: 1 while routes yield to saturated ingest (ROUTE_YIELD). */
export function registerRouteYieldGauge(metrics: Metrics, priority: { readonly busy: boolean }): void {
  new Gauge({
    name: 'procureiq_webhooks_routes_yielding',
    help: '1 while ingest is saturated and each route (and, on PostgreSQL, the projections runner) claims at most one batch per ROUTE_YIELD (they run late, then catch up), else 0.',
    registers: [metrics.registry],
    collect() {
      this.set(priority.busy ? 1 : 0);
    },
  });
}
