import type { EventType, ProcureIqEvent } from './catalogue.ts';

/**
 * One example payload per event type, as given by the ProcureIQ integration guide. Used as test
 * fixtures and by the `send` simulator.
 */
export const examplePayloads = {
  'search.started': {
    id: 'evt_01HX900000000000000000001',
    type: 'search.started',
    version: '1.0',
    created: 1711234501,
    data: {
      searchResultId: 'sr_01HX8ZK3W2WZ8F8A2RJD3QZZ01',
      briefId: 'brief_01HX8ZJQ6XEZ7BQ4K7EW5QX991',
      userId: 'usr_01HX8ZHQ7E8N6G3M2A1P0AB123',
      productType: 'industrial-fan',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'search.completed': {
    id: 'evt_01HX900000000000000000002',
    type: 'search.completed',
    version: '1.0',
    created: 1711234522,
    data: {
      searchResultId: 'sr_01HX8ZK3W2WZ8F8A2RJD3QZZ01',
      totalFound: 42,
      durationMs: 18230,
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'search.failed': {
    id: 'evt_01HX900000000000000000003',
    type: 'search.failed',
    version: '1.0',
    created: 1711234528,
    data: {
      searchResultId: 'sr_01HX8ZK3W2WZ8F8A2RJD3QZZ01',
      error: 'Crawler timeout after 30 seconds',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'order.created': {
    id: 'evt_01HX900000000000000000010',
    type: 'order.created',
    version: '1.0',
    created: 1711234601,
    data: {
      orderId: 'ord_01HX900A8XG6PA6MT9G8QYB101',
      userId: 'usr_01HX8ZHQ7E8N6G3M2A1P0AB123',
      totalAmount: 742.5,
      currency: 'USD',
      itemCount: 3,
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'order.confirmed': {
    id: 'evt_01HX900000000000000000011',
    type: 'order.confirmed',
    version: '1.0',
    created: 1711234620,
    data: {
      orderId: 'ord_01HX900A8XG6PA6MT9G8QYB101',
      paymentId: 'pay_01HX900QHJ0S1T8X6M5N4P3R22',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'order.shipped': {
    id: 'evt_01HX900000000000000000012',
    type: 'order.shipped',
    version: '1.0',
    created: 1711238601,
    data: {
      orderId: 'ord_01HX900A8XG6PA6MT9G8QYB101',
      trackingNumber: 'DHL-7845123099',
      carrierId: 'dhl',
      estimatedDelivery: '2026-05-03',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'order.delivered': {
    id: 'evt_01HX900000000000000000013',
    type: 'order.delivered',
    version: '1.0',
    created: 1711321001,
    data: {
      orderId: 'ord_01HX900A8XG6PA6MT9G8QYB101',
      deliveredAt: '2026-05-03T14:22:19.000Z',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'order.cancelled': {
    id: 'evt_01HX900000000000000000014',
    type: 'order.cancelled',
    version: '1.0',
    created: 1711234705,
    data: {
      orderId: 'ord_01HX900A8XG6PA6MT9G8QYB101',
      reason: 'Customer requested cancellation before dispatch',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'payment.initiated': {
    id: 'evt_01HX900000000000000000020',
    type: 'payment.initiated',
    version: '1.0',
    created: 1711234610,
    data: {
      paymentId: 'pay_01HX900QHJ0S1T8X6M5N4P3R22',
      orderId: 'ord_01HX900A8XG6PA6MT9G8QYB101',
      provider: 'stripe',
      amount: 742.5,
      currency: 'USD',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'payment.succeeded': {
    id: 'evt_01HX900000000000000000021',
    type: 'payment.succeeded',
    version: '1.0',
    created: 1711234623,
    data: {
      paymentId: 'pay_01HX900QHJ0S1T8X6M5N4P3R22',
      orderId: 'ord_01HX900A8XG6PA6MT9G8QYB101',
      paidAt: '2026-04-28T09:17:03.000Z',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'payment.failed': {
    id: 'evt_01HX900000000000000000022',
    type: 'payment.failed',
    version: '1.0',
    created: 1711234629,
    data: {
      paymentId: 'pay_01HX900QHJ0S1T8X6M5N4P3R22',
      orderId: 'ord_01HX900A8XG6PA6MT9G8QYB101',
      reason: 'Card authentication failed',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'payment.refunded': {
    id: 'evt_01HX900000000000000000023',
    type: 'payment.refunded',
    version: '1.0',
    created: 1711240000,
    data: {
      paymentId: 'pay_01HX900QHJ0S1T8X6M5N4P3R22',
      orderId: 'ord_01HX900A8XG6PA6MT9G8QYB101',
      amount: 742.5,
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'product.listed': {
    id: 'evt_01HX900000000000000000030',
    type: 'product.listed',
    version: '1.0',
    created: 1711236000,
    data: {
      productListingId: 'prod_01HX90VQ31M7T4F5G6H7J8K901',
      category: 'INDUSTRIAL_EQUIPMENT',
      displayPrice: 168,
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'product.approved': {
    id: 'evt_01HX900000000000000000031',
    type: 'product.approved',
    version: '1.0',
    created: 1711236100,
    data: {
      merchantProductId: 'mp_01HX90TRMSYV0W1X2Y3Z4A5B67',
      productListingId: 'prod_01HX90VQ31M7T4F5G6H7J8K901',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'product.rejected': {
    id: 'evt_01HX900000000000000000032',
    type: 'product.rejected',
    version: '1.0',
    created: 1711236150,
    data: {
      merchantProductId: 'mp_01HX90TRMSYV0W1X2Y3Z4A5B67',
      reason: 'Submitted images did not meet marketplace quality guidelines',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'user.registered': {
    id: 'evt_01HX900000000000000000040',
    type: 'user.registered',
    version: '1.0',
    created: 1711233000,
    data: {
      userId: 'usr_01HX8ZHQ7E8N6G3M2A1P0AB123',
      email: 'amina.bello@northstar-imports.com',
      role: 'BUYER',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'user.tier_changed': {
    id: 'evt_01HX900000000000000000041',
    type: 'user.tier_changed',
    version: '1.0',
    created: 1711233200,
    data: {
      userId: 'usr_01HX8ZHQ7E8N6G3M2A1P0AB123',
      oldTier: 'FREE',
      newTier: 'GOLD',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'support.ticket_created': {
    id: 'evt_01HX900000000000000000050',
    type: 'support.ticket_created',
    version: '1.0',
    created: 1711237000,
    data: {
      ticketId: 'tkt_01HX9131F6W03M4M5N6P7Q8R99',
      category: 'PAYMENT',
      priority: 'HIGH',
      userId: 'usr_01HX8ZHQ7E8N6G3M2A1P0AB123',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'support.ticket_resolved': {
    id: 'evt_01HX900000000000000000051',
    type: 'support.ticket_resolved',
    version: '1.0',
    created: 1711240001,
    data: {
      ticketId: 'tkt_01HX9131F6W03M4M5N6P7Q8R99',
      resolvedBy: 'HUMAN',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'support.csat_submitted': {
    id: 'evt_01HX900000000000000000052',
    type: 'support.csat_submitted',
    version: '1.0',
    created: 1711240900,
    data: {
      ticketId: 'tkt_01HX9131F6W03M4M5N6P7Q8R99',
      rating: 5,
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'ad.campaign_started': {
    id: 'evt_01HX900000000000000000060',
    type: 'ad.campaign_started',
    version: '1.0',
    created: 1711238000,
    data: {
      campaignId: 'adcmp_01HX91V7XJ98K7M6N5P4Q3R210',
      advertiserId: 'adv_01HX91TDKRT5F5D4C3B2A1908Z',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
  'ad.budget_exhausted': {
    id: 'evt_01HX900000000000000000061',
    type: 'ad.budget_exhausted',
    version: '1.0',
    created: 1711290000,
    data: {
      campaignId: 'adcmp_01HX91V7XJ98K7M6N5P4Q3R210',
    },
    metadata: {
      procureiqVersion: '1.0.0',
      environment: 'production',
    },
  },
} as const satisfies { [T in EventType]: Extract<ProcureIqEvent, { type: T }> };
