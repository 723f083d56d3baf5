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
  order_id TEXT PRIMARY KEY,
  environment TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status TEXT CHECK (status IN ('created', 'confirmed', 'shipped', 'delivered', 'cancelled')),
  user_id TEXT,
  total_amount REAL,
  currency TEXT,
  item_count REAL,
  created_at TEXT,
  created_event_id TEXT,
  created_event_created INTEGER,
  payment_id TEXT,
  confirmed_at TEXT,
  confirmed_event_id TEXT,
  confirmed_event_created INTEGER,
  tracking_number TEXT,
  carrier_id TEXT,
  estimated_delivery TEXT,
  shipped_at TEXT,
  shipped_event_id TEXT,
  shipped_event_created INTEGER,
  delivered_at TEXT,
  delivered_event_id TEXT,
  delivered_event_created INTEGER,
  reason TEXT,
  cancelled_at TEXT,
  cancelled_event_id TEXT,
  cancelled_event_created INTEGER,
  last_event_id TEXT NOT NULL,
  last_event_created INTEGER NOT NULL,
  last_stage_rank INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX procureiq_orders_status ON procureiq_orders (status);

CREATE TABLE procureiq_payments (
  payment_id TEXT PRIMARY KEY,
  environment TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status TEXT CHECK (status IN ('initiated', 'succeeded', 'failed', 'refunded')),
  order_id TEXT,
  provider TEXT,
  amount REAL,
  currency TEXT,
  initiated_at TEXT,
  initiated_event_id TEXT,
  initiated_event_created INTEGER,
  paid_at TEXT,
  succeeded_event_id TEXT,
  succeeded_event_created INTEGER,
  reason TEXT,
  failed_at TEXT,
  failed_event_id TEXT,
  failed_event_created INTEGER,
  refunded_amount REAL,
  refunded_at TEXT,
  refunded_event_id TEXT,
  refunded_event_created INTEGER,
  last_event_id TEXT NOT NULL,
  last_event_created INTEGER NOT NULL,
  last_stage_rank INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX procureiq_payments_status ON procureiq_payments (status);

CREATE TABLE procureiq_products (
  product_listing_id TEXT PRIMARY KEY,
  environment TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status TEXT CHECK (status IN ('listed', 'approved', 'rejected')),
  category TEXT,
  display_price REAL,
  listed_at TEXT,
  listed_event_id TEXT,
  listed_event_created INTEGER,
  merchant_product_id TEXT,
  approved_at TEXT,
  approved_event_id TEXT,
  approved_event_created INTEGER,
  reason TEXT,
  rejected_at TEXT,
  rejected_event_id TEXT,
  rejected_event_created INTEGER,
  last_event_id TEXT NOT NULL,
  last_event_created INTEGER NOT NULL,
  last_stage_rank INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX procureiq_products_status ON procureiq_products (status);

CREATE INDEX procureiq_products_merchant_product ON procureiq_products (merchant_product_id);

CREATE TABLE procureiq_users (
  user_id TEXT PRIMARY KEY,
  environment TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
  email TEXT,
  role TEXT,
  registered_at TEXT,
  registered_event_id TEXT,
  registered_event_created INTEGER,
  old_tier TEXT,
  new_tier TEXT,
  tier_changed_at TEXT,
  tier_changed_event_id TEXT,
  tier_changed_event_created INTEGER,
  last_event_id TEXT NOT NULL,
  last_event_created INTEGER NOT NULL,
  last_stage_rank INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE procureiq_support_tickets (
  ticket_id TEXT PRIMARY KEY,
  environment TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status TEXT CHECK (status IN ('open', 'resolved')),
  category TEXT,
  priority TEXT,
  user_id TEXT,
  created_at TEXT,
  created_event_id TEXT,
  created_event_created INTEGER,
  resolved_by TEXT,
  resolved_at TEXT,
  resolved_event_id TEXT,
  resolved_event_created INTEGER,
  csat_rating REAL,
  csat_submitted_at TEXT,
  csat_event_id TEXT,
  csat_event_created INTEGER,
  last_event_id TEXT NOT NULL,
  last_event_created INTEGER NOT NULL,
  last_stage_rank INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX procureiq_support_tickets_status ON procureiq_support_tickets (status);

CREATE TABLE procureiq_ad_campaigns (
  campaign_id TEXT PRIMARY KEY,
  environment TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status TEXT CHECK (status IN ('running', 'budget_exhausted')),
  advertiser_id TEXT,
  started_at TEXT,
  started_event_id TEXT,
  started_event_created INTEGER,
  budget_exhausted_at TEXT,
  budget_exhausted_event_id TEXT,
  budget_exhausted_event_created INTEGER,
  last_event_id TEXT NOT NULL,
  last_event_created INTEGER NOT NULL,
  last_stage_rank INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX procureiq_ad_campaigns_status ON procureiq_ad_campaigns (status);

CREATE TABLE procureiq_searches (
  search_result_id TEXT PRIMARY KEY,
  environment TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
  status TEXT CHECK (status IN ('started', 'completed', 'failed')),
  brief_id TEXT,
  user_id TEXT,
  product_type TEXT,
  started_at TEXT,
  started_event_id TEXT,
  started_event_created INTEGER,
  total_found REAL,
  duration_ms REAL,
  completed_at TEXT,
  completed_event_id TEXT,
  completed_event_created INTEGER,
  error TEXT,
  failed_at TEXT,
  failed_event_id TEXT,
  failed_event_created INTEGER,
  last_event_id TEXT NOT NULL,
  last_event_created INTEGER NOT NULL,
  last_stage_rank INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX procureiq_searches_status ON procureiq_searches (status);


-- product.rejected names a merchant product only; product.approved links it to its listing. The
-- latest rejection of each merchant product waits here and applies to the listing it is linked to.
CREATE TABLE procureiq_product_rejections (
  merchant_product_id    TEXT PRIMARY KEY,
  environment            TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
  rank                   INTEGER NOT NULL,
  reason                 TEXT,
  rejected_at            TEXT,
  rejected_event_id      TEXT,
  rejected_event_created INTEGER,
  updated_at             INTEGER NOT NULL
) STRICT;

-- A rebuild in progress (`projections rebuild`): the entities it rebuilds and the last event it
-- applied (rowid on SQLite, seq on PostgreSQL), so an interrupted rebuild resumes there.
CREATE TABLE projection_rebuild (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  entities   TEXT NOT NULL,
  last_seq   INTEGER NOT NULL,
  started_at INTEGER NOT NULL
) STRICT;
