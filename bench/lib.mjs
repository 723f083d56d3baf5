// What every benchmark module shares: free ports, waiting for a service, stopping it, and pools of
// pre-signed, unique order.created deliveries ("signature<TAB>body" per line, as bench/wrk/pool.lua
// and bench/open-loop.mjs read them).
import { createHmac, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

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

/** Writes `size` signed, unique order.created deliveries (about 500 bytes each) to `file`. */
export async function writePool(file, size, tag = '', secret = BENCH_SECRET) {
  const out = createWriteStream(file);
  const run = `${tag}${randomBytes(4).toString('hex')}`;
  for (let i = 0; i < size; i++) {
    const body = JSON.stringify({
      id: `evt_bench_${run}_${i}`,
      type: 'order.created',
      version: '1.0',
      created: 1711234601,
      data: { orderId: `ord_${i}`, userId: 'usr_1', totalAmount: 742.5, currency: 'USD', itemCount: 3 },
      metadata: { procureiqVersion: '1.0.0', environment: 'production' },
    });
    const sig = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    if (!out.write(`${sig}\t${body}\n`)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
}
