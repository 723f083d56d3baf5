// The dashboard in a real browser: Debian's chromium driven by playwright-core.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { examplePayloads } from '../../src/events/examples.ts';
import { postSigned, REPO, startServer, stopProcess, tempDir, waitFor } from '../helpers/index.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(REPO, 'test-artifacts');
const TOKEN = 'dashboard-token-0123456789abcdef';

describe('dashboard in a real browser', {
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`,
}, () => {
  it('sign in, watch a delivery arrive, open it, replay a dead letter until it is processed', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const tmp = tempDir();
    const fixed = join(tmp.dir, 'payments-api-is-back');
    const server = await startServer(tmp.dir, {
      ADMIN_TOKEN: TOKEN,
      HANDLERS: join(REPO, 'test', 'fixtures', 'handlers', 'e2e-handlers.ts'),
      E2E_LOG: join(tmp.dir, 'runs.log'),
      E2E_NO_CRASH: '1',
      E2E_FIXED_FILE: fixed,
      RETRY_SCHEDULE: '100ms',
    });
    const base = `http://127.0.0.1:${server.port}`;
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));

      // Sign-in: a wrong token is refused, the right one opens the dashboard.
      await page.goto(`${base}/admin`);
      await page.fill('#token', 'wrong-token-wrong-token');
      await page.click('#signin-form button[type=submit]');
      await page.waitForSelector('#signin-error:has-text("refused")');
      await page.fill('#token', TOKEN);
      await page.click('#signin-form button[type=submit]');
      await page.waitForSelector('#app:not([hidden])');
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-signed-in.png') });

      // A delivery appears in the live list without a reload.
      const order = { ...examplePayloads['order.created'], id: `evt_ui_${Date.now()}` };
      assert.equal((await postSigned(server.url, order)).status, 200);
      await page.waitForSelector(`#events-table tr[data-id="${order.id}"]`, { timeout: 10_000 });
      for (const type of ['order.confirmed', 'user.registered', 'support.ticket_created'] as const) {
        await postSigned(server.url, { ...examplePayloads[type], id: `evt_ui_${type}_${Date.now()}` });
      }

      // Its detail: payload and attempt timeline (of this event: the panel carries its id).
      await page.click(`#events-table tr[data-id="${order.id}"]`);
      await page.waitForSelector(
        `#detail[data-event-id="${order.id}"]:not([hidden]) .timeline li.succeeded`,
        {
          timeout: 10_000,
        },
      );
      const payload = await page.textContent(`#detail[data-event-id="${order.id}"] pre.payload`);
      assert.match(payload ?? '', /"orderId": "ord_01HX900A8XG6PA6MT9G8QYB101"/);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-event-detail.png') });

      // A dead letter: replayed from the dashboard once the downstream is fixed.
      const payment = { ...examplePayloads['payment.failed'], id: `evt_ui_dead_${Date.now()}` };
      await postSigned(server.url, payment);
      await page.click('button.tab[data-view="dead"]');
      await page.waitForSelector(`#dead-table tr[data-id="${payment.id}"]`, { timeout: 15_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-dead-letters.png') });
      writeFileSync(fixed, 'ok');
      await page.click(`#dead-table tr[data-id="${payment.id}"] button:has-text("Replay")`);
      await page.waitForSelector(`#dead-table tr[data-id="${payment.id}"]`, {
        state: 'detached',
        timeout: 10_000,
      });
      await page.click('button.tab[data-view="events"]');
      await page.waitForSelector(`#events-table tr[data-id="${payment.id}"] .status.processed`, {
        timeout: 15_000,
      });
      await page.click(`#events-table tr[data-id="${payment.id}"]`);
      // The old detail (the order) shows a succeeded attempt too: wait for this event's own.
      await page.waitForSelector(`#detail[data-event-id="${payment.id}"] .timeline li.succeeded`, {
        timeout: 10_000,
      });
      const timeline = await page.textContent(`#detail[data-event-id="${payment.id}"] .timeline`);
      assert.match(timeline ?? '', /#1 failed[\s\S]*#2 failed[\s\S]*#3 succeeded/);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-replayed.png') });

      await page.click('button.tab[data-view="charts"]');
      await page.waitForSelector('#chart-events .uplot .u-legend');
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-charts.png') });
      assert.deepEqual(errors, [], 'no script errors in the page');
    } finally {
      await browser?.close();
      await stopProcess(server);
      tmp.cleanup();
    }
    await waitFor(() => existsSync(join(ARTIFACTS, 'dashboard-charts.png')));
  });
  it('filters, Discard, Secrets, a payload too deep to render, and API errors shown to the user', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const tmp = tempDir();
    const server = await startServer(tmp.dir, {
      ADMIN_TOKEN: TOKEN,
      HANDLERS: join(REPO, 'test', 'fixtures', 'handlers', 'e2e-handlers.ts'),
      E2E_LOG: join(tmp.dir, 'runs.log'),
      E2E_NO_CRASH: '1',
      RETRY_SCHEDULE: '100ms',
    });
    const base = `http://127.0.0.1:${server.port}`;
    const stamp = Date.now();
    let browser: Browser | undefined;
    try {
      const order = { ...examplePayloads['order.created'], id: `evt_f_order_${stamp}` };
      const user = { ...examplePayloads['user.registered'], id: `evt_f_user_${stamp}` };
      const payment = { ...examplePayloads['payment.failed'], id: `evt_f_dead_${stamp}` };
      for (const event of [order, user, payment])
        assert.equal((await postSigned(server.url, event)).status, 200);
      const depth = 50_000;
      const deepBody = JSON.stringify({
        ...order,
        id: `evt_f_deep_${stamp}`,
        data: { nested: 'HOLE' },
      }).replace('"HOLE"', `${'['.repeat(depth)}${']'.repeat(depth)}`);
      assert.equal((await postSigned(server.url, deepBody)).status, 200);

      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('dialog', (d) => void d.accept());
      await page.goto(`${base}/admin`);
      await page.fill('#token', TOKEN);
      await page.click('#signin-form button[type=submit]');
      await page.waitForSelector(`#events-table tr[data-id="${user.id}"]`);
      await page.waitForSelector(`#events-table tr[data-id="${order.id}"]`);

      // Filters: by type, then by payload text. Wait until every row matches (the unfiltered list
      // holds other types, so it cannot satisfy the wait).
      const rowsMatch = (test: string, mustHave: string) =>
        page
          .waitForFunction(
            ([test, mustHave]) => {
              const rows = Array.from(document.querySelectorAll<HTMLElement>('#events-table tbody tr'));
              return (
                rows.some((r) => r.dataset.id === mustHave) &&
                rows.every((r) => new RegExp(test as string).test(r.textContent ?? ''))
              );
            },
            [test, mustHave],
            { timeout: 10_000 },
          )
          .catch(async (error: unknown) => {
            const rows = await page.$$eval('#events-table tbody tr', (trs) => trs.map((r) => r.textContent));
            throw new Error(`rows never all matched /${test}/ with ${mustHave}: ${JSON.stringify(rows)}`, {
              cause: error,
            });
          });
      await page.fill('#filters input[name=type]', 'user.*');
      await page.click('#filters button[type=submit]');
      await rowsMatch('user\\.registered', user.id);
      await page.fill('#filters input[name=type]', '');
      // Payload text: the event id is in the payload of that event only.
      await page.fill('#filters input[name=q]', order.id);
      await page.click('#filters button[type=submit]');
      await rowsMatch(order.id, order.id);
      await page.fill('#filters input[name=q]', '');
      await page.click('#filters button[type=submit]');
      await page.waitForSelector(`#events-table tr[data-id="${user.id}"]`);

      // The event too deep to render: its raw body, and why.
      await page.click(`#events-table tr[data-id="evt_f_deep_${stamp}"]`);
      await page.waitForSelector(`#detail[data-event-id="evt_f_deep_${stamp}"] pre.raw-body`, {
        timeout: 10_000,
      });
      const note = await page.textContent(`#detail[data-event-id="evt_f_deep_${stamp}"] .note`);
      assert.match(note ?? '', /nests 50002 levels deep/);
      const raw = await page.textContent(`#detail[data-event-id="evt_f_deep_${stamp}"] pre.raw-body`);
      assert.equal(raw, deepBody);

      // Discard a dead letter: it leaves the list and is marked discarded.
      await page.click('button.tab[data-view="dead"]');
      await page.waitForSelector(`#dead-table tr[data-id="${payment.id}"]`, { timeout: 15_000 });
      await page.click(`#dead-table tr[data-id="${payment.id}"] button:has-text("Discard")`);
      await page.waitForSelector(`#dead-table tr[data-id="${payment.id}"]`, {
        state: 'detached',
        timeout: 10_000,
      });
      const shown = await fetch(`${base}/admin/api/events/${payment.id}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const detail = (await shown.json()) as { event: { status: string; discardedAt: string | null } };
      assert.equal(detail.event.status, 'dead');
      assert.ok(detail.event.discardedAt, 'discardedAt is set');

      // Secrets: each configured secret, with when it last verified a delivery.
      await page.click('button.tab[data-view="secrets"]');
      await page.waitForFunction(
        () => {
          const row = document.querySelector('#secrets-table tbody tr');
          const cells = row ? Array.from(row.querySelectorAll('td'), (c) => c.textContent) : [];
          return cells[0] === 'production' && cells[1] === '0' && !/never/.test(cells[2] ?? 'never');
        },
        undefined,
        { timeout: 15_000 },
      );
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-secrets.png') });

      // The service goes away: a row click says so, in the panel for that event, instead of nothing.
      await page.click('button.tab[data-view="events"]');
      await page.waitForSelector(`#events-table tr[data-id="${order.id}"]`);
      await stopProcess(server);
      await page.click(`#events-table tr[data-id="${order.id}"]`);
      await page.waitForSelector(`#detail[data-event-id="${order.id}"] .load-error`, { timeout: 10_000 });
      assert.match(
        (await page.textContent(`#detail[data-event-id="${order.id}"] .load-error`)) ?? '',
        /Could not load this event: GET \/events\/evt_f_order_\d+: the service did not answer/,
      );
      assert.equal(await page.isVisible('#toast.error'), true);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-load-error.png') });
      assert.deepEqual(errors, [], 'no script errors in the page');
    } finally {
      await browser?.close();
      await stopProcess(server);
      tmp.cleanup();
    }
  });

  it('Routes page: counts change as deliveries land, breakers shown, a route replayed; jobs in the detail', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const tmp = tempDir();
    const sink = { fixed: false };
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const ok = req.url === '/ok' || (req.url === '/flaky' && sink.fixed);
        res.writeHead(ok ? 200 : 500).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const sinkUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const routesFile = join(tmp.dir, 'routes.yaml');
    writeFileSync(
      routesFile,
      [
        'destinations:',
        `  shop: { type: http, url: "${sinkUrl}/ok" }`,
        `  payments-api: { type: http, url: "${sinkUrl}/flaky" }`,
        `  helpdesk: { type: http, url: "${sinkUrl}/down" }`,
        'routes:',
        '  - { name: orders, match: { types: [order.*] }, to: shop }',
        '  - { name: payments, match: { types: [payment.*] }, to: payments-api, retrySchedule: [50ms] }',
        '  - { name: tickets, match: { types: [support.*] }, to: helpdesk, retrySchedule: [10ms, 10ms, 10ms] }',
      ].join('\n'),
    );
    // Three failures in a row open a breaker: tickets' three attempts do, payments' two do not.
    const service = await startServer(tmp.dir, {
      ADMIN_TOKEN: TOKEN,
      ROUTES: routesFile,
      BREAKER_THRESHOLD: '3',
    });
    const base = `http://127.0.0.1:${service.port}`;
    const stamp = Date.now();
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('dialog', (d) => void d.accept());
      await page.goto(`${base}/admin`);
      await page.fill('#token', TOKEN);
      await page.click('#signin-form button[type=submit]');
      await page.waitForSelector('#app:not([hidden])');
      await page.click('button.tab[data-view="routes"]');
      const cell = (route: string, count: string) =>
        `#routes-table tr[data-route="${route}"] td[data-count="${count}"]`;
      await page.waitForSelector(`${cell('orders', 'processed')}:text-is("0")`);

      const order = { ...examplePayloads['order.created'], id: `evt_r_order_${stamp}` };
      const payment = { ...examplePayloads['payment.failed'], id: `evt_r_pay_${stamp}` };
      const ticket = { ...examplePayloads['support.ticket_created'], id: `evt_r_ticket_${stamp}` };
      for (const event of [order, payment, ticket])
        assert.equal((await postSigned(service.url, event)).status, 200);
      await page.waitForSelector(`${cell('orders', 'processed')}:text-is("1")`, { timeout: 10_000 });
      await page.waitForSelector(`${cell('payments', 'dead')}:text-is("1")`, { timeout: 10_000 });
      await page.waitForSelector('#routes-table tr[data-route="tickets"] .breaker.open', { timeout: 10_000 });
      assert.equal(await page.textContent('#routes-table tr[data-route="payments"] .breaker'), 'closed');
      await page.screenshot({ path: join(REPO, 'docs', 'routes.png') });

      // The payments API is back: Replay (confirmed) re-sends the route's dead delivery.
      sink.fixed = true;
      await page.click('#routes-table tr[data-route="payments"] button:has-text("Replay")');
      await page.waitForSelector(`${cell('payments', 'processed')}:text-is("1")`, { timeout: 10_000 });
      await page.waitForSelector(`${cell('payments', 'dead')}:text-is("0")`);

      // The event's detail: one block per job, each with its own attempts.
      await page.click('button.tab[data-view="events"]');
      await page.click(`#events-table tr[data-id="${payment.id}"]`);
      const job = `#detail[data-event-id="${payment.id}"] .job[data-consumer="route:payments"]`;
      await page.waitForSelector(`${job} .timeline li.succeeded`, { timeout: 10_000 });
      assert.match((await page.textContent(`${job} .job-head`)) ?? '', /route:payments\s*processed/);
      assert.match(
        (await page.textContent(`${job} .timeline`)) ?? '',
        /#1 failed[\s\S]*#2 failed[\s\S]*#3 succeeded/,
      );
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-route-jobs.png') });
      assert.deepEqual(errors, [], 'no script errors in the page');
    } finally {
      await browser?.close();
      await stopProcess(service);
      await new Promise<void>((r) => server.close(() => r()));
      tmp.cleanup();
    }
  });
});
