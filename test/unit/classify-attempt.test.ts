import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClaimedEvent } from '../../src/store/inbox-store.ts';
import { HandlerTimeoutError, NonRetryableError, ShutdownAbort } from '../../src/util/errors.ts';
import { classify } from '../../src/worker/attempt.ts';

const event = (attempt: number, maxAttempts = 4): ClaimedEvent => ({
  id: 'evt_1',
  consumer: 'handlers',
  type: 'order.created',
  environment: 'production',
  rawBody: new Uint8Array(),
  created: 0,
  receivedAt: 0,
  deliveryId: null,
  attempt,
  maxAttempts,
  owner: 'w1',
});

describe('classify: what a settled attempt means for its event', () => {
  it('a handler that returned succeeded', () => {
    assert.deepEqual(classify(event(1), undefined), { kind: 'succeeded' });
  });

  it('a shutdown abort gives the lease back, even on the last attempt', () => {
    const error = new ShutdownAbort();
    assert.deepEqual(classify(event(4), error), { kind: 'aborted', error });
  });

  it('a failure with attempts left is retried; a timeout keeps its own outcome', () => {
    const failed = new Error('boom');
    assert.deepEqual(classify(event(1), failed), { kind: 'retry', outcome: 'failed', error: failed });
    const timedOut = new HandlerTimeoutError(100);
    assert.deepEqual(classify(event(3), timedOut), { kind: 'retry', outcome: 'timed_out', error: timedOut });
  });

  it('the last attempt, or a NonRetryableError, dead-letters', () => {
    const failed = new Error('boom');
    assert.deepEqual(classify(event(4), failed), {
      kind: 'dead',
      outcome: 'failed',
      error: failed,
      reason: 'exhausted',
    });
    const refused = new NonRetryableError('unknown order');
    assert.deepEqual(classify(event(1), refused), {
      kind: 'dead',
      outcome: 'failed',
      error: refused,
      reason: 'refused',
    });
  });
});
