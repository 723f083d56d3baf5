import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createWakeTimer } from '../../src/worker/wake-timer.ts';

describe('wake timer', () => {
  it('waits out a time further off than Node timers take, without firing every millisecond', async () => {
    // A 30-day retry: Node fires a setTimeout longer than 2^31-1 ms after 1 ms, and the timer
    // re-armed the same delay, over and over (a busy loop).
    const armed: number[] = [];
    const real = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      armed.push(ms ?? 0);
      return real(fn, ms);
    }) as typeof setTimeout;
    let woken = 0;
    const timer = createWakeTimer(() => {
      woken++;
    });
    try {
      timer.dueAt(Date.now() + 30 * 86_400_000);
      await sleep(50);
    } finally {
      timer.stop();
      globalThis.setTimeout = real;
    }
    assert.equal(woken, 0);
    assert.deepEqual(armed, [2_147_483_647], 'armed once, for the longest delay Node takes');
  });
});
