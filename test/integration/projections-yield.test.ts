// The projections runner takes turns like a route lane while ingest is saturated: it claims a
// batch only when its gate (routes/ingest-priority.ts) gives it a turn, so on PostgreSQL a burst
// of deliveries is acknowledged before the live tables catch up.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { examplePayloads } from '../../src/events/examples.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { projectionJobs } from '../../src/projections/jobs.ts';
import { resolveProjectionsConfig } from '../../src/projections/registry.ts';
import { createProjectionRunner } from '../../src/projections/runner.ts';
import type { IngestPriority } from '../../src/routes/ingest-priority.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { newEvent } from '../conformance/store-suite.ts';
import { tempDir, waitFor } from '../helpers/index.ts';

/** A gate whose turns after the first wait until `release()`: ingest saturated until then. */
function heldPriority() {
  let turns = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const priority: IngestPriority = {
    delivery() {},
    busy: true,
    gate: () => ({
      turn: () => (++turns === 1 ? Promise.resolve() : released),
    }),
    stop: () => release(),
  };
  return { priority, release, turns: () => turns };
}

test('the projections runner claims one batch per turn and waits for the next turn while ingest is saturated', async () => {
  const tmp = tempDir();
  const store = new SqliteStore({ path: join(tmp.dir, 'inbox.db') });
  await store.migrate();
  const config = resolveProjectionsConfig();
  const held = heldPriority();
  const runner = createProjectionRunner({
    store,
    logger: silentLogger(),
    config,
    retrySchedule: [0],
    pollMs: 20,
    batchSize: 5,
    priority: held.priority,
  });
  try {
    for (let i = 0; i < 12; i++) {
      const id = `evt_yield_${i}`;
      const example = examplePayloads['order.created'];
      const data = { ...example.data, orderId: `ord_yield_${i}` };
      const rawBody = Buffer.from(JSON.stringify({ ...example, id, data }));
      const event = newEvent(id, { status: 'unhandled', rawBody });
      await store.insertIfAbsent({ ...event, jobs: projectionJobs(event, config, 3) });
    }
    const processed = async () =>
      (await store.countJobs()).find((c) => c.consumer === 'projections' && c.status === 'processed')
        ?.count ?? 0;
    assert.equal(await processed(), 0);
    runner.start();
    // The first turn: one batch of five. The runner then asks for its second turn and waits.
    await waitFor(async () => held.turns() === 2 && (await processed()) === 5, {
      what: 'the first batch projected and the second turn asked for',
    });
    assert.equal(await processed(), 5, 'no claim without a turn');
    held.release();
    await waitFor(async () => (await processed()) === 12, {
      what: 'the rest projected once ingest is quiet',
    });
  } finally {
    await runner.stop(5000);
    await store.close();
    tmp.cleanup();
  }
});
