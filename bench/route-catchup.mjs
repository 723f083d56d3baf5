// What one route job costs each thread of the service: a burst of unique order.created deliveries
// with the two routes of the ingest comparison (Redis stream and NATS, bench/routes.mjs) held back
// (ROUTE_YIELD=1h, so nothing is sent while ingest is busy), then the routes' catch-up once it
// stops, timed until no route job is left, with each thread's CPU read from /proc around it.
//
//   npm run build && node bench/route-catchup.mjs
//
// Prints ingest req/s, the jobs left after the burst, the catch-up's jobs/s, and µs of CPU per job
// for every thread that used more than 20 ms (threads are unnamed in Node 20: the busiest besides
// the main one is the SQLite writer; the reader answers the /metrics polls that watch the queue).
// Options (env): BENCH_CATCHUP_SECONDS (burst length, default 8), BENCH_CATCHUP_PROFILE (a folder:
// the service runs under --cpu-prof and writes one profile per thread there). Linux only (/proc).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BENCH_SECRET,
  freePort,
  metricSum,
  runWrk,
  stop,
  threadCpuMs,
  waitHealthy,
  writePool,
} from './lib.mjs';
import { twoRoutesFile } from './routes.mjs';

const here = new URL('.', import.meta.url).pathname;
const seconds = Number(process.env.BENCH_CATCHUP_SECONDS ?? 8);
const profileDir = process.env.BENCH_CATCHUP_PROFILE;

const dir = mkdtempSync(join(tmpdir(), 'piq-catchup-'));
const routes = await twoRoutesFile(dir, freePort);
const pool = join(dir, 'pool.lua');
await writePool(pool, 60_000, 'catchup');
const port = await freePort();
const child = spawn(
  process.execPath,
  [
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    join(here, '..', 'bin', 'procureiq-webhooks.js'),
    'serve',
  ],
  {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      WEBHOOK_SECRET: BENCH_SECRET,
      DATABASE_URL: `sqlite:${join(dir, 'inbox.db')}`,
      LOG_LEVEL: 'warn',
      METRICS_PUBLIC: 'true',
      ROUTES: routes.file,
      ROUTE_YIELD: '1h',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
try {
  await waitHealthy(`http://127.0.0.1:${port}/healthz`, child);
  const queued = () => metricSum(port, 'procureiq_webhooks_route_queue_depth');
  const burst = await runWrk(`http://127.0.0.1:${port}/webhooks/procureiq`, pool, { seconds });
  const left = await queued();
  const before = threadCpuMs(child.pid);
  const started = Date.now();
  while ((await queued()) > 0) await sleep(200);
  const ms = Date.now() - started;
  const after = threadCpuMs(child.pid);
  console.log(`ingest ${Math.round(burst.rps)} req/s for ${seconds} s; ${left} route jobs left after it`);
  console.log(`catch-up ${ms} ms: ${Math.round((left / ms) * 1000)} jobs/s`);
  const main = String(child.pid);
  for (const [tid, cpu] of after) {
    const used = cpu - (before.get(tid) ?? 0);
    if (used <= 20) continue;
    const name = tid === main ? 'main thread' : `thread ${tid}`;
    console.log(
      `  ${name.padEnd(14)} ${String(used).padStart(6)} ms CPU, ${((used * 1000) / left).toFixed(1)} µs per job`,
    );
  }
} finally {
  await stop(child);
  await routes.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
