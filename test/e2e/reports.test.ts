// Reports through the running service: a known set of events is delivered signed to `serve`, the
// projections runner fills the tables, and then GET /admin/api/reports answers what `report --json`
// prints, and the dashboard's Reports and Charts pages draw them with uPlot in a real browser.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { type Browser, chromium } from 'playwright-core';
import { EXPECTED, reportEvents } from '../fixtures/report-events.ts';
import { postSigned, REPO, runCli, startServer, stopProcess, tempDir, waitFor } from '../helpers/index.ts';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'reports-token-0123456789abcdef';

// Delivered with the production secret, so the sandbox order is not among them.
const PRODUCTION = {
  ...EXPECTED,
  orders: {
    ...EXPECTED.orders,
    total: 4,
    byStatus: { ...EXPECTED.orders.byStatus, created: 0 },
    gmvByCurrency: { USD: 150, EUR: 30 },
    cancellationRate: 0.25,
  },
};

describe('reports through the service', () => {
  const tmp = tempDir();
  let server: Awaited<ReturnType<typeof startServer>>;
  let base: string;
  const reports = (query = '', token = TOKEN) =>
    fetch(`${base}/admin/api/reports${query}`, { headers: { authorization: `Bearer ${token}` } });

  before(async () => {
    server = await startServer(tmp.dir, { ADMIN_TOKEN: TOKEN });
    base = `http://127.0.0.1:${server.port}`;
    const now = Math.floor(Date.now() / 1000);
    for (const [i, e] of reportEvents(now).entries()) {
      if (e.environment === 'sandbox') continue;
      const body = { id: `evt_svc_${i}`, type: e.type, version: '1.0', created: e.created, data: e.data };
      assert.equal((await postSigned(server.url, body)).status, 200, `${e.type} ${i}`);
    }
    // Every event projected: the report is the whole expected one (no section is still filling).
    let last: Record<string, unknown> = {};
    const differing = () =>
      Object.keys(PRODUCTION).filter(
        (k) => !isDeepStrictEqual(last[k], PRODUCTION[k as keyof typeof PRODUCTION]),
      );
    await waitFor(
      async () => {
        last = (await (await reports()).json()) as Record<string, unknown>;
        return differing().length === 0;
      },
      { what: 'the report to show every seeded event', timeoutMs: 30_000 },
    ).catch((error: unknown) => {
      throw new Error(
        `${String(error)}; still differing: ${differing()
          .map((k) => `${k}: ${JSON.stringify(last[k])}`)
          .join('; ')}`,
      );
    });
  });
  after(async () => {
    if (server) await stopProcess(server);
    tmp.cleanup();
  });

  test('GET /admin/api/reports answers what report --json prints', async () => {
    const res = await reports('?since=7d');
    assert.equal(res.status, 200);
    const api = (await res.json()) as Record<string, unknown>;
    const cli = await runCli(['report', '--json', '--db', `sqlite:${join(tmp.dir, 'inbox.db')}`]);
    assert.equal(cli.code, 0, cli.stderr);
    const printed = JSON.parse(cli.stdout) as Record<string, unknown>;
    for (const section of Object.keys(PRODUCTION)) {
      assert.deepEqual(api[section], PRODUCTION[section as keyof typeof PRODUCTION], section);
      assert.deepEqual(printed[section], api[section], section);
    }
    const sandbox = (await (await reports('?environment=sandbox')).json()) as typeof EXPECTED;
    assert.equal(sandbox.orders.total, 0);
  });

  test('GET /admin/api/reports: the token is required and bad input is 400 with what to fix', async () => {
    assert.equal((await reports('', 'wrong-token-wrong-token')).status, 401);
    const since = await reports('?since=yesterday');
    assert.equal(since.status, 400);
    assert.match(
      ((await since.json()) as { error: { message: string } }).error.message,
      /since "yesterday" is not a time/,
    );
    const env = await reports('?environment=staging');
    assert.equal(env.status, 400);
    const unknown = await reports('?window=1h');
    assert.equal(unknown.status, 400);
    assert.match(
      ((await unknown.json()) as { error: { message: string } }).error.message,
      /unknown parameter "window"/,
    );
  });

  test('the dashboard draws the Reports and Charts pages with uPlot', {
    skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`,
  }, async () => {
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${base}/admin`);
      await page.fill('#token', TOKEN);
      await page.click('#signin-form button[type=submit]');
      await page.waitForSelector('#app:not([hidden])');

      await page.click('button.tab[data-view="reports"]');
      await page
        .waitForSelector('#view-reports[data-loaded="true"]:not([hidden])')
        .catch(async (error: unknown) => {
          throw new Error(
            `${String(error)}; page errors: ${errors.join('; ')}; toast: ${await page.textContent('#toast')}`,
          );
        });
      assert.equal(await page.isHidden('#view-events'), true);
      // Nine charts, each with labelled axes and a legend naming its series.
      assert.equal(await page.locator('#reports .uplot').count(), 9);
      const chart = (name: string) => page.locator(`[data-chart="${name}"]`);
      assert.equal(await chart('orders-status').getAttribute('data-axes'), 'status|orders');
      assert.match((await chart('orders-status').locator('.u-legend').textContent()) ?? '', /orders/);
      assert.equal(await chart('support-csat').getAttribute('data-axes'), 'rating|tickets');
      assert.equal(await chart('orders-gmv').getAttribute('data-axes'), 'currency|amount');
      assert.match(
        (await page.textContent('[data-section="orders"] .tiles')) ?? '',
        /cancellation rate\s*25\.0%/,
      );
      assert.match((await page.textContent('[data-section="support"] .tiles')) ?? '', /CSAT average\s*3\.75/);
      assert.match(
        (await page.textContent('[data-section="payments"]')) ?? '',
        /insufficient_funds, "retry"/,
      );
      // Hovering a bar shows its category and value in the legend.
      const box = await chart('orders-status').locator('.u-over').boundingBox();
      assert.ok(box);
      // Five statuses over the width: the fourth (delivered) sits at 3.5/5 of it.
      await page.mouse.move(box.x + (box.width * 3.5) / 5, box.y + box.height - 5);
      await waitFor(
        async () => /delivered/.test((await chart('orders-status').locator('.u-legend').textContent()) ?? ''),
        {
          what: 'the legend to show the hovered bar',
        },
      );
      await page.mouse.move(0, 0);
      mkdirSync(join(REPO, 'docs'), { recursive: true });
      await page.screenshot({ path: join(REPO, 'docs', 'reports.png'), fullPage: true });

      // The environment filter reaches the Reports page too.
      await page.selectOption('#environment', 'sandbox');
      await page.waitForSelector('#reports-note:has-text("sandbox only")');
      await page.selectOption('#environment', '');

      await page.click('button.tab[data-view="charts"]');
      await page.waitForSelector('#view-charts:not([hidden]) #chart-failures .uplot');
      assert.equal(await page.isHidden('#view-reports'), true);
      await page.waitForSelector('#chart-events .uplot');
      assert.equal(
        await page.getAttribute('#chart-events', 'data-axes'),
        'time (one point per minute)|events / min',
      );
      assert.equal(
        await page.getAttribute('#chart-failures', 'data-axes'),
        'time (one point per minute)|failures / min',
      );
      const legend = (await page.textContent('#chart-failures .u-legend')) ?? '';
      assert.match(legend, /failed attempts/);
      assert.match(legend, /refused signatures/);
      assert.match((await page.textContent('#chart-events .u-legend')) ?? '', /order\.created/);
      mkdirSync(join(REPO, 'test-artifacts'), { recursive: true });
      await page.screenshot({
        path: join(REPO, 'test-artifacts', 'reports-charts-page.png'),
        fullPage: true,
      });
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
    }
  });
});
