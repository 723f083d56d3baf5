import { type EntitySpec, real, text } from './entity.ts';

/** `procureiq_payments`: one row per payment id. Every payment event names its order. */
export const payments: EntitySpec = {
  name: 'payments',
  table: 'procureiq_payments',
  key: { field: 'paymentId', column: 'payment_id' },
  statuses: ['initiated', 'succeeded', 'failed', 'refunded'],
  current: { orderId: text('order_id') },
  stages: [
    {
      type: 'payment.initiated',
      name: 'initiated',
      rank: 1,
      status: 'initiated',
      timeColumn: 'initiated_at',
      columns: { provider: text('provider'), amount: real('amount'), currency: text('currency') },
    },
    {
      type: 'payment.succeeded',
      name: 'succeeded',
      rank: 2,
      status: 'succeeded',
      timeColumn: 'paid_at',
      timeField: 'paidAt',
      columns: { paidAt: text('paid_at') },
    },
    {
      type: 'payment.failed',
      name: 'failed',
      rank: 3,
      status: 'failed',
      timeColumn: 'failed_at',
      columns: { reason: text('reason') },
    },
    {
      type: 'payment.refunded',
      name: 'refunded',
      rank: 4,
      status: 'refunded',
      timeColumn: 'refunded_at',
      // `amount` is the initiated amount; the refund's own amount gets a column of its own.
      columns: { amount: real('refunded_amount') },
    },
  ],
};
