import { type EntitySpec, text } from './entity.ts';

/** `procureiq_ad_campaigns`: one row per campaign id. */
export const adCampaigns: EntitySpec = {
  name: 'ad_campaigns',
  table: 'procureiq_ad_campaigns',
  key: { field: 'campaignId', column: 'campaign_id' },
  statuses: ['running', 'budget_exhausted'],
  stages: [
    {
      type: 'ad.campaign_started',
      name: 'started',
      rank: 1,
      status: 'running',
      timeColumn: 'started_at',
      columns: { advertiserId: text('advertiser_id') },
    },
    {
      type: 'ad.budget_exhausted',
      name: 'budget_exhausted',
      rank: 2,
      status: 'budget_exhausted',
      timeColumn: 'budget_exhausted_at',
      columns: {},
    },
  ],
};
