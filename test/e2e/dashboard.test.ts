// The dashboard in a real browser: Debian's chromium driven by playwright-core.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
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

      // Its detail: payload and attempt timeline.
      await page.click(`#events-table tr[data-id="${order.id}"]`);
      await page.waitForSelector('#detail:not([hidden]) .timeline li.succeeded', { timeout: 10_000 });
      const payload = await page.textContent('#detail pre');
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
      await page.waitForSelector('#detail .timeline li.succeeded');
      const timeline = await page.textContent('#detail .timeline');
      assert.match(timeline ?? '', /#1 failed[\s\S]*#2 failed[\s\S]*#3 succeeded/);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-replayed.png') });

      await page.click('button.tab[data-view="charts"]');
      await page.waitForSelector('#chart-events svg rect');
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-charts.png') });
      assert.deepEqual(errors, [], 'no script errors in the page');
    } finally {
      await browser?.close();
      await stopProcess(server);
      tmp.cleanup();
    }
    await waitFor(() => existsSync(join(ARTIFACTS, 'dashboard-charts.png')));
  });
});
