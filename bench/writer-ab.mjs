// The SQLite writer alone, for builds side by side: no HTTP, no threads, so it is far steadier than
// a whole-service run on a shared machine. Not part of `npm run bench`.
//
//   npm run build && BENCH_AB_BUILDS=/tmp/old,. node bench/writer-ab.mjs   (see bench/cpu-ab.mjs
//   for making /tmp/old)
//
// For each build (alternating, BENCH_ROUNDS times) it opens a fresh file with that build's own
// `SqliteConnection` (WAL, synchronous=FULL, the WAL pre-grown as the service does) and stores
// BENCH_WRITER_EVENTS order.created events through `runBatch` in batches of 25, the way group
// commit does under load: once with no job, once with two route jobs each. Then it claims the
// route jobs 250 at a time and completes each, in batches of 250. It prints µs per stored event
// (commit included) and per route job (claim and completion, commits included).
//
// Options (env): BENCH_AB_BUILDS (comma list of checkouts, default this one), BENCH_ROUNDS
// (default 2), BENCH_WRITER_EVENTS (default 30000).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const here = new URL('.', import.meta.url).pathname;
const builds = (process.env.BENCH_AB_BUILDS ?? join(here, '..')).split(',').map((b) => resolve(b));
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const events = Number(process.env.BENCH_WRITER_EVENTS ?? 30_000);
const ROUTES = ['route:a', 'route:b'];

const dir = mkdtempSync(join(tmpdir(), 'piq-writer-ab-'));
const body = Buffer.from(
  JSON.stringify({
    id: 'x',
    type: 'order.created',
    created: 1,
    data: { orderId: 'o', totalAmount: 1 },
  }).padEnd(500),
);
const microseconds = (since) => Number(process.hrtime.bigint() - since) / 1000;

async function run(build, withJobs, file) {
  const dist = pathToFileURL(join(build, 'dist', 'store', 'sqlite')).href;
  const { SqliteConnection } = await import(`${dist}/sqlite-connection.js`);
  const { runBatch } = await import(`${dist}/protocol.js`);
  const inbox = new SqliteConnection(file);
  try {
    inbox.growWal();
    const jobs = withJobs ? ROUTES.map((consumer) => ({ consumer, maxAttempts: 5 })) : [];
    const ids = Array.from({ length: events }, () => `evt_${randomBytes(12).toString('hex')}`);
    let started = process.hrtime.bigint();
    for (let i = 0; i < events; i += 25) {
      const now = Date.now();
      runBatch(
        inbox,
        ids.slice(i, i + 25).map((id) => [
          'insertIfAbsent',
          [
            {
              id,
              type: 'order.created',
              environment: 'production',
              status: withJobs ? 'pending' : 'unhandled',
              created: now,
              rawBody: body,
              deliveryId: `dlv_${id}`,
              timestampHeader: String(Math.floor(now / 1000)),
              receivedAt: now,
              validationError: null,
              maxAttempts: 5,
              secretIndex: 0,
              sourceAddress: '127.0.0.1',
              jobs,
            },
          ],
        ]),
      );
    }
    const store = microseconds(started) / events;
    if (!withJobs) return { store };
    started = process.hrtime.bigint();
    let done = 0;
    for (;;) {
      const [claimed] = runBatch(inbox, [
        ['claimDue', [{ owner: 'bench', limit: 250, leaseMs: 60_000, consumers: ROUTES }]],
      ]);
      const batch = claimed.value.events;
      if (batch.length === 0) break;
      const now = Date.now();
      runBatch(
        inbox,
        batch.map((job) => ['complete', [job, { startedAt: now, finishedAt: now, outcome: 'succeeded' }]]),
      );
      done += batch.length;
    }
    return { store, job: microseconds(started) / done };
  } finally {
    inbox.close();
  }
}

try {
  let n = 0;
  for (let round = 0; round < rounds; round++) {
    for (const build of builds) {
      const plain = await run(build, false, join(dir, `${n++}.db`));
      const routed = await run(build, true, join(dir, `${n++}.db`));
      console.log(
        `round ${round + 1} ${build}: stored event ${plain.store.toFixed(1)} µs, with two route jobs ` +
          `${routed.store.toFixed(1)} µs; a route job claimed and completed ${routed.job.toFixed(1)} µs`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
