import { type EntitySpec, text } from './entity.ts';

/** `procureiq_users`: one row per user id. `email` follows `PROJECTION_EMAILS`. */
export const users: EntitySpec = {
  name: 'users',
  table: 'procureiq_users',
  key: { field: 'userId', column: 'user_id' },
  statuses: null,
  stages: [
    {
      type: 'user.registered',
      name: 'registered',
      rank: 1,
      status: null,
      timeColumn: 'registered_at',
      columns: { email: text('email'), role: text('role') },
    },
    {
      type: 'user.tier_changed',
      name: 'tier_changed',
      rank: 2,
      status: null,
      timeColumn: 'tier_changed_at',
      columns: { oldTier: text('old_tier'), newTier: text('new_tier') },
    },
  ],
};
