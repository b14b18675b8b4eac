/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core): the page
 * loads, shows a queue the test created, follows its depth live, and its redrive button moves
 * dead letters back. A screenshot goes to test-artifacts/dashboard.png.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT, startBroker, tmpDir, type TestBroker } from '../helpers/broker.js';
import { req } from '../helpers/http.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const UI_TIMEOUT_MS = 20_000;

describe(
  'dashboard in Chromium',
  { skip: !fs.existsSync(CHROMIUM) && `${CHROMIUM} missing` },
  () => {
    let b: TestBroker;
    let base: string;
    let context: BrowserContext;
    let page: Page;
    const pageErrors: string[] = [];
    const post = (p: string, body?: unknown) => req(base, 'POST', p, { body });

    before(async () => {
      b = await startBroker({}, { http: '127.0.0.1:0' });
      base = b.server.httpUrl!;
      context = await chromium.launchPersistentContext(tmpDir('ferry-chromium-'), {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
        viewport: { width: 1280, height: 900 },
      });
      page = context.pages()[0] ?? (await context.newPage());
      page.on('pageerror', (e) => pageErrors.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') pageErrors.push(m.text());
      });
    });

    after(async () => {
      await context?.close();
      await b?.stop();
    });

    it('shows a queue, follows its depth live, and redrives its dead letters', async () => {
      // A queue with 3 messages, 2 of them dead-lettered.
      await post('/v1/queues/dash.orders/batch', {
        messages: [{ json: { order: 1 } }, { json: { order: 2 } }, { json: { order: 3 } }],
      });
      const got = (await post('/v1/queues/dash.orders/consume?max=2')).body.messages as {
        lease: string;
      }[];
      await post('/v1/leases/nack', { leases: got.map((m) => m.lease), dead: true });
      // A job with a result, for the recent jobs table.
      const w = b.server.jobs.registerWorker(
        {
          assign: (job) => void w.complete(job.id, [Buffer.from('{"thumbnail":"ok"}')]),
          cancel: () => {},
        },
        { services: ['images.resize'], protocol: 'test', name: 'resizer-1' },
      );
      const job = (await post('/v1/services/images.resize/jobs', { params: { id: 7 } })).body as {
        id: string;
      };
      await req(base, 'GET', `/v1/jobs/${job.id}?wait=10000`);

      await page.goto(base, { waitUntil: 'domcontentloaded' });
      assert.equal(await page.title(), 'Ferry dashboard');
      const row = page.locator('tr[data-queue="dash.orders"]');
      const depth = row.locator('td.depth');
      await depth.filter({ hasText: /^1$/ }).waitFor({ timeout: UI_TIMEOUT_MS });
      assert.equal(await row.locator('td.dead').textContent(), '2');

      // Live: more messages arrive, the depth follows without a reload.
      await post('/v1/queues/dash.orders/batch', {
        messages: Array.from({ length: 5 }, (_, i) => ({ json: { order: 10 + i } })),
      });
      await depth.filter({ hasText: /^6$/ }).waitFor({ timeout: UI_TIMEOUT_MS });

      // Open the queue, see its dead letters, redrive them.
      await row.click();
      const deadRows = page.locator('#dead tbody tr[data-id]');
      await deadRows.nth(1).waitFor({ timeout: UI_TIMEOUT_MS });
      assert.equal(await deadRows.count(), 2);
      await page.locator('#jobs tbody tr[data-job]').first().waitFor({ timeout: UI_TIMEOUT_MS });
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });

      await page.locator('button[data-action="redrive"]').click();
      await page
        .locator('#d-msg', { hasText: '2 dead letters moved back to ready' })
        .waitFor({ timeout: UI_TIMEOUT_MS });
      await depth.filter({ hasText: /^8$/ }).waitFor({ timeout: UI_TIMEOUT_MS });
      await row.locator('td.dead').filter({ hasText: /^0$/ }).waitFor({ timeout: UI_TIMEOUT_MS });
      const s = (await req(base, 'GET', '/v1/queues/dash.orders')).body;
      assert.deepEqual([s.depth, s.dead], [8, 0]);
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-after-redrive.png') });
      w.close();
      assert.deepEqual(pageErrors, [], 'no errors in the page');
    });
  },
);
