import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLoginLimiter } from '../../src/ops/login-limiter.ts';

describe('login limiter (fake clock)', () => {
  it('blocks an address after 10 failures in a minute, until that minute is over', () => {
    let now = 1_000_000;
    const limiter = createLoginLimiter({ now: () => now });
    for (let i = 1; i <= 9; i++) {
      assert.equal(limiter.fail('10.0.0.1'), i);
      now += 1000;
    }
    assert.equal(limiter.blockedFor('10.0.0.1'), 0);
    limiter.fail('10.0.0.1'); // the 10th, 9 s after the first
    assert.equal(limiter.blockedFor('10.0.0.1'), 51_000);
    assert.equal(limiter.blockedFor('10.0.0.2'), 0, 'other addresses are not affected');
    now += 50_999;
    assert.equal(limiter.blockedFor('10.0.0.1'), 1);
    now += 1;
    assert.equal(limiter.blockedFor('10.0.0.1'), 0);
    assert.equal(limiter.fail('10.0.0.1'), 1, 'a new window starts');
  });

  it('10 failures spread over more than a minute never block', () => {
    let now = 0;
    const limiter = createLoginLimiter({ now: () => now });
    for (let i = 0; i < 30; i++) {
      limiter.fail('10.0.0.1');
      assert.equal(limiter.blockedFor('10.0.0.1'), 0, `failure ${i}`);
      now += 7_000;
    }
  });

  it('keeps at most maxAddresses windows', () => {
    const now = 0;
    const limiter = createLoginLimiter({ now: () => now, maxAddresses: 3, limit: 1 });
    for (const a of ['a', 'b', 'c', 'd']) limiter.fail(a);
    assert.equal(limiter.blockedFor('a'), 0, 'the oldest was dropped');
    assert.ok(limiter.blockedFor('d') > 0);
  });
});
