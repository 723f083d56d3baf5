// npm run bench: ingest throughput and ack latency of the real server (durable SQLite), against a
// bare node:http ceiling and the guide's Express example, in one run; plus processing throughput
// and receive-to-handler latency with a no-op handler. Load comes from wrk with a pre-signed pool.
//
// Options (env): BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (default 50),
// BENCH_LOG_LEVEL (the service's LOG_LEVEL, default warn), BENCH_TARGETS (comma list).
import { execFileSync, fork, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const here = new URL('.', import.meta.url).pathname;
const repo = join(here, '..');
const duration = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const threads = 2;
const logLevel = process.env.BENCH_LOG_LEVEL ?? 'warn';
const secret = 'bench-secret';
const targets = (process.env.BENCH_TARGETS ?? 'bare,express,sqlite').split(',');
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

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** One signed, unique order.created delivery per line: "signature\tbody". */
async function writePool(file, size) {
  const out = createWriteStream(file);
  const run = randomBytes(4).toString('hex');
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

async function waitHealthy(url, child) {
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

function runWrk(url, pool) {
  const out = execFileSync(
    'wrk',
    [
      `-t${threads}`,
      `-c${connections}`,
      `-d${duration}s`,
      '--latency',
      '-s',
      join(here, 'wrk', 'pool.lua'),
      url,
    ],
    {
      env: { ...process.env, POOL_FILE: pool, WRK_THREADS: String(threads) },
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    },
  );
  const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) throw new Error(`wrk printed no summary:\n${out}`);
  const r = JSON.parse(line.slice('WRK_JSON '.length));
  return { ...r, rps: r.requests / (r.duration_us / 1e6), p50: r.p50_us / 1000, p99: r.p99_us / 1000 };
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

async function benchBaseline(name, file, pool) {
  const port = await freePort();
  const child = fork(join(here, 'baselines', file), [], {
    env: { ...process.env, PORT: String(port), WEBHOOK_SECRET: secret },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
  });
  const result = runWrk(`http://127.0.0.1:${port}/webhooks/procureiq`, pool);
  await stop(child);
  return result;
}

async function benchService(dir, pool, { handlers }) {
  const port = await freePort();
  const db = join(dir, `bench-${handlers ? 'handlers' : 'ingest'}.db`);
  const statsFile = join(dir, 'handler-stats.json');
  const child = spawn(
    process.execPath,
    [
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
        DATABASE_URL: `sqlite:${db}`,
        LOG_LEVEL: logLevel,
        BENCH_OUT: statsFile,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  await waitHealthy(`http://127.0.0.1:${port}/healthz`, child);
  const ingest = runWrk(`http://127.0.0.1:${port}/webhooks/procureiq`, pool);
  if (!handlers) {
    await stop(child);
    return { ingest };
  }
  const ingestEnded = Date.now();
  // Let the worker drain what is left, then stop the service so the handler writes its figures.
  const { default: Database } = await import('better-sqlite3');
  const reader = new Database(db, { readonly: true });
  const pendingQuery = reader
    .prepare("SELECT COUNT(*) FROM events WHERE status IN ('pending','processing','retrying')")
    .pluck();
  let drainMs = 0;
  for (;;) {
    const pending = pendingQuery.get();
    if (pending === 0) break;
    if (Date.now() - ingestEnded > 120_000) throw new Error(`worker did not drain: ${pending} left`);
    await sleep(20);
    drainMs = Date.now() - ingestEnded;
  }
  const stored = reader.prepare('SELECT COUNT(*) FROM events').pluck().get();
  reader.close();
  await stop(child);
  const stats = JSON.parse(readFileSync(statsFile, 'utf8'));
  const waits = stats.waits.sort((a, b) => a - b);
  const pct = (p) => waits[Math.min(waits.length - 1, Math.floor((p / 100) * waits.length))];
  return {
    ingest,
    stored,
    processing: {
      handled: stats.count,
      perSecond: stats.count / ((stats.last - stats.first) / 1000),
      drainMs,
      p50: pct(50),
      p99: pct(99),
    },
  };
}

const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main() {
  requireWrk();
  if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) throw new Error('run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'piq-bench-'));
  try {
    const pool = join(dir, 'pool.tsv');
    // Enough unique events for the fastest target to never repeat one.
    const size = Number(process.env.BENCH_POOL ?? Math.max(200_000, duration * 90_000));
    console.log(`pre-signing ${fmt(size)} unique deliveries…`);
    await writePool(pool, size);
    console.log(
      `wrk: ${threads} threads, ${connections} connections, ${duration}s per target; service LOG_LEVEL=${logLevel}\n`,
    );

    const rows = [];
    let bare;
    let express;
    if (targets.includes('bare')) {
      bare = await benchBaseline('bare node:http', 'bare-server.mjs', pool);
      rows.push(['bare node:http (ceiling, not durable)', bare]);
    }
    if (targets.includes('express')) {
      express = await benchBaseline('guide Express example', 'express-guide.cjs', pool);
      rows.push(["guide's Express example (in memory)", express]);
    }
    let service;
    if (targets.includes('sqlite')) {
      const ingestOnly = await benchService(dir, pool, { handlers: false });
      rows.push(['procureiq-webhooks, SQLite (durable), ingest only', ingestOnly.ingest]);
      service = await benchService(dir, pool, { handlers: true });
      rows.push(['procureiq-webhooks, SQLite (durable), + no-op handler', service.ingest]);
    }

    console.log('Ingest (unique signed order.created deliveries)');
    console.log('| target | req/s | p50 ack | p99 ack | non-2xx | × bare | × Express |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const [name, r] of rows) {
      const vsBare = bare ? fmt(r.rps / bare.rps, 2) : '-';
      const vsExpress = express ? fmt(r.rps / express.rps, 2) : '-';
      console.log(
        `| ${name} | ${fmt(r.rps)} | ${fmt(r.p50, 2)} ms | ${fmt(r.p99, 2)} ms | ${r.non2xx + r.errors} | ${vsBare} | ${vsExpress} |`,
      );
    }
    if (service) {
      const p = service.processing;
      console.log('\nProcessing (no-op handler, under the ingest load above)');
      console.log(
        '| stored | handled | handled/s | receive→handler p50 | p99 | backlog drained after load |',
      );
      console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
      console.log(
        `| ${fmt(service.stored)} | ${fmt(p.handled)} | ${fmt(p.perSecond)} | ${fmt(p.p50, 0)} ms | ${fmt(p.p99, 0)} ms | ${fmt(p.drainMs)} ms |`,
      );
      if (service.stored !== p.handled)
        console.log(`WARNING: ${service.stored - p.handled} stored events were not handled`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
