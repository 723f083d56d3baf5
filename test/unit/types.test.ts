// Type tests: these assertions are checked by `tsc` (npm test type-checks the tests), and the file
// also runs, so a wrong type cannot hide behind a passing runtime test.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Consumer, EventOf, HandlerMap } from '../../src/index.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expectType = <T extends true>(_: T) => {};

it('types handlers by the catalogue', () => {
  expectType<Equal<EventOf<'order.shipped'>['data']['trackingNumber'], string>>(true);
  expectType<Equal<EventOf<'support.csat_submitted'>['data']['rating'], number>>(true);

  const register = (consumer: Consumer) => {
    consumer.on('order.shipped', async (event, ctx) => {
      const tracking: string = event.data.trackingNumber;
      const key: string = ctx.idempotencyKey;
      const signal: AbortSignal = ctx.signal;
      // @ts-expect-error: order.shipped has no paymentId
      void event.data.paymentId;
      void [tracking, key, signal];
    });
    // @ts-expect-error: there is no such event type
    consumer.on('order.teleported', async () => {});
    consumer.on('payment.failed', async (event) => {
      // @ts-expect-error: reason is a string, not a number
      const n: number = event.data.reason;
      void n;
    });
  };

  const handlers: HandlerMap = {
    'payment.refunded': async (event) => {
      const amount: number = event.data.amount;
      void amount;
    },
    '*': async (event) => {
      const type: string = event.type;
      void type;
    },
  };
  const wrong: HandlerMap = {
    // @ts-expect-error: a handler for a type that does not exist
    'payment.teleported': async () => {},
  };
  assert.equal(typeof register, 'function');
  assert.equal(Object.keys(handlers).length, 2);
  assert.equal(Object.keys(wrong).length, 1);
});
