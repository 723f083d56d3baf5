import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRateLimiter } from '../../src/routes/rate-limit.ts';

function fakeClock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('rate limiter', () => {
  it('lets a full burst go, then refills at the rate', () => {
    const clock = fakeClock();
    const limiter = createRateLimiter({ count: 50, perMs: 1000 }, { now: clock.now });
    assert.equal(limiter.take(80), 50, 'the bucket starts full');
    assert.equal(limiter.take(1), 0);
    assert.equal(limiter.nextAt(), clock.now() + 20, 'one token every 20 ms');
    clock.advance(19);
    assert.equal(limiter.take(1), 0);
    clock.advance(1);
    assert.equal(limiter.take(5), 1);
    clock.advance(100);
    assert.equal(limiter.take(10), 5);
    clock.advance(10_000);
    assert.equal(limiter.take(100), 50, 'never refills above the limit');
  });

  it('takes back tokens given back, never above the limit', () => {
    const clock = fakeClock();
    const limiter = createRateLimiter({ count: 10, perMs: 1000 }, { now: clock.now });
    assert.equal(limiter.take(10), 10);
    limiter.giveBack(7);
    assert.equal(limiter.take(10), 7, 'a claim that found 3 jobs spent 3 tokens');
    limiter.giveBack(50);
    assert.equal(limiter.take(100), 10, 'never more than a full bucket');
    limiter.giveBack(0);
    assert.equal(limiter.take(1), 0);
  });

  it('handles per-minute limits exactly', () => {
    const clock = fakeClock();
    const limiter = createRateLimiter({ count: 3, perMs: 60_000 }, { now: clock.now });
    assert.equal(limiter.take(), 1);
    assert.equal(limiter.take(5), 2);
    assert.equal(limiter.nextAt(), clock.now() + 20_000);
    clock.advance(19_999);
    assert.equal(limiter.take(), 0);
    assert.equal(limiter.nextAt(), clock.now() + 1);
    clock.advance(1);
    assert.equal(limiter.nextAt(), clock.now(), 'a token is available now');
    assert.equal(limiter.take(), 1);
  });

  it('accumulates fractions of a token across calls', () => {
    const clock = fakeClock();
    const limiter = createRateLimiter({ count: 1, perMs: 1000 }, { now: clock.now });
    assert.equal(limiter.take(), 1);
    for (let i = 0; i < 3; i++) {
      clock.advance(300);
      assert.equal(limiter.take(), 0);
    }
    clock.advance(100);
    assert.equal(limiter.take(), 1);
  });

  it('never grants more over time than the rate allows', () => {
    const clock = fakeClock();
    const limiter = createRateLimiter({ count: 7, perMs: 1000 }, { now: clock.now });
    let sent = limiter.take(1000);
    for (let i = 0; i < 10_000; i++) {
      clock.advance(3);
      sent += limiter.take(2);
    }
    // 30 s at 7/s, plus the initial burst of 7.
    assert.equal(sent, 7 + 210);
  });

  it('ignores a clock that steps back', () => {
    const clock = fakeClock();
    const limiter = createRateLimiter({ count: 2, perMs: 1000 }, { now: clock.now });
    assert.equal(limiter.take(2), 2);
    clock.advance(-5000);
    assert.equal(limiter.take(), 0);
    clock.advance(5500);
    assert.equal(limiter.take(), 1, 'refills only for time after the last reading');
  });

  it('refuses a limit that is not positive', () => {
    assert.throws(() => createRateLimiter({ count: 0, perMs: 1000 }), RangeError);
    assert.throws(() => createRateLimiter({ count: 1, perMs: 0 }), RangeError);
  });
});
