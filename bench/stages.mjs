// Per-stage cost of one request's ingest path, in µs per request: each stage of the real code in
// dist/ timed alone (warm-up, then ≥ 200 ms of iterations, 5 times, median), then the CPU a bare
// node:http server and the whole service spend per request under wrk -t1 -c50 -d5s, read from
// /proc, so the table shows how much of the service's cost the stages explain.
//
//   npm run build && node bench/stages.mjs
//
// The event is what `serve` stores with its defaults (no handlers, no routes, projections all): an
// order.created delivery of ~500 bytes, status `unhandled`, one projections job and its projection
// writes, which SQLite applies in the insert's own transaction. Route matching is not on that path
// (no routes file) and is measured on its own.

import { isUtf8 } from 'node:buffer';
import { execFileSync, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serialize } from 'node:v8';
import { MessageChannel, Worker } from 'node:worker_threads';
import sjson from 'secure-json-parse';
import { freePort, runWrk, signature, stop, waitHealthy } from './lib.mjs';

const here = new URL('.', import.meta.url).pathname;
const repo = join(here, '..');
const dist = (path) => import(new URL(`../dist/${path}`, import.meta.url).href);

const secret = 'bench-secret';
const MIN_NS = 200_000_000n;
const REPEATS = 5;
const LOAD_SECONDS = 5;
const LOAD_CONNECTIONS = 50;

// ---------------------------------------------------------------------------------------------
// Bodies

let bodySerial = 0;
const runTag = randomBytes(4).toString('hex');

/** One order.created envelope, the shape of bench/run.mjs writePool's, with a few more data fields (~500 bytes). */
function orderCreated(i, tag = 's') {
  return JSON.stringify({
    id: `evt_bench_${tag}${runTag}_${i}`,
    type: 'order.created',
    version: '1.0',
    created: 1711234601,
    data: {
      orderId: `ord_${tag}${runTag}_${i}`,
      userId: 'usr_01HX9A7Q3T5WZ8K2M4N6P8R0S2',
      briefId: 'brf_01HX9A7Q3T5WZ8K2M4N6P8R0S3',
      supplierId: 'sup_01HX9A7Q3T5WZ8K2M4N6P8R0S4',
      totalAmount: 742.5,
      currency: 'USD',
      itemCount: 3,
      paymentTerms: 'net-30',
      shippingAddress: { line1: '221B Baker Street', city: 'London', postalCode: 'NW1 6XE', country: 'GB' },
      createdAt: '2024-03-23T22:56:41Z',
    },
    metadata: { procureiqVersion: '1.0.0', environment: 'production' },
  });
}

const sign = (body) => signature(body, secret);

/** `n` distinct bodies as Buffers, as node:http hands them to the receiver. */
function freshBodies(n) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = Buffer.from(orderCreated(bodySerial++));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Timing

let sink = 0;
const consume = (v) => {
  sink = (sink + (v === null || v === undefined ? 1 : typeof v === 'number' ? v : 2)) | 0;
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Times `run(n)`, which does n units of work and returns the nanoseconds they took (preparation
 * stays outside its own timing). Doubles n until one run takes ≥ 200 ms (the doublings are the
 * JIT warm-up, plus one more run at the final n), then runs it 5 times: median ns per unit.
 */
async function perUnit(run, { start = 16, max = 1 << 22 } = {}) {
  let n = start;
  for (let i = 0; i < 3; i++) await run(n);
  for (;;) {
    const ns = BigInt(Math.round(await run(n)));
    if (ns >= MIN_NS || n >= max) break;
    const grow = Number(MIN_NS) / Math.max(1, Number(ns));
    n = Math.min(max, Math.ceil(n * Math.min(8, Math.max(2, grow * 1.2))));
  }
  await run(n);
  const samples = [];
  for (let r = 0; r < REPEATS; r++) samples.push((await run(n)) / n);
  return median(samples);
}

/** A synchronous loop over a fresh set of inputs, made by `prepare(n)` outside the timing. */
const loop = (prepare, fn) => (n) => {
  const inputs = prepare(n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) consume(fn(inputs[i], i));
  return Number(process.hrtime.bigint() - t0);
};

/** For stages where the input can repeat (no caching by content): a fixed pool, cycled. */
const cycled = (pool, fn) => (n) => {
  const m = pool.length;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) consume(fn(pool[i % m], i));
  return Number(process.hrtime.bigint() - t0);
};
const us = (ns) => ns / 1000;

// ---------------------------------------------------------------------------------------------
// The event as the receiver hands it to the store (serve's defaults)

async function loadCode() {
  const [
    sig,
    parse,
    catalogue,
    routeJobsMod,
    routesConfig,
    metrics,
    protocol,
    connection,
    projJobs,
    projStmts,
    projRegistry,
  ] = await Promise.all([
    dist('signature/verify-signature.js'),
    dist('receiver/parse-envelope.js'),
    dist('events/catalogue.js'),
    dist('routes/route-jobs.js'),
    dist('routes/config.js'),
    dist('ops/metrics.js'),
    dist('store/sqlite/protocol.js'),
    dist('store/sqlite/sqlite-connection.js'),
    dist('projections/jobs.js'),
    dist('projections/statements.js'),
    dist('projections/registry.js'),
  ]);
  return {
    verifySignature: sig.verifySignature,
    parseEnvelope: parse.parseEnvelope,
    findDuplicateTopLevelKey: parse.findDuplicateTopLevelKey,
    validateKnownEvent: catalogue.validateKnownEvent,
    routeJobs: routeJobsMod.routeJobs,
    resolveRoutes: routesConfig.resolveRoutes,
    createMetrics: metrics.createMetrics,
    // The encoder SqliteStore keeps: after the first event of a type, a projection's SQL text
    // travels as its name only, which is what a running service sends.
    toWire: (() => {
      const encoder = protocol.createWireEncoder();
      return (event) => encoder.event(event);
    })(),
    runBatch: protocol.runBatch,
    SqliteConnection: connection.SqliteConnection,
    projectionJobs: projJobs.projectionJobs,
    projectionStatements: projStmts.projectionStatements,
    resolveProjectionsConfig: projRegistry.resolveProjectionsConfig,
  };
}

const SCHEDULE = [30_000, 120_000, 600_000];

/** The NewEvent `serve` (no handlers, no routes, projections all) stores for one delivery. */
function newEventFor(code, body, { project = true } = {}) {
  const envelope = code.parseEnvelope(body);
  const projections = code.resolveProjectionsConfig({});
  const receivedAt = Date.now();
  const jobs = project
    ? code.projectionJobs({ type: envelope.type, status: 'pending' }, projections, 1 + SCHEDULE.length)
    : [];
  const projection = project
    ? code.projectionStatements(
        'sqlite',
        {
          id: envelope.id,
          type: envelope.type,
          created: envelope.created,
          environment: 'production',
          receivedAt,
          data: envelope.data,
        },
        projections,
      )
    : undefined;
  return {
    id: envelope.id,
    type: envelope.type,
    environment: 'production',
    status: 'unhandled',
    created: envelope.created,
    rawBody: body,
    deliveryId: null,
    timestampHeader: null,
    receivedAt,
    validationError: null,
    maxAttempts: 1 + SCHEDULE.length,
    jobs,
    projection,
    secretIndex: 0,
    sourceAddress: '127.0.0.1',
  };
}

// ---------------------------------------------------------------------------------------------
// Hand-off to a real worker thread

const RECEIVER_SOURCE = `
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const port = workerData.port;
parentPort.on('message', (expected) => {
  let n = 0;
  const t0 = process.hrtime.bigint();
  while (n < expected) if (receiveMessageOnPort(port) !== undefined) n++;
  parentPort.postMessage(Number(process.hrtime.bigint() - t0));
});
parentPort.postMessage('ready');
`;

async function startReceiver() {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(RECEIVER_SOURCE, {
    eval: true,
    workerData: { port: port2 },
    transferList: [port2],
  });
  await new Promise((resolve) => worker.once('message', resolve));
  let receivedNs = 0;
  return {
    /** Posts `messages`, timed on this thread; then the worker takes them all (timed there). */
    async post(messages) {
      const t0 = process.hrtime.bigint();
      for (const m of messages) port1.postMessage(m);
      const ns = Number(process.hrtime.bigint() - t0);
      const done = new Promise((resolve) => worker.once('message', resolve));
      worker.postMessage(messages.length);
      receivedNs = await done;
      return ns;
    },
    lastReceivedNs: () => receivedNs,
    close: () => worker.terminate(),
  };
}

// ---------------------------------------------------------------------------------------------
// Load: CPU per request from /proc

function ticks() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}
const CLK_TCK = ticks();

/** utime + stime of a process's threads, in seconds, by thread id, with each one's name. */
function threadCpu(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.set(tid, { name, seconds: (Number(fields[11]) + Number(fields[12])) / CLK_TCK });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

async function writePool(file, size, tag) {
  const out = createWriteStream(file);
  for (let i = 0; i < size; i++) {
    const body = orderCreated(i, tag);
    if (!out.write(`${sign(body)}\t${body}\n`)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
}

/** Warm-up (if a pool is given), then CPU per thread over one measured wrk run. */
async function loadCpu(pid, url, pools) {
  if (pools.warmup) await runWrk(url, pools.warmup, { conns: LOAD_CONNECTIONS, seconds: 2 });
  const before = threadCpu(pid);
  const result = await runWrk(url, pools.measure, { conns: LOAD_CONNECTIONS, seconds: LOAD_SECONDS });
  const after = threadCpu(pid);
  const threads = [...after].map(([tid, a]) => ({
    tid,
    name: a.name,
    seconds: a.seconds - (before.get(tid)?.seconds ?? 0),
  }));
  return { ...result, threads };
}

// ---------------------------------------------------------------------------------------------

/**
 * Measures every stage and prints the table. Returns its rows: `{ stage, us, what }` (`us` is µs
 * per request, or NaN when a stage could not run), plus `load` with the raw wrk and /proc figures.
 */
export async function measureStages({ print = true, load = true } = {}) {
  const code = await loadCode();
  const rows = [];
  const row = (stage, ns, what) => {
    rows.push({ stage, us: us(ns), what });
    if (print) process.stderr.write(`  ${stage}: ${us(ns).toFixed(2)} µs\n`);
  };

  // 1. HMAC
  const signed = (n) => freshBodies(n).map((body) => ({ body, header: sign(body) }));
  const sample = freshBodies(1)[0];
  row(
    'HMAC',
    await perUnit(loop(signed, (d) => code.verifySignature([secret], d.body, d.header).ok)),
    `verifySignature, one secret, ${sample.length}-byte order.created body`,
  );

  // 2-3. parse
  const parseOptions = { protoAction: 'remove', constructorAction: 'remove' };
  row(
    'parse (whole parseEnvelope)',
    await perUnit(loop(freshBodies, (b) => code.parseEnvelope(b).created)),
    'parseEnvelope: isUtf8, toString, secure-json-parse, duplicate-key scan, envelope checks',
  );
  row(
    'parse',
    await perUnit(
      loop(freshBodies, (b) => {
        if (!isUtf8(b)) return 0;
        return sjson.parse(b.toString('utf8'), undefined, parseOptions).created;
      }),
    ),
    "parseEnvelope's parse alone: isUtf8 + toString('utf8') + sjson.parse (remove __proto__/constructor)",
  );
  row(
    '(reference: JSON.parse)',
    await perUnit(loop(freshBodies, (b) => JSON.parse(b.toString('utf8')).created)),
    "plain toString('utf8') + JSON.parse of the same body, for comparison (not on the path)",
  );
  const texts = (n) => freshBodies(n).map((b) => b.toString('utf8'));
  row(
    'duplicate-key scan',
    await perUnit(loop(texts, (t) => code.findDuplicateTopLevelKey(t))),
    'findDuplicateTopLevelKey on the body text',
  );

  // 4. schema
  const envelopes = freshBodies(4096).map((b) => code.parseEnvelope(b));
  row(
    'schema validation',
    await perUnit(cycled(envelopes, (e) => code.validateKnownEvent(e))),
    'validateKnownEvent (zod safeParse of the order.created schema) on the parsed envelope',
  );

  // 5. routes (not on serve's path without a routes file)
  const hook = { type: 'http', url: 'http://127.0.0.1:9/hook' };
  const routes = code.resolveRoutes(
    {
      destinations: { fulfilment: hook, audit: hook },
      routes: [
        {
          name: 'big-orders',
          match: { types: ['order.*'], where: { 'data.totalAmount': { $gte: 500 } } },
          to: 'fulfilment',
        },
        { name: 'everything', match: { types: ['*'] }, to: 'audit' },
      ],
    },
    { env: {} },
  ).routes;
  const routable = envelopes.map((envelope) => ({
    type: envelope.type,
    environment: 'production',
    envelope,
  }));
  if (code.routeJobs(routes, routable[0], SCHEDULE).length !== 2) throw new Error('both routes should match');
  row(
    'route matching',
    await perUnit(cycled(routable, (e) => code.routeJobs(routes, e, SCHEDULE).length)),
    'routeJobs: 2 routes (order.* with where data.totalAmount ≥ 500; *), both match; only with ROUTES_FILE',
  );

  // 6. metrics
  const metrics = code.createMetrics({});
  row(
    'metrics',
    await perUnit(
      cycled(envelopes, (e) => {
        const outcome = {
          outcome: 'unhandled',
          status: 200,
          environment: 'production',
          eventId: e.id,
          eventType: e.type,
          secretIndex: 0,
          remoteAddress: '127.0.0.1',
        };
        metrics.delivery(outcome);
        metrics.secretUsed('production', 0, Date.now());
        metrics.ack('/webhooks/procureiq', 200, 0.0021);
        return 1;
      }),
    ),
    'delivery() + secretUsed() (onOutcome) + ack() (onResponse histogram observe), prom-client registry',
  );

  // The event as it goes to the store.
  const projections = code.resolveProjectionsConfig({});
  row(
    'projection statements',
    await perUnit(
      cycled(
        envelopes,
        (e) =>
          code.projectionStatements(
            'sqlite',
            {
              id: e.id,
              type: e.type,
              created: e.created,
              environment: 'production',
              receivedAt: 1,
              data: e.data,
            },
            projections,
          ).length,
      ),
    ),
    "projectionStatements for the event (serve's default PROJECTIONS=all; main thread, before the insert)",
  );
  const events = freshBodies(1024).map((b) => newEventFor(code, b));
  row(
    'toWire',
    await perUnit(cycled(events, (e) => code.toWire(e).rawBody.length)),
    'toWire: the body to a latin1 string for the writer thread',
  );

  // 7. hand-off
  const wires = events.map((e) => code.toWire(e));
  const message = (ops, id) => ({ id, ops });
  row(
    'hand-off: structuredClone',
    await perUnit(
      cycled(wires, (w, i) => {
        const copy = structuredClone(message([['insertIfAbsent', [w]]], i));
        return copy.ops.length;
      }),
    ),
    'structuredClone of { id, ops: [[insertIfAbsent, [toWire(event)]]] } (serialize + deserialize)',
  );
  const bare = wires.map(({ projection: _sql, ...w }) => w);
  const sqlBytes = serialize(wires[0]).length - serialize(bare[0]).length;
  row(
    '(reference: clone without projection)',
    await perUnit(
      cycled(bare, (w, i) => {
        const copy = structuredClone(message([['insertIfAbsent', [w]]], i));
        return copy.ops.length;
      }),
    ),
    `the same message without \`projection\` (its SQL text and params: ${sqlBytes} of ${serialize(wires[0]).length} serialized bytes)`,
  );
  const receiver = await startReceiver();
  try {
    for (const size of [1, 25]) {
      const batches = (n) => {
        const out = [];
        for (let i = 0; i < n; i += size) {
          const ops = [];
          for (let j = 0; j < size; j++) ops.push(['insertIfAbsent', [wires[(i + j) % wires.length]]]);
          out.push(message(ops, i));
        }
        return out;
      };
      const received = [];
      let lastN = 1;
      const sent = await perUnit(
        async (n) => {
          lastN = n;
          const ns = await receiver.post(batches(n * size));
          received.push(receiver.lastReceivedNs());
          return ns / size;
        },
        { max: 1 << 16 },
      );
      // The worker's side: receiveMessageOnPort (deserialize) of the same messages, per event.
      const receivedPerEvent = median(received.slice(-REPEATS)) / (lastN * size);
      row(
        `hand-off: postMessage, batch ${size}`,
        sent,
        `postMessage of { id, ops } with ${size} insertIfAbsent op(s) to a worker thread: sender's time per event (worker's receive + deserialize: ${us(receivedPerEvent).toFixed(2)} µs/event, on its own thread)`,
      );
    }
  } finally {
    await receiver.close();
  }

  // 8-9. insert and commit
  const dir = mkdtempSync(join(tmpdir(), 'procureiq-stages-'));
  try {
    const batchTime = async ({ synchronous, size, project = true }) => {
      const conn = new code.SqliteConnection(join(dir, `${synchronous}-${size}-${project}.db`));
      conn.db.pragma(`synchronous = ${synchronous}`);
      try {
        return await perUnit(
          (n) => {
            const batches = [];
            for (let i = 0; i < n; i++) {
              const ops = freshBodies(size).map((b) => [
                'insertIfAbsent',
                [newEventFor(code, b, { project })],
              ]);
              batches.push(ops);
            }
            const t0 = process.hrtime.bigint();
            for (const ops of batches) {
              const results = code.runBatch(conn, ops);
              if (!results[0].ok || results[0].value.outcome !== 'inserted')
                throw new Error(`insert failed: ${JSON.stringify(results[0])}`);
            }
            return Number(process.hrtime.bigint() - t0);
          },
          { start: 4, max: 1 << 14 },
        );
      } finally {
        conn.close?.();
        conn.db.open && conn.db.close();
      }
    };
    const off25 = await batchTime({ synchronous: 'OFF', size: 25 });
    const off1 = await batchTime({ synchronous: 'OFF', size: 1 });
    const offPlain25 = await batchTime({ synchronous: 'OFF', size: 25, project: false });
    row(
      'insert',
      off25 / 25,
      'runBatch of 25 SqliteConnection.insertIfAbsent (event + projections job + projection upsert), synchronous=OFF, per event',
    );
    row(
      'insert, event only',
      offPlain25 / 25,
      'the same without projection (PROJECTIONS=none: no job, no upsert), per event',
    );
    const full25 = await batchTime({ synchronous: 'FULL', size: 25 });
    const full1 = await batchTime({ synchronous: 'FULL', size: 1 });
    row(
      'commit, batch 25 (per batch)',
      full25 - off25,
      `synchronous=FULL − OFF per batch of 25 (${us(full25).toFixed(0)} − ${us(off25).toFixed(0)} µs): the WAL fsync`,
    );
    row(
      'commit, batch 25 (per request)',
      (full25 - off25) / 25,
      'the same shared by the 25 requests of the batch',
    );
    row(
      'commit, batch 1 (per request)',
      full1 - off1,
      `synchronous=FULL − OFF per batch of 1 (${us(full1).toFixed(0)} − ${us(off1).toFixed(0)} µs): one fsync per request`,
    );

    // 10 and the whole service, under load.
    if (load) {
      const pools = {
        bare: join(dir, 'bare.pool'),
        warmup: join(dir, 'warmup.pool'),
        measure: join(dir, 'measure.pool'),
      };
      await writePool(pools.bare, 20_000, 'b');
      await writePool(pools.warmup, 60_000, 'w');
      await writePool(pools.measure, 120_000, 'm');

      const barePort = await freePort();
      const bare = fork(join(here, 'baselines', 'bare-server.mjs'), [], {
        env: { ...process.env, PORT: String(barePort) },
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      let bareLoad;
      try {
        await new Promise((resolve, reject) => {
          bare.once('message', resolve);
          bare.once('exit', (c) => reject(new Error(`bare server exited (${c})`)));
        });
        const url = `http://127.0.0.1:${barePort}/webhooks/procureiq`;
        await runWrk(url, pools.bare, { conns: LOAD_CONNECTIONS, seconds: 2 });
        bareLoad = await loadCpu(bare.pid, url, { measure: pools.bare });
      } finally {
        await stop(bare);
      }
      const bareCpu = bareLoad.threads.reduce((a, t) => a + t.seconds, 0);
      row(
        'response (bare node:http)',
        (bareCpu * 1e9) / bareLoad.requests,
        `HTTP parse + body read + response: bare node:http CPU (all threads) / request, wrk -t1 -c${LOAD_CONNECTIONS} ${LOAD_SECONDS}s, ${Math.round(bareLoad.requests / LOAD_SECONDS)} req/s`,
      );

      const port = await freePort();
      const service = spawn(process.execPath, [join(repo, 'bin', 'procureiq-webhooks.js'), 'serve'], {
        env: {
          ...process.env,
          PORT: String(port),
          HOST: '127.0.0.1',
          WEBHOOK_SECRET: secret,
          DATABASE_URL: `sqlite:${join(dir, 'service.db')}`,
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      let serviceLoad;
      try {
        await waitHealthy(`http://127.0.0.1:${port}/healthz`, service);
        serviceLoad = await loadCpu(service.pid, `http://127.0.0.1:${port}/webhooks/procureiq`, pools);
      } finally {
        await stop(service);
      }
      const { requests } = serviceLoad;
      const main = serviceLoad.threads.find((t) => t.tid === String(service.pid));
      const others = serviceLoad.threads.filter((t) => t.tid !== String(service.pid));
      // The writer is the busiest thread besides the main one (the others are V8 and libuv helpers).
      const writer = [...others].sort((a, b) => b.seconds - a.seconds)[0];
      const rest = others.filter((t) => t !== writer).reduce((a, t) => a + t.seconds, 0);
      const rate = Math.round(requests / LOAD_SECONDS);
      const ok = serviceLoad.non2xx === 0 && serviceLoad.errors === 0;
      const repeated = requests > 120_000 ? ' (pool wrapped: some ids repeat)' : '';
      const note = `${rate} req/s${ok ? '' : `, ${serviceLoad.non2xx} non-2xx, ${serviceLoad.errors} errors`}${repeated}`;
      row(
        'whole service: main thread',
        (main.seconds * 1e9) / requests,
        `serve, main thread CPU / request, wrk -t1 -c${LOAD_CONNECTIONS} ${LOAD_SECONDS}s after 2 s warm-up, ${note}`,
      );
      row(
        'whole service: writer thread',
        (writer.seconds * 1e9) / requests,
        'the busiest thread besides the main one (threads are unnamed in Node 20): the SQLite writer',
      );
      row(
        'whole service: other threads',
        (rest * 1e9) / requests,
        `the ${others.length - 1} other threads together (V8 GC and compiler helpers, libuv pool)`,
      );
      rows.load = { bare: bareLoad, service: serviceLoad };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Main-thread stages of serve's path, added up, against the service's main thread.
  const pick = (name) => rows.find((r) => r.stage === name)?.us ?? 0;
  const mainStages = [
    'HMAC',
    'parse (whole parseEnvelope)',
    'schema validation',
    'metrics',
    'projection statements',
    'toWire',
    'hand-off: postMessage, batch 25',
    'response (bare node:http)',
  ];
  if (load) {
    const sum = mainStages.reduce((a, s) => a + pick(s), 0);
    rows.push({
      stage: 'sum of main-thread stages',
      us: sum,
      what: `${mainStages.join(' + ')}; unexplained: ${(pick('whole service: main thread') - sum).toFixed(1)} µs`,
    });
  }

  if (print) printTable(rows);
  return rows;
}

function printTable(rows) {
  const lines = ['| stage | µs per request | what is measured |', '|---|---:|---|'];
  for (const r of rows)
    lines.push(`| ${r.stage} | ${Number.isFinite(r.us) ? r.us.toFixed(2) : '–'} | ${r.what} |`);
  console.log(lines.join('\n'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await measureStages({ load: process.env.STAGES_LOAD !== '0' });
  if (sink === 42) console.log('');
}
