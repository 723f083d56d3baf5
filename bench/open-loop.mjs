// An open-loop load generator: signed webhook POSTs at a fixed rate, latency measured from each
// request's intended send time (so stalls are not hidden by coordinated omission, as they are with
// a closed-loop tool such as wrk, whose connections wait for their answers before sending more).
//
// Request i is due at start + i/rate. A scheduler fires every request whose time has passed
// (catching up after any pause of its own), so a generator or server stall shows as latency, never
// as a lower rate. Requests go over a bounded undici Pool of keep-alive connections (pipelining 1);
// when all are busy a request waits in the pool's queue, and that wait counts. Between due times
// less than 2 ms apart the scheduler yields with setImmediate: it spins, keeping its CPU busy (give
// it one of its own, e.g. taskset -c 0). In trials on the 2-core VM, sleeping instead (even 0.1 ms
// at a time, with Atomics.wait) raised a bare server's median by 1-2 ms: waking an idle CPU is slow.
//
// Each line of the pool file ("signature<TAB>body", as bench/run.mjs's writePool makes them) is
// sent once: the pool must hold rate × (warmup + seconds) lines. Latencies (µs) of the measured
// requests are kept in a Float64Array and sorted at the end; answers of any status count, transport
// errors and timeouts are counted apart and left out of the percentiles.
//
// As a module: `openLoop({ url, pool, rate, seconds, ... })` (options below). As a CLI, to pin it:
//   node bench/open-loop.mjs --url http://127.0.0.1:PORT/webhooks/procureiq --pool FILE \
//     --rate 2000 --seconds 10 [--warmup 0] [--connections 64] [--timeout-ms 10000] \
//     [--windows 0] [--head 0] [--wait-for /healthz] [--self-warm 0]
// prints OPENLOOP_READY once the pool is loaded, then one line: OPENLOOP_JSON {...}. With --url -,
// the URL is read from the first line of stdin once OPENLOOP_READY is out.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

/**
 * Offers `rate` requests per second to `url` for `seconds` (after `warmup` seconds at the same
 * rate, sent but not recorded, on the same connections) and returns the latency summary in ms:
 * `{ sent, achievedRate, ok, non2xx, errors, p50, p90, p99, p999, max, lagP99, lagMax }`, where
 * `lag*` is how late the generator itself handed requests to the pool (a generator that keeps up
 * shows well under a millisecond). With `windows: n`, also `windows`: the same figures for n equal
 * back-to-back slices of the measured time; with `head: s`, `head`: for its first s seconds. With
 * `waitFor` (a URL, or a path on `url`'s server), polls it (GET, every 5 ms) and starts the moment
 * it answers. `onReady` is called once the pool is loaded; `url` may be a promise, awaited after it
 * (so a server can be started only once the generator is ready).
 */
export async function openLoop({
  url,
  pool,
  rate,
  seconds,
  warmup = 0,
  connections = 64,
  timeoutMs = 10_000,
  windows = 0,
  head = 0,
  waitFor,
  selfWarm = 0,
  onReady = () => {},
}) {
  const warm = Math.round(rate * warmup);
  const measured = Math.round(rate * seconds);
  const total = warm + measured;
  const requests = readPool(pool, total);
  if (selfWarm > 0) await warmOnOwnSink({ pool, rate, seconds: selfWarm, connections, timeoutMs });
  onReady();
  const target = new URL(await url);
  const path = `${target.pathname}${target.search}`;
  const agent = new Pool(target.origin, {
    connections,
    pipelining: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  try {
    if (waitFor) await untilAnswered(agent, new URL(waitFor, target), timeoutMs);

    // Per measured request: latency in µs, status (0 for a transport error), the generator's lag.
    const latency = new Float64Array(measured);
    const status = new Uint16Array(measured);
    const lag = new Float64Array(measured);
    let settled = 0;
    let lastSend = 0;
    let allSettled;
    const done = new Promise((resolve) => {
      allSettled = resolve;
    });
    const interval = 1000 / rate;
    const start = performance.now() + 10;

    const settle = (i, intended, code) => {
      const m = i - warm;
      if (m >= 0) {
        latency[m] = (performance.now() - intended) * 1000;
        status[m] = code;
      }
      if (++settled === total) allSettled();
    };
    const fire = (i, intended, now) => {
      if (i >= warm) lag[i - warm] = now - intended;
      const [signature, body] = requests[i];
      agent
        .request({
          path,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-procureiq-signature': signature },
          body,
        })
        .then(async (res) => {
          await res.body.dump();
          return res.statusCode;
        })
        .then(
          (code) => settle(i, intended, code),
          () => settle(i, intended, 0),
        );
    };

    // The schedule: fire everything that is due, then wait for the next due time.
    await new Promise((resolve) => {
      let i = 0;
      const tick = () => {
        const now = performance.now();
        while (i < total && start + i * interval <= now) {
          fire(i, start + i * interval, now);
          i++;
        }
        if (i === total) {
          lastSend = now;
          resolve();
          return;
        }
        const wait = start + i * interval - performance.now();
        if (wait > 2) setTimeout(tick, wait - 1);
        else setImmediate(tick);
      };
      setTimeout(tick, 9);
    });
    await done;

    const measuredFrom = start + warm * interval;
    const slice = (from, to) => summarize(latency, status, lag, from, to);
    const result = {
      sent: measured,
      // Requests handed to the pool per second of measured time (the rate asked for, unless the
      // generator ran late at the very end).
      achievedRate: measured / ((lastSend - measuredFrom + interval) / 1000),
      ...slice(0, measured),
    };
    if (windows > 0)
      result.windows = Array.from({ length: windows }, (_, w) =>
        slice(Math.floor((w * measured) / windows), Math.floor(((w + 1) * measured) / windows)),
      );
    if (head > 0) result.head = slice(0, Math.min(measured, Math.round(rate * head)));
    return result;
  } finally {
    await agent.close();
  }
}

/**
 * Runs the generator for `seconds` against a sink of its own (node:http in this process, answering
 * 200), then closes it. A cold generator (its scheduler and undici not yet compiled) added about
 * 100 ms to the first half-second of a cold run even against a bare server long warm: with this
 * first, the cold rows measure the server's start rather than the generator's.
 */
async function warmOnOwnSink({ pool, rate, seconds, connections, timeoutMs }) {
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('{"status":"ok"}'));
  });
  await new Promise((resolve) => sink.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = sink.address();
    await openLoop({ url: `http://127.0.0.1:${port}/`, pool, rate, seconds, connections, timeoutMs });
  } finally {
    sink.closeAllConnections();
    await new Promise((resolve) => sink.close(resolve));
  }
}

/** The first `count` lines of the pool as [signature, body Buffer]; throws if it has fewer. */
function readPool(file, count) {
  const lines = readFileSync(file, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length < count)
    throw new Error(`pool ${file} has ${lines.length} deliveries; this run sends ${count}, each once`);
  return lines.slice(0, count).map((line) => {
    const tab = line.indexOf('\t');
    return [line.slice(0, tab), Buffer.from(line.slice(tab + 1))];
  });
}

/** Polls `url` until it answers (any status), for at most `timeoutMs`. */
async function untilAnswered(agent, url, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const res = await agent.request({ path: `${url.pathname}${url.search}`, method: 'GET' });
      await res.body.dump();
      return;
    } catch (error) {
      if (performance.now() > deadline) throw new Error(`no answer from ${url}: ${error.message}`);
      await sleep(5);
    }
  }
}

/** Counts and percentiles (ms, nearest rank) of requests [from, to); transport errors left out. */
function summarize(latency, status, lag, from, to) {
  const answered = [];
  let ok = 0;
  let non2xx = 0;
  for (let m = from; m < to; m++) {
    if (status[m] === 0) continue;
    answered.push(latency[m]);
    if (status[m] >= 200 && status[m] < 300) ok++;
    else non2xx++;
  }
  const sorted = Float64Array.from(answered).sort();
  const lags = lag.slice(from, to).sort();
  const at = (values, p) =>
    values.length === 0 ? Number.NaN : values[Math.max(0, Math.ceil((p / 100) * values.length) - 1)];
  const ms = (us) => Math.round(us) / 1000;
  return {
    ok,
    non2xx,
    errors: to - from - ok - non2xx,
    p50: ms(at(sorted, 50)),
    p90: ms(at(sorted, 90)),
    p99: ms(at(sorted, 99)),
    p999: ms(at(sorted, 99.9)),
    max: ms(at(sorted, 100)),
    lagP99: Math.round(at(lags, 99) * 1000) / 1000,
    lagMax: Math.round(at(lags, 100) * 1000) / 1000,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      pool: { type: 'string' },
      rate: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string', default: '0' },
      connections: { type: 'string', default: '64' },
      'timeout-ms': { type: 'string', default: '10000' },
      windows: { type: 'string', default: '0' },
      head: { type: 'string', default: '0' },
      'wait-for': { type: 'string' },
      'self-warm': { type: 'string', default: '0' },
    },
  });
  for (const name of ['url', 'pool', 'rate', 'seconds'])
    if (values[name] === undefined) throw new Error(`--${name} is required`);
  const result = await openLoop({
    url: values.url === '-' ? firstLine(process.stdin) : values.url,
    pool: values.pool,
    rate: Number(values.rate),
    seconds: Number(values.seconds),
    warmup: Number(values.warmup),
    connections: Number(values.connections),
    timeoutMs: Number(values['timeout-ms']),
    windows: Number(values.windows),
    head: Number(values.head),
    waitFor: values['wait-for'],
    selfWarm: Number(values['self-warm']),
    onReady: () => console.log('OPENLOOP_READY'),
  });
  console.log(`OPENLOOP_JSON ${JSON.stringify(result)}`);
}

async function firstLine(stream) {
  let text = '';
  for await (const chunk of stream) {
    text += chunk;
    if (text.includes('\n')) break;
  }
  return text.split('\n')[0].trim();
}
