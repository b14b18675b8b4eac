/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core), part 1: the
 * overview and the queue list follow the broker live, the charts have a time axis and a range
 * kept in the URL, the selected view survives reload and back, the dark scheme applies (from
 * prefers-color-scheme and from the toggle), and at 420 px no view scrolls the page sideways.
 * Messages, jobs, forms and topics are in dashboard-*.test.ts. Screenshots: test-artifacts/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { hashOf, NO_CHROMIUM, openBrowser, waitText, type Browser } from '../helpers/chromium.js';
import { req, startWorker } from '../helpers/http.js';

const NARROW = { width: 420, height: 800 };
const LIGHT_BG = 'rgb(246, 247, 249)';
const DARK_BG = 'rgb(18, 21, 27)';

describe(
  'dashboard in Chromium: views, routing, charts, scheme, narrow screens',
  { skip: NO_CHROMIUM },
  () => {
    let b: TestBroker;
    let base: string;
    let browser: Browser;
    const post = (p: string, body?: unknown) => req(base, 'POST', p, { body });

    before(async () => {
      b = await startBroker({}, { http: '127.0.0.1:0' });
      base = b.server.httpUrl!;
      browser = await openBrowser();
    });

    after(async () => {
      await browser?.close();
      await b?.stop();
    });

    it('shows the queues live, with counts by state that follow the broker', async () => {
      const { page } = browser;
      await post('/v1/queues/dash.orders/batch', {
        messages: [{ json: { order: 1 } }, { json: { order: 2 } }, { json: { order: 3 } }],
      });
      const got = (await post('/v1/queues/dash.orders/consume?max=2')).body.messages as {
        lease: string;
      }[];
      await post('/v1/leases/nack', { leases: got.map((m) => m.lease), dead: true });

      await page.goto(`${base}/#/queues`, { waitUntil: 'domcontentloaded' });
      assert.match(await page.title(), /^Ferry dashboard/);
      const row = page.locator('tr[data-queue="dash.orders"]');
      await waitText(row.locator('td.ready'), /^1$/);
      assert.equal(await row.locator('td.dead').textContent(), '2');
      assert.equal(await page.locator('nav a[aria-current="page"]').textContent(), 'Queues');

      // Live: more messages arrive, the counts follow without a reload.
      await post('/v1/queues/dash.orders/batch', {
        messages: Array.from({ length: 5 }, (_, i) => ({ json: { order: 10 + i } })),
      });
      await waitText(row.locator('td.ready'), /^6$/);

      // The filter narrows the list by name.
      await post('/v1/queues/dash.other/messages', { body: 'x' });
      await page.locator('tr[data-queue="dash.other"]').waitFor();
      await page.locator('#queue-filter').fill('orders');
      await page.locator('tr[data-queue="dash.other"]').waitFor({ state: 'detached' });
      assert.equal(await row.count(), 1);
      await browser.screenshot('dashboard-queues');
    });

    it('draws rate and depth charts on a time axis over a range kept in the URL', async () => {
      const { page } = browser;
      const w = startWorker(b.server, 'dash.svc', () => 'ok');
      await post('/v1/services/dash.svc/jobs', { params: 1 });
      await page.goto(`${base}/#/overview`);
      const rates = page.locator('#chart-rates');
      // At least two snapshots drawn: a line, with time ticks under it.
      await page.waitForFunction(
        "Number(document.querySelector('#chart-rates')?.dataset.points ?? 0) >= 2",
      );
      assert.equal(await rates.getAttribute('data-range'), String(5 * 60_000), 'default: 5 min');
      const ticks = (await rates.getAttribute('data-ticks')) ?? '';
      assert.match(ticks, /^\d\d:\d\d:\d\d( \d\d:\d\d:\d\d)+$/, `time axis labels: ${ticks}`);
      assert.match((await rates.getAttribute('aria-label')) ?? '', /in\/s, ack\/s: \d+ points/);
      await page.locator('tr[data-service="dash.svc"]').waitFor();

      await page.locator('#range').selectOption('15m');
      await page.locator(`#chart-depth[data-range="${15 * 60_000}"]`).waitFor();
      assert.match(await hashOf(page), /^#\/overview\?range=15m$/);
      await page.reload();
      await page.locator(`#chart-rates[data-range="${15 * 60_000}"]`).waitFor();
      assert.equal(await page.locator('#range').inputValue(), '15m', 'the range survives reload');
      await page.locator('#range').selectOption('1m');
      await page.locator(`#chart-rates[data-range="60000"]`).waitFor();
      const oneMinute = (await rates.getAttribute('data-ticks')) ?? '';
      assert.ok(oneMinute.split(' ').length >= 2, `ticks over 1 min: ${oneMinute}`);
      await browser.screenshot('dashboard-overview');
      w.close();
    });

    it('keeps the selected view in the URL: links, reload, back and forward', async () => {
      const { page } = browser;
      await page.goto(`${base}/#/overview`);
      await page.locator('#health').waitFor();
      await page.locator('nav a[data-view="queues"]').click();
      await page.locator('tr[data-queue="dash.orders"] td.name a').click();
      await page.locator('#queue-name', { hasText: 'dash.orders' }).waitFor();
      assert.equal(await hashOf(page), '#/queues/dash.orders');
      await page.locator('.tabs a[data-state="dead"]').click();
      await page.locator('.tabs a[data-state="dead"][aria-selected="true"]').waitFor();
      assert.equal(await hashOf(page), '#/queues/dash.orders?state=dead');
      await page.locator('#messages tbody tr[data-id]').nth(1).waitFor();

      await page.reload();
      await page.locator('.tabs a[data-state="dead"][aria-selected="true"]').waitFor();
      await page.locator('#messages tbody tr[data-id]').nth(1).waitFor();
      assert.equal(await page.locator('#messages tbody tr[data-id]').count(), 2);

      await page.goBack();
      await page.locator('.tabs a[data-state="ready"][aria-selected="true"]').waitFor();
      assert.equal(await hashOf(page), '#/queues/dash.orders');
      await page.goBack();
      await page.locator('#queues').waitFor();
      assert.equal(await hashOf(page), '#/queues');
      await page.goForward();
      await page.locator('#queue-name').waitFor();

      // An unknown view shows the overview; a queue that does not exist says so.
      await page.goto(`${base}/#/nowhere`);
      await page.locator('#health').waitFor();
      const before = browser.errors.length;
      await page.goto(`${base}/#/queues/dash.none`);
      await waitText(page.locator('#messages-status'), 'QUEUE_NOT_FOUND');
      // Chromium logs the 404 answers the page asked for; nothing else is allowed.
      assert.ok(
        browser.errors.slice(before).every((e) => e.includes('404')),
        String(browser.errors),
      );
      browser.errors.length = before;
    });

    it('applies the dark scheme from prefers-color-scheme and from the toggle', async () => {
      const { page } = browser;
      const bg = () => page.evaluate<string>('getComputedStyle(document.body).backgroundColor');
      await page.emulateMedia({ colorScheme: 'light' });
      await page.goto(`${base}/#/overview`);
      await page.locator('#health').waitFor();
      assert.equal(await bg(), LIGHT_BG);
      await page.emulateMedia({ colorScheme: 'dark' });
      assert.equal(await bg(), DARK_BG, 'dark when the system prefers dark');
      await browser.screenshot('dashboard-dark');

      // The toggle cycles auto → dark → light and is remembered.
      const toggle = page.locator('#theme');
      assert.equal(await toggle.textContent(), 'auto');
      await toggle.click();
      await waitText(toggle, 'dark');
      await toggle.click();
      await waitText(toggle, 'light');
      assert.equal(await bg(), LIGHT_BG, 'light forced over a dark system');
      await page.reload();
      await waitText(page.locator('#theme'), 'light');
      assert.equal(await bg(), LIGHT_BG);
      await page.emulateMedia({ colorScheme: 'light' });
      await page.locator('#theme').click();
      await waitText(page.locator('#theme'), 'auto');
      await page.locator('#theme').click();
      await waitText(page.locator('#theme'), 'dark');
      assert.equal(await bg(), DARK_BG, 'dark forced over a light system');
      await page.locator('#theme').click();
      await page.locator('#theme').click();
      await waitText(page.locator('#theme'), 'auto');
    });

    it('at 420 px wide, no view scrolls the page sideways; wide tables scroll in place', async () => {
      const { page } = browser;
      await page.setViewportSize(NARROW);
      try {
        const views: [string, string][] = [
          ['overview', '#services'],
          ['queues', '#queues'],
          ['queues/dash.orders?state=dead', '#messages tbody tr[data-id]'],
          ['jobs', '#jobs'],
          ['send', '#send-form'],
          ['topics', '#subscriptions'],
          ['connections', '#consumers'],
        ];
        for (const [view, ready] of views) {
          await page.goto(`${base}/#/${view}`);
          await page.locator(ready).first().waitFor();
          const overflow = await page.evaluate<number>(
            'document.documentElement.scrollWidth - document.documentElement.clientWidth',
          );
          assert.equal(overflow, 0, `${view}: the page is ${overflow} px wider than the screen`);
          await browser.screenshot(`dashboard-420-${view.split(/[/?]/)[0]}`);
        }
        // The queue list is wider than 420 px: its wrapper scrolls, so every column is reachable.
        await page.goto(`${base}/#/queues`);
        await page.locator('#queues').waitFor();
        const [scroll, client] = await page.evaluate<number[]>(
          "(w => [w.scrollWidth, w.clientWidth])(document.querySelector('#queues').parentElement)",
        );
        assert.ok(
          scroll! > client!,
          `the table scrolls inside its wrapper (${scroll} > ${client})`,
        );
      } finally {
        await page.setViewportSize({ width: 1280, height: 900 });
      }
      assert.deepEqual(browser.errors, [], 'no errors in the page');
    });
  },
);
