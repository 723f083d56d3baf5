import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BreakerStateChange, createCircuitBreaker } from '../../src/routes/breaker.ts';

function setup(options: { failureThreshold?: number } = {}) {
  let t = 0;
  const changes: BreakerStateChange[] = [];
  const breaker = createCircuitBreaker({
    ...options,
    now: () => t,
    onStateChange: (c) => changes.push(c),
  });
  return {
    breaker,
    changes,
    advance: (ms: number) => {
      t += ms;
    },
    now: () => t,
  };
}

const fail = (b: { recordFailure(e?: string): void }, n: number) => {
  for (let i = 0; i < n; i++) b.recordFailure(`boom ${i}`);
};

describe('circuit breaker', () => {
  it('opens after five consecutive failures by default', () => {
    const { breaker, changes, now } = setup();
    fail(breaker, 4);
    breaker.recordSuccess();
    fail(breaker, 4);
    assert.equal(breaker.state, 'closed', 'a success resets the count');
    assert.equal(breaker.canSend(), true);
    breaker.recordFailure('HTTP 503');
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.canSend(), false);
    assert.equal(breaker.nextProbeAt(), now() + 30_000);
    assert.deepEqual(changes, [{ from: 'closed', to: 'open', at: 0, pauseMs: 30_000, error: 'HTTP 503' }]);
  });

  it('takes a configurable threshold', () => {
    const { breaker } = setup({ failureThreshold: 2 });
    fail(breaker, 1);
    assert.equal(breaker.state, 'closed');
    fail(breaker, 1);
    assert.equal(breaker.state, 'open');
    assert.throws(() => createCircuitBreaker({ failureThreshold: 0 }), RangeError);
  });

  it('allows one half-open probe after the pause; its success closes and resets the pause', () => {
    const { breaker, changes, advance } = setup();
    fail(breaker, 5);
    advance(29_999);
    assert.equal(breaker.canSend(), false);
    assert.equal(breaker.state, 'open');
    advance(1);
    assert.equal(breaker.canSend(), true, 'the probe');
    assert.equal(breaker.state, 'half-open');
    assert.equal(breaker.canSend(), false, 'only one probe at a time');
    assert.equal(breaker.nextProbeAt(), null);
    breaker.recordSuccess();
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.canSend(), true);
    assert.deepEqual(
      changes.map((c) => [c.from, c.to, c.at]),
      [
        ['closed', 'open', 0],
        ['open', 'half-open', 30_000],
        ['half-open', 'closed', 30_000],
      ],
    );
    fail(breaker, 5);
    assert.equal(breaker.pauseMs, 30_000, 'the pause starts over after closing');
  });

  it('a probe handed back with no result lets the next send probe; closed or open, nothing changes', () => {
    const { breaker, advance } = setup();
    breaker.releaseProbe(breaker.probeGeneration);
    assert.equal(breaker.state, 'closed');
    fail(breaker, 5);
    breaker.releaseProbe(breaker.probeGeneration);
    assert.equal(breaker.canSend(), false, 'still open: no probe before the pause is over');
    advance(30_000);
    assert.equal(breaker.canSend(), true, 'the probe');
    const first = breaker.probeGeneration;
    assert.equal(breaker.canSend(), false);
    breaker.releaseProbe(first);
    assert.equal(breaker.state, 'half-open');
    assert.equal(breaker.canSend(), true, 'the probe again');
    breaker.recordFailure('still down');
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.pauseMs, 60_000);
  });

  it('hands back only its own probe: an older round cannot free a newer probe', () => {
    const { breaker, advance } = setup();
    fail(breaker, 5);
    advance(30_000);
    assert.equal(breaker.canSend(), true, 'probe 1');
    const first = breaker.probeGeneration;
    breaker.recordFailure('a late failure re-opens it');
    advance(60_000);
    assert.equal(breaker.canSend(), true, 'probe 2');
    breaker.releaseProbe(first);
    assert.equal(breaker.canSend(), false, 'probe 2 is still out');
  });

  it('doubles the pause on each re-open, up to 10 minutes', () => {
    const { breaker, changes, advance, now } = setup();
    fail(breaker, 5);
    const pauses = [30_000];
    for (let i = 0; i < 7; i++) {
      advance(breaker.nextProbeAt()! - now());
      assert.equal(breaker.canSend(), true);
      breaker.recordFailure('still down');
      assert.equal(breaker.state, 'open');
      pauses.push(breaker.pauseMs);
      assert.equal(breaker.nextProbeAt(), now() + breaker.pauseMs);
    }
    assert.deepEqual(pauses, [30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000, 600_000]);
    assert.deepEqual(
      changes.filter((c) => c.to === 'open').map((c) => c.pauseMs),
      pauses,
    );
  });

  it('ignores late results while open', () => {
    const { breaker, advance } = setup();
    fail(breaker, 5);
    breaker.recordSuccess();
    breaker.recordFailure();
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.pauseMs, 30_000);
    advance(30_000);
    assert.equal(breaker.canSend(), true);
  });

  it('needs another failure run after closing before it opens again', () => {
    const { breaker, advance } = setup();
    fail(breaker, 5);
    advance(30_000);
    breaker.canSend();
    breaker.recordSuccess();
    fail(breaker, 4);
    assert.equal(breaker.state, 'closed');
  });
});
