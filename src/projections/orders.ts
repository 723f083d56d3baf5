import { type EntitySpec, real, text } from './entity.ts';

/** `procureiq_orders`: one row per order id, from created to delivered or cancelled. */
export const orders: EntitySpec = {
  name: 'orders',
  table: 'procureiq_orders',
  key: { field: 'orderId', column: 'order_id' },
  statuses: ['created', 'confirmed', 'shipped', 'delivered', 'cancelled'],
  stages: [
    {
      type: 'order.created',
      name: 'created',
      rank: 1,
      status: 'created',
      timeColumn: 'created_at',
      columns: {
        userId: text('user_id'),
        totalAmount: real('total_amount'),
        currency: text('currency'),
        itemCount: real('item_count'),
      },
    },
    {
      type: 'order.confirmed',
      name: 'confirmed',
      rank: 2,
      status: 'confirmed',
      timeColumn: 'confirmed_at',
      columns: { paymentId: text('payment_id') },
    },
    {
      type: 'order.shipped',
      name: 'shipped',
      rank: 3,
      status: 'shipped',
      timeColumn: 'shipped_at',
      columns: {
        trackingNumber: text('tracking_number'),
        carrierId: text('carrier_id'),
        estimatedDelivery: text('estimated_delivery'),
      },
    },
    {
      type: 'order.delivered',
      name: 'delivered',
      rank: 4,
      status: 'delivered',
      timeColumn: 'delivered_at',
      timeField: 'deliveredAt',
      columns: { deliveredAt: text('delivered_at') },
    },
    {
      type: 'order.cancelled',
      name: 'cancelled',
      rank: 5,
      status: 'cancelled',
      timeColumn: 'cancelled_at',
      columns: { reason: text('reason') },
    },
  ],
};
