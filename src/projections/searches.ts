import { type EntitySpec, real, text } from './entity.ts';

/** `procureiq_searches`: one row per search result id. */
export const searches: EntitySpec = {
  name: 'searches',
  table: 'procureiq_searches',
  key: { field: 'searchResultId', column: 'search_result_id' },
  statuses: ['started', 'completed', 'failed'],
  stages: [
    {
      type: 'search.started',
      name: 'started',
      rank: 1,
      status: 'started',
      timeColumn: 'started_at',
      columns: {
        briefId: text('brief_id'),
        userId: text('user_id'),
        productType: text('product_type'),
      },
    },
    {
      type: 'search.completed',
      name: 'completed',
      rank: 2,
      status: 'completed',
      timeColumn: 'completed_at',
      columns: { totalFound: real('total_found'), durationMs: real('duration_ms') },
    },
    {
      type: 'search.failed',
      name: 'failed',
      rank: 3,
      status: 'failed',
      timeColumn: 'failed_at',
      columns: { error: text('error') },
    },
  ],
};
