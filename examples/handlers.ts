// An example handlers file for `procureiq-webhooks serve --handlers ./examples/handlers.ts`.
// It routes the guide's event families to what a real integration would do. Swap the bodies for
// calls to your own systems, and pass ctx.idempotencyKey to them: an attempt can run again after
// a crash, and the key lets the downstream system recognise the repeat.
import type { HandlerMap } from '../src/index.ts';

const handlers: HandlerMap = {
  'order.confirmed': async (event, ctx) => {
    // Open a fulfilment task for the confirmed order.
    ctx.logger.info(
      { orderId: event.data.orderId, paymentId: event.data.paymentId, idempotencyKey: ctx.idempotencyKey },
      'fulfilment task opened',
    );
  },

  'order.shipped': async (event, ctx) => {
    ctx.logger.info(
      {
        orderId: event.data.orderId,
        trackingNumber: event.data.trackingNumber,
        carrier: event.data.carrierId,
      },
      'customer notified of shipment',
    );
  },

  'payment.failed': async (event, ctx) => {
    // Notify the finance channel; a throw here would be retried by the schedule.
    ctx.logger.warn(
      { paymentId: event.data.paymentId, reason: event.data.reason },
      'finance notified: payment failed',
    );
  },

  'payment.succeeded': async (event, ctx) => {
    ctx.logger.info({ paymentId: event.data.paymentId, paidAt: event.data.paidAt }, 'payment reconciled');
  },

  'support.ticket_created': async (event, ctx) => {
    if (event.data.priority === 'HIGH') {
      ctx.logger.warn(
        { ticketId: event.data.ticketId, category: event.data.category },
        'paged support on-call',
      );
    }
  },

  // Every other type, including ones ProcureIQ adds later, lands here.
  '*': async (event, ctx) => {
    ctx.logger.info({ type: event.type }, 'recorded for reporting');
  },
};

export default handlers;
