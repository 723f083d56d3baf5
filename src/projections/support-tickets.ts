import { type EntitySpec, real, text } from './entity.ts';

/** `procureiq_support_tickets`: one row per ticket id; a CSAT rating changes no status. */
export const supportTickets: EntitySpec = {
  name: 'support_tickets',
  table: 'procureiq_support_tickets',
  key: { field: 'ticketId', column: 'ticket_id' },
  statuses: ['open', 'resolved'],
  stages: [
    {
      type: 'support.ticket_created',
      name: 'created',
      rank: 1,
      status: 'open',
      timeColumn: 'created_at',
      columns: { category: text('category'), priority: text('priority'), userId: text('user_id') },
    },
    {
      type: 'support.ticket_resolved',
      name: 'resolved',
      rank: 2,
      status: 'resolved',
      timeColumn: 'resolved_at',
      columns: { resolvedBy: text('resolved_by') },
    },
    {
      type: 'support.csat_submitted',
      name: 'csat',
      rank: 3,
      status: null,
      timeColumn: 'csat_submitted_at',
      columns: { rating: real('csat_rating') },
    },
  ],
};
