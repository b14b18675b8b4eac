/**
 * The dashboard in Chromium, part 3: a queue's life cycle. Pause and resume (the list marks a
 * paused queue), deleting an empty queue, a non-empty one refused with QUEUE_NOT_EMPTY and then
 * forced behind a second confirmation, and the policy panel: edit a value, an out-of-bounds
 * value shown as INVALID_POLICY, drop one runtime value, reset all. Every action is checked
 * against the broker through the REST API too.
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

const PAUSED_Q = 'dash.admin.pause';
const FULL_Q = 'dash.admin.full';
const EMPTY_Q = 'dash.admin.empty';
const POLICY_Q = 'dash.admin.policy';
const XSS = '<img src=x onerror="globalThis.__xss = 6">';
const FULL_COUNT = 3;
/** How long the broker holds a consume open while the queue is paused. */
const PAUSED_WAIT_MS = 300;

describe('dashboard in Chromium: queue life cycle', { skip: NO_CHROMIUM }, () => {
  let b: TestBroker;
  let base: string;
  let browser: Browser;
  const get = (p: string) => req(base, 'GET', p);
  const post = (p: string, body?: unknown) => req(base, 'POST', p, { body });
  const send = (q: string, body: string) =>
    post(`/v1/queues/${encodeURIComponent(q)}/messages`, { body });
  /** Page errors other than the answers the tests provoke on purpose (409, 400). */
  const unexpectedErrors = () =>
    browser.errors.filter((e) => !/status of (409|400)/.test(e) || !e.includes('Failed to load'));

  before(async () => {
    b = await startBroker({}, { http: '127.0.0.1:0' });
    base = b.server.httpUrl!;
    browser = await openBrowser();
    await send(PAUSED_Q, 'first');
    for (let i = 0; i < FULL_COUNT; i++) await send(FULL_Q, `m${i}`);
    await send(EMPTY_Q, 'only');
    const got = (await post(`/v1/queues/${EMPTY_Q}/consume?max=1`)).body.messages as Loose[];
    assert.equal((await post(`/v1/leases/${got[0].lease}/ack`)).status, 204);
    await send(POLICY_Q, 'p');
  });

  after(async () => {
    await browser?.close();
    await b?.stop();
  });

  it('pauses a queue: stored but not delivered, marked in the list; resumes it', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/queues/${PAUSED_Q}`);
    await waitText(page.locator('#queue-state'), 'delivering');
    await page.locator('#queue-lifecycle button[data-action="pause"]').click();
    await waitText(page.locator('#queue-state'), 'paused');
    await waitText(page.locator('#queue-status'), `${PAUSED_Q} paused`);
    assert.equal(
      await page.locator('#queue-lifecycle button[data-action="resume"]').textContent(),
      'Resume',
    );
    assert.equal((await get(`/v1/queues/${PAUSED_Q}`)).body.paused, true);
    assert.equal((await send(PAUSED_Q, 'second')).status, 201);
    const none = await post(`/v1/queues/${PAUSED_Q}/consume?max=10&wait=${PAUSED_WAIT_MS}`);
    assert.deepEqual(none.body, { messages: [] }, 'nothing delivered while paused');
    assert.equal((await get(`/v1/queues/${PAUSED_Q}`)).body.ready, 2);

    // The list marks it, and only it.
    await page.goto(`${base}/#/queues`);
    const row = page.locator(`#queues tr[data-queue="${PAUSED_Q}"]`);
    await waitText(row.locator('td.name .status'), 'paused');
    assert.equal(await page.locator('#queues td.name .status').count(), 1);
    await browser.screenshot('dashboard-queue-paused');

    await row.locator('td.name a').click();
    await page.locator('#queue-lifecycle button[data-action="resume"]').click();
    await waitText(page.locator('#queue-state'), 'delivering');
    await waitText(page.locator('#queue-status'), `${PAUSED_Q} resumed`);
    assert.equal((await get(`/v1/queues/${PAUSED_Q}`)).body.paused, false);
    const got = await post(`/v1/queues/${PAUSED_Q}/consume?max=10`);
    assert.deepEqual(
      (got.body.messages as Loose[]).map((m) => m.body),
      ['first', 'second'],
    );
    await page.goto(`${base}/#/queues`);
    await page.locator(`#queues tr[data-queue="${PAUSED_Q}"]`).waitFor();
    await page.locator('#queues td.name .status').waitFor({ state: 'detached' });
  });

  it('deletes an empty queue after one confirmation and goes back to the list', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/queues/${EMPTY_Q}`);
    await waitText(page.locator('#queue-state'), 'delivering');
    // Declining the confirmation deletes nothing.
    page.once('dialog', (d) => void d.dismiss());
    await page.locator('button[data-action="delete-queue"]').click();
    await waitText(page.locator('#queue-summary'), '0 deep');
    assert.equal((await get(`/v1/queues/${EMPTY_Q}`)).status, 200);

    acceptNextDialog(page);
    await page.locator('button[data-action="delete-queue"]').click();
    await waitText(page.locator('#queues-status'), `queue ${EMPTY_Q} deleted with 0 messages`);
    assert.equal(await hashOf(page), '#/queues');
    assert.equal((await get(`/v1/queues/${EMPTY_Q}`)).body.code, 'QUEUE_NOT_FOUND');
    await page.locator(`#queues tr[data-queue="${EMPTY_Q}"]`).waitFor({ state: 'detached' });
  });

  it('refuses a non-empty queue with QUEUE_NOT_EMPTY and deletes it when forced', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/queues/${FULL_Q}`);
    await waitText(page.locator('#queue-state'), 'delivering');
    acceptNextDialog(page);
    await page.locator('button[data-action="delete-queue"]').click();
    const box = page.locator('#queue-delete');
    await waitText(
      box.locator('[role="alert"]'),
      `QUEUE_NOT_EMPTY: ${FULL_Q} still holds ${FULL_COUNT} messages ` +
        `(ready ${FULL_COUNT}, leased 0, scheduled 0, dead 0)`,
    );
    const force = box.locator('button[data-action="delete-force"]');
    assert.equal(await force.textContent(), `Delete with its ${FULL_COUNT} messages`);
    assert.equal((await get(`/v1/queues/${FULL_Q}`)).body.ready, FULL_COUNT, 'nothing deleted');
    await browser.screenshot('dashboard-queue-not-empty');

    // The second confirmation declined: still there.
    page.once('dialog', (d) => {
      assert.match(d.message(), new RegExp(`its ${FULL_COUNT} messages`));
      void d.dismiss();
    });
    await force.click();
    await box.locator('button[data-action="delete-cancel"]').click();
    await box.waitFor({ state: 'hidden' });
    assert.equal((await get(`/v1/queues/${FULL_Q}`)).body.ready, FULL_COUNT, 'nothing deleted');

    acceptNextDialog(page);
    await page.locator('button[data-action="delete-queue"]').click();
    acceptNextDialog(page);
    await force.click();
    await waitText(
      page.locator('#queues-status'),
      `queue ${FULL_Q} deleted with ${FULL_COUNT} messages`,
    );
    assert.equal(await hashOf(page), '#/queues');
    assert.equal((await get(`/v1/queues/${FULL_Q}`)).body.code, 'QUEUE_NOT_FOUND');
    await page.locator(`#queues tr[data-queue="${FULL_Q}"]`).waitFor({ state: 'detached' });
    const listed = ((await get('/v1/stats')).body.queues as Loose[]).map((q) => q.name);
    assert.ok(!listed.includes(FULL_Q), String(listed));
  });

  it('edits the policy: a runtime value persists, a bad one is INVALID_POLICY, reset clears', async () => {
    const { page } = browser;
    const path = `/v1/queues/${POLICY_Q}/policy`;
    const before = (await get(path)).body;
    assert.deepEqual(before.overrides, {});
    await page.goto(`${base}/#/queues/${POLICY_Q}`);
    const row = (key: string) => page.locator(`#policy tr[data-key="${key}"]`);
    await waitText(row('maxAttempts').locator('td.source'), 'config or default');
    assert.equal(
      await row('maxAttempts').locator('input').inputValue(),
      String(before.policy.maxAttempts),
    );
    assert.equal(await page.locator('button[data-action="policy-reset"]').isDisabled(), true);

    await row('maxAttempts').locator('input').fill('7');
    await row('maxAttempts').locator('button[data-action="policy-set"]').click();
    await waitText(page.locator('#policy-status'), 'maxAttempts set to 7 at runtime');
    await waitText(row('maxAttempts').locator('td.source'), 'runtime');
    let now = (await get(path)).body;
    assert.deepEqual(now.overrides, { maxAttempts: 7 });
    assert.equal(now.policy.maxAttempts, 7);
    await row('ackTimeoutMs').locator('input').fill('45000');
    await row('ackTimeoutMs').locator('input').press('Enter');
    await waitText(row('ackTimeoutMs').locator('td.source'), 'runtime');
    assert.deepEqual((await get(path)).body.overrides, { maxAttempts: 7, ackTimeoutMs: 45000 });

    // A reload reads it back from the broker.
    await page.reload();
    await waitText(row('maxAttempts').locator('td.source'), 'runtime');
    assert.equal(await row('maxAttempts').locator('input').inputValue(), '7');
    await waitText(page.locator('#policy-runtime'), '2 set at runtime');

    // Not a whole number: refused in the page, nothing sent; out of bounds: the broker's
    // INVALID_POLICY, nothing changed. Each message replaces the one before.
    const setMaxAttempts = async (text: string) => {
      await row('maxAttempts').locator('input').fill(text);
      await row('maxAttempts').locator('button[data-action="policy-set"]').click();
    };
    const invalid = () => row('maxAttempts').locator('input').getAttribute('aria-invalid');
    await setMaxAttempts('2.5');
    await waitText(page.locator('#policy-status.bad'), 'maxAttempts must be a whole number');
    assert.equal(await invalid(), 'true');
    await setMaxAttempts('0');
    await waitText(page.locator('#policy-status.bad'), /^INVALID_POLICY: maxAttempts must be/);
    assert.equal(await invalid(), null);
    await setMaxAttempts(XSS);
    await waitText(page.locator('#policy-status.bad'), 'maxAttempts must be a whole number');
    assert.equal(await invalid(), 'true');
    assert.deepEqual((await get(path)).body.overrides, { maxAttempts: 7, ackTimeoutMs: 45000 });
    assert.equal(await page.locator('#view img').count(), 0, 'no element made');
    assert.equal(await page.evaluate('globalThis.__xss'), undefined, 'no script ran');
    await browser.screenshot('dashboard-queue-policy');

    // Drop one runtime value: the config applies again.
    await row('ackTimeoutMs').locator('button[data-action="policy-drop"]').click();
    await waitText(page.locator('#policy-status'), 'runtime ackTimeoutMs dropped');
    await waitText(row('ackTimeoutMs').locator('td.source'), 'config or default');
    now = (await get(path)).body;
    assert.deepEqual(now.overrides, { maxAttempts: 7 });
    assert.equal(now.policy.ackTimeoutMs, before.policy.ackTimeoutMs);

    acceptNextDialog(page);
    await page.locator('button[data-action="policy-reset"]').click();
    await waitText(page.locator('#policy-status'), `runtime policy of ${POLICY_Q} reset`);
    await waitText(row('maxAttempts').locator('td.source'), 'config or default');
    assert.equal(
      await row('maxAttempts').locator('input').inputValue(),
      String(before.policy.maxAttempts),
    );
    now = (await get(path)).body;
    assert.deepEqual(now, before);
    assert.deepEqual(unexpectedErrors(), [], 'no errors in the page');
  });
});
