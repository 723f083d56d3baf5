// CPU per request, by thread, of two builds side by side: for A/B comparisons on a machine too
// noisy for req/s to rank them. Not part of `npm run bench`.
//
//   git worktree add /tmp/old <commit> && ln -s "$PWD/node_modules" /tmp/old/node_modules
//   (cd /tmp/old && npx tsc -p tsconfig.build.json && node scripts/copy-assets.mjs)
//   npm run build && BENCH_AB_BUILDS=/tmp/old,. node bench/cpu-ab.mjs
//
// Each round starts every build in every mode on a fresh SQLite store, alternating, warms it up
// (2 s of wrk with events of its own), waits for its route jobs to drain, then runs `wrk -t1 -c50`
// for BENCH_DURATION seconds and reads each thread's CPU from /proc around it. It prints µs of CPU
// per request: the main (HTTP) thread, the busiest other (the SQLite writer), and the rest (V8's
// GC helpers, the reader), with the route jobs delivered during the run per request.
//
// Options (env): BENCH_AB_BUILDS (comma list of checkouts, default this one), BENCH_AB_MODES
// (`none` and/or `routes`: the two routes of the ingest comparison, default both), BENCH_ROUNDS
// (default 3), BENCH_DURATION (s, default 8), BENCH_AB_ENV (JSON of extra service env, e.g.
// '{"ROUTE_YIELD":"1h"}'). Linux only (/proc).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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
const builds = (process.env.BENCH_AB_BUILDS ?? join(here, '..')).split(',').map((b) => resolve(b));
const modes = (process.env.BENCH_AB_MODES ?? 'none,routes').split(',');
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_DURATION ?? 8);
const extraEnv = process.env.BENCH_AB_ENV ? JSON.parse(process.env.BENCH_AB_ENV) : {};

const dir = mkdtempSync(join(tmpdir(), 'piq-cpu-ab-'));
const routes = modes.includes('routes') ? await twoRoutesFile(dir, freePort) : undefined;
try {
  // Each run has a fresh store, so the runs may share one pool.
  const pool = join(dir, 'pool.lua');
  const warmPool = join(dir, 'warm.lua');
  await writePool(pool, 200_000, 'm');
  await writePool(warmPool, 50_000, 'w');
  let n = 0;
  for (let round = 0; round < rounds; round++) {
    for (const build of builds) {
      for (const mode of modes) {
        const port = await freePort();
        const child = spawn(process.execPath, [join(build, 'bin', 'procureiq-webhooks.js'), 'serve'], {
          env: {
            ...process.env,
            PORT: String(port),
            HOST: '127.0.0.1',
            WEBHOOK_SECRET: BENCH_SECRET,
            DATABASE_URL: `sqlite:${join(dir, `run-${n++}.db`)}`,
            LOG_LEVEL: 'warn',
            METRICS_PUBLIC: 'true',
            ...(mode === 'routes' && routes ? { ROUTES: routes.file } : {}),
            ...extraEnv,
          },
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        try {
          await waitHealthy(`http://127.0.0.1:${port}/healthz`, child);
          const url = `http://127.0.0.1:${port}/webhooks/procureiq`;
          await runWrk(url, warmPool, { seconds: 2 });
          // The warm-up's route jobs are delivered before the measured run, not during it.
          while ((await metricSum(port, 'procureiq_webhooks_route_queue_depth')) > 0) await sleep(200);
          const delivered = await metricSum(port, 'procureiq_webhooks_route_deliveries_total');
          const before = threadCpuMs(child.pid);
          const load = await runWrk(url, pool, { seconds });
          const after = threadCpuMs(child.pid);
          const routed = (await metricSum(port, 'procureiq_webhooks_route_deliveries_total')) - delivered;
          const perThread = [...after]
            .map(([tid, cpu]) => [tid, ((cpu - (before.get(tid) ?? 0)) * 1000) / load.requests])
            .sort((a, b) => b[1] - a[1]);
          const main = perThread.find(([tid]) => tid === String(child.pid))?.[1] ?? 0;
          const others = perThread.filter(([tid]) => tid !== String(child.pid));
          const writer = others[0]?.[1] ?? 0;
          const rest = others.slice(1).reduce((sum, [, us]) => sum + us, 0);
          console.log(
            `round ${round + 1} ${build} ${mode}: ${Math.round(load.rps)} req/s, p99 ${load.p99.toFixed(1)} ms; ` +
              `CPU µs per request: total ${(main + writer + rest).toFixed(1)} = main ${main.toFixed(1)} + ` +
              `writer ${writer.toFixed(1)} + rest ${rest.toFixed(1)}; route jobs delivered ${(routed / load.requests).toFixed(2)} per request`,
          );
        } finally {
          await stop(child);
        }
      }
    }
  }
} finally {
  await routes?.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
