// The procureiq-webhooks dashboard: plain browser JavaScript served by the service, no build step.
// It talks to the JSON admin API with the admin token, which it keeps in sessionStorage only.
// Every value from the API is written with textContent, never as HTML.

import { minuteChart } from './charts.js';

const TOKEN_KEY = 'procureiq-webhooks.admin-token';
const POLL_MS = 2000;
const $ = (selector) => document.querySelector(selector);

const state = {
  view: 'events',
  filter: {},
  events: [],
  next: null,
  selected: null,
  timer: undefined,
  // Bumped when the filter or environment changes: a list answer for an older one is dropped.
  listVersion: 0,
};

// ---- API -------------------------------------------------------------------------------------

class Unauthorized extends Error {}

export async function api(path, { method = 'GET', body } = {}) {
  const res = await send(path, method, body);
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) throw new Unauthorized(data.error?.message ?? 'unauthorized');
  if (!res.ok) throw new Error(`${method} ${path}: ${data.error?.message ?? `HTTP ${res.status}`}`);
  return data;
}

async function send(path, method, body) {
  try {
    return await fetch(`/admin/api${path}`, {
      method,
      cache: 'no-store',
      headers: {
        authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}`,
        'content-type': 'application/json',
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new Error(`${method} ${path}: the service did not answer`);
  }
}

function query(extra = {}) {
  const params = new URLSearchParams();
  const environment = $('#environment').value;
  if (environment) params.set('environment', environment);
  for (const [k, v] of Object.entries({ ...state.filter, ...extra })) if (v) params.set(k, v);
  return params.toString();
}

// ---- helpers ---------------------------------------------------------------------------------

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'style') Object.assign(node.style, v);
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

const time = (iso) => (iso ? new Date(iso).toLocaleString() : '–');
const status = (s) => el('span', { class: `status ${s}`, text: s });

function toast(message, { error = false } = {}) {
  const t = $('#toast');
  t.textContent = message;
  t.classList.toggle('error', error);
  t.setAttribute('role', error ? 'alert' : 'status');
  t.hidden = false;
  clearTimeout(toast.timer);
  // Errors stay long enough to be read.
  toast.timer = setTimeout(
    () => {
      t.hidden = true;
    },
    error ? 8000 : 3000,
  );
}

export async function guarded(fn) {
  try {
    await fn();
    $('#live').classList.remove('off');
  } catch (error) {
    if (error instanceof Unauthorized) return signOut('The admin token was refused.');
    $('#live').classList.add('off');
    toast(error.message, { error: true });
  }
}

// ---- sign-in -----------------------------------------------------------------------------------

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.timer);
  $('#app').hidden = true;
  $('#signin').hidden = false;
  $('#signin-error').textContent = message;
}

$('#signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('#token').value.trim());
  try {
    await api('/stats?window=1m');
    $('#token').value = '';
    start();
  } catch (error) {
    signOut(error instanceof Unauthorized ? 'That token was refused.' : error.message);
  }
});
$('#signout').addEventListener('click', () => signOut());

// ---- views -------------------------------------------------------------------------------------

for (const tab of document.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => show(tab.dataset.view));
}

function show(view) {
  state.view = view;
  for (const tab of document.querySelectorAll('.tab'))
    tab.classList.toggle('active', tab.dataset.view === view);
  for (const name of ['events', 'dead', 'routes', 'charts', 'secrets'])
    $(`#view-${name}`).hidden = name !== view;
  void refresh();
}

$('#environment').addEventListener('change', () => {
  state.events = [];
  state.listVersion++;
  void refresh();
});

$('#filters').addEventListener('submit', (event) => {
  event.preventDefault();
  state.filter = Object.fromEntries(new FormData(event.target).entries());
  state.events = [];
  state.listVersion++;
  void refresh();
});

async function refresh() {
  await guarded(async () => {
    if (state.view === 'events') await refreshEvents();
    if (state.view === 'dead') await refreshDead();
    if (state.view === 'routes') await refreshRoutes();
    if (state.view === 'charts') await refreshCharts();
    if (state.view === 'secrets') await refreshSecrets();
    const dead = await api(`/dead-letters?${query({ limit: 500, type: '', status: '', q: '', since: '' })}`);
    $('#dead-count').textContent = dead.events.length ? String(dead.events.length) : '';
  });
}

// Events: the newest page is polled; rows not seen before are inserted at the top and flash.
async function refreshEvents() {
  const version = state.listVersion;
  const { events, next } = await api(`/events?${query({ limit: 50 })}`);
  // A poll sent before the filter changed would merge rows the new filter excludes.
  if (version !== state.listVersion) return;
  const known = new Map(state.events.map((e) => [e.id, e]));
  const fresh = new Set(state.events.length ? events.filter((e) => !known.has(e.id)).map((e) => e.id) : []);
  const newestIds = new Set(events.map((e) => e.id));
  state.events = [...events, ...state.events.filter((e) => !newestIds.has(e.id))];
  if (!state.next || state.events.length <= 50) state.next = next;
  renderEvents(fresh);
  if (state.selected) await renderDetail(state.selected, { quiet: true });
}

function renderEvents(fresh = new Set()) {
  const body = $('#events-table tbody');
  body.replaceChildren(
    ...state.events.map((e) =>
      el(
        'tr',
        {
          class: `${fresh.has(e.id) ? 'fresh' : ''} ${state.selected === e.id ? 'selected' : ''}`,
          'data-id': e.id,
          onclick: () => openDetail(e.id),
        },
        el('td', { text: time(e.receivedAt) }),
        el('td', { class: 'mono', text: e.type }),
        el('td', {}, status(e.status)),
        el('td', { text: String(e.attempts) }),
        el('td', { text: e.environment }),
        el('td', { class: 'mono', text: e.id }),
      ),
    ),
  );
  $('#more').hidden = !state.next;
}

$('#more').addEventListener('click', () =>
  guarded(async () => {
    const version = state.listVersion;
    const { events, next } = await api(`/events?${query({ limit: 50, before: state.next })}`);
    if (version !== state.listVersion) return;
    state.events.push(...events);
    state.next = next;
    renderEvents();
  }),
);

// A row click: the detail of that event, or the reason it could not be loaded, in the panel.
async function openDetail(id) {
  try {
    await renderDetail(id);
  } catch (error) {
    if (error instanceof Unauthorized) return signOut('The admin token was refused.');
    if (state.selected !== id) return;
    showPanel(
      id,
      el('h2', { class: 'mono', text: id }),
      el('p', {
        class: 'error load-error',
        role: 'alert',
        text: `Could not load this event: ${error.message}`,
      }),
      el('div', { class: 'actions' }, el('button', { class: 'link', text: 'Close', onclick: closeDetail })),
    );
    toast(error.message, { error: true });
  }
}

function showPanel(id, ...children) {
  const panel = $('#detail');
  panel.replaceChildren(...children);
  // The id of what the panel shows, so a reader (or a test) can tell this detail from the last one.
  panel.dataset.eventId = id;
  panel.hidden = false;
  $('.split').classList.add('with-detail');
  return panel;
}

async function renderDetail(id, { quiet = false } = {}) {
  state.selected = id;
  for (const row of document.querySelectorAll('#events-table tbody tr'))
    row.classList.toggle('selected', row.dataset.id === id);
  const { event: e } = await api(`/events/${encodeURIComponent(id)}`);
  // Another row was opened (or the panel closed) while this one loaded: it is no longer wanted.
  if (state.selected !== id) return;
  const replayable = ['processed', 'dead', 'invalid', 'unhandled'].includes(e.status);
  const actions = el('div', { class: 'actions' });
  if (replayable) {
    actions.append(
      el('button', {
        class: 'primary',
        text: 'Replay',
        onclick: () =>
          guarded(async () => {
            await api(`/events/${encodeURIComponent(e.id)}/replay`, { method: 'POST' });
            toast(`Replaying ${e.id}`);
            await refresh();
          }),
      }),
    );
  }
  actions.append(el('button', { class: 'link', text: 'Close', onclick: closeDetail }));
  const facts = el('dl');
  const fact = (k, v) => facts.append(el('dt', { text: k }), el('dd', { text: v ?? '–' }));
  fact('Type', e.type);
  fact('Environment', e.environment);
  fact('Attempts', `${e.attempts} of ${e.maxAttempts}`);
  fact('Received', time(e.receivedAt));
  if (e.nextAttemptAt) fact('Next attempt', time(e.nextAttemptAt));
  if (e.validationError) fact('Invalid', e.validationError);
  for (const [k, v] of Object.entries(e.headers)) fact(k, v);
  fact(
    'Deliveries',
    e.deliveries
      .map((d) => `${time(d.receivedAt)} ${d.deliveryId ?? ''}${d.duplicate ? ' (duplicate)' : ''}`)
      .join('\n'),
  );

  const jobs = jobsView(e);
  const panel = showPanel(
    e.id,
    el('h2', { class: 'mono', text: e.id }),
    el('div', {}, status(e.status)),
    actions,
    facts,
    el('h3', { text: 'Jobs' }),
    jobs,
    ...payloadView(e),
  );
  if (!quiet) panel.scrollTop = 0;
}

// One block per job (handlers, route:NAME): its status and budget, then its own attempts.
function jobsView(e) {
  const container = el('div', { class: 'jobs' });
  const consumers = e.jobs.map((j) => j.consumer);
  for (const a of e.attemptHistory) if (!consumers.includes(a.consumer)) consumers.push(a.consumer);
  if (consumers.length === 0)
    container.append(el('p', { class: 'jobs-empty', text: 'No jobs: no consumer wants this event.' }));
  for (const consumer of consumers) {
    const job = e.jobs.find((j) => j.consumer === consumer);
    const head = el('div', { class: 'job-head' }, el('span', { class: 'mono', text: consumer }));
    if (job) {
      head.append(
        ' ',
        status(job.status),
        el('span', { class: 'when', text: ` ${job.attempts} of ${job.maxAttempts} attempts` }),
      );
      if (job.nextAttemptAt)
        head.append(el('span', { class: 'when', text: ` · next ${time(job.nextAttemptAt)}` }));
    }
    const timeline = el('ol', { class: 'timeline' });
    const attempts = e.attemptHistory.filter((a) => a.consumer === consumer);
    if (attempts.length === 0) timeline.append(el('li', { text: 'No attempts yet.' }));
    for (const a of attempts) {
      timeline.append(
        el(
          'li',
          { class: a.outcome },
          el('div', {
            text: `#${a.number} ${a.outcome}${a.durationMs === null ? '' : ` · ${a.durationMs} ms`}`,
          }),
          el('div', { class: 'when', text: `${time(a.startedAt)}${a.worker ? ` · ${a.worker}` : ''}` }),
          ...(a.errorMessage ? [el('div', { class: 'msg', text: a.errorMessage })] : []),
        ),
      );
    }
    container.append(el('section', { class: 'job', 'data-consumer': consumer }, head, timeline));
  }
  return container;
}

// The parsed payload, indented; when the API could not render it (too deep, not JSON), the raw body.
function payloadView(e) {
  if (e.purged) return [el('h3', { text: 'Payload' }), el('pre', { text: 'Payload purged by retention.' })];
  if ('payload' in e)
    return [
      el('h3', { text: 'Payload' }),
      el('pre', { class: 'payload', text: JSON.stringify(e.payload, null, 2) }),
    ];
  return [
    el('h3', { text: 'Raw body' }),
    el('p', { class: 'note', text: e.payloadError ?? 'The payload cannot be rendered.' }),
    el('pre', { class: 'raw-body', text: e.rawBody }),
  ];
}

function closeDetail() {
  state.selected = null;
  $('#detail').hidden = true;
  delete $('#detail').dataset.eventId;
  $('.split').classList.remove('with-detail');
  renderEvents();
}

// Dead letters, with replay and discard.
async function refreshDead() {
  const { events } = await api(
    `/dead-letters?${query({ limit: 200, type: '', status: '', q: '', since: '' })}`,
  );
  $('#dead-table tbody').replaceChildren(
    ...events.map((e) =>
      el(
        'tr',
        { 'data-id': e.id },
        el('td', { text: time(e.receivedAt) }),
        el('td', { class: 'mono', text: e.type }),
        el('td', { text: String(e.attempts) }),
        el('td', { class: 'err', text: e.lastError ?? '', title: e.lastError ?? '' }),
        el('td', { class: 'mono', text: e.id }),
        el(
          'td',
          {},
          el('button', { text: 'Replay', onclick: () => deadAction('replay', e.id) }),
          ' ',
          el('button', { class: 'danger', text: 'Discard', onclick: () => deadAction('discard', e.id) }),
        ),
      ),
    ),
  );
  if (events.length === 0)
    $('#dead-table tbody').append(el('tr', {}, el('td', { colspan: '6', text: 'No dead letters.' })));
}

function deadAction(action, id) {
  if (action === 'discard' && !confirm(`Discard ${id}? It stays stored for dedupe and audit.`)) return;
  return guarded(async () => {
    await api(`/dead-letters/${action}`, { method: 'POST', body: { ids: [id] } });
    toast(`${action === 'replay' ? 'Replaying' : 'Discarded'} ${id}`);
    await refresh();
  });
}

$('#replay-all-dead').addEventListener('click', () => {
  if (!confirm('Replay every dead letter?')) return;
  void guarded(async () => {
    const { replayed } = await api('/dead-letters/replay', { method: 'POST', body: { all: true } });
    toast(`Replaying ${replayed} dead letter(s)`);
    await refresh();
  });
});

// Routes: each route's job counts and breaker (from the running service), with a replay of its dead jobs.
const BREAKER_TEXT = { closed: 'closed', open: 'open: paused', 'half-open': 'half-open: probing' };

async function refreshRoutes() {
  const { routes, orphaned } = await api('/routes');
  const count = (n) => el('td', { class: n ? 'num' : 'num zero', text: String(n) });
  $('#routes-table tbody').replaceChildren(
    ...routes.map((r) =>
      el(
        'tr',
        { 'data-route': r.name },
        el('td', { class: 'mono', text: r.name }),
        el('td', { text: `${r.destination} (${r.destinationType})` }),
        el(
          'td',
          {},
          el('span', { class: `breaker ${r.breaker}`, text: BREAKER_TEXT[r.breaker] ?? r.breaker }),
        ),
        count(r.inFlight),
        el('td', {
          class: r.counts.pending + r.counts.processing ? 'num' : 'num zero',
          'data-count': 'pending',
          text: String(r.counts.pending + r.counts.processing),
        }),
        count(r.counts.retrying),
        el('td', {
          class: r.counts.processed ? 'num' : 'num zero',
          'data-count': 'processed',
          text: String(r.counts.processed),
        }),
        count(r.counts.skipped),
        el('td', {
          class: r.counts.dead ? 'num bad' : 'num zero',
          'data-count': 'dead',
          text: String(r.counts.dead),
        }),
        el('td', {}, replayButton(r)),
      ),
    ),
  );
  if (routes.length === 0)
    $('#routes-table tbody').append(
      el('tr', {}, el('td', { colspan: '10', text: 'No routes: start the service with --routes FILE.' })),
    );
  $('#orphaned').hidden = orphaned.length === 0;
  $('#orphaned-table tbody').replaceChildren(
    ...orphaned.map((o) =>
      el(
        'tr',
        { 'data-route': o.route },
        el('td', { class: 'mono', text: o.route }),
        count(o.counts.pending),
        count(o.counts.retrying),
        count(o.counts.processed),
        count(o.counts.dead),
      ),
    ),
  );
}

function replayButton(r) {
  const button = el('button', {
    text: 'Replay',
    title: `Re-send the dead deliveries of route ${r.name}`,
    onclick: () => replayRoute(r.name, r.counts.dead),
  });
  button.disabled = r.counts.dead === 0;
  return button;
}

function replayRoute(name, dead) {
  if (!confirm(`Re-send the ${dead} dead deliveries of route ${name}?`)) return;
  return guarded(async () => {
    const { replayed } = await api(`/routes/${encodeURIComponent(name)}/replay`, {
      method: 'POST',
      body: { filter: { status: 'dead' }, dryRun: false },
    });
    toast(`Replaying ${replayed} delivery(ies) on ${name}`);
    await refresh();
  });
}

// Charts: events and failures per minute of the last hour, drawn with uPlot (charts.js).
async function refreshCharts() {
  const stats = await api(`/stats?${query({ window: '1h', type: '', status: '', q: '', since: '' })}`);
  const now = Math.floor(Date.now() / 60000) * 60000;
  const minutes = Array.from({ length: 60 }, (_, i) => now - (59 - i) * 60000);
  const byType = new Map();
  for (const r of stats.receivedPerMinute) {
    if (!byType.has(r.type)) byType.set(r.type, new Map());
    byType.get(r.type).set(r.minute, r.count);
  }
  const series = [...byType.entries()].map(([name, values]) => ({ name, values }));
  minuteChart($('#chart-events'), {
    minutes,
    series: series.length ? series : [{ name: 'events', values: new Map() }],
    yLabel: 'events / min',
  });
  const failed = new Map(stats.failedAttemptsPerMinute.map((r) => [r.minute, r.count]));
  const refused = new Map(stats.signatureFailuresPerMinute.map((r) => [r.minute, r.count]));
  minuteChart($('#chart-failures'), {
    minutes,
    series: [
      { name: 'failed attempts', values: failed, color: '#d64545' },
      { name: 'refused signatures', values: refused, color: '#c98a00' },
    ],
    yLabel: 'failures / min',
  });
  $('#counts').replaceChildren(
    ...Object.entries(stats.byStatus).map(([s, n]) => el('div', {}, el('b', { text: String(n) }), s)),
    el('div', {}, el('b', { text: `${stats.oldestWaitingAgeSeconds}s` }), 'oldest waiting'),
  );
}

async function refreshSecrets() {
  const { secrets } = await api('/secrets');
  $('#secrets-table tbody').replaceChildren(
    ...secrets.map((s) =>
      el(
        'tr',
        {},
        el('td', { text: s.environment }),
        el('td', { text: String(s.index) }),
        el('td', {
          text: s.lastVerifiedAt ? time(s.lastVerifiedAt) : 'never (since the service started recording)',
        }),
      ),
    ),
  );
}

// ---- start -------------------------------------------------------------------------------------

function start() {
  $('#signin').hidden = true;
  $('#app').hidden = false;
  show(state.view);
  clearInterval(state.timer);
  state.timer = setInterval(() => void refresh(), POLL_MS);
}

if (sessionStorage.getItem(TOKEN_KEY)) start();
else signOut();
