import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { defaults } from '../config/defaults.ts';
import { type JobCounts, routeOverview } from '../ops/route-overview.ts';
import { loadRoutesFile } from '../routes/config.ts';
import { createDestination } from '../routes/destinations/index.ts';
import { procureIqHeaders, redactUrl, renderTemplate } from '../routes/destinations/shared.ts';
import { matchRoutes } from '../routes/match.ts';
import { forwardedDeliveryId } from '../routes/route-jobs.ts';
import { applyTransform, loadTransform } from '../routes/transform.ts';
import type { DestinationConfig, OutboundMessage, RoutesConfig } from '../routes/types.ts';
import { SIGNATURE_HEADER, sign } from '../signature/sign.ts';
import type { Environment } from '../store/inbox-store.ts';
import { ConfigError, toError } from '../util/errors.ts';
import { table } from './format.ts';
import { dbOption, withStore } from './open-cli-store.ts';

/** `--routes FILE` (or `ROUTES`), as for `serve`. */
export const routesOption = () =>
  new Option('--routes <file>', 'the routes file (YAML or JSON), as given to serve').env('ROUTES');

export async function loadRoutesFlag(file: string | undefined, command: string): Promise<RoutesConfig> {
  if (!file) throw new ConfigError(`${command}: give the routes file with --routes FILE (or ROUTES=FILE)`);
  return loadRoutesFile(file);
}

/**
 * The breaker state of each route, read from the running service's admin API (`ADMIN_TOKEN`),
 * or why not. Waits at most 2 s: a service that does not answer leaves the column at n/a.
 */
async function liveBreakers(
  adminUrl: string | undefined,
): Promise<{ breakers?: Map<string, string>; from: string | null; why?: string }> {
  const token = process.env.ADMIN_TOKEN;
  if (!token) return { from: null, why: 'set ADMIN_TOKEN to read it from there' };
  const base = adminUrl ?? `http://127.0.0.1:${process.env.ADMIN_PORT || process.env.PORT || defaults.port}`;
  const url = `${base.replace(/\/+$/, '')}/admin/api/routes`;
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(2000),
      // The token goes to this address only, never on to wherever it redirects.
      redirect: 'error',
    });
    if (!res.ok) return { from: null, why: `${url} answered ${res.status}` };
    const body = (await res.json()) as { routes?: { name: string; breaker: string }[] };
    return { breakers: new Map((body.routes ?? []).map((r) => [r.name, r.breaker])), from: base };
  } catch (error) {
    return { from: null, why: `no answer from ${url}: ${toError(error).message}` };
  }
}

/** Where a destination sends, without credentials. */
export function destinationTarget(d: DestinationConfig): string {
  const url = redactUrl(d.url);
  switch (d.type) {
    case 'http':
      return url;
    case 'rabbitmq':
      return d.queue !== undefined
        ? `${url} queue ${d.queue}`
        : `${url} exchange ${d.exchange} key ${d.routingKey}`;
    case 'redis-stream':
      return `${url} stream ${d.stream}`;
    case 'bullmq':
      return `${url} queue ${d.queue}`;
    case 'nats':
      return `${url} subject ${d.subject}`;
  }
}

const COUNTED = ['pending', 'processing', 'retrying', 'processed', 'skipped', 'dead'] as const;

function countsText(counts: JobCounts): string {
  return COUNTED.filter((s) => counts[s] > 0)
    .map((s) => `${s} ${counts[s]}`)
    .join(', ');
}

export function registerRoutes(program: Command): void {
  const routes = program
    .command('routes')
    .description('routes to your systems: list them with their jobs, check destinations, test matching');

  routes
    .command('list')
    .description(
      'every route with its destination, breaker state (from the running service) and job counts by status, and orphaned route jobs',
    )
    .addOption(routesOption())
    .addOption(
      new Option(
        '--admin-url <url>',
        'the running service whose breakers to show (needs ADMIN_TOKEN); default http://127.0.0.1:ADMIN_PORT, else PORT, else 3000',
      ).env('ADMIN_URL'),
    )
    .option('--json', 'print JSON')
    .addOption(dbOption())
    .action(async (opts: { routes?: string; json?: boolean; db?: string; adminUrl?: string }) => {
      const config = await loadRoutesFlag(opts.routes, 'routes list');
      const configured = config.routes.map((r) => {
        const destination = config.destinations.get(r.to);
        return {
          name: r.name,
          destination: r.to,
          destinationType: destination?.type ?? ('http' as const),
          types: r.match.types,
        };
      });
      const overview = await withStore(opts.db, (store) => routeOverview(store, configured));
      // The breaker lives in the running service's memory: ask it (its admin API), else say n/a.
      const live = await liveBreakers(opts.adminUrl);
      const rows = overview.routes.map((r) => ({ ...r, breaker: live.breakers?.get(r.name) ?? 'n/a' }));
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify({ routes: rows, orphaned: overview.orphaned, breakersFrom: live.from }, null, 2)}\n`,
        );
        return;
      }
      let out = table(
        ['ROUTE', 'DESTINATION', 'TYPE', 'MATCHES', 'BREAKER', 'JOBS'],
        rows.map((r) => [
          r.name,
          r.destination,
          r.destinationType,
          r.types.join(','),
          r.breaker,
          countsText(r.counts) || 'none',
        ]),
      );
      if (overview.orphaned.length > 0) {
        out += `\nOrphaned (no route of this name in ${opts.routes}; the jobs stay and resume if it comes back):\n`;
        out += table(
          ['ROUTE', 'JOBS'],
          overview.orphaned.map((o) => [o.route, countsText(o.counts) || 'none']),
        );
      }
      out += live.breakers
        ? `\nBreaker states from the running service at ${live.from}.\n`
        : `\nBreaker state is kept by the running service (${live.why}): GET /admin/api/routes or the dashboard's Routes page.\n`;
      process.stdout.write(out);
    });

  routes
    .command('check')
    .description('connect to every destination and check its target exists; exit 1 if any fails')
    .addOption(routesOption())
    .option('--json', 'print JSON')
    .action(async (opts: { routes?: string; json?: boolean }) => {
      const config = await loadRoutesFlag(opts.routes, 'routes check');
      const results = await Promise.all(
        [...config.destinations.values()].map(async (d) => {
          const client = createDestination(d);
          try {
            await client.check();
            return { destination: d.name, type: d.type, target: destinationTarget(d), ok: true, error: null };
          } catch (error) {
            return {
              destination: d.name,
              type: d.type,
              target: destinationTarget(d),
              ok: false,
              error: toError(error).message,
            };
          } finally {
            await client.close().catch(() => {});
          }
        }),
      );
      if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
      else
        process.stdout.write(
          results
            .map(
              (r) =>
                `${r.ok ? 'ok   ' : 'ERROR'}  ${r.destination} (${r.type}) ${r.target}${r.error ? `\n       ${r.error}` : ''}`,
            )
            .join('\n')
            .concat('\n'),
        );
      if (results.some((r) => !r.ok)) process.exitCode = 1;
    });

  routes
    .command('test')
    .description(
      'which routes an event matches and what each would send (body after its transform, headers); sends nothing',
    )
    .argument('<event>', 'a stored event id, or a JSON file holding an envelope')
    .addOption(routesOption())
    .addOption(
      new Option('--environment <env>', 'for a file: the environment it arrived in').choices([
        'production',
        'sandbox',
      ]),
    )
    .option('--json', 'print JSON')
    .addOption(dbOption())
    .action(
      async (
        eventArg: string,
        opts: { routes?: string; environment?: Environment; json?: boolean; db?: string },
      ) => {
        const config = await loadRoutesFlag(opts.routes, 'routes test');
        const event = await readEvent(eventArg, opts);
        const matched = matchRoutes(config.routes, event);
        const results = [];
        for (const route of matched) {
          const destination = config.destinations.get(route.to);
          if (!destination) continue;
          const transform = route.transform === undefined ? undefined : await loadTransform(route.transform);
          let body: Awaited<ReturnType<typeof applyTransform>>;
          try {
            body = await applyTransform(transform, event.envelope, event.rawBody);
          } catch (error) {
            results.push({ route: route.name, destination: route.to, error: toError(error).message });
            continue;
          }
          if (body === null) {
            results.push({ route: route.name, destination: route.to, skipped: true });
            continue;
          }
          const message: OutboundMessage = {
            eventId: event.id,
            type: event.type,
            environment: event.environment,
            created: event.created,
            deliveryId: forwardedDeliveryId(event.id, route.name),
            body: body.body,
            contentType: body.contentType,
            timestamp: Math.floor(Date.now() / 1000),
          };
          results.push({
            route: route.name,
            destination: route.to,
            destinationType: destination.type,
            target: sendTarget(destination, message),
            contentType: body.contentType,
            headers: outboundHeaders(destination, message),
            body: body.body.toString('utf8'),
          });
        }
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify({ event: { id: event.id, type: event.type, environment: event.environment }, routes: results }, null, 2)}\n`,
          );
          return;
        }
        const out = [
          `${event.id} (${event.type}, ${event.environment}) matches ${matched.length} of ${config.routes.length} route(s)`,
        ];
        for (const r of results) {
          out.push('', `route ${r.route} -> ${r.destination}`);
          if ('error' in r) out.push(`  transform failed: ${r.error}`);
          else if ('skipped' in r) out.push('  skipped: the transform returned null');
          else {
            out.push(`  ${r.destinationType} ${r.target}`, `  content-type: ${r.contentType}`, '  headers:');
            for (const [k, v] of Object.entries(r.headers)) out.push(`    ${k}: ${v}`);
            out.push('  body:', r.body);
          }
        }
        process.stdout.write(`${out.join('\n')}\n`);
      },
    );
}

interface TestEvent {
  id: string;
  type: string;
  environment: Environment;
  created: number;
  envelope: unknown;
  rawBody: Buffer;
}

/** An event from the store by id, or from a JSON file holding an envelope. */
async function readEvent(arg: string, opts: { environment?: Environment; db?: string }): Promise<TestEvent> {
  if (existsSync(arg)) {
    const rawBody = await readFile(arg);
    let envelope: unknown;
    try {
      envelope = JSON.parse(rawBody.toString('utf8'));
    } catch (error) {
      throw new ConfigError(`routes test: ${arg} is not JSON: ${toError(error).message}`);
    }
    const e = envelope as {
      id?: unknown;
      type?: unknown;
      created?: unknown;
      metadata?: { environment?: unknown };
    };
    if (
      typeof envelope !== 'object' ||
      envelope === null ||
      typeof e.id !== 'string' ||
      typeof e.type !== 'string'
    )
      throw new ConfigError(`routes test: ${arg} must hold an event envelope with a string "id" and "type"`);
    const fromMetadata = e.metadata?.environment;
    const environment =
      opts.environment ??
      (fromMetadata === 'sandbox' || fromMetadata === 'production' ? fromMetadata : 'production');
    return {
      id: e.id,
      type: e.type,
      environment,
      created: typeof e.created === 'number' ? e.created : 0,
      envelope,
      rawBody,
    };
  }
  const stored = await withStore(opts.db, (store) => store.get(arg));
  if (!stored) throw new ConfigError(`routes test: no stored event with id ${arg}, and no file of that name`);
  if (stored.status === 'invalid')
    throw new ConfigError(
      `routes test: ${arg} is invalid (${stored.validationError}); invalid events are never routed`,
    );
  const rawBody = Buffer.from(stored.rawBody);
  if (rawBody.length === 0)
    throw new ConfigError(`routes test: the payload of ${arg} was purged by retention`);
  return {
    id: stored.id,
    type: stored.type,
    environment: stored.environment,
    created: stored.created,
    envelope: JSON.parse(rawBody.toString('utf8')),
    rawBody,
  };
}

/** The queue, stream, subject or URL this message would go to. */
function sendTarget(d: DestinationConfig, message: OutboundMessage): string {
  if (d.type === 'rabbitmq' && d.exchange !== undefined)
    return `exchange ${d.exchange} key ${renderTemplate(d.routingKey ?? '{type}', message)}`;
  if (d.type === 'nats') return `subject ${renderTemplate(d.subject, message)}`;
  return destinationTarget(d);
}

/**
 * What goes with the body: HTTP, RabbitMQ and NATS headers; a Redis Stream entry's other fields;
 * a BullMQ job's name and id.
 */
function outboundHeaders(d: DestinationConfig, message: OutboundMessage): Record<string, string> {
  if (d.type === 'redis-stream')
    return {
      id: message.eventId,
      type: message.type,
      environment: message.environment,
      created: String(message.created),
    };
  if (d.type === 'bullmq') return { name: message.type, jobId: message.eventId };
  if (d.type !== 'http') return { 'content-type': message.contentType, ...procureIqHeaders(message) };
  // As the HTTP destination builds them (src/routes/destinations/http.ts).
  const headers: Record<string, string> = {
    ...d.headers,
    'content-type': message.contentType,
    'x-procureiq-event': message.type,
    'x-procureiq-timestamp': String(message.timestamp),
    'x-procureiq-delivery': message.deliveryId,
    'idempotency-key': message.eventId,
  };
  if (d.secret) headers[SIGNATURE_HEADER] = sign(d.secret, message.body);
  return headers;
}
