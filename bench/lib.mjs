// What every benchmark module shares: free ports, waiting for a service, stopping it, signed
// order.created bodies and pools of them ("signature<TAB>body" per line, as bench/wrk/pool.lua and
// bench/open-loop.mjs read them), and wrk runs over such a pool.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, fsyncSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const here = new URL('.', import.meta.url).pathname;

export const BENCH_SECRET = 'bench-secret';

export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** Resolves once `url` answers; throws if `child` exits first or nothing answers for 10 s. */
export async function waitHealthy(url, child) {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`server exited early (${child.exitCode})`);
    try {
      await fetch(url);
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`no answer from ${url}`);
}

/** SIGTERM, then SIGKILL after 30 s; resolves when the process has exited. */
export async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** An order.created delivery's body (about 500 bytes), unique by `id`; `i` numbers its order. */
export function orderCreatedBody(id, i) {
  return JSON.stringify({
    id,
    type: 'order.created',
    version: '1.0',
    created: 1711234601,
    data: { orderId: `ord_${i}`, userId: 'usr_1', totalAmount: 742.5, currency: 'USD', itemCount: 3 },
    metadata: { procureiqVersion: '1.0.0', environment: 'production' },
  });
}

/** The `x-procureiq-signature` value of `body`. */
export function signature(body, secret = BENCH_SECRET) {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Writes `size` signed, unique order.created deliveries (about 500 bytes each) to `file`. */
export async function writePool(file, size, tag = '', secret = BENCH_SECRET) {
  const out = createWriteStream(file);
  const run = `${tag}${randomBytes(4).toString('hex')}`;
  for (let i = 0; i < size; i++) {
    const body = orderCreatedBody(`evt_bench_${run}_${i}`, i);
    if (!out.write(`${signature(body, secret)}\t${body}\n`)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
  // On disk before any measurement: hundreds of MB left dirty are written back by the kernel in
  // the next 30 s, and the measured service's fsyncs queue behind them (p99 526 ms against 22 ms
  // in the first round of a run, before this).
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs wrk with bench/wrk/pool.lua replaying `pool` (each thread, and each of `shards` wrk
 * processes, takes its own lines) and resolves with its summary: the raw `WRK_JSON` fields plus
 * `rps`, `p50` and `p99` (ms).
 */
export function runWrk(url, pool, { threads = 1, conns = 50, seconds, shard = 0, shards = 1 }) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'wrk',
      [`-t${threads}`, `-c${conns}`, `-d${seconds}s`, '--latency', '-s', join(here, 'wrk', 'pool.lua'), url],
      {
        env: {
          ...process.env,
          POOL_FILE: pool,
          WRK_THREADS: String(threads),
          POOL_SHARD: String(shard),
          POOL_SHARDS: String(shards),
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', () => {
      const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '));
      if (!line) return reject(new Error(`wrk printed no summary:\n${out}`));
      const r = JSON.parse(line.slice('WRK_JSON '.length));
      resolve({ ...r, rps: r.requests / (r.duration_us / 1e6), p50: r.p50_us / 1000, p99: r.p99_us / 1000 });
    });
  });
}

/** CPU ms used so far by each thread of `pid`, by thread id (Linux: /proc). */
export function threadCpuMs(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, in clock ticks (100 a second on Linux).
    out.set(tid, (Number(fields[11]) + Number(fields[12])) * 10);
  }
  return out;
}

/** The sum of every series of metric `name` on a service's /metrics. */
export async function metricSum(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`)) n += Number(line.split(' ').at(-1));
  return n;
}
