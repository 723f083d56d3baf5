import { z } from 'zod';
import { eventSchema, id } from './envelope.ts';

// One schema per event type of the ProcureIQ guide, grouped by family. Fields are required as the
// guide shows them; enum-like values (roles, tiers, categories) stay plain strings so a new value
// from ProcureIQ does not turn valid events into invalid ones.

export const searchEvents = [
  eventSchema('search.started', {
    searchResultId: id(),
    briefId: id(),
    userId: id(),
    productType: z.string(),
  }),
  eventSchema('search.completed', {
    searchResultId: id(),
    totalFound: z.number(),
    durationMs: z.number(),
  }),
  eventSchema('search.failed', {
    searchResultId: id(),
    error: z.string(),
  }),
] as const;

export const orderEvents = [
  eventSchema('order.created', {
    orderId: id(),
    userId: id(),
    totalAmount: z.number(),
    currency: z.string(),
    itemCount: z.number(),
  }),
  eventSchema('order.confirmed', {
    orderId: id(),
    paymentId: id(),
  }),
  eventSchema('order.shipped', {
    orderId: id(),
    trackingNumber: z.string(),
    carrierId: z.string(),
    estimatedDelivery: z.string(),
  }),
  eventSchema('order.delivered', {
    orderId: id(),
    deliveredAt: z.string(),
  }),
  eventSchema('order.cancelled', {
    orderId: id(),
    reason: z.string(),
  }),
] as const;

export const paymentEvents = [
  eventSchema('payment.initiated', {
    paymentId: id(),
    orderId: id(),
    provider: z.string(),
    amount: z.number(),
    currency: z.string(),
  }),
  eventSchema('payment.succeeded', {
    paymentId: id(),
    orderId: id(),
    paidAt: z.string(),
  }),
  eventSchema('payment.failed', {
    paymentId: id(),
    orderId: id(),
    reason: z.string(),
  }),
  eventSchema('payment.refunded', {
    paymentId: id(),
    orderId: id(),
    amount: z.number(),
  }),
] as const;

export const productEvents = [
  eventSchema('product.listed', {
    productListingId: id(),
    category: z.string(),
    displayPrice: z.number(),
  }),
  eventSchema('product.approved', {
    merchantProductId: id(),
    productListingId: id(),
  }),
  eventSchema('product.rejected', {
    merchantProductId: id(),
    reason: z.string(),
  }),
] as const;

export const userEvents = [
  eventSchema('user.registered', {
    userId: id(),
    email: z.string(),
    role: z.string(),
  }),
  eventSchema('user.tier_changed', {
    userId: id(),
    oldTier: z.string(),
    newTier: z.string(),
  }),
] as const;

export const supportEvents = [
  eventSchema('support.ticket_created', {
    ticketId: id(),
    category: z.string(),
    priority: z.string(),
    userId: id(),
  }),
  eventSchema('support.ticket_resolved', {
    ticketId: id(),
    resolvedBy: z.string(),
  }),
  eventSchema('support.csat_submitted', {
    ticketId: id(),
    rating: z.number(),
  }),
] as const;

export const adEvents = [
  eventSchema('ad.campaign_started', {
    campaignId: id(),
    advertiserId: id(),
  }),
  eventSchema('ad.budget_exhausted', {
    campaignId: id(),
  }),
] as const;
