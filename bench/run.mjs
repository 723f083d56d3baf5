// npm run bench: ingest throughput and ack latency of the real server (durable SQLite), against a
// bare node:http ceiling and the guide's Express example, in one run; plus processing throughput
// and receive-to-handler latency with a no-op handler. Load comes from wrk with a pre-signed pool.
//
// The machine is shared and noisy, so the ingest comparison runs in rounds: each round measures
// every target once, back to back, and the table gives the median over rounds (ratios are the
// median of each round's own ratio, so targets are compared under the same conditions). Every
// measurement follows a warm-up under load (JIT, caches), with events of their own.
//
// Load: `wrk -t1 -c50` replaying a pool of unique, pre-signed order.created bodies (about 500
// bytes); a fresh store for every measured round.
//
// Options (env): BENCH_DURATION (s per measurement, default 10), BENCH_WARMUP (s, default 2),
// BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 50), BENCH_LOW_CONNECTIONS (the latency
// rows, default 10), BENCH_LOG_LEVEL (the service's LOG_LEVEL, default warn), BENCH_TARGETS
// (comma list of bare, express, sqlite, postgres, routes, projections, latency; default all).
// `routes` adds the routing rows (bench/routes.mjs) and ingest with two routes configured against
// ingest without routes; `projections` the live tables' rows (bench/projections.mjs); `latency`
// the open-loop rows, warm and cold (bench/latency.mjs, pinned with taskset).
import { execFileSync, fork, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchOpenLoop } from './latency.mjs';
import { BENCH_SECRET, freePort, runWrk, stop, waitHealthy, writePool } from './lib.mjs';
import { benchProjections, projectionsTable } from './projections.mjs';
import { benchRoute, routeTypes, twoRoutesFile } from './routes.mjs';

const here = new URL('.', import.meta.url).pathname;
const repo = join(here, '..');
const duration = Number(process.env.BENCH_DURATION ?? 10);
const warmup = Number(process.env.BENCH_WARMUP ?? 2);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const lowConnections = Number(process.env.BENCH_LOW_CONNECTIONS ?? 10);
// One wrk thread: a second one takes more of the 2 cores from the servers, and the ratio moves with it.
const threads = 1;
const logLevel = process.env.BENCH_LOG_LEVEL ?? 'warn';
const secret = BENCH_SECRET;
const targets = (
  process.env.BENCH_TARGETS ?? 'bare,express,sqlite,postgres,routes,projections,latency'
).split(',');
const pgUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// "ingest only" runs the service without handlers (events are stored and marked unhandled, no
// worker traffic): the receiver and the durable write alone. "+ no-op handler" adds the worker
// leasing, running and completing every event in the same process, under the same load.

function requireWrk() {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (error) {
    if (error.code === 'ENOENT') {
      console.error('npm run bench needs wrk: apt-get install -y wrk');
      process.exit(1);
    }
  }
}

/**
 * Load on several instances at once (one wrk each, connections split); figures combined. A warm-up
 * with events of its own (`pools.warmup`) comes first and is not counted.
 */
async function runWrkOn(urls, pools, conns = connections, afterWarmup = async () => {}) {
  const each = Math.max(threads, Math.floor(conns / urls.length));
  const load = (pool, seconds) =>
    Promise.all(
      urls.map((url, shard) =>
        runWrk(url, pool, { threads, conns: each, seconds, shard, shards: urls.length }),
      ),
    );
  if (warmup > 0) await load(pools.warmup, warmup);
  await afterWarmup();
  const parts = await load(pools.measure, duration);
  const sum = (k) => parts.reduce((a, p) => a + p[k], 0);
  return {
    requests: sum('requests'),
    seconds: Math.max(...parts.map((p) => p.duration_us / 1e6)),
    rps: sum('rps'),
    non2xx: sum('non2xx'),
    errors: sum('errors'),
    // Percentiles of the parts cannot be merged exactly: report the worst part's.
    p50: Math.max(...parts.map((p) => p.p50)),
    p99: Math.max(...parts.map((p) => p.p99)),
  };
}

async function benchBaseline(name, file, pools, conns = connections) {
  const port = await freePort();
  const child = fork(join(here, 'baselines', file), [], {
    env: { ...process.env, PORT: String(port), WEBHOOK_SECRET: secret },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
  });
  const result = await runWrkOn([`http://127.0.0.1:${port}/webhooks/procureiq`], pools, conns);
  await stop(child);
  return result;
}

/** Runs `instances` service processes on one database, loads them, and measures processing. */
async function benchService(
  dir,
  pools,
  { handlers, database, instances = 1, label, env = {}, conns = connections },
) {
  const children = [];
  const statsFiles = [];
  const urls = [];
  for (let i = 0; i < instances; i++) {
    const port = await freePort();
    const statsFile = join(dir, `handler-stats-${label}-${i}.json`);
    statsFiles.push(statsFile);
    // BENCH_SERVICE_PROFILE=DIR writes CPU profiles of each service (every thread) there.
    const profile = process.env.BENCH_SERVICE_PROFILE
      ? ['--cpu-prof', `--cpu-prof-dir=${join(process.env.BENCH_SERVICE_PROFILE, label)}`]
      : [];
    const child = spawn(
      process.execPath,
      [
        ...profile,
        join(repo, 'bin', 'procureiq-webhooks.js'),
        'serve',
        ...(handlers ? ['--handlers', join(here, 'noop-handlers.mjs')] : []),
      ],
      {
        env: {
          ...process.env,
          PORT: String(port),
          HOST: '127.0.0.1',
          WEBHOOK_SECRET: secret,
          DATABASE_URL: database,
          LOG_LEVEL: logLevel,
          BENCH_OUT: statsFile,
          METRICS_PUBLIC: 'true',
          ...env,
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    children.push(child);
    await waitHealthy(`http://127.0.0.1:${port}/healthz`, child);
    urls.push(`http://127.0.0.1:${port}/webhooks/procureiq`);
  }
  let before = [];
  const ingest = await runWrkOn(urls, pools, conns, async () => {
    before = await ackBuckets(urls[0]);
  });
  ingest.inService = inServiceAck(before, await ackBuckets(urls[0]));
  ingest.peakRssMb = Math.max(...children.map(peakRssMb));
  if (!handlers) {
    await Promise.all(children.map(stop));
    return { ingest };
  }
  const ingestEnded = Date.now();
  // Let the workers drain what is left, then stop the services so the handlers write their figures.
  const counter = await openCounter(database);
  let drainMs = 0;
  for (;;) {
    const pending = await counter.pending();
    if (pending === 0) break;
    if (Date.now() - ingestEnded > 120_000) throw new Error(`workers did not drain: ${pending} left`);
    await sleep(20);
    drainMs = Date.now() - ingestEnded;
  }
  const stored = await counter.stored();
  await counter.close();
  await Promise.all(children.map(stop));
  const all = statsFiles.map((f) => JSON.parse(readFileSync(f, 'utf8')));
  const waits = all.flatMap((s) => s.waits).sort((a, b) => a - b);
  const pct = (p) => waits[Math.min(waits.length - 1, Math.floor((p / 100) * waits.length))];
  return {
    ingest,
    stored,
    processing: {
      handled: waits.length,
      // Handled per second of load, counting the time the backlog took to drain after it.
      perSecond: waits.length / (ingest.seconds + drainMs / 1000),
      drainMs,
      p50: pct(50),
      p99: pct(99),
    },
  };
}

/** The most memory a process has held (VmHWM), in MB; 0 where /proc cannot tell. */
function peakRssMb(child) {
  try {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
    return kb / 1024;
  } catch {
    return 0;
  }
}

/** The service's own ack-latency histogram: cumulative counts by upper bound (ms), answers 200. */
async function ackBuckets(webhookUrl) {
  const text = await (await fetch(new URL('/metrics', webhookUrl))).text();
  const buckets = [];
  for (const line of text.split('\n')) {
    const m = /^procureiq_webhooks_ack_duration_seconds_bucket\{le="([^"]+)",.*status="200"\} (\d+)/.exec(
      line,
    );
    if (m) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]) * 1000, Number(m[2])]);
  }
  return buckets;
}

/**
 * Ack latency as the service measures it (from a request's headers being parsed to its answer
 * being written), over the measured part of the run: the share answered within 10 ms, and the
 * bucket holding p99. Against wrk's figures, it shows how much of the tail comes before the
 * service sees a request (waiting in the socket and for the CPU, shared with wrk here).
 */
function inServiceAck(before, after) {
  const counts = after.map(([le, count]) => [le, count - (before.find(([b]) => b === le)?.[1] ?? 0)]);
  const total = counts.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  const within10 = counts.find(([le]) => le === 10)?.[1] ?? 0;
  const p99AtMost = counts.find(([, count]) => count >= 0.99 * total)?.[0];
  return { within10: within10 / total, p99AtMost };
}

/** Counts stored and unfinished events, in SQLite or PostgreSQL. */
async function openCounter(database) {
  const unfinished = "status IN ('pending','processing','retrying')";
  if (database.startsWith('sqlite:')) {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(database.slice('sqlite:'.length), { readonly: true });
    return {
      pending: async () => db.prepare(`SELECT COUNT(*) FROM events WHERE ${unfinished}`).pluck().get(),
      stored: async () => db.prepare('SELECT COUNT(*) FROM events').pluck().get(),
      close: async () => db.close(),
    };
  }
  const { default: pg } = await import('pg');
  const url = new URL(database);
  const schema = url.searchParams.get('schema');
  url.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  const count = async (where) =>
    Number((await client.query(`SELECT COUNT(*) AS n FROM "${schema}".events ${where}`)).rows[0].n);
  return {
    pending: () => count(`WHERE ${unfinished}`),
    stored: () => count(''),
    close: () => client.end(),
  };
}

async function withPgSchema(fn) {
  const { default: pg } = await import('pg');
  const schema = `piq_bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  try {
    return await fn(`${pgUrl}${pgUrl.includes('?') ? '&' : '?'}schema=${schema}`);
  } finally {
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  }
}

const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function main() {
  requireWrk();
  if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) throw new Error('run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'piq-bench-'));
  try {
    // Enough unique events for the fastest target to never repeat one; the warm-ups have their own.
    const size = Number(process.env.BENCH_POOL ?? Math.max(200_000, duration * 90_000));
    const pools = { measure: join(dir, 'pool.tsv'), warmup: join(dir, 'warmup.tsv') };
    console.log(`pre-signing ${fmt(size)} unique deliveries…`);
    await writePool(pools.measure, size, 'm');
    await writePool(pools.warmup, Math.max(20_000, warmup * 90_000), 'w');
    console.log(
      `wrk: ${threads} threads, ${connections} connections (latency rows: ${lowConnections}), ${warmup}s warm-up + ${duration}s per measurement, ${rounds} rounds; service LOG_LEVEL=${logLevel}\n`,
    );
    const sqliteDb = (name) => `sqlite:${join(dir, `${name}.db`)}`;

    // The comparison: every target once per round, back to back. `low` targets run below
    // saturation, for latency: in a closed loop each connection waits for its answer, so at 50
    // connections the mean ack time is 50 / throughput whatever the server does.
    const baseline = (name, file, conns) => () => benchBaseline(name, file, pools, conns);
    const sqliteIngest =
      (prefix, options = {}) =>
      async (round) => {
        const database = sqliteDb(`${prefix}-${round}`);
        return (
          await benchService(dir, pools, {
            handlers: false,
            database,
            label: `${prefix}${round}`,
            ...options,
          })
        ).ingest;
      };
    const withLow = lowConnections > 0;
    // Ingest with two routes configured (their dispatcher delivering as events arrive) against the
    // same service without routes, interleaved in the same rounds.
    const twoRoutes = targets.includes('routes') ? await twoRoutesFile(dir, freePort) : undefined;
    const compared = [
      targets.includes('bare') && {
        key: 'bare',
        name: 'bare node:http (ceiling, not durable)',
        run: baseline('bare', 'bare-server.mjs'),
      },
      targets.includes('express') && {
        key: 'express',
        name: "guide's Express example (in memory)",
        run: baseline('Express', 'express-guide.cjs'),
      },
      targets.includes('sqlite') && {
        key: 'sqlite',
        name: 'SQLite (durable), ingest only',
        run: sqliteIngest('ingest'),
      },
      targets.includes('sqlite') && {
        key: 'inline',
        name: 'SQLite (durable), ingest only, commits on the event loop',
        run: sqliteIngest('inline', { env: { SQLITE_WRITER: 'inline' } }),
      },
      targets.includes('bare') &&
        withLow && {
          key: 'bareLow',
          low: true,
          name: `bare node:http, ${lowConnections} connections`,
          run: baseline('bare', 'bare-server.mjs', lowConnections),
        },
      targets.includes('sqlite') &&
        withLow && {
          key: 'sqliteLow',
          low: true,
          name: `SQLite (durable), ingest only, ${lowConnections} connections`,
          run: sqliteIngest('low', { conns: lowConnections }),
        },
      // PostgreSQL ingest against SQLite's, round by round: the PostgreSQL server shares the cores,
      // so a ratio measured once moves with the machine more than most.
      targets.includes('postgres') && {
        key: 'postgres',
        name: 'PostgreSQL, 1 instance, ingest only',
        run: async (round) =>
          (
            await withPgSchema((database) =>
              benchService(dir, pools, { handlers: false, database, label: `pi1-${round}` }),
            )
          ).ingest,
      },
      twoRoutes && {
        key: 'routesNone',
        name: 'SQLite (durable), ingest only, no routes (routes comparison)',
        run: sqliteIngest('noroutes'),
      },
      twoRoutes && {
        key: 'routesTwo',
        name: 'SQLite (durable), ingest with two routes (Redis stream, NATS)',
        run: sqliteIngest('tworoutes', { env: { ROUTES: twoRoutes.file } }),
      },
    ].filter(Boolean);
    const results = new Map(compared.map(({ key }) => [key, []]));
    for (let round = 0; round < rounds; round++) {
      for (const { key, name, run } of compared) {
        const r = await run(round);
        results.get(key).push(r);
        console.log(`round ${round + 1}/${rounds}: ${name}: ${fmt(r.rps)} req/s, p99 ${fmt(r.p99, 2)} ms`);
      }
    }
    await twoRoutes?.cleanup();

    const rows = new Map();
    for (const { key, name, low } of compared) {
      const runs = results.get(key);
      // Ratios within a round, then the median: both sides saw the same machine.
      const ratio = (base) =>
        results.has(base) && !low ? median(runs.map((r, i) => r.rps / results.get(base)[i].rps)) : undefined;
      const vsNoRoutes = key === 'routesTwo' ? ratio('routesNone') : undefined;
      rows.set(key, {
        name,
        rps: median(runs.map((r) => r.rps)),
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
        refused: runs.reduce((a, r) => a + r.non2xx + r.errors, 0),
        vsBare: ratio('bare'),
        vsExpress: ratio('express'),
        inService: runs.some((r) => r.inService)
          ? {
              within10: median(runs.map((r) => r.inService?.within10 ?? 0)),
              p99AtMost: median(runs.map((r) => r.inService?.p99AtMost ?? Infinity)),
            }
          : undefined,
        perRound: runs.map((r) => fmt(r.rps)).join(' / '),
        peakRssMb: Math.max(...runs.map((r) => r.peakRssMb ?? 0)),
        requests: Math.min(...runs.map((r) => r.requests)),
        vsNoRoutes,
        vsSqlite: key === 'postgres' ? ratio('sqlite') : undefined,
        p99VsSqlite:
          key === 'postgres' && results.has('sqlite')
            ? median(runs.map((r, i) => r.p99 / results.get('sqlite')[i].p99))
            : undefined,
      });
    }

    // Processing, and the PostgreSQL backend: measured once each.
    const services = [];
    const single = [];
    if (targets.includes('sqlite')) {
      const withHandler = await benchService(dir, pools, {
        handlers: true,
        database: sqliteDb('handlers'),
        label: 'sh',
      });
      single.push(['SQLite (durable), + no-op handler', withHandler.ingest]);
      services.push(['SQLite, 1 instance', withHandler]);
    }
    if (targets.includes('postgres')) {
      for (const instances of (process.env.BENCH_PG_INSTANCES ?? '1,2').split(',').map(Number)) {
        const name = `PostgreSQL, ${instances} instance${instances > 1 ? 's' : ''}`;
        // One instance's ingest ran in the interleaved rounds above.
        if (instances > 1) {
          const ingestOnly = await withPgSchema((database) =>
            benchService(dir, pools, { handlers: false, database, instances, label: `pi${instances}` }),
          );
          single.push([`${name}, ingest only`, ingestOnly.ingest]);
        }
        const withHandler = await withPgSchema((database) =>
          benchService(dir, pools, { handlers: true, database, instances, label: `ph${instances}` }),
        );
        single.push([`${name}, + no-op handler`, withHandler.ingest]);
        services.push([name, withHandler]);
      }
    }

    const ms = (v) => `${fmt(v, 2)} ms`;
    const times = (v) => (v === undefined ? '-' : fmt(v, 2));
    const inService = (s) =>
      s
        ? `${fmt(s.within10 * 100, 1)}% ≤ 10 ms, p99 ≤ ${s.p99AtMost === Infinity ? '∞' : fmt(s.p99AtMost)} ms`
        : '-';
    console.log(`\nIngest (unique signed order.created deliveries): median of ${rounds} rounds`);
    console.log(
      '| target | req/s | p50 ack | p99 ack | non-2xx | × bare | × Express | in-service ack | req/s by round |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |');
    for (const r of rows.values()) {
      console.log(
        `| ${r.name} | ${fmt(r.rps)} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.refused} | ${times(r.vsBare)} | ${times(r.vsExpress)} | ${inService(r.inService)} | ${r.perRound} |`,
      );
    }
    // The targets, checked against this run.
    const durable = rows.get('sqlite');
    const check = (label, value, ok) => `- ${label} ${value}: ${ok ? 'met' : 'NOT met'}`;
    const lines = [];
    if (durable) {
      if (durable.vsBare !== undefined)
        lines.push(
          check(
            'SQLite ingest ≥ 0.45× bare (stretch 0.5×):',
            `${fmt(durable.vsBare, 2)}×`,
            durable.vsBare >= 0.45,
          ),
        );
      if (durable.vsExpress !== undefined)
        lines.push(
          check('SQLite ingest ≥ 3× Express:', `${fmt(durable.vsExpress, 2)}×`, durable.vsExpress >= 3),
        );
      lines.push(check(`p99 ack ≤ 8 ms at ${connections} connections:`, ms(durable.p99), durable.p99 <= 8));
      lines.push(
        check(
          `peak RSS < 250 MB (over at least ${fmt(durable.requests)} events per run):`,
          `${fmt(durable.peakRssMb)} MB`,
          durable.peakRssMb < 250,
        ),
      );
    }
    const pgIngest = rows.get('postgres');
    if (pgIngest?.vsSqlite !== undefined) {
      lines.push(
        check(
          `PostgreSQL ingest ≥ 0.6× SQLite (median of ${rounds} interleaved rounds' ratios):`,
          `${fmt(pgIngest.vsSqlite, 2)}×`,
          pgIngest.vsSqlite >= 0.6,
        ),
        check(
          'PostgreSQL p99 ack ≤ 2× SQLite (median of per-round ratios):',
          `${fmt(pgIngest.p99VsSqlite, 2)}× (medians ${ms(pgIngest.p99)} vs ${ms(durable.p99)})`,
          pgIngest.p99VsSqlite <= 2,
        ),
      );
    }
    if (lines.length > 0) console.log(`\nTargets (ingest):\n${lines.join('\n')}`);
    if (single.length > 0) {
      console.log('\nMeasured once');
      console.log('| target | req/s | p50 ack | p99 ack | non-2xx | in-service ack |');
      console.log('| --- | ---: | ---: | ---: | ---: | --- |');
      for (const [name, r] of single) {
        console.log(
          `| ${name} | ${fmt(r.rps)} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.non2xx + r.errors} | ${inService(r.inService)} |`,
        );
      }
    }
    // Routing: one destination type at a time, measured once each.
    const routed = [];
    if (targets.includes('routes')) {
      for (const type of routeTypes) {
        const r = await benchRoute(type, { dir, secret, freePort, waitHealthy, stop, logLevel });
        console.log(`routes: ${type}: ${fmt(r.perSecond)} delivered/s, p99 ${fmt(r.p99)} ms`);
        routed.push(r);
      }
    }
    if (services.length > 0) {
      console.log('\nProcessing (no-op handler, under the ingest load above)');
      console.log(
        '| store | stored | handled | handled/s | receive→handler p50 | p99 | backlog drained after load |',
      );
      console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
      for (const [name, service] of services) {
        const p = service.processing;
        console.log(
          `| ${name} | ${fmt(service.stored)} | ${fmt(p.handled)} | ${fmt(p.perSecond)} | ${fmt(p.p50, 0)} ms | ${fmt(p.p99, 0)} ms | ${fmt(p.drainMs)} ms |`,
        );
        if (service.stored !== p.handled)
          console.log(`WARNING: ${service.stored - p.handled} stored events were not handled`);
      }
    }
    if (routed.length > 0) {
      console.log(
        `\nRouting (${fmt(routed[0].delivered)} events per destination, one route, sent by ${process.env.BENCH_ROUTE_SENDERS ?? 32} concurrent requests; SQLite)`,
      );
      console.log(
        '| destination | delivered | delivered/s | receive→delivered p50 | p99 | ingest req/s while routing | non-2xx | target |',
      );
      console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
      for (const r of routed) {
        const target =
          r.target === undefined
            ? '-'
            : `≥ ${fmt(r.target)}/s ${r.perSecond >= r.target ? 'met' : 'NOT met'}`;
        console.log(
          `| ${r.type} | ${fmt(r.delivered)} | ${fmt(r.perSecond)} | ${fmt(r.p50)} ms | ${fmt(r.p99)} ms | ${fmt(r.ingestPerSecond)} | ${r.refused} | ${target} |`,
        );
        if (Object.keys(r.other).length > 0) console.log(`WARNING: ${r.type}: ${JSON.stringify(r.other)}`);
      }
    }
    const withRoutes = rows.get('routesTwo');
    if (withRoutes?.vsNoRoutes !== undefined) {
      const ok = withRoutes.vsNoRoutes >= 0.9;
      console.log(
        `\nTarget (ingest with two routes ≥ 0.9× without routes): ${fmt(withRoutes.vsNoRoutes, 2)}× ${ok ? 'met' : 'NOT met'} (median of ${rounds} interleaved rounds)`,
      );
    }
    if (targets.includes('projections')) {
      console.log('\nProjections (bench/projections.mjs)');
      console.log(
        projectionsTable(await benchProjections({ dir, secret, freePort, waitHealthy, stop, logLevel })),
      );
    }
    if (targets.includes('latency')) {
      console.log('\nOpen-loop latency (bench/latency.mjs)');
      await benchOpenLoop({ dir, secret, freePort, waitHealthy, stop, writePool, repo });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
