import { csvRecord } from './csv.ts';
import type { ReasonCount, Report } from './report.ts';

/** `report --csv`: one row per number, `section,metric,key,value`, so a spreadsheet can pivot it. */
export function reportCsv(report: Report): string {
  const rows: unknown[][] = [['section', 'metric', 'key', 'value']];
  const add = (section: string, metric: string, key: string, value: unknown) =>
    rows.push([section, metric, key, value ?? '']);
  const each = (section: string, metric: string, counts: Record<string, number>) => {
    for (const [k, v] of Object.entries(counts)) add(section, metric, k, v);
  };
  const reasons = (section: string, metric: string, list: ReasonCount[]) => {
    for (const r of list) add(section, metric, r.reason, r.count);
  };
  const { orders, payments, products, users, support, ads, searches } = report;
  add('report', 'since', '', report.since);
  add('report', 'environment', '', report.environment ?? 'all');
  add('orders', 'total', '', orders.total);
  each('orders', 'byStatus', orders.byStatus);
  each('orders', 'gmvByCurrency', orders.gmvByCurrency);
  add('orders', 'medianCreatedToShippedMs', '', orders.medianCreatedToShippedMs);
  add('orders', 'medianCreatedToDeliveredMs', '', orders.medianCreatedToDeliveredMs);
  add('orders', 'cancellationRate', '', orders.cancellationRate);
  add('payments', 'total', '', payments.total);
  each('payments', 'byStatus', payments.byStatus);
  for (const [status, amounts] of Object.entries(payments.amountByStatus))
    for (const [currency, amount] of Object.entries(amounts))
      add('payments', 'amountByStatus', `${status}/${currency}`, amount);
  add('payments', 'successRate', '', payments.successRate);
  reasons('payments', 'topFailureReasons', payments.topFailureReasons);
  add('products', 'total', '', products.total);
  each('products', 'byStatus', products.byStatus);
  add('products', 'approvalRate', '', products.approvalRate);
  reasons('products', 'topRejectionReasons', products.topRejectionReasons);
  add('users', 'registrations', '', users.registrations);
  each('users', 'registrationsByRole', users.registrationsByRole);
  add('users', 'tierChanges', '', users.tierChanges);
  for (const t of users.tierChangesByTier) add('users', 'tierChangesByTier', `${t.from}->${t.to}`, t.count);
  add('support', 'opened', '', support.opened);
  add('support', 'resolved', '', support.resolved);
  each('support', 'byStatus', support.byStatus);
  add('support', 'medianResolutionMs', '', support.medianResolutionMs);
  add('support', 'csatAverage', '', support.csatAverage);
  add('support', 'csatCount', '', support.csatCount);
  each('support', 'csatDistribution', support.csatDistribution);
  add('ads', 'started', '', ads.started);
  add('ads', 'exhausted', '', ads.exhausted);
  each('ads', 'byStatus', ads.byStatus);
  add('searches', 'total', '', searches.total);
  add('searches', 'completed', '', searches.completed);
  add('searches', 'failed', '', searches.failed);
  each('searches', 'byStatus', searches.byStatus);
  add('searches', 'failureRate', '', searches.failureRate);
  add('searches', 'medianDurationMs', '', searches.medianDurationMs);
  return rows.map(csvRecord).join('');
}

const pct = (rate: number | null) => (rate === null ? '–' : `${(rate * 100).toFixed(1)}%`);
const counts = (c: Record<string, number>) =>
  Object.keys(c).length === 0
    ? 'none'
    : Object.entries(c)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
const list = (r: ReasonCount[]) =>
  r.length === 0 ? 'none' : r.map((x) => `${x.reason} (${x.count})`).join(', ');

/** A duration in ms as a person reads it: 950ms, 42s, 3.5h, 2.1d. */
export function humanDuration(ms: number | null): string {
  if (ms === null) return '–';
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)}ms`;
  if (abs < 120_000) return `${(ms / 1000).toFixed(1)}s`;
  if (abs < 7_200_000) return `${(ms / 60_000).toFixed(1)}m`;
  if (abs < 172_800_000) return `${(ms / 3_600_000).toFixed(1)}h`;
  return `${(ms / 86_400_000).toFixed(1)}d`;
}

/** `report` without --json or --csv: the sections as a person reads them. */
export function reportText(report: Report): string {
  const { orders, payments, products, users, support, ads, searches } = report;
  const amounts = Object.entries(payments.amountByStatus).map(
    ([status, byCurrency]) =>
      `${status} ${Object.entries(byCurrency)
        .map(([c, a]) => `${a.toFixed(2)} ${c}`)
        .join(' + ')}`,
  );
  const lines = [
    `Report since ${report.since}${report.environment ? ` (${report.environment})` : ''}; statuses and amounts of the entities whose latest event is in the window, one-time stages by their own event`,
    '',
    'orders',
    `  by status:               ${counts(orders.byStatus)}`,
    `  GMV (not cancelled):     ${
      Object.entries(orders.gmvByCurrency)
        .map(([c, a]) => `${a.toFixed(2)} ${c}`)
        .join(', ') || 'none'
    }`,
    `  median created→shipped:  ${humanDuration(orders.medianCreatedToShippedMs)}`,
    `  median created→delivered: ${humanDuration(orders.medianCreatedToDeliveredMs)}`,
    `  cancellation rate:       ${pct(orders.cancellationRate)}`,
    '',
    'payments',
    `  by status:               ${counts(payments.byStatus)}`,
    `  amounts:                 ${amounts.join('; ') || 'none'}`,
    `  success rate:            ${pct(payments.successRate)}`,
    `  top failure reasons:     ${list(payments.topFailureReasons)}`,
    '',
    'products',
    `  by status:               ${counts(products.byStatus)}`,
    `  approval rate:           ${pct(products.approvalRate)}`,
    `  top rejection reasons:   ${list(products.topRejectionReasons)}`,
    '',
    'users',
    `  registrations:           ${users.registrations} (${counts(users.registrationsByRole)})`,
    `  tier changes:            ${users.tierChanges}${
      users.tierChangesByTier.length
        ? ` (${users.tierChangesByTier.map((t) => `${t.from}→${t.to} ${t.count}`).join(', ')})`
        : ''
    }`,
    '',
    'support',
    `  opened / resolved:       ${support.opened} / ${support.resolved}`,
    `  median resolution:       ${humanDuration(support.medianResolutionMs)}`,
    `  CSAT average:            ${support.csatAverage ?? '–'} from ${support.csatCount} rating(s) (${counts(support.csatDistribution)})`,
    '',
    'ads',
    `  campaigns started:       ${ads.started}`,
    `  budgets exhausted:       ${ads.exhausted}`,
    '',
    'searches',
    `  completed / failed:      ${searches.completed} / ${searches.failed}`,
    `  failure rate:            ${pct(searches.failureRate)}`,
    `  median duration:         ${humanDuration(searches.medianDurationMs)}`,
  ];
  return `${lines.join('\n')}\n`;
}
