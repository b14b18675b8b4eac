/**
 * The dashboard in Chromium, part 2: a queue's messages by state (ready, scheduled, leased,
 * dead) with paging, one message in detail (headers, attempts, capped body preview), deleting
 * one message, redriving one dead letter and all of them, and hostile bodies and headers shown
 * as text. Every action is checked against the broker through the REST API too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import {
  acceptNextDialog,
  hashOf,
  NO_CHROMIUM,
  openBrowser,
  waitText,
  type Browser,
} from '../helpers/chromium.js';
import { req, type Loose } from '../helpers/http.js';

const Q = 'dash.msgs';
const XSS_BODY = '<img src=x onerror="globalThis.__xss = 1">';
const XSS_HEADER = '<script>globalThis.__xss = 2</script>';
const READY = 25;
const PAGE_SIZE = 20;

describe('dashboard in Chromium: messages', { skip: NO_CHROMIUM }, () => {
  let b: TestBroker;
  let base: string;
  let browser: Browser;
  const get = (p: string) => req(base, 'GET', p);
  const post = (p: string, body?: unknown) => req(base, 'POST', p, { body });
  const ids: Record<'ready' | 'dead' | 'leased' | 'scheduled' | 'xss' | 'big', string[]> = {
    ready: [],
    dead: [],
    leased: [],
    scheduled: [],
    xss: [],
    big: [],
  };

  before(async () => {
    b = await startBroker({ 'ack-timeout': '600000' }, { http: '127.0.0.1:0' });
    base = b.server.httpUrl!;
    browser = await openBrowser();
    // 3 to kill, 1 to lease, then the ready ones; a scheduled one; a hostile one; a big one.
    const first = await post(`/v1/queues/${Q}/batch`, {
      messages: Array.from({ length: 4 }, (_, i) => ({ json: { doomed: i } })),
    });
    const got = (await post(`/v1/queues/${Q}/consume?max=4`)).body.messages as Loose[];
    assert.deepEqual(
      got.map((m) => m.id),
      first.body.ids,
    );
    await post('/v1/leases/nack', { leases: got.slice(0, 3).map((m) => m.lease), dead: true });
    ids.dead = got.slice(0, 3).map((m) => m.id as string);
    ids.leased = [got[3].id as string];
    const ready = await post(`/v1/queues/${Q}/batch`, {
      messages: Array.from({ length: READY }, (_, i) => ({
        json: { n: i },
        headers: { 'x-n': String(i) },
      })),
    });
    ids.ready = ready.body.ids as string[];
    const later = await post(`/v1/queues/${Q}/messages`, { body: 'later', delayMs: 3_600_000 });
    ids.scheduled = [later.body.id as string];
    const xss = await post(`/v1/queues/${Q}/messages`, {
      body: XSS_BODY,
      headers: { [XSS_HEADER]: XSS_HEADER },
    });
    ids.xss = [xss.body.id as string];
    const big = await post(`/v1/queues/${Q}/messages`, { body: 'y'.repeat(10_000) });
    ids.big = [big.body.id as string];
  });

  after(async () => {
    await browser?.close();
    await b?.stop();
  });

  const rows = () => browser.page.locator('#messages tbody tr[data-id]');
  const rowIds = () => rows().locator('td:first-child').allTextContents();

  it('browses each state with its count', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/queues/${Q}`);
    const tab = (s: string) => page.locator(`.tabs a[data-state="${s}"]`);
    await waitText(tab('ready').locator('.count'), String(READY + 2));
    assert.equal(await tab('dead').locator('.count').textContent(), '3');
    assert.equal(await tab('leased').locator('.count').textContent(), '1');
    assert.equal(await tab('scheduled').locator('.count').textContent(), '1');
    for (const state of ['dead', 'leased', 'scheduled'] as const) {
      await tab(state).click();
      await page.locator(`.tabs a[data-state="${state}"][aria-selected="true"]`).waitFor();
      await rows().first().waitFor();
      assert.deepEqual(await rowIds(), ids[state], state);
      assert.equal(await hashOf(page), `#/queues/${Q}?state=${state}`);
    }
    await waitText(rows().first().locator('td.body'), 'later');
    await browser.screenshot('dashboard-scheduled');
  });

  it('pages through the ready messages forwards and back', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/queues/${Q}?state=ready`);
    await rows()
      .nth(PAGE_SIZE - 1)
      .waitFor();
    const all = [...ids.ready, ...ids.xss, ...ids.big];
    assert.deepEqual(await rowIds(), all.slice(0, PAGE_SIZE));
    assert.equal(await page.locator('#page-info').textContent(), `${PAGE_SIZE} of 27 ready`);
    assert.equal(await page.locator('button[data-page="prev"]').isDisabled(), true);
    await page.locator('button[data-page="next"]').click();
    await page.locator(`#messages tbody tr[data-id="${all[PAGE_SIZE]}"]`).waitFor();
    assert.deepEqual(await rowIds(), all.slice(PAGE_SIZE));
    assert.equal(await hashOf(page), `#/queues/${Q}?state=ready&after=${all[PAGE_SIZE - 1]}`);
    assert.equal(await page.locator('button[data-page="next"]').isDisabled(), true, 'last page');
    // The page is in the URL: a reload shows the same page.
    await page.reload();
    await page.locator(`#messages tbody tr[data-id="${all[PAGE_SIZE]}"]`).waitFor();
    await page.locator('button[data-page="first"]').click();
    await page.locator(`#messages tbody tr[data-id="${all[0]}"]`).waitFor();
    await page.locator('button[data-page="next"]').click();
    await page.locator(`#messages tbody tr[data-id="${all[PAGE_SIZE]}"]`).waitFor();
    await page.locator('button[data-page="prev"]').click();
    await page.locator(`#messages tbody tr[data-id="${all[0]}"]`).waitFor();
    assert.deepEqual(await rowIds(), all.slice(0, PAGE_SIZE));
  });

  it('shows one message: attempts, headers, body; a big body capped at 4 KiB', async () => {
    const { page } = browser;
    const id = ids.ready[3]!;
    await page.goto(`${base}/#/queues/${Q}?state=ready`);
    await page.locator(`#messages tbody tr[data-id="${id}"] a`).click();
    const panel = page.locator('#message-detail');
    await waitText(panel.locator('h3'), `Message ${id}`);
    assert.equal(await hashOf(page), `#/queues/${Q}?state=ready&msg=${id}`);
    const facts = await panel.locator('dl.facts').innerText();
    assert.match(facts, /state\s+ready/);
    assert.match(facts, /attempts\s+0/);
    assert.deepEqual(await panel.locator('#message-headers tbody td').allTextContents(), [
      'x-n',
      '3',
    ]);
    assert.equal(await panel.locator('pre.body').textContent(), '{\n  "n": 3\n}');
    assert.equal(await page.locator(`#messages tbody tr.selected`).getAttribute('data-id'), id);

    // A dead letter shows its attempts and why it died.
    await page.goto(`${base}/#/queues/${Q}?state=dead&msg=${ids.dead[0]}`);
    await waitText(panel.locator('h3'), `Message ${ids.dead[0]}`);
    const dead = await panel.locator('dl.facts').innerText();
    assert.match(dead, /attempts\s+1/);
    assert.match(dead, /dead reason\s+rejected/);

    await page.goto(`${base}/#/queues/${Q}?state=ready&msg=${ids.big[0]}`);
    await waitText(panel.locator('h4'), 'first 4.0 KiB shown');
    const body = (await panel.locator('pre.body').textContent()) ?? '';
    assert.equal(body, 'y'.repeat(4096), 'the preview holds the first 4 KiB only');
    await waitText(panel.locator('dl.facts'), '9.8 KiB');
    await browser.screenshot('dashboard-message-detail');
    await panel.locator('a', { hasText: 'Close' }).click();
    await panel.waitFor({ state: 'detached' });
  });

  it('shows a hostile body and header as text, never as markup', async () => {
    const { page } = browser;
    const id = ids.xss[0]!;
    await page.goto(`${base}/#/queues/${Q}?state=ready&after=${ids.ready[PAGE_SIZE - 1]}`);
    const row = page.locator(`#messages tbody tr[data-id="${id}"]`);
    await waitText(row.locator('td.body'), XSS_BODY);
    await row.locator('a').click();
    const panel = page.locator('#message-detail');
    await waitText(panel.locator('pre.body'), XSS_BODY);
    assert.equal(await panel.locator('pre.body').textContent(), XSS_BODY);
    assert.deepEqual(await panel.locator('#message-headers tbody td').allTextContents(), [
      XSS_HEADER,
      XSS_HEADER,
    ]);
    assert.equal(await page.locator('#view img, #view script').count(), 0, 'no element made');
    assert.equal(await page.evaluate('globalThis.__xss'), undefined, 'no script ran');
    await browser.screenshot('dashboard-xss-as-text');
  });

  it('deletes one ready message; a leased one has no delete', async () => {
    const { page } = browser;
    const id = ids.ready[0]!;
    await page.goto(`${base}/#/queues/${Q}?state=ready&msg=${id}`);
    const panel = page.locator('#message-detail');
    await waitText(panel.locator('h3'), `Message ${id}`);
    acceptNextDialog(page);
    await panel.locator('button[data-action="delete-one"]').click();
    await waitText(page.locator('#messages-status'), `message ${id} deleted`);
    await panel.waitFor({ state: 'detached' });
    await page.locator(`#messages tbody tr[data-id="${ids.ready[1]}"]`).waitFor();
    assert.equal(await page.locator(`#messages tbody tr[data-id="${id}"]`).count(), 0);
    const gone = await get(`/v1/queues/${Q}/messages/${id}`);
    assert.equal(gone.body.code, 'MESSAGE_NOT_FOUND');
    assert.equal((await get(`/v1/queues/${Q}`)).body.ready, READY + 1);

    await page.goto(`${base}/#/queues/${Q}?state=leased&msg=${ids.leased[0]}`);
    await waitText(panel, 'Leased: its consumer settles it.');
    assert.equal(await panel.locator('button[data-action="delete-one"]').count(), 0);
    assert.equal(await panel.locator('button[data-action="redrive-one"]').count(), 0);
  });

  it('redrives one dead letter, then all the others', async () => {
    const { page } = browser;
    const [one, ...rest] = ids.dead;
    await page.goto(`${base}/#/queues/${Q}?state=dead&msg=${one}`);
    const panel = page.locator('#message-detail');
    await panel.locator('button[data-action="redrive-one"]').click();
    await waitText(page.locator('#messages-status'), `message ${one} moved back to ready`);
    await waitText(page.locator('.tabs a[data-state="dead"] .count'), /^2$/);
    assert.deepEqual(await rowIds(), rest);
    const m = (await get(`/v1/queues/${Q}/messages/${one}`)).body;
    assert.deepEqual([m.state, m.attempts], ['ready', 0]);

    await page.locator('button[data-action="redrive-all"]').click();
    await waitText(page.locator('#queue-status'), '2 dead letters moved back to ready');
    await waitText(page.locator('.tabs a[data-state="dead"] .count'), /^0$/);
    await waitText(page.locator('#messages tbody'), 'no dead messages');
    const s = (await get(`/v1/queues/${Q}`)).body;
    assert.deepEqual([s.dead, s.ready], [0, READY + 4]);
  });

  it('deletes a dead letter and purges the ready messages', async () => {
    const { page } = browser;
    const got = (await post(`/v1/queues/${Q}/consume?max=1`)).body.messages[0];
    await post('/v1/leases/nack', { leases: [got.lease], dead: true });
    await page.goto(`${base}/#/queues/${Q}?state=dead&msg=${got.id}`);
    const panel = page.locator('#message-detail');
    acceptNextDialog(page);
    await panel.locator('button[data-action="delete-one"]').click();
    await waitText(page.locator('#messages-status'), `message ${got.id} deleted`);
    assert.equal((await get(`/v1/queues/${Q}`)).body.dead, 0);

    await page.locator('.tabs a[data-state="ready"]').click();
    await rows().first().waitFor();
    acceptNextDialog(page);
    await page.locator('button[data-action="purge"]').click();
    await waitText(page.locator('#queue-status'), /^\d+ messages deleted$/);
    await waitText(page.locator('#messages tbody'), 'no ready messages');
    const s = (await get(`/v1/queues/${Q}`)).body;
    assert.deepEqual([s.ready, s.scheduled, s.leased], [0, 0, 1]);
    assert.deepEqual(browser.errors, [], 'no errors in the page');
  });
});
