// The Reports page: the reporting tables (GET /admin/api/reports, the same data as `report --json`)
// drawn as uPlot charts, with small tables where a chart says nothing more.
import { api, el, guarded } from './app.js';
import { barChart, PALETTE } from './charts.js';

const POLL_MS = 5000;
const $ = (selector) => document.querySelector(selector);
const view = $('#view-reports');

const pct = (rate) => (rate === null ? '–' : `${(rate * 100).toFixed(1)}%`);
const money = (v) =>
  v === null || v === undefined ? '–' : Number(v).toLocaleString(undefined, { maximumFractionDigits: 2 });
function duration(ms) {
  if (ms === null) return '–';
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (abs < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (abs < 172_800_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

// ---- layout: one card per section, built once ----------------------------------------------------

const slots = new Map();
function slot(name, node) {
  slots.set(name, node);
  return node;
}
const chart = (name, title, wide = false) =>
  el(
    'div',
    wide ? { class: 'wide' } : {},
    el('h3', { text: title }),
    slot(name, el('div', { class: 'chart', 'data-chart': name })),
  );
const tiles = (name) => slot(name, el('dl', { class: 'tiles' }));
const table = (name, title) => el('div', {}, el('h3', { text: title }), slot(name, el('div')));
const card = (section, title, ...children) =>
  el('div', { class: 'card', 'data-section': section }, el('h2', { text: title }), ...children);

const layout = [
  card(
    'orders',
    'Orders',
    tiles('orders-tiles'),
    el(
      'div',
      { class: 'charts' },
      chart('orders-status', 'By status', true),
      chart('orders-gmv', 'GMV by currency (not cancelled)'),
    ),
  ),
  card(
    'payments',
    'Payments',
    tiles('payments-tiles'),
    el(
      'div',
      { class: 'charts' },
      chart('payments-status', 'By status'),
      table('payments-amounts', 'Amounts by status'),
    ),
    table('payments-reasons', 'Top failure reasons'),
  ),
  card(
    'products',
    'Products',
    tiles('products-tiles'),
    el(
      'div',
      { class: 'charts' },
      chart('products-status', 'By status'),
      table('products-reasons', 'Top rejection reasons'),
    ),
  ),
  card(
    'users',
    'Users',
    tiles('users-tiles'),
    el(
      'div',
      { class: 'charts' },
      chart('users-roles', 'Registrations by role'),
      table('users-tiers', 'Tier changes'),
    ),
  ),
  card(
    'support',
    'Support',
    tiles('support-tiles'),
    el(
      'div',
      { class: 'charts' },
      chart('support-flow', 'Opened and resolved'),
      chart('support-csat', 'CSAT ratings'),
    ),
  ),
  card('ads', 'Ads', el('div', { class: 'charts' }, chart('ads-flow', 'Campaigns'))),
  card(
    'searches',
    'Searches',
    tiles('searches-tiles'),
    el('div', { class: 'charts' }, chart('searches-status', 'By status')),
  ),
];
$('#reports').replaceChildren(...layout);

// ---- filling it ----------------------------------------------------------------------------------

function fillTiles(name, entries) {
  slots
    .get(name)
    .replaceChildren(...entries.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: v }))));
}

function fillTable(name, header, rows) {
  const node = slots.get(name);
  if (rows.length === 0)
    return node.replaceChildren(el('p', { class: 'empty', text: 'None in this window.' }));
  node.replaceChildren(
    el(
      'table',
      { class: 'small' },
      el('thead', {}, el('tr', {}, ...header.map((h) => el('th', { text: h })))),
      el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', { text: String(c) }))))),
    ),
  );
}

function bars(name, counts, { label, xLabel, yLabel = 'count', color, format }) {
  const categories = Object.keys(counts);
  const node = slots.get(name);
  if (categories.length === 0) {
    node.replaceChildren(el('p', { class: 'empty', text: 'None in this window.' }));
    return;
  }
  if (node.querySelector('.empty')) node.replaceChildren();
  barChart(node, {
    categories,
    values: categories.map((c) => counts[c]),
    label,
    xLabel,
    yLabel,
    color,
    format,
  });
}

function render(r) {
  const { orders, payments, products, users, support, ads, searches } = r;
  fillTiles('orders-tiles', [
    ['orders', String(orders.total)],
    ['created → shipped (median)', duration(orders.medianCreatedToShippedMs)],
    ['created → delivered (median)', duration(orders.medianCreatedToDeliveredMs)],
    ['cancellation rate', pct(orders.cancellationRate)],
  ]);
  bars('orders-status', orders.byStatus, {
    label: 'orders',
    xLabel: 'status',
    yLabel: 'orders',
    color: PALETTE[0],
  });
  bars('orders-gmv', orders.gmvByCurrency, {
    label: 'GMV',
    xLabel: 'currency',
    yLabel: 'amount',
    color: PALETTE[1],
    format: money,
  });

  fillTiles('payments-tiles', [
    ['payments', String(payments.total)],
    ['success rate', pct(payments.successRate)],
  ]);
  bars('payments-status', payments.byStatus, {
    label: 'payments',
    xLabel: 'status',
    yLabel: 'payments',
    color: PALETTE[0],
  });
  fillTable(
    'payments-amounts',
    ['Status', 'Currency', 'Amount'],
    Object.entries(payments.amountByStatus).flatMap(([s, byCurrency]) =>
      Object.entries(byCurrency).map(([c, a]) => [s, c, money(a)]),
    ),
  );
  fillTable(
    'payments-reasons',
    ['Reason', 'Payments'],
    payments.topFailureReasons.map((x) => [x.reason, x.count]),
  );

  fillTiles('products-tiles', [
    ['products', String(products.total)],
    ['approval rate', pct(products.approvalRate)],
  ]);
  bars('products-status', products.byStatus, {
    label: 'products',
    xLabel: 'status',
    yLabel: 'products',
    color: PALETTE[3],
  });
  fillTable(
    'products-reasons',
    ['Reason', 'Products'],
    products.topRejectionReasons.map((x) => [x.reason, x.count]),
  );

  fillTiles('users-tiles', [
    ['registrations', String(users.registrations)],
    ['tier changes', String(users.tierChanges)],
  ]);
  bars('users-roles', users.registrationsByRole, {
    label: 'registrations',
    xLabel: 'role',
    yLabel: 'users',
    color: PALETTE[5],
  });
  fillTable(
    'users-tiers',
    ['From', 'To', 'Users'],
    users.tierChangesByTier.map((t) => [t.from, t.to, t.count]),
  );

  fillTiles('support-tiles', [
    ['resolution (median)', duration(support.medianResolutionMs)],
    ['CSAT average', support.csatAverage === null ? '–' : support.csatAverage.toFixed(2)],
    ['ratings', String(support.csatCount)],
  ]);
  bars(
    'support-flow',
    { opened: support.opened, resolved: support.resolved },
    { label: 'tickets', xLabel: 'stage', yLabel: 'tickets', color: PALETTE[2] },
  );
  const ratings = {};
  for (const k of ['1', '2', '3', '4', '5']) ratings[k] = 0;
  for (const [k, n] of Object.entries(support.csatDistribution)) ratings[k] = n;
  bars('support-csat', ratings, { label: 'ratings', xLabel: 'rating', yLabel: 'tickets', color: PALETTE[6] });

  bars(
    'ads-flow',
    { started: ads.started, 'budget exhausted': ads.exhausted },
    { label: 'campaigns', xLabel: 'stage', yLabel: 'campaigns', color: PALETTE[7] },
  );

  fillTiles('searches-tiles', [
    ['completed', String(searches.completed)],
    ['failed', String(searches.failed)],
    ['failure rate', pct(searches.failureRate)],
    ['duration (median)', duration(searches.medianDurationMs)],
  ]);
  bars('searches-status', searches.byStatus, {
    label: 'searches',
    xLabel: 'status',
    yLabel: 'searches',
    color: PALETTE[4],
  });
  $('#reports-note').textContent =
    `Since ${new Date(r.since).toLocaleString()}${r.environment ? `, ${r.environment} only` : ''}: statuses and amounts of the entities whose latest event is in the window; registrations, tier changes, tickets, ratings and campaigns by their own event.`;
  view.dataset.loaded = 'true';
}

async function refresh() {
  if (view.hidden) return;
  await guarded(async () => {
    const params = new URLSearchParams({ since: $('#reports-since').value });
    const environment = $('#environment').value;
    if (environment) params.set('environment', environment);
    render(await api(`/reports?${params}`));
  });
}

// The tabs belong to app.js; this page only shows or hides its own section when one is clicked.
for (const tab of document.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => {
    view.hidden = tab.dataset.view !== 'reports';
    void refresh();
  });
}
$('#environment').addEventListener('change', () => void refresh());
$('#reports-since').addEventListener('change', () => void refresh());
setInterval(() => void refresh(), POLL_MS);
