// Open-loop ack latency of the real service (durable SQLite, ingest only) against a bare node:http
// server, with bench/open-loop.mjs offering a fixed rate and timing each request from its intended
// send time (stalls count; wrk's closed loop would hide them).
//
// WARM: for each rate (2,000/s and 5,000/s), a fresh server gets a warm-up at that rate, then the
// measured seconds, from one generator on the same connections. Target: service p99 ≤ 2× bare p99.
// At 2,000/s the service also runs with a no-op handler for every type (bench/noop-handlers.mjs):
// no target, it shows what handlers add to the tail.
// COLD: a fresh service on a fresh database gets 5,000/s from the moment /healthz first answers
// (the generator, its pool already loaded and its own code warmed on a sink of its own for 2 s,
// polls it every 5 ms). `serve` warms its request path before it listens (WARM_UP). Its first 3 s give the cold
// figures (target: p99.9 ≤ 50 ms); the load goes on in 1 s windows for 20 s in all, and "time to
// warm" is the first window (counted in seconds from the first answer) whose p99 is ≤ 2× the warm
// bare p99 at 5,000/s. A fresh bare server gets the same first 3 s, as a control for what the
// generator's own start (JIT, opening connections) adds.
//
// The generator runs on one CPU and each server on another (taskset), so they do not take turns on
// one core; with fewer than 2 CPUs or no taskset, everything runs unpinned (and the output says so).
// The generator's own lateness (lag) is reported: where it is large, the machine was busy and the
// figures include that.
//
// Options (env): BENCH_OPEN_WARMUP (s before each warm measurement, default 10), BENCH_OPEN_SECONDS
// (s per warm measurement, default 10), BENCH_OPEN_CONNECTIONS (the generator's keep-alive
// connections, default 64), BENCH_TRACE_GC=1 (runs each service with `--trace-gc` and adds, for its
// main thread over its whole run: full GCs, mean MB promoted to the old generation per scavenge,
// and the longest pause; the warm-up's price was found this way). Standalone: `npm run build && node bench/latency.mjs`; from bench/run.mjs:
// `benchOpenLoop({ dir, secret, freePort, waitHealthy, stop, writePool, repo })`.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_SECRET, freePort, stop, waitHealthy, writePool } from './lib.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const warmRates = [2000, 5000];
const coldRate = 5000;
/** The warm rate that also measures the service with a no-op handler. */
const handlerRate = 2000;
const coldSeconds = 3;
const warmCapSeconds = 20;

/** Runs every measurement, prints the tables and targets (through `log`), returns the figures. */
export async function benchOpenLoop({
  dir,
  secret,
  freePort,
  waitHealthy,
  stop,
  writePool,
  repo,
  log = console.log,
}) {
  const warmup = Number(process.env.BENCH_OPEN_WARMUP ?? 10);
  const seconds = Number(process.env.BENCH_OPEN_SECONDS ?? 10);
  const connections = Number(process.env.BENCH_OPEN_CONNECTIONS ?? 64);
  const cpus = pinning();
  const figures = { pinning: cpus.note, loadavg: loadavg().map((l) => Math.round(l * 100) / 100) };
  log(`open-loop latency: ${cpus.note}; load average before: ${figures.loadavg.join(', ')}`);

  // One pool serves every run: each takes its first lines, and each service run has a fresh database.
  const pool = join(dir, 'open-loop-pool.tsv');
  const size = Math.max(...warmRates.map((r) => r * (warmup + seconds)), coldRate * warmCapSeconds);
  await writePool(pool, size, 'o');
  let runs = 0;

  /** Starts a server pinned to its CPU: `bare` (ready over IPC) or the service (fresh database). */
  const start = async (kind, { healthy = true } = {}) => {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    if (kind === 'bare') {
      const child = spawn(...cpus.server(join(here, 'baselines', 'bare-server.mjs')), {
        env: { ...process.env, PORT: String(port) },
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      await new Promise((resolve, reject) => {
        child.once('message', resolve);
        child.once('exit', (code) => reject(new Error(`bare server exited (${code})`)));
      });
      return { child, origin };
    }
    const gcFlags = traceGc ? ['--trace-gc'] : [];
    const handlers = kind === 'handlers' ? ['--handlers', join(here, 'noop-handlers.mjs')] : [];
    const bin = join(repo, 'bin', 'procureiq-webhooks.js');
    const child = spawn(...cpus.server(...gcFlags, bin, 'serve', ...handlers), {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        WEBHOOK_SECRET: secret,
        DATABASE_URL: `sqlite:${join(dir, `open-loop-${runs++}.db`)}`,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', traceGc ? 'pipe' : 'ignore', 'inherit'],
    });
    if (traceGc) {
      child.gcTrace = '';
      child.stdout.setEncoding('utf8').on('data', (d) => {
        child.gcTrace += d;
      });
    }
    if (healthy) await waitHealthy(`${origin}/healthz`, child);
    return { child, origin };
  };
  const webhook = (origin) => `${origin}/webhooks/procureiq`;
  const load = (options, onReady) => generate(cpus, { pool, connections, ...options }, onReady);

  figures.warm = [];
  for (const rate of warmRates) {
    const row = { rate };
    // The no-op handler row has no target: it shows what running handlers adds to the tail.
    for (const kind of rate === handlerRate ? ['bare', 'service', 'handlers'] : ['bare', 'service']) {
      const server = await start(kind);
      try {
        const before = cpuSeconds(server.child.pid);
        row[kind] = await load({ url: webhook(server.origin), rate, seconds, warmup });
        row[kind].cpuPerRequestUs = perRequest(
          cpuSeconds(server.child.pid) - before,
          rate * (warmup + seconds),
        );
      } finally {
        await stop(server.child);
      }
      if (server.child.gcTrace !== undefined) row[kind].gc = gcSummary(server.child.gcTrace);
      log(`warm ${kind} at ${rate}/s: ${line(row[kind])}`);
    }
    row.ratio = row.service.p99 / row.bare.p99;
    figures.warm.push(row);
  }

  // Cold: the generator loads its pool first, then the server starts; load begins at its first answer.
  const cold = async (kind, runSeconds, extra) => {
    let server;
    const result = await load(
      // The generator first warms itself on a sink of its own: cold, it added ~100 ms to the first
      // half-second even against a bare server long warm, and the rows are about the server's start.
      { url: '-', waitFor: '/healthz', rate: coldRate, seconds: runSeconds, selfWarm: 2, ...extra },
      async (setTarget) => {
        server = await start(kind, { healthy: false });
        setTarget(webhook(server.origin));
      },
    ).finally(async () => {
      if (!server) return;
      // From its start, so the start-up's own work is in (spread over every request).
      server.cpu = cpuSeconds(server.child.pid);
      await stop(server.child);
    });
    result.cpuPerRequestUs = perRequest(server.cpu, coldRate * runSeconds);
    if (server.child.gcTrace !== undefined) result.gc = gcSummary(server.child.gcTrace);
    log(`cold ${kind} at ${coldRate}/s: ${line(result.head ?? result)}`);
    return result;
  };
  const bareCold = await cold('bare', coldSeconds);
  const serviceCold = await cold('service', warmCapSeconds, { windows: warmCapSeconds, head: coldSeconds });
  const warmBare = figures.warm.find((r) => r.rate === coldRate).bare;
  const threshold = 2 * warmBare.p99;
  const warmAt = serviceCold.windows.findIndex((w) => w.p99 <= threshold);
  figures.cold = {
    rate: coldRate,
    bare: bareCold,
    service: {
      ...serviceCold.head,
      cpuPerRequestUs: serviceCold.cpuPerRequestUs,
      gc: serviceCold.gc,
      windows: serviceCold.windows,
    },
    threshold,
    timeToWarm: warmAt === -1 ? null : warmAt + 1,
  };
  figures.targets = [
    ...figures.warm.map((r) => ({
      name: `service p99 ≤ 2× bare p99 at ${fmt(r.rate)}/s`,
      value: `${fmt(r.ratio, 2)}×`,
      met: r.ratio <= 2,
    })),
    {
      name: `cold start p99.9 ≤ 50 ms (first ${coldSeconds} s at ${fmt(coldRate)}/s)`,
      value: `${fmt(serviceCold.head.p999, 2)} ms`,
      met: serviceCold.head.p999 <= 50,
    },
  ];
  for (const text of report(figures, { warmup, seconds, connections })) log(text);
  return figures;
}

/** Where the generator and the servers run: two CPUs this process may use, if there are two. */
function pinning() {
  const node = process.execPath;
  let allowed = [];
  try {
    const out = execFileSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
    allowed = cpuList(out.slice(out.lastIndexOf(':') + 1).trim());
  } catch {
    // No taskset: run unpinned.
  }
  if (allowed.length < 2 || availableParallelism() < 2)
    return {
      note: `UNPINNED (${allowed.length === 0 ? 'no taskset' : `${availableParallelism()} CPU`}): generator and server share CPUs`,
      generator: (...args) => [node, args],
      server: (...args) => [node, args],
    };
  const [g, s] = allowed;
  return {
    note: `generator pinned to CPU ${g}, server (all its threads) to CPU ${s}`,
    generator: (...args) => ['taskset', ['-c', String(g), node, ...args]],
    server: (...args) => ['taskset', ['-c', String(s), node, ...args]],
  };
}

/** CPU time (user + system, all threads) a process has used, from /proc; NaN where there is none. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

const perRequest = (seconds, requests) => (seconds * 1e6) / requests;
const traceGc = process.env.BENCH_TRACE_GC === '1';

/**
 * What `--trace-gc` printed for a service's main thread (the isolate with the largest heap; the
 * SQLite threads have isolates of their own): full GCs, the mean growth of the heap left after a
 * scavenge over the one before (what it promoted, MB), and the longest pause (ms).
 */
function gcSummary(trace) {
  const events = new Map();
  for (const line of trace.split('\n')) {
    const m =
      /^\[\d+:(0x[0-9a-f]+)\]\s+\d+ ms: (Scavenge|Mark-Compact)\S* [\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+)/.exec(
        line,
      );
    if (!m) continue;
    const [, isolate, kind, after, pause] = m;
    if (!events.has(isolate)) events.set(isolate, []);
    events.get(isolate).push({ kind, after: Number(after), pause: Number(pause) });
  }
  const main = [...events.values()].sort(
    (a, b) => Math.max(...b.map((e) => e.after)) - Math.max(...a.map((e) => e.after)),
  )[0];
  if (!main) return undefined;
  let promoted = 0;
  let pairs = 0;
  for (let i = 1; i < main.length; i++) {
    if (main[i].kind !== 'Scavenge' || main[i - 1].kind !== 'Scavenge') continue;
    promoted += Math.max(0, main[i].after - main[i - 1].after);
    pairs++;
  }
  return {
    scavenges: main.filter((e) => e.kind === 'Scavenge').length,
    fullGcs: main.filter((e) => e.kind === 'Mark-Compact').length,
    promotedMbPerScavenge: pairs === 0 ? 0 : promoted / pairs,
    maxPauseMs: Math.max(...main.map((e) => e.pause)),
  };
}

/** "0-2,5" → [0, 1, 2, 5] */
function cpuList(text) {
  return text.split(',').flatMap((part) => {
    const [a, b = a] = part.split('-').map(Number);
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
}

/**
 * Runs bench/open-loop.mjs as a pinned child and returns its figures. With `url: '-'`, the child's
 * target is set only once its pool is loaded: `onReady(setTarget)` starts the server and passes
 * its URL (the child then waits for `waitFor` there and starts at its first answer).
 */
function generate(cpus, options, onReady) {
  return new Promise((resolve, reject) => {
    const args = Object.entries(options).flatMap(([k, v]) => [`--${dashed(k)}`, String(v)]);
    const deferred = options.url === '-';
    const child = spawn(...cpus.generator(join(here, 'open-loop.mjs'), ...args), {
      stdio: [deferred ? 'pipe' : 'ignore', 'pipe', 'inherit'],
    });
    let out = '';
    let started = false;
    child.stdout.on('data', (d) => {
      out += d;
      if (deferred && !started && out.includes('OPENLOOP_READY\n')) {
        started = true;
        onReady((url) => child.stdin.end(`${url}\n`)).catch((error) => {
          child.kill();
          reject(error);
        });
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const found = out.split('\n').find((l) => l.startsWith('OPENLOOP_JSON '));
      if (!found) return reject(new Error(`open-loop generator exited (${code}) with no figures`));
      resolve(JSON.parse(found.slice('OPENLOOP_JSON '.length)));
    });
  });
}

const dashed = (name) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const fmt = (n, d = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
    : '-';
const ms = (v) => fmt(v, 2);
const line = (r) =>
  `p50 ${ms(r.p50)} ms, p99 ${ms(r.p99)} ms, p99.9 ${ms(r.p999)} ms, max ${ms(r.max)} ms` +
  (r.errors || r.non2xx ? `, ${r.non2xx} non-2xx, ${r.errors} errors` : '') +
  `, generator lag p99 ${ms(r.lagP99)} ms`;

/** The markdown tables and the targets. */
function report(figures, { warmup, seconds, connections }) {
  const gcCell = (gc) =>
    gc ? ` ${gc.fullGcs} / ${fmt(gc.promotedMbPerScavenge, 2)} MB / ${ms(gc.maxPauseMs)} ms |` : ' - |';
  const row = (name, rate, r) =>
    `| ${name} | ${fmt(rate)} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.p999)} | ${ms(r.max)} | ${(r.non2xx ?? 0) + (r.errors ?? 0)} | ${ms(r.lagP99)} / ${ms(r.lagMax)} | ${fmt(r.cpuPerRequestUs)} |${traceGc ? gcCell(r.gc) : ''}`;
  const head = [
    `| server | offered/s | p50 | p99 | p99.9 | max | non-2xx + errors | generator lag p99 / max | server CPU µs/req |${traceGc ? ' full GCs / promoted per scavenge / longest pause |' : ''}`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${traceGc ? ' ---: |' : ''}`,
  ];
  const { cold } = figures;
  const lines = [
    '',
    `Open-loop ack latency (ms, from each request's intended send time; ${figures.pinning}; ${connections} keep-alive connections)`,
    '',
    `Warm: ${warmup} s warm-up, then ${seconds} s measured, at each rate (fresh server and database each)`,
    ...head,
  ];
  for (const r of figures.warm) {
    lines.push(row('bare node:http', r.rate, r.bare));
    lines.push(row('service (SQLite, ingest only)', r.rate, r.service));
    if (r.handlers) lines.push(row('service (SQLite), no-op handler', r.rate, r.handlers));
  }
  lines.push(
    '',
    `Cold: a fresh server, ${fmt(cold.rate)}/s from its first /healthz answer, first ${coldSeconds} s`,
    ...head,
    row('bare node:http (control)', cold.rate, cold.bare),
    row('service (fresh SQLite database)', cold.rate, cold.service),
    '',
    `Service p99 by 1 s window from the first answer (ms): ${cold.service.windows.map((w) => ms(w.p99)).join(', ')}`,
    `Time to warm (first 1 s window with p99 ≤ 2× warm bare p99 = ${ms(cold.threshold)} ms): ${
      cold.timeToWarm === null ? `not within ${warmCapSeconds} s` : `${cold.timeToWarm} s`
    }`,
    '',
    `Targets: ${figures.targets.map((t) => `${t.name}: ${t.value} ${t.met ? 'met' : 'NOT met'}`).join('; ')}`,
  );
  return lines;
}

// Standalone.
async function main() {
  const repo = join(here, '..');
  if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) throw new Error('run npm run build first');
  const secret = BENCH_SECRET;
  const dir = mkdtempSync(join(tmpdir(), 'piq-open-loop-'));
  try {
    await benchOpenLoop({ dir, secret, freePort, waitHealthy, stop, writePool, repo });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
