import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createIngestPriority } from '../../src/routes/ingest-priority.ts';

/** Deliveries that each waited `storeMs` for the store, fed every few ms until the returned stop. */
function load(priority: ReturnType<typeof createIngestPriority>, storeMs: number): () => void {
  const feed = setInterval(() => {
    for (let i = 0; i < 5; i++) priority.delivery(storeMs);
  }, 2);
  return () => clearInterval(feed);
}

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A priority with 20 ms windows that counts one delivery as enough ingest, saturated at 16 waiting. */
const fastPriority = (maxWaitMs: number) =>
  createIngestPriority({ maxWaitMs, windowMs: 20, minDeliveries: 1, queueAbove: 16 });

describe('ingest priority (routes yield while ingest is saturated)', () => {
  it('lets every turn go at once while deliveries do not queue for the store', async () => {
    const priority = fastPriority(60_000);
    const stop = load(priority, 1);
    try {
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(priority.busy, false);
      const gate = priority.gate();
      for (let i = 0; i < 3; i++) await gate.turn();
    } finally {
      stop();
      priority.stop();
    }
  });

  it('while deliveries queue, a lane gets one turn per maxWaitMs, and all go once the queue is gone', async () => {
    const maxWaitMs = 1000;
    const priority = fastPriority(maxWaitMs);
    // Deliveries that each waited 100 s: however late a window closes (a busy CI machine), one feed
    // in it is enough for it to count as saturated.
    let stop = load(priority, 100_000);
    try {
      await until(() => priority.busy, 'saturated');
      const gate = priority.gate();
      await gate.turn(); // the lane's first turn: nothing to wait since the last one
      const started = Date.now();
      await gate.turn();
      assert.ok(Date.now() - started >= maxWaitMs - 5, `waited ${Date.now() - started} ms`);
      // A third turn waits for the burst to pass, not for the deadline.
      let third = false;
      const turned = gate.turn().then(() => {
        third = true;
      });
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(third, false, 'still saturated: the turn waits');
      stop();
      stop = () => {};
      await turned;
      assert.equal(priority.busy, false);
    } finally {
      stop();
      priority.stop();
    }
  });

  it('needs deliveries as well as a busy loop: a lane draining a backlog alone never waits', async () => {
    const priority = createIngestPriority({
      maxWaitMs: 60_000,
      windowMs: 20,
      minDeliveries: 20,
      busyAbove: 0,
    });
    try {
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(priority.busy, false);
      const gate = priority.gate();
      await gate.turn();
      await gate.turn();
    } finally {
      priority.stop();
    }
  });

  it('is off with maxWaitMs 0, and stop() lets a waiting turn go', async () => {
    const off = createIngestPriority({ maxWaitMs: 0, windowMs: 20, minDeliveries: 1, queueAbove: 1 });
    const stopOff = load(off, 100_000);
    try {
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(off.busy, false);
    } finally {
      stopOff();
      off.stop();
    }
    const priority = fastPriority(60_000);
    const stop = load(priority, 100_000);
    try {
      await until(() => priority.busy, 'saturated');
      const gate = priority.gate();
      await gate.turn();
      const waiting = gate.turn();
      priority.stop();
      await waiting;
    } finally {
      stop();
    }
  });
});
