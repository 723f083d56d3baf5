// Which is faster for concurrent durable inserts on PostgreSQL: one INSERT per request on a pool,
// or the store's per-turn multi-row INSERT? Both with synchronous_commit=on, 50 concurrent
// callers, the same table. Run after `npm run build`: node bench/pg-insert-strategies.mjs
import { createHash } from 'node:crypto';
import pg from 'pg';
import { PostgresStore } from '../dist/store/postgres/postgres-store.js';

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const total = Number(process.env.BENCH_EVENTS ?? 20_000);
const lanes = 50;
const schema = `piq_bench_ins_${process.pid}`;
const body = Buffer.from(
  JSON.stringify({ id: 'x', type: 'order.created', created: 1, data: { orderId: 'o' } }),
);

const event = (id) => ({
  id,
  type: 'order.created',
  environment: 'production',
  status: 'pending',
  created: 1,
  rawBody: body,
  deliveryId: null,
  timestampHeader: null,
  receivedAt: Date.now(),
  validationError: null,
  maxAttempts: 4,
  secretIndex: 0,
  sourceAddress: '127.0.0.1',
});

async function drive(insert) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let i = next++; i < total; i = next++) await insert(i);
    }),
  );
  return total / ((performance.now() - t0) / 1000);
}

const store = new PostgresStore({ connectionString: url, schema });
await store.migrate();
const pool = new pg.Pool({
  connectionString: url,
  max: 10,
  options: `-c search_path=${schema} -c synchronous_commit=on`,
});
try {
  const single = await drive((i) =>
    pool.query(
      `INSERT INTO events (id, type, environment, status, created, raw_body, body_sha256, received_at, secret_index,
         max_attempts, run_at, updated_at) VALUES ($1, 'order.created', 'production', 'pending', 1, $2, $3, $4, 0, 4, $4, $4)
       ON CONFLICT (id) DO NOTHING`,
      [`evt_single_${i}`, body, createHash('sha256').update(body).digest('hex'), Date.now()],
    ),
  );
  const batched = await drive((i) => store.insertIfAbsent(event(`evt_batched_${i}`)));
  console.log(`${total} inserts, ${lanes} concurrent callers, pool of 10, synchronous_commit=on`);
  console.log(`| strategy | inserts/s |\n| --- | ---: |`);
  console.log(`| one INSERT per request, pool of 10 | ${Math.round(single).toLocaleString('en-US')} |`);
  console.log(`| per-turn multi-row INSERT (the store) | ${Math.round(batched).toLocaleString('en-US')} |`);
} finally {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  await store.close();
}
