/**
 * The dashboard in Chromium, security: (1) every view that shows stored data puts it in the
 * page as text — `<img onerror>`, `<script>` and attribute-breaking payloads stored in topic
 * names, message bodies and headers, job params, headers, results and errors, and a worker's
 * name execute nothing, add no element, and read back as the text stored; (2) with an auth
 * file the page shows the login form only until a valid token is given, keeps the token in
 * sessionStorage (never in the URL), shows only what that user may see, and logs out.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WorkerHandle } from 'ferrymq-server/internal/core/job-types.js';
import { hashToken } from 'ferrymq-server/internal/security/auth-model.js';
import { startBroker, tmpDir, waitFor, type TestBroker } from '../helpers/broker.js';
import { NO_CHROMIUM, openBrowser, waitText, type Browser } from '../helpers/chromium.js';
import { req, type Loose } from '../helpers/http.js';

const IMG = '<img src=x onerror="globalThis.__xss = 1">';
const SCRIPT = '<script>globalThis.__xss = 2</script>';
const ATTR = '"><svg onload="globalThis.__xss = 3">';
const TOPIC = 'xss/<img src=x onerror="globalThis.__xss = 4">';
const Q = 'xss.q';
const SERVICE = 'xss.svc';

describe('dashboard in Chromium: hostile data is shown as text', { skip: NO_CHROMIUM }, () => {
  let b: TestBroker;
  let base: string;
  let browser: Browser;
  let worker: WorkerHandle;
  const post = (p: string, body?: unknown) => req(base, 'POST', p, { body });
  const ids: Record<string, string> = {};

  before(async () => {
    b = await startBroker({}, { http: '127.0.0.1:0' });
    base = b.server.httpUrl!;
    browser = await openBrowser();
    ids['img'] = (
      await post(`/v1/queues/${Q}/messages`, { body: IMG, headers: { [SCRIPT]: ATTR } })
    ).body.id;
    ids['json'] = (await post(`/v1/queues/${Q}/messages`, { json: { [ATTR]: SCRIPT } })).body.id;
    const retained = await post('/v1/topics/publish', {
      topic: TOPIC,
      body: SCRIPT,
      headers: { [IMG]: ATTR },
      retain: true,
    });
    assert.equal(retained.status, 201, retained.text);
    worker = b.server.jobs.registerWorker(
      {
        assign(job) {
          const params = job.params[0]!.toString();
          if (params.includes('fail'))
            void worker.fail(job.id, { code: 'WORKER_ERROR', message: IMG }, { retry: false });
          else void worker.complete(job.id, [Buffer.from(JSON.stringify({ [SCRIPT]: IMG }))]);
        },
        cancel() {},
      },
      { services: [SERVICE], concurrency: 2, protocol: 'test', name: ATTR },
    );
    const done = await post(`/v1/services/${SERVICE}/call?wait=10000`, {
      params: { [IMG]: SCRIPT },
      headers: { [ATTR]: IMG },
    });
    assert.equal(done.status, 200, done.text);
    ids['done'] = done.body.id;
    const failed = await post(`/v1/services/${SERVICE}/jobs`, { params: { fail: ATTR } });
    ids['failed'] = failed.body.id;
    await waitFor(
      async () => (await req(base, 'GET', `/v1/jobs/${ids['failed']}`)).body.status === 'failed',
      'the job failed',
    );
  });

  after(async () => {
    worker?.close();
    await browser?.close();
    await b?.stop();
  });

  /** Nothing ran and no element came from the data: the payload flag is unset, no img/svg. */
  async function assertInert(view: string): Promise<void> {
    const { page } = browser;
    const state = await page.evaluate<Loose>(`({
      flag: globalThis.__xss,
      injected: document.querySelectorAll('#view img, #view svg, #view script, body > img').length,
      scripts: document.querySelectorAll('script').length,
    })`);
    assert.deepEqual(state, { flag: undefined, injected: 0, scripts: 1 }, view);
  }

  it('executes nothing in any view that shows the payloads', async () => {
    const { page } = browser;
    const views: [string, string][] = [
      [`#/queues`, Q],
      [`#/queues/${Q}?state=ready`, IMG],
      [`#/queues/${Q}?state=ready&msg=${ids['img']}`, ATTR],
      [`#/queues/${Q}?state=ready&msg=${ids['json']}`, SCRIPT],
      [`#/jobs?q=${SERVICE}`, SERVICE],
      [`#/jobs?job=${ids['done']}`, SCRIPT],
      [`#/jobs?job=${ids['failed']}`, IMG],
      [`#/topics?pattern=xss/**`, TOPIC],
      [`#/connections`, ATTR],
      [`#/overview`, SERVICE],
    ];
    for (const [hash, text] of views) {
      await page.goto(`${base}/${hash}`);
      // The payload is there, as the very text stored.
      await waitText(page.locator('#view'), text);
      // Give any injected handler the time to fire (an image error is a network round trip).
      await page.evaluate('new Promise((r) => requestAnimationFrame(() => setTimeout(r, 200)))');
      await assertInert(hash);
    }
    const detail = await page.locator('#view').textContent();
    assert.ok(detail !== null);
    assert.deepEqual(browser.errors, [], 'no errors, no CSP violation in the page');
  });
});

describe('dashboard in Chromium: login with a token', { skip: NO_CHROMIUM }, () => {
  const TOKEN = 'dash-token-1';
  let b: TestBroker;
  let base: string;
  let browser: Browser;

  before(async () => {
    const file = path.join(tmpDir('ferry-dash-auth-'), 'auth.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        users: [
          {
            name: 'viewer',
            tokens: [hashToken(TOKEN)],
            allow: { 'queue:send': ['mine.*'], 'queue:manage': ['mine.*'] },
          },
          { name: 'admin', tokens: [hashToken('admin-token')], allow: { 'queue:send': ['**'] } },
        ],
      }),
    );
    b = await startBroker({ 'auth-file': file }, { http: '127.0.0.1:0' });
    base = b.server.httpUrl!;
    for (const q of ['mine.a', 'theirs.b']) {
      const r = await fetch(`${base}/v1/queues/${q}/messages`, {
        method: 'POST',
        headers: { authorization: 'Bearer admin-token', 'content-type': 'application/json' },
        body: JSON.stringify({ body: 'x' }),
      });
      assert.equal(r.status, 201);
    }
    browser = await openBrowser();
  });

  after(async () => {
    await browser?.close();
    await b?.stop();
  });

  it('shows the login form only until a valid token is given', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/queues`);
    await page.locator('#login').waitFor();
    assert.equal(await page.locator('nav').isVisible(), false, 'no navigation');
    assert.equal(await page.locator('#queues').count(), 0, 'no view');
    assert.doesNotMatch((await page.locator('body').textContent())!, /theirs\.b|mine\.a/);

    await page.locator('#token').fill('wrong-token');
    await page.locator('#login button[type="submit"]').click();
    await waitText(page.locator('#login-status'), 'not accepted');
    assert.equal(await page.evaluate("sessionStorage.getItem('ferry.token')"), null);

    await page.locator('#token').fill(TOKEN);
    await page.locator('#login button[type="submit"]').click();
    // The page reloads with the token: the queue list, with only the user's queues.
    const mine = page.locator('tr[data-queue="mine.a"]');
    await mine.waitFor();
    await page.locator('#live.on').waitFor();
    assert.equal(
      await page.locator('tr[data-queue="theirs.b"]').count(),
      0,
      'only what it may see',
    );
    assert.equal(await page.evaluate("sessionStorage.getItem('ferry.token')"), TOKEN);
    assert.ok(!page.url().includes(TOKEN), `not in the URL: ${page.url()}`);
    assert.equal(await page.evaluate("localStorage.getItem('ferry.token')"), null);

    // A view the user may use works with the token (queue:manage on mine.*: browse).
    await page.goto(`${base}/#/queues/mine.a?state=ready`);
    await page.locator('#messages tbody tr[data-id]').first().waitFor();

    // Log out: the token is forgotten, the login form is back.
    await page.locator('#logout').click();
    await page.locator('#login').waitFor();
    assert.equal(await page.evaluate("sessionStorage.getItem('ferry.token')"), null);
    const errors = browser.errors.filter((e) => !/\b401\b/.test(e));
    assert.deepEqual(errors, [], 'no errors but the 401 answers the browser logs');
  });
});
