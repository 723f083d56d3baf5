// The routes benchmark's service: the real consumer (dist/) on SQLite with the routes file in
// $ROUTES, listening on $PORT, no handlers (ROUTE_YIELD as for `serve`); with
// BENCH_ROUTE_DISPATCH=off it only stores events and their route jobs. It records when each route
// job was delivered and how long after its event was received (the dispatcher's
// `onRouteDelivery`), and writes the figures to $BENCH_OUT when it stops (SIGTERM).
import { writeFileSync } from 'node:fs';
import { createConsumer, createLogger } from '../dist/index.js';
import { loadRoutesFile } from '../dist/routes/config.js';

const delivered = [];
const other = {};
const consumer = createConsumer({
  secret: process.env.WEBHOOK_SECRET,
  database: process.env.DATABASE_URL,
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn' }),
  routes: await loadRoutesFile(process.env.ROUTES),
  // The bench reads the delivery counter from /metrics.
  metricsPublic: true,
  worker: process.env.BENCH_ROUTE_DISPATCH !== 'off',
  // As `serve` reads it: routes yield to ingest while it is saturated (ROUTE_YIELD=0 turns it off).
  routeYield: process.env.ROUTE_YIELD === '0' ? 0 : (process.env.ROUTE_YIELD ?? '1s'),
  onRouteDelivery: (info) => {
    if (info.outcome === 'delivered')
      delivered.push([Date.now(), Math.round(info.sinceReceivedSeconds * 1000)]);
    else other[info.outcome] = (other[info.outcome] ?? 0) + 1;
  },
});
await consumer.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });

process.on('SIGTERM', async () => {
  await consumer.close();
  writeFileSync(process.env.BENCH_OUT, JSON.stringify({ delivered, other }));
  process.exit(0);
});
