-- Reporting: one table per ProcureIQ entity, kept by the `projections` consumer in the same
-- transaction that marks each event's projections job processed (src/projections/).
--
-- Each lifecycle stage has its own columns (its data fields and time column), written by that
-- stage's latest event whenever it arrives, with the stage's version in <stage>_event_created and
-- <stage>_event_id. `status`, `environment` and last_event_* follow the latest event by
-- (created, stage rank, event id); `updated_at` is the latest receipt (epoch ms) applied. Every
-- write is an idempotent, commutative upsert: any order or repetition gives the same rows.
-- Time columns are ISO 8601 (UTC) text.

CREATE TABLE procureiq_orders (
  order_id text PRIMARY KEY,
  environment text NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status text CHECK (status IN ('created', 'confirmed', 'shipped', 'delivered', 'cancelled')),
  user_id text,
  total_amount double precision,
  currency text,
  item_count double precision,
  created_at text,
  created_event_id text COLLATE "C",
  created_event_created bigint,
  payment_id text,
  confirmed_at text,
  confirmed_event_id text COLLATE "C",
  confirmed_event_created bigint,
  tracking_number text,
  carrier_id text,
  estimated_delivery text,
  shipped_at text,
  shipped_event_id text COLLATE "C",
  shipped_event_created bigint,
  delivered_at text,
  delivered_event_id text COLLATE "C",
  delivered_event_created bigint,
  reason text,
  cancelled_at text,
  cancelled_event_id text COLLATE "C",
  cancelled_event_created bigint,
  last_event_id text COLLATE "C" NOT NULL,
  last_event_created bigint NOT NULL,
  last_stage_rank integer NOT NULL,
  updated_at bigint NOT NULL
);

CREATE INDEX procureiq_orders_status ON procureiq_orders (status);

CREATE TABLE procureiq_payments (
  payment_id text PRIMARY KEY,
  environment text NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status text CHECK (status IN ('initiated', 'succeeded', 'failed', 'refunded')),
  order_id text,
  provider text,
  amount double precision,
  currency text,
  initiated_at text,
  initiated_event_id text COLLATE "C",
  initiated_event_created bigint,
  paid_at text,
  succeeded_event_id text COLLATE "C",
  succeeded_event_created bigint,
  reason text,
  failed_at text,
  failed_event_id text COLLATE "C",
  failed_event_created bigint,
  refunded_amount double precision,
  refunded_at text,
  refunded_event_id text COLLATE "C",
  refunded_event_created bigint,
  last_event_id text COLLATE "C" NOT NULL,
  last_event_created bigint NOT NULL,
  last_stage_rank integer NOT NULL,
  updated_at bigint NOT NULL
);

CREATE INDEX procureiq_payments_status ON procureiq_payments (status);

CREATE TABLE procureiq_products (
  product_listing_id text PRIMARY KEY,
  environment text NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status text CHECK (status IN ('listed', 'approved', 'rejected')),
  category text,
  display_price double precision,
  listed_at text,
  listed_event_id text COLLATE "C",
  listed_event_created bigint,
  merchant_product_id text,
  approved_at text,
  approved_event_id text COLLATE "C",
  approved_event_created bigint,
  reason text,
  rejected_at text,
  rejected_event_id text COLLATE "C",
  rejected_event_created bigint,
  last_event_id text COLLATE "C" NOT NULL,
  last_event_created bigint NOT NULL,
  last_stage_rank integer NOT NULL,
  updated_at bigint NOT NULL
);

CREATE INDEX procureiq_products_status ON procureiq_products (status);

CREATE INDEX procureiq_products_merchant_product ON procureiq_products (merchant_product_id);

CREATE TABLE procureiq_users (
  user_id text PRIMARY KEY,
  environment text NOT NULL CHECK (environment IN ('production', 'sandbox')),
  email text,
  role text,
  registered_at text,
  registered_event_id text COLLATE "C",
  registered_event_created bigint,
  old_tier text,
  new_tier text,
  tier_changed_at text,
  tier_changed_event_id text COLLATE "C",
  tier_changed_event_created bigint,
  last_event_id text COLLATE "C" NOT NULL,
  last_event_created bigint NOT NULL,
  last_stage_rank integer NOT NULL,
  updated_at bigint NOT NULL
);

CREATE TABLE procureiq_support_tickets (
  ticket_id text PRIMARY KEY,
  environment text NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status text CHECK (status IN ('open', 'resolved')),
  category text,
  priority text,
  user_id text,
  created_at text,
  created_event_id text COLLATE "C",
  created_event_created bigint,
  resolved_by text,
  resolved_at text,
  resolved_event_id text COLLATE "C",
  resolved_event_created bigint,
  csat_rating double precision,
  csat_submitted_at text,
  csat_event_id text COLLATE "C",
  csat_event_created bigint,
  last_event_id text COLLATE "C" NOT NULL,
  last_event_created bigint NOT NULL,
  last_stage_rank integer NOT NULL,
  updated_at bigint NOT NULL
);

CREATE INDEX procureiq_support_tickets_status ON procureiq_support_tickets (status);

CREATE TABLE procureiq_ad_campaigns (
  campaign_id text PRIMARY KEY,
  environment text NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status text CHECK (status IN ('running', 'budget_exhausted')),
  advertiser_id text,
  started_at text,
  started_event_id text COLLATE "C",
  started_event_created bigint,
  budget_exhausted_at text,
  budget_exhausted_event_id text COLLATE "C",
  budget_exhausted_event_created bigint,
  last_event_id text COLLATE "C" NOT NULL,
  last_event_created bigint NOT NULL,
  last_stage_rank integer NOT NULL,
  updated_at bigint NOT NULL
);

CREATE INDEX procureiq_ad_campaigns_status ON procureiq_ad_campaigns (status);

CREATE TABLE procureiq_searches (
  search_result_id text PRIMARY KEY,
  environment text NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status text CHECK (status IN ('started', 'completed', 'failed')),
  brief_id text,
  user_id text,
  product_type text,
  started_at text,
  started_event_id text COLLATE "C",
  started_event_created bigint,
  total_found double precision,
  duration_ms double precision,
  completed_at text,
  completed_event_id text COLLATE "C",
  completed_event_created bigint,
  error text,
  failed_at text,
  failed_event_id text COLLATE "C",
  failed_event_created bigint,
  last_event_id text COLLATE "C" NOT NULL,
  last_event_created bigint NOT NULL,
  last_stage_rank integer NOT NULL,
  updated_at bigint NOT NULL
);

CREATE INDEX procureiq_searches_status ON procureiq_searches (status);


-- product.rejected names a merchant product only; product.approved links it to its listing. The
-- latest rejection of each merchant product waits here and applies to the listing it is linked to.
CREATE TABLE procureiq_product_rejections (
  merchant_product_id    text PRIMARY KEY,
  environment            text NOT NULL CHECK (environment IN ('production', 'sandbox')),
  rank                   integer NOT NULL,
  reason                 text,
  rejected_at            text,
  rejected_event_id      text COLLATE "C",
  rejected_event_created bigint,
  updated_at             bigint NOT NULL
);

-- A rebuild in progress (`projections rebuild`): the entities it rebuilds and the last event it
-- applied (rowid on SQLite, seq on PostgreSQL), so an interrupted rebuild resumes there.
CREATE TABLE projection_rebuild (
  id         integer PRIMARY KEY CHECK (id = 1),
  entities   text NOT NULL,
  last_seq   bigint NOT NULL,
  started_at bigint NOT NULL
);
