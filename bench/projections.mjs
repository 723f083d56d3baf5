// Projections rows of `npm run bench`, or `node bench/projections.mjs` alone (after `npm run build`).
// Two measurements on SQLite, each against a target:
//
// 1. Processing throughput with the live tables (PROJECTIONS=all) against without them
//    (PROJECTIONS=none), target ≥ 0.8×. A backlog of BENCH_PROJ_EVENTS events of every projected
//    type (entity lifecycles: orders created → confirmed → shipped → delivered or cancelled,
//    payments, products, users, tickets, campaigns, searches; each entity gets several events, so
//    rows are upserted) is stored with the `import` CLI, which writes pending events through the
//    store without a worker. Each run copies that database, starts the service on it with the no-op
//    handlers (bench/noop-handlers.mjs takes every type, so each event's projection commits with its
//    handlers job), and waits for every job to finish. Events processed per second are counted from
//    the first attempt's start to the last job's finish, both as the service recorded them, so the
//    service's start-up is left out. On and off alternate within BENCH_PROJ_ROUNDS rounds (the order
//    flips each round); the ratio is the median of each round's own ratio.
// 2. `projections rebuild` of BENCH_REBUILD_EVENTS events of the same mix (imported the same way),
//    on a fresh copy of that database each of BENCH_PROJ_ROUNDS times: events per second over the
//    command's median wall time (Node start-up and migration check included), target ≥ 20,000/s;
//    also the time from its first progress line to its exit (the rebuild alone), and the row count
//    of every table it produced. With BENCH_REBUILD_PROFILE=DIR the rebuild runs once more under
//    `--cpu-prof`, and the functions with the most self time are returned (and printed).
//
// Options (env): BENCH_PROJ_EVENTS (default 20000), BENCH_PROJ_ROUNDS (default 3),
// BENCH_REBUILD_EVENTS (default 100000), BENCH_REBUILD_PROFILE (a folder, default none),
// BENCH_PROJ_PROFILE (a folder: CPU profiles of the processing runs, default none),
// BENCH_LOG_LEVEL (the service's LOG_LEVEL, default warn). Everything listens on 127.0.0.1.
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { freePort, stop, waitHealthy } from './lib.mjs';

const here = new URL('.', import.meta.url).pathname;
const repo = join(here, '..');
const bin = join(repo, 'bin', 'procureiq-webhooks.js');
const processingEvents = Number(process.env.BENCH_PROJ_EVENTS ?? 20_000);
const rounds = Number(process.env.BENCH_PROJ_ROUNDS ?? 3);
const rebuildEvents = Number(process.env.BENCH_REBUILD_EVENTS ?? 100_000);
const profileDir = process.env.BENCH_REBUILD_PROFILE;
const PROCESSING_TARGET = 0.8;
const REBUILD_TARGET = 20_000;
/** A drain slower than this is a failure, not a figure. */
const DRAIN_LIMIT_MS = 300_000;

/**
 * The event types of one entity group `k`, in lifecycle order: most orders are delivered, some
 * cancelled; some payments fail or are refunded; some products rejected; and so on.
 */
function lifecycle(k) {
  return [
    'user.registered',
    ...(k % 3 === 0 ? ['user.tier_changed'] : []),
    'search.started',
    k % 8 === 0 ? 'search.failed' : 'search.completed',
    'order.created',
    'payment.initiated',
    k % 10 === 0 ? 'payment.failed' : 'payment.succeeded',
    ...(k % 10 === 0
      ? ['order.cancelled']
      : [
          'order.confirmed',
          'order.shipped',
          'order.delivered',
          ...(k % 20 === 1 ? ['payment.refunded'] : []),
        ]),
    'product.listed',
    k % 5 === 0 ? 'product.rejected' : 'product.approved',
    'support.ticket_created',
    'support.ticket_resolved',
    ...(k % 2 === 0 ? ['support.csat_submitted'] : []),
    ...(k % 4 === 0 ? ['ad.campaign_started', 'ad.budget_exhausted'] : []),
  ];
}

/** A small deterministic PRNG (mulberry32), so every run stores the same mix in the same order. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` valid events built from the guide's examples (src/events/examples.ts): group `k`'s ids
 * (`ord_<tag>_<k>`, `pay_<tag>_<k>`, …) link its events the way ProcureIQ's do, and its stages keep
 * the examples' relative `created`. Groups are shuffled together, as a real stream interleaves
 * entities, so an entity's events arrive spread out, not back to back.
 */
async function mixedEvents(count, tag) {
  const { examplePayloads } = await import(join(repo, 'dist', 'events', 'examples.js'));
  const types = [];
  for (let k = 0; types.length < count; k++) for (const type of lifecycle(k)) types.push([type, k]);
  types.length = count;
  const next = random(count);
  for (let i = types.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [types[i], types[j]] = [types[j], types[i]];
  }
  return types.map(([type, k], i) => {
    const example = examplePayloads[type];
    const data = { ...example.data };
    for (const [field, value] of Object.entries(data)) {
      if (field.endsWith('Id') && typeof value === 'string')
        data[field] = `${value.split('_')[0]}_${tag}_${k}`;
    }
    if (typeof data.email === 'string') data.email = `buyer.${tag}.${k}@example.com`;
    return { ...example, id: `evt_${tag}_${i}`, created: example.created + k * 60, data };
  });
}

/**
 * Runs the CLI; resolves with its output, its wall time and, when it wrote `mark` to stderr, the
 * time to the first such write (seconds). Rejects on a non-zero exit.
 */
function cli(args, { nodeArgs = [], mark } = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const since = () => Number(process.hrtime.bigint() - started) / 1e9;
    const child = spawn(process.execPath, [...nodeArgs, bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let marked;
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      if (marked === undefined && mark !== undefined && stderr.includes(mark)) marked = since();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const seconds = since();
      if (code === 0) resolve({ stdout, seconds, marked });
      else reject(new Error(`procureiq-webhooks ${args.join(' ')} exited ${code}:\n${stderr}`));
    });
  });
}

/** A fresh SQLite inbox holding `count` mixed events, pending, stored by the `import` CLI. */
async function importedDatabase(dir, name, count) {
  const file = join(dir, `${name}.db`);
  const exportFile = join(dir, `${name}.ndjson`);
  const out = createWriteStream(exportFile);
  for (const event of await mixedEvents(count, name)) {
    const line = {
      id: event.id,
      type: event.type,
      environment: 'production',
      status: 'pending',
      receivedAt: new Date().toISOString(),
      deliveryId: null,
      timestampHeader: null,
      body: JSON.stringify(event),
    };
    if (!out.write(`${JSON.stringify(line)}\n`)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
  await cli(['migrate', '--db', `sqlite:${file}`]);
  const { stdout } = await cli(['import', exportFile, '--db', `sqlite:${file}`]);
  if (!stdout.includes(`imported ${count} event(s)`))
    throw new Error(`import stored less than asked: ${stdout}`);
  rmSync(exportFile);
  return file;
}

/** A copy of a closed SQLite database (its -wal too, if one was left). */
function copyDatabase(from, to) {
  for (const suffix of ['', '-wal']) if (existsSync(from + suffix)) copyFileSync(from + suffix, to + suffix);
  return to;
}

/** Removes a SQLite database with its -wal and -shm files. */
function removeDatabase(file) {
  for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
}

/**
 * Drains a copy of the backlog with the service and the no-op handlers: events processed per
 * second, and the rows left in procureiq_orders.
 */
async function drain(template, { dir, label, projections, secret, freePort, waitHealthy, stop, logLevel }) {
  const file = copyDatabase(template, join(dir, `drain-${label}.db`));
  const port = await freePort();
  const statsFile = join(dir, `handler-stats-${label}.json`);
  // BENCH_PROJ_PROFILE=DIR: the service writes CPU profiles (one per thread) to DIR/<label>.
  const profile = process.env.BENCH_PROJ_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${join(process.env.BENCH_PROJ_PROFILE, label)}`]
    : [];
  const child = spawn(
    process.execPath,
    [...profile, bin, 'serve', '--handlers', join(here, 'noop-handlers.mjs')],
    {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        WEBHOOK_SECRET: secret,
        DATABASE_URL: `sqlite:${file}`,
        LOG_LEVEL: logLevel,
        BENCH_OUT: statsFile,
        PROJECTIONS: projections,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  let db;
  try {
    await waitHealthy(`http://127.0.0.1:${port}/healthz`, child);
    db = new Database(file, { readonly: true });
    const unfinished = db
      .prepare("SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'processing', 'retrying')")
      .pluck();
    const since = Date.now();
    for (;;) {
      const left = unfinished.get();
      if (left === 0) break;
      if (Date.now() - since > DRAIN_LIMIT_MS) throw new Error(`${label}: ${left} jobs still unfinished`);
      // The figures come from the service's own timestamps: polling often only ends the wait sooner.
      await sleep(100);
    }
    const { jobs, processed, first, last } = db
      .prepare(
        `SELECT COUNT(*) AS jobs, SUM(status = 'processed') AS processed, MAX(finished_at) AS last,
          (SELECT MIN(started_at) FROM attempts) AS first FROM jobs`,
      )
      .get();
    if (processed !== jobs) throw new Error(`${label}: only ${processed} of ${jobs} jobs processed`);
    // Whether the run projected at all: an `all` run that wrote no rows measured nothing.
    const rows = db.prepare('SELECT COUNT(*) FROM procureiq_orders').pluck().get();
    await stop(child);
    const handled = JSON.parse(readFileSync(statsFile, 'utf8')).count;
    if (handled !== processingEvents) throw new Error(`${label}: the handler saw ${handled} events`);
    const seconds = (last - first) / 1000;
    return { seconds, perSecond: handled / seconds, rows };
  } finally {
    db?.close();
    await stop(child);
    removeDatabase(file);
  }
}

/** Row counts of every projected table of a SQLite inbox. */
function tableCounts(file) {
  const db = new Database(file, { readonly: true });
  try {
    const tables = db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'procureiq_%' ORDER BY name",
      )
      .pluck()
      .all();
    return Object.fromEntries(
      tables.map((t) => [t, db.prepare(`SELECT COUNT(*) FROM "${t}"`).pluck().get()]),
    );
  } finally {
    db.close();
  }
}

/** The functions with the most self time in a V8 .cpuprofile, as shares of the sampled time. */
function topSelfTime(profileFile, top = 15) {
  const { nodes, samples, timeDeltas } = JSON.parse(readFileSync(profileFile, 'utf8'));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const where = url ? `${url.replace(/^file:\/\//, '').replace(repo, '')}:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'} ${where}`.trim();
    const delta = timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + delta);
    total += delta;
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, us]) => ({ fn, ms: us / 1000, share: us / total }));
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * `projections rebuild` of a fresh copy of the stored events, BENCH_PROJ_ROUNDS times (median), and
 * once more under `--cpu-prof` with BENCH_REBUILD_PROFILE.
 */
async function benchRebuild(dir) {
  const stored = await importedDatabase(dir, 'rebuild', rebuildEvents);
  const copy = join(dir, 'rebuilt.db');
  const rebuildOnce = async (nodeArgs) => {
    copyDatabase(stored, copy);
    const run = await cli(['projections', 'rebuild', '--db', `sqlite:${copy}`], {
      nodeArgs,
      mark: 'rebuilding',
    });
    if (!run.stdout.includes(`from ${rebuildEvents} event(s)`))
      throw new Error(`rebuild did not apply every event: ${run.stdout}`);
    return run;
  };
  const runs = [];
  let tables;
  for (let round = 0; round < rounds; round++) {
    runs.push(await rebuildOnce([]));
    tables ??= tableCounts(copy);
  }
  let profile;
  if (profileDir) {
    mkdirSync(profileDir, { recursive: true });
    const before = new Set(readdirSync(profileDir));
    await rebuildOnce(['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
    const file = join(
      profileDir,
      readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile') && !before.has(f)),
    );
    profile = { file, top: topSelfTime(file) };
  }
  removeDatabase(stored);
  removeDatabase(copy);
  const seconds = median(runs.map((r) => r.seconds));
  return {
    events: rebuildEvents,
    seconds,
    perSecond: rebuildEvents / seconds,
    // From the first progress line (start-up, migration check and counting done) to the exit.
    applySeconds: median(runs.map((r) => r.seconds - r.marked)),
    rounds: runs.map((r) => r.seconds),
    target: REBUILD_TARGET,
    met: rebuildEvents / seconds >= REBUILD_TARGET,
    tables,
    ...(profile ? { profile } : {}),
  };
}

/** Both measurements; see the top of this file. */
export async function benchProjections({ dir, secret, freePort, waitHealthy, stop, logLevel }) {
  const backlog = await importedDatabase(dir, 'backlog', processingEvents);
  const roundResults = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ['all', 'none'] : ['none', 'all'];
    const measured = {};
    for (const projections of order)
      measured[projections] = await drain(backlog, {
        dir,
        label: `${projections}-${round}`,
        projections,
        secret,
        freePort,
        waitHealthy,
        stop,
        logLevel,
      });
    roundResults.push({
      on: measured.all.perSecond,
      off: measured.none.perSecond,
      ratio: measured.all.perSecond / measured.none.perSecond,
      onOrderRows: measured.all.rows,
      offOrderRows: measured.none.rows,
    });
  }
  removeDatabase(backlog);
  const ratio = median(roundResults.map((r) => r.ratio));
  const problem = roundResults.some((r) => r.onOrderRows === 0 || r.offOrderRows > 0)
    ? `procureiq_orders rows after PROJECTIONS=all / none by round: ${roundResults.map((r) => `${r.onOrderRows} / ${r.offOrderRows}`).join(', ')}; the handled events were not projected as they should be, so the ratio measures nothing`
    : undefined;

  const rebuild = await benchRebuild(dir);
  return {
    processing: {
      onPerSecond: median(roundResults.map((r) => r.on)),
      offPerSecond: median(roundResults.map((r) => r.off)),
      ratio,
      rounds: roundResults,
      target: PROCESSING_TARGET,
      met: problem === undefined && ratio >= PROCESSING_TARGET,
      ...(problem ? { problem } : {}),
    },
    rebuild,
  };
}

/** The results as markdown, as `node bench/projections.mjs` prints them. */
export function projectionsTable({ processing, rebuild }) {
  const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const verdict = (met) => (met ? 'met' : 'NOT met');
  const lines = [
    `| measurement (SQLite) | figure | target |`,
    '| --- | ---: | --- |',
    `| processing, PROJECTIONS=all, ${fmt(processingEvents)} events (median of ${processing.rounds.length}) | ${fmt(processing.onPerSecond)} events/s | |`,
    `| processing, PROJECTIONS=none | ${fmt(processing.offPerSecond)} events/s | |`,
    `| processing, all ÷ none (median of per-round ratios: ${processing.rounds.map((r) => fmt(r.ratio, 2)).join(' / ')}) | ${fmt(processing.ratio, 2)}× | ≥ ${processing.target}× ${verdict(processing.met)} |`,
    `| projections rebuild, ${fmt(rebuild.events)} events, CLI wall time (median of ${rebuild.rounds.length}: ${rebuild.rounds.map((r) => `${fmt(r, 2)} s`).join(' / ')}) | ${fmt(rebuild.perSecond)} events/s | ≥ ${fmt(rebuild.target)}/s ${verdict(rebuild.met)} |`,
    `| projections rebuild, after start-up (from its first progress line: ${fmt(rebuild.applySeconds, 2)} s) | ${fmt(rebuild.events / rebuild.applySeconds)} events/s | |`,
    '',
    ...(processing.problem ? [`WARNING: processing: ${processing.problem}.`, ''] : []),
    `Rows after the rebuild: ${Object.entries(rebuild.tables)
      .map(([t, n]) => `${t} ${fmt(n)}`)
      .join(', ')}`,
  ];
  if (rebuild.profile) {
    lines.push(
      '',
      `Rebuild CPU profile (${rebuild.profile.file}), top self time:`,
      '| function | self ms | share |',
      '| --- | ---: | ---: |',
    );
    for (const f of rebuild.profile.top) lines.push(`| ${f.fn} | ${fmt(f.ms)} | ${fmt(f.share * 100, 1)}% |`);
  }
  return lines.join('\n');
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) throw new Error('run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'piq-bench-proj-'));
  try {
    const result = await benchProjections({
      dir,
      secret: 'bench-secret',
      freePort,
      waitHealthy,
      stop,
      logLevel: process.env.BENCH_LOG_LEVEL ?? 'warn',
    });
    console.log(projectionsTable(result));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
