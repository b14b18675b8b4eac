/**
 * The dashboard in Chromium, part 3: the send-message and submit-job forms (good input, and
 * bad input answered with the check's or the gateway's coded error), job search with paging,
 * one job in detail (params, headers, progress, partial results, error, result), retry of a
 * failed job and cancel of a queued one. Each action is checked through the REST API too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WorkerHandle } from 'ferrymq-server/internal/core/job-types.js';
import { startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { hashOf, NO_CHROMIUM, openBrowser, waitText, type Browser } from '../helpers/chromium.js';
import { req, type Loose } from '../helpers/http.js';

const MAX_MESSAGE_BYTES = 32 * 1024;
const XSS = '<img src=x onerror="globalThis.__xss = 3">';
const PAGE_SIZE = 20;

describe('dashboard in Chromium: forms and jobs', { skip: NO_CHROMIUM }, () => {
  let b: TestBroker;
  let base: string;
  let browser: Browser;
  const get = (p: string) => req(base, 'GET', p);
  const post = (p: string, body?: unknown) => req(base, 'POST', p, { body });

  before(async () => {
    b = await startBroker({}, { http: '127.0.0.1:0', maxMessageBytes: MAX_MESSAGE_BYTES });
    base = b.server.httpUrl!;
    browser = await openBrowser();
  });

  after(async () => {
    await browser?.close();
    await b?.stop();
  });

  it('sends a message with the form: JSON body, headers, delay', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/send`);
    await page.locator('#send-queue').fill('dash.sent');
    await page.locator('#send-body').fill('{"order": 42}');
    await page.locator('#send-json').check();
    await page.locator('#send-headers').fill('tenant=acme\ntrace = t-1');
    await page.locator('#send-priority').fill('7');
    await page.locator('#send-form button[type="submit"]').click();
    await waitText(page.locator('#send-status'), /stored as message \d+ in dash\.sent/);
    const id = /message (\d+)/.exec((await page.locator('#send-status').textContent())!)![1]!;
    const m = (await get(`/v1/queues/dash.sent/messages/${id}`)).body;
    assert.equal(m.body.preview, '{"order":42}', 'stored as its JSON text');
    assert.deepEqual(m.headers, { tenant: 'acme', trace: 't-1' });
    assert.equal(m.priority, 7);

    // A delayed text message lands in scheduled; the link browses it.
    await page.locator('#send-json').uncheck();
    await page.locator('#send-body').fill(XSS);
    await page.locator('#send-headers').fill('');
    await page.locator('#send-delay').fill('3600000');
    await page.locator('#send-form button[type="submit"]').click();
    await waitText(page.locator('#send-status'), /stored as message \d+/);
    assert.equal((await get('/v1/queues/dash.sent')).body.scheduled, 1);
    await page.locator('#send-status a', { hasText: 'browse' }).click();
    await waitText(page.locator('#messages tbody td.body'), XSS);
    assert.equal(await hashOf(page), '#/queues/dash.sent?state=scheduled');
  });

  it('answers bad send input with an error and stores nothing', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/send`);
    const status = page.locator('#send-status');
    const submit = page.locator('#send-form button[type="submit"]');
    await page.locator('#send-queue').fill('dash.badsend');
    await page.locator('#send-body').fill('{not json');
    await page.locator('#send-json').check();
    await submit.click();
    await waitText(status, 'the body is not valid JSON');
    await page.locator('#send-json').uncheck();
    await page.locator('#send-headers').fill('no equals sign');
    await submit.click();
    await waitText(status, 'header line "no equals sign" is not key=value');
    await page.locator('#send-headers').fill('');
    // Too big for the broker: the gateway's coded error is shown as it comes.
    await page.locator('#send-body').fill('z'.repeat(MAX_MESSAGE_BYTES + 1));
    await submit.click();
    await waitText(status, 'MESSAGE_TOO_LARGE');
    assert.equal(await status.getAttribute('class'), 'status-line bad');
    // Chromium logs the 413 answer; nothing else may have gone wrong.
    assert.ok(
      browser.errors.every((e) => e.includes('413')),
      String(browser.errors),
    );
    browser.errors.length = 0;
    const stored = await get('/v1/queues/dash.badsend');
    assert.ok(stored.status === 404 || stored.body.depth === 0, stored.text);
    // A bad queue name is refused by the form before any request.
    await page.locator('#send-queue').fill('bad name');
    await page.locator('#send-body').fill('x');
    await submit.click();
    assert.equal(await page.locator('#send-queue:invalid').count(), 1);
    const names = ((await get('/v1/queues')).body.queues as Loose[]).map((q) => q.name);
    assert.ok(!names.includes('bad name'), String(names));
  });

  it('submits a job with the form and opens it', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/send`);
    await page.locator('#job-service').fill('dash.later');
    await page.locator('#job-params').fill(`{"title": ${JSON.stringify(XSS)}}`);
    await page.locator('#job-headers-input').fill('origin=dashboard');
    await page.locator('#job-max-attempts').fill('3');
    await page.locator('#submit-form button[type="submit"]').click();
    await waitText(page.locator('#submit-status'), /job [0-9a-f]{32} queued/);
    await page.locator('#submitted-job').click();
    const panel = page.locator('#job-detail');
    await waitText(panel.locator('#job-status'), 'queued');
    assert.equal(
      await panel.locator('pre.body').first().textContent(),
      `{\n  "title": ${JSON.stringify(XSS)}\n}`,
    );
    assert.deepEqual(await panel.locator('#job-headers tbody td').allTextContents(), [
      'origin',
      'dashboard',
    ]);
    assert.match(await panel.locator('dl.facts').innerText(), /attempts\s+0 of 3/);
    assert.equal(await page.locator('#view img').count(), 0);
    assert.equal(await page.evaluate('globalThis.__xss'), undefined);

    // Bad params: the form says so and submits nothing.
    await page.goto(`${base}/#/send`);
    await page.locator('#job-service').fill('dash.later');
    await page.locator('#job-params').fill('[1,');
    await page.locator('#submit-form button[type="submit"]').click();
    await waitText(page.locator('#submit-status'), 'params is not valid JSON');
    const svc = (await get('/v1/services')).body.services.find(
      (s: Loose) => s.name === 'dash.later',
    );
    assert.equal(svc.queued, 1);
  });

  it('cancels a queued job from its detail', async () => {
    const { page } = browser;
    const id = (await post('/v1/services/dash.nobody/jobs', { params: 1 })).body.id as string;
    await page.goto(`${base}/#/jobs?job=${id}`);
    const panel = page.locator('#job-detail');
    await waitText(panel.locator('#job-status'), 'queued');
    await panel.locator('button[data-action="cancel"]').click();
    await waitText(page.locator('#jobs-status'), 'cancel asked: now cancelled');
    await waitText(panel.locator('#job-status'), 'cancelled');
    assert.equal(await panel.locator('button[data-action="cancel"]').count(), 0);
    assert.equal((await get(`/v1/jobs/${id}`)).body.status, 'cancelled');
    // A cancelled job can be retried: back to queued.
    await panel.locator('button[data-action="retry"]').click();
    await waitText(panel.locator('#job-status'), 'queued');
    assert.equal((await get(`/v1/jobs/${id}`)).body.status, 'queued');
  });

  it('shows a failed job with progress, partials and error, retries it to done', async () => {
    const { page } = browser;
    let failing = true;
    const w: WorkerHandle = b.server.jobs.registerWorker(
      {
        assign: (job) => {
          w.progress(job.id, { percent: 40, message: 'resizing' });
          w.partial(job.id, [Buffer.from('thumb-1')]);
          if (failing) {
            void w.fail(job.id, { code: 'DISK', message: `no space ${XSS}` }, { retry: false });
          } else void w.complete(job.id, [Buffer.from('{"thumbnail":"ok"}')]);
        },
        cancel: () => {},
      },
      { services: ['dash.resize'], protocol: 'test', name: 'resizer-1' },
    );
    const id = (await post('/v1/services/dash.resize/jobs', { params: { img: 7 } })).body
      .id as string;
    assert.equal((await get(`/v1/jobs/${id}?wait=10000`)).body.status, 'failed');

    await page.goto(`${base}/#/jobs?job=${id}`);
    const panel = page.locator('#job-detail');
    await waitText(panel.locator('#job-status'), 'failed');
    const facts = await panel.locator('dl.facts').innerText();
    assert.match(facts, /progress\s+40% · resizing/);
    assert.ok(facts.includes(`DISK: no space ${XSS}`), facts);
    assert.equal(await panel.locator('ol.partials li').textContent(), 'thumb-1');
    assert.equal(await page.locator('#view img').count(), 0);
    await browser.screenshot('dashboard-job-failed');

    failing = false;
    await panel.locator('button[data-action="retry"]').click();
    await waitText(page.locator('#jobs-status'), /^retried: now (queued|running|done)$/);
    await waitFor(async () => (await get(`/v1/jobs/${id}`)).body.status === 'done', 'retry ran');
    await page.locator('button[data-action="refresh"]').click();
    await waitText(panel.locator('#job-status'), 'done');
    assert.equal(await panel.locator('#job-result').textContent(), '{\n  "thumbnail": "ok"\n}');
    assert.equal(await panel.locator('button[data-action="retry"]').count(), 0);
    w.close();
  });

  it('searches jobs by service and id, filters by status, pages', async () => {
    const { page } = browser;
    const made: string[] = [];
    for (let i = 0; i < PAGE_SIZE + 3; i++) {
      made.push((await post('/v1/services/dash.bulk/jobs', { params: i })).body.id as string);
    }
    await page.goto(`${base}/#/jobs`);
    await page.locator('#job-search').fill('bulk');
    await page.locator('#job-search').press('Enter');
    await page.locator(`#jobs tbody tr[data-job="${made.at(-1)}"]`).waitFor();
    assert.equal(await hashOf(page), '#/jobs?q=bulk');
    const shown = () => page.locator('#jobs tbody tr[data-job]').count();
    assert.equal(await shown(), PAGE_SIZE);
    assert.equal(await page.locator('#page-info').textContent(), `1–${PAGE_SIZE}`);
    await page.locator('button[data-page="next"]').click();
    await page.locator(`#jobs tbody tr[data-job="${made[0]}"]`).waitFor();
    assert.equal(await shown(), 3);
    assert.equal(await hashOf(page), `#/jobs?q=bulk&offset=${PAGE_SIZE}`);
    assert.equal(await page.locator('button[data-page="next"]').isDisabled(), true);
    await page.reload();
    await page.locator(`#jobs tbody tr[data-job="${made[0]}"]`).waitFor();
    await page.locator('button[data-page="prev"]').click();
    await page.locator(`#jobs tbody tr[data-job="${made.at(-1)}"]`).waitFor();

    // By id prefix: exactly that job.
    await page.locator('#job-search').fill(made[5]!.slice(0, 14));
    await page.locator('form[role="search"] button[type="submit"]').click();
    await page.locator(`#jobs tbody tr[data-job="${made[5]}"]`).waitFor();
    assert.equal(await shown(), 1);
    // By status: the one done job of this file (the retried resize).
    await page.locator('#job-search').fill('');
    await page.locator('#job-status-filter').selectOption('done');
    await page.locator('form[role="search"] button[type="submit"]').click();
    await waitText(page.locator('#page-info'), /^1–1$/);
    assert.deepEqual(await page.locator('#jobs tbody td:nth-child(2)').allTextContents(), [
      'dash.resize',
    ]);
    assert.equal(await hashOf(page), '#/jobs?status=done');
    await page.locator('#job-status-filter').selectOption('queued');
    await page.locator('#job-search').fill('nothing-matches-this');
    await page.locator('form[role="search"] button[type="submit"]').click();
    await waitText(page.locator('#jobs tbody'), 'no jobs match');
    assert.deepEqual(browser.errors, [], 'no errors in the page');
  });
});
