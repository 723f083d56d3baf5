import { adCampaigns } from '../projections/ad-campaigns.ts';
import type { Dialect, EntitySpec } from '../projections/entity.ts';
import { orders } from '../projections/orders.ts';
import { payments } from '../projections/payments.ts';
import { products } from '../projections/products.ts';
import type { RowReader } from '../projections/read-entity.ts';
import { searches } from '../projections/searches.ts';
import { supportTickets } from '../projections/support-tickets.ts';
import { users } from '../projections/users.ts';
import type { Environment } from '../store/inbox-store.ts';

/**
 * What a report covers. Statuses, amounts and rates cover the entities whose latest event is in the
 * window: `last_event_created` (the envelope's `created`, unix seconds) at or after `since`, so an
 * order created last month and delivered yesterday counts in a 7-day report. Counts of things that
 * happen once (registrations, tier changes, tickets opened and resolved, ratings, campaigns started
 * and exhausted) and the resolution median go by that stage's own event.
 */
export interface ReportQuery {
  /** Epoch milliseconds. */
  since: number;
  environment?: Environment | undefined;
}

/** One reason and how many entities it holds for, most frequent first. */
export interface ReasonCount {
  reason: string;
  count: number;
}

/**
 * The reporting tables summed up, section by section (`report --json`, `GET /admin/api/reports`).
 * Rates are fractions from 0 to 1 and medians are milliseconds; either is null when there is
 * nothing to compute it from. `byStatus` holds every status the table allows, with its count.
 */
export interface Report {
  since: string;
  environment: Environment | null;
  orders: {
    total: number;
    byStatus: Record<string, number>;
    /** Sum of `total_amount` per currency, cancelled orders left out. */
    gmvByCurrency: Record<string, number>;
    medianCreatedToShippedMs: number | null;
    medianCreatedToDeliveredMs: number | null;
    /** cancelled / all orders. */
    cancellationRate: number | null;
  };
  payments: {
    total: number;
    byStatus: Record<string, number>;
    /** Sum of the initiated `amount`, by status then currency. */
    amountByStatus: Record<string, Record<string, number>>;
    /** (succeeded + refunded) / (succeeded + refunded + failed): payments still initiated are left out. */
    successRate: number | null;
    topFailureReasons: ReasonCount[];
  };
  products: {
    total: number;
    byStatus: Record<string, number>;
    /** approved / (approved + rejected). */
    approvalRate: number | null;
    topRejectionReasons: ReasonCount[];
  };
  users: {
    registrations: number;
    registrationsByRole: Record<string, number>;
    tierChanges: number;
    tierChangesByTier: { from: string; to: string; count: number }[];
  };
  support: {
    /** Tickets whose `support.ticket_created` is projected. */
    opened: number;
    /** Tickets whose `support.ticket_resolved` is projected. */
    resolved: number;
    byStatus: Record<string, number>;
    medianResolutionMs: number | null;
    csatAverage: number | null;
    csatCount: number;
    /** Tickets per rating (`"5": 3`). */
    csatDistribution: Record<string, number>;
  };
  ads: { started: number; exhausted: number; byStatus: Record<string, number> };
  searches: {
    total: number;
    completed: number;
    failed: number;
    byStatus: Record<string, number>;
    /** failed / (completed + failed). */
    failureRate: number | null;
    medianDurationMs: number | null;
  };
}

/** The top-level sections, in the order they are printed. */
export const REPORT_SECTIONS = [
  'orders',
  'payments',
  'products',
  'users',
  'support',
  'ads',
  'searches',
] as const;

// ---- SQL, per dialect side by side ---------------------------------------------------------------

/** The window and environment as a WHERE fragment with its parameters. */
interface Filter {
  where: string;
  params: unknown[];
}

/**
 * The window (`time`, unix seconds, at or after `since`) and environment as a WHERE fragment with
 * its parameters; PostgreSQL's placeholders numbered from `from`, so two filters can share a query.
 */
function windowFilter(
  dialect: Dialect,
  query: ReportQuery,
  { time = 'last_event_created', environment = 'environment', from = 1 } = {},
): Filter {
  const p = (i: number) => (dialect === 'sqlite' ? '?' : `$${from + i - 1}`);
  const params: unknown[] = [Math.floor(query.since / 1000)];
  let where = `${time} >= ${p(1)}`;
  if (query.environment) {
    params.push(query.environment);
    where += ` AND ${environment} = ${p(2)}`;
  }
  return { where, params };
}

/**
 * Rejections no listing shows: `product.rejected` names only the merchant product, and only a
 * `product.approved` links that to a listing. A merchant product rejected without ever being
 * approved is still a rejected product, so the products section counts these too.
 */
const UNLINKED_REJECTIONS = `procureiq_product_rejections r WHERE NOT EXISTS (
  SELECT 1 FROM procureiq_products p WHERE p.merchant_product_id = r.merchant_product_id)`;

/** Ties among equally frequent reasons sort by their bytes on both engines. */
export const byBytes: Record<Dialect, string> = { sqlite: 'COLLATE BINARY', postgres: 'COLLATE "C"' };

const SQL = {
  countByStatus: (table: string, f: Filter) =>
    `SELECT status, COUNT(*) AS n FROM ${table} WHERE ${f.where} AND status IS NOT NULL GROUP BY status`,
  countWhere: (table: string, f: Filter, condition: string) =>
    `SELECT COUNT(*) AS n FROM ${table} WHERE ${f.where} AND ${condition}`,
  // Keyed sections list their keys in byte order, so both engines give the same JSON and CSV.
  countBy: (dialect: Dialect, table: string, f: Filter, column: string, condition: string) =>
    `SELECT ${column} AS k, COUNT(*) AS n FROM ${table} WHERE ${f.where} AND ${condition} GROUP BY ${column}
     ORDER BY ${dialect === 'postgres' ? `${column}::text` : column} ${byBytes[dialect]}`,
  gmv: (dialect: Dialect, f: Filter) =>
    `SELECT currency AS k, SUM(total_amount) AS total FROM procureiq_orders
     WHERE ${f.where} AND currency IS NOT NULL AND total_amount IS NOT NULL AND status <> 'cancelled'
     GROUP BY currency ORDER BY currency ${byBytes[dialect]}`,
  paymentAmounts: (dialect: Dialect, f: Filter) =>
    `SELECT status, currency, SUM(amount) AS total FROM procureiq_payments
     WHERE ${f.where} AND status IS NOT NULL AND currency IS NOT NULL AND amount IS NOT NULL
     GROUP BY status, currency ORDER BY status, currency ${byBytes[dialect]}`,
  unlinkedRejections: (u: Filter) => `SELECT COUNT(*) AS n FROM ${UNLINKED_REJECTIONS} AND ${u.where}`,
  /** Top rejection reasons over rejected listings and unlinked rejections together. */
  productRejectionReasons: (dialect: Dialect, f: Filter, u: Filter) =>
    `SELECT reason, SUM(n) AS n FROM (
       SELECT reason, COUNT(*) AS n FROM procureiq_products
       WHERE ${f.where} AND status = 'rejected' AND reason IS NOT NULL GROUP BY reason
       UNION ALL
       SELECT r.reason AS reason, COUNT(*) AS n FROM ${UNLINKED_REJECTIONS} AND ${u.where}
         AND r.reason IS NOT NULL GROUP BY r.reason
     ) t GROUP BY reason ORDER BY SUM(n) DESC, reason ${byBytes[dialect]} LIMIT 5`,
  topReasons: (dialect: Dialect, table: string, f: Filter, status: string) =>
    `SELECT reason, COUNT(*) AS n FROM ${table}
     WHERE ${f.where} AND status = '${status}' AND reason IS NOT NULL
     GROUP BY reason ORDER BY n DESC, reason ${byBytes[dialect]} LIMIT 5`,
  tierChanges: (dialect: Dialect, f: Filter) =>
    `SELECT old_tier AS old_tier, new_tier AS new_tier, COUNT(*) AS n FROM procureiq_users
     WHERE ${f.where} AND tier_changed_event_id IS NOT NULL
     GROUP BY old_tier, new_tier
     ORDER BY n DESC, old_tier ${byBytes[dialect]}, new_tier ${byBytes[dialect]} LIMIT 10`,
  csat: (f: Filter) =>
    `SELECT AVG(csat_rating) AS average, COUNT(csat_rating) AS n FROM procureiq_support_tickets
     WHERE ${f.where} AND csat_rating IS NOT NULL`,
  /**
   * Median milliseconds from one lifecycle stage to another, by the `created` of each stage's
   * event (ProcureIQ's one clock; a data field such as deliveredAt may disagree with it). SQLite
   * has no median, so its rows come back.
   */
  durationMedian: {
    sqlite: (table: string, f: Filter, from: string, to: string) =>
      `SELECT (${to}_event_created - ${from}_event_created) * 1000 AS d FROM ${table}
       WHERE ${f.where} AND ${from}_event_created IS NOT NULL AND ${to}_event_created IS NOT NULL`,
    postgres: (table: string, f: Filter, from: string, to: string) =>
      `SELECT percentile_cont(0.5) WITHIN GROUP (
         ORDER BY (${to}_event_created - ${from}_event_created) * 1000) AS median
       FROM ${table}
       WHERE ${f.where} AND ${from}_event_created IS NOT NULL AND ${to}_event_created IS NOT NULL`,
  },
  /** Median of a numeric column. */
  columnMedian: {
    sqlite: (table: string, f: Filter, column: string) =>
      `SELECT ${column} AS d FROM ${table} WHERE ${f.where} AND ${column} IS NOT NULL`,
    postgres: (table: string, f: Filter, column: string) =>
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ${column}) AS median FROM ${table}
       WHERE ${f.where} AND ${column} IS NOT NULL`,
  },
};

// ---- building the report -------------------------------------------------------------------------

/** The middle value (the mean of the two middle ones for an even count), as PostgreSQL's percentile_cont(0.5). */
export function median(values: readonly number[]): number | null {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid] as number;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] as number) + upper) / 2;
}

const ratio = (part: number, whole: number) => (whole === 0 ? null : part / whole);
const num = (value: unknown) => (value === null || value === undefined ? 0 : Number(value));

/**
 * Reads the report from the projected tables.
 *
 * @example
 * const reader = openEntityReader(parseDatabaseUrl('sqlite:./data/procureiq-webhooks.db'));
 * const report = await buildReport(reader, { since: Date.now() - 7 * 86_400_000 });
 * report.orders.byStatus.shipped; // 12
 */
export async function buildReport(
  reader: { dialect: Dialect; read: RowReader },
  query: ReportQuery,
): Promise<Report> {
  const { dialect, read } = reader;
  const f = windowFilter(dialect, query);
  const rows = (sql: string) => read(sql, f.params);
  // A stage's own window: its event's created in it (the same parameters as `f`). Counts of things
  // that happened (registrations, tickets opened, ratings) use it, so a user registered months ago
  // who changed tier this week is a tier change, not a registration.
  const at = (stage: string): Filter => windowFilter(dialect, query, { time: `${stage}_event_created` });
  const countAt = async (table: string, stage: string, condition = 'TRUE') =>
    num(
      (await rows(SQL.countWhere(table, at(stage), `${stage}_event_id IS NOT NULL AND ${condition}`)))[0]?.n,
    );
  // Keys that come from event data (a role, a currency) are defined with Object.fromEntries: an
  // assignment to a key named `__proto__` set the object's prototype instead, and the count vanished.
  const countByAt = async (table: string, stage: string, column: string, condition: string) =>
    Object.fromEntries(
      (
        await rows(
          SQL.countBy(dialect, table, at(stage), column, `${stage}_event_id IS NOT NULL AND ${condition}`),
        )
      ).map((r): [string, number] => [String(r.k), num(r.n)]),
    );
  const byStatus = async (entity: EntitySpec) => {
    const out: Record<string, number> = Object.fromEntries((entity.statuses ?? []).map((s) => [s, 0]));
    for (const r of await rows(SQL.countByStatus(entity.table, f))) out[String(r.status)] = num(r.n);
    return out;
  };
  const reasons = async (entity: EntitySpec, status: string): Promise<ReasonCount[]> =>
    (await rows(SQL.topReasons(dialect, entity.table, f, status))).map((r) => ({
      reason: String(r.reason),
      count: num(r.n),
    }));
  const medianOf = async (sqlite: string, postgres: string): Promise<number | null> => {
    if (dialect === 'postgres') {
      const value = (await rows(postgres))[0]?.median;
      return value === null || value === undefined ? null : Math.round(Number(value) * 1000) / 1000;
    }
    const values = (await rows(sqlite)).map((r) => r.d).filter((d) => d !== null && d !== undefined);
    const m = median(values.map(Number));
    return m === null ? null : Math.round(m * 1000) / 1000;
  };
  const durationMedian = (table: string, from: string, to: string, window = f) =>
    medianOf(
      SQL.durationMedian.sqlite(table, window, from, to),
      SQL.durationMedian.postgres(table, window, from, to),
    );
  const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

  const orderStatus = await byStatus(orders);
  const gmvByCurrency: Record<string, number> = Object.fromEntries(
    (await rows(SQL.gmv(dialect, f))).map((r): [string, number] => [String(r.k), num(r.total)]),
  );
  const ordersTotal = sum(orderStatus);

  const paymentStatus = await byStatus(payments);
  const amountByStatus: Record<string, Record<string, number>> = {};
  for (const r of await rows(SQL.paymentAmounts(dialect, f))) {
    const status = String(r.status);
    amountByStatus[status] = { ...amountByStatus[status], [String(r.currency)]: num(r.total) };
  }
  const paid = num(paymentStatus.succeeded) + num(paymentStatus.refunded);

  const productStatus = await byStatus(products);
  const approved = num(productStatus.approved);
  // Unlinked rejections, by their own time and environment: alone, and after `f`'s parameters.
  const rejectedIn = { time: 'r.rejected_event_created', environment: 'r.environment' };
  const unlinkedOnly = windowFilter(dialect, query, rejectedIn);
  const unlinked = num((await read(SQL.unlinkedRejections(unlinkedOnly), unlinkedOnly.params))[0]?.n);
  productStatus.rejected = num(productStatus.rejected) + unlinked;
  const afterF = windowFilter(dialect, query, { ...rejectedIn, from: f.params.length + 1 });
  const productRejectionReasons = (
    await read(SQL.productRejectionReasons(dialect, f, afterF), [...f.params, ...afterF.params])
  ).map((r) => ({ reason: String(r.reason), count: num(r.n) }));

  const tierChangesByTier = (await rows(SQL.tierChanges(dialect, at('tier_changed')))).map((r) => ({
    from: String(r.old_tier ?? ''),
    to: String(r.new_tier ?? ''),
    count: num(r.n),
  }));

  const csat = (await rows(SQL.csat(at('csat'))))[0] ?? {};
  const csatCount = num(csat.n);

  const searchStatus = await byStatus(searches);
  const completed = num(searchStatus.completed);
  const failed = num(searchStatus.failed);

  return {
    since: new Date(query.since).toISOString(),
    environment: query.environment ?? null,
    orders: {
      total: ordersTotal,
      byStatus: orderStatus,
      gmvByCurrency,
      medianCreatedToShippedMs: await durationMedian(orders.table, 'created', 'shipped'),
      medianCreatedToDeliveredMs: await durationMedian(orders.table, 'created', 'delivered'),
      cancellationRate: ratio(num(orderStatus.cancelled), ordersTotal),
    },
    payments: {
      total: sum(paymentStatus),
      byStatus: paymentStatus,
      amountByStatus,
      successRate: ratio(paid, paid + num(paymentStatus.failed)),
      topFailureReasons: await reasons(payments, 'failed'),
    },
    products: {
      total: sum(productStatus),
      byStatus: productStatus,
      approvalRate: ratio(approved, approved + num(productStatus.rejected)),
      topRejectionReasons: productRejectionReasons,
    },
    users: {
      registrations: await countAt(users.table, 'registered'),
      registrationsByRole: await countByAt(users.table, 'registered', 'role', 'role IS NOT NULL'),
      tierChanges: await countAt(users.table, 'tier_changed'),
      tierChangesByTier,
    },
    support: {
      opened: await countAt(supportTickets.table, 'created'),
      resolved: await countAt(supportTickets.table, 'resolved'),
      byStatus: await byStatus(supportTickets),
      medianResolutionMs: await durationMedian(supportTickets.table, 'created', 'resolved', at('resolved')),
      csatAverage: csatCount === 0 ? null : Math.round(Number(csat.average) * 1000) / 1000,
      csatCount,
      csatDistribution: await countByAt(
        supportTickets.table,
        'csat',
        'csat_rating',
        'csat_rating IS NOT NULL',
      ),
    },
    ads: {
      started: await countAt(adCampaigns.table, 'started'),
      exhausted: await countAt(adCampaigns.table, 'budget_exhausted'),
      byStatus: await byStatus(adCampaigns),
    },
    searches: {
      total: sum(searchStatus),
      completed,
      failed,
      byStatus: searchStatus,
      failureRate: ratio(failed, completed + failed),
      medianDurationMs: await medianOf(
        SQL.columnMedian.sqlite(searches.table, f, 'duration_ms'),
        SQL.columnMedian.postgres(searches.table, f, 'duration_ms'),
      ),
    },
  };
}
