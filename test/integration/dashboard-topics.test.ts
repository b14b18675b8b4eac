/**
 * The dashboard in Chromium, part 4: topics (retained values by pattern, durable subscriptions
 * with their waiting messages) and connections (per dialect, consumers with their prefetch,
 * sessions, workers). Hostile topic names and values are shown as text.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryClient } from 'ferrymq';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { hashOf, NO_CHROMIUM, openBrowser, waitText, type Browser } from '../helpers/chromium.js';
import { req, startWorker } from '../helpers/http.js';

const XSS_TOPIC = 'cfg/<img src=x onerror="globalThis.__xss = 4">';
const XSS_VALUE = '<svg onload="globalThis.__xss = 5"></svg>';

describe('dashboard in Chromium: topics and connections', { skip: NO_CHROMIUM }, () => {
  let b: TestBroker;
  let base: string;
  let browser: Browser;
  let client: FerryClient;

  before(async () => {
    b = await startBroker({}, { http: '127.0.0.1:0' });
    base = b.server.httpUrl!;
    browser = await openBrowser();
    client = await connect(b.endpoint, { heartbeatMs: 200 });
  });

  after(async () => {
    await client?.close({ timeoutMs: 500 });
    await browser?.close();
    await b?.stop();
  });

  it('lists retained values by pattern and durable subscriptions', async () => {
    const { page } = browser;
    const ps = b.server.pubsub;
    await ps.publish('cfg/db', [Buffer.from('{"host":"db1"}')], { retain: true });
    await ps.publish(XSS_TOPIC, [Buffer.from(XSS_VALUE)], { retain: true });
    await ps.publish('metrics/cpu', [Buffer.from('0.5')], { retain: true });
    await ps.ensureDurable('dash-audit', 'cfg/**');
    await ps.publish('cfg/db', [Buffer.from('{"host":"db2"}')], { retain: true });

    await page.goto(`${base}/#/topics`);
    await page.locator('#topics tbody tr[data-topic="metrics/cpu"]').waitFor();
    assert.equal(await page.locator('#topics tbody tr[data-topic]').count(), 3);
    const db = page.locator('#topics tbody tr[data-topic="cfg/db"]');
    assert.equal(await db.locator('td.value').textContent(), '{"host":"db2"}');
    const hostile = page.locator('#topics tbody tr[data-topic]', { hasText: 'onerror' });
    assert.equal(await hostile.locator('td').first().textContent(), XSS_TOPIC);
    assert.equal(await hostile.locator('td.value').textContent(), XSS_VALUE);
    assert.equal(await page.locator('#view img, #view svg').count(), 0, 'no element made');
    assert.equal(await page.evaluate('globalThis.__xss'), undefined, 'no script ran');

    const sub = page.locator('#subscriptions tbody tr[data-subscription="dash-audit"]');
    await sub.waitFor();
    const cells = await sub.locator('td').allTextContents();
    assert.equal(cells[1], 'cfg/**');
    assert.equal(cells[3], '1', 'one publish waits in its queue');
    await browser.screenshot('dashboard-topics');

    // A narrower pattern, kept in the URL.
    await page.locator('#topic-pattern').fill('metrics/');
    await page.locator('#topic-pattern').press('Enter');
    await page.locator('#topics tbody tr[data-topic="cfg/db"]').waitFor({ state: 'detached' });
    assert.equal(await hashOf(page), '#/topics?pattern=metrics/');
    assert.equal(await page.locator('#topics tbody tr[data-topic]').count(), 1);
    await page.reload();
    await page.locator('#topics tbody tr[data-topic="metrics/cpu"]').waitFor();
    assert.equal(await page.locator('#topic-pattern').inputValue(), 'metrics/');

    // The subscription's queue opens from its link.
    await sub.locator('a').click();
    await page.locator('#queue-name').waitFor();
    const queue = (await page.locator('#queue-name').textContent())!;
    assert.equal(queue, ps.durableQueue('dash-audit'));
    await page.locator('#messages tbody tr[data-id]').first().waitFor();

    // A bad pattern gets the gateway's code.
    const before = browser.errors.length;
    await page.goto(`${base}/#/topics?pattern=a%23b`);
    await waitText(page.locator('#topics-status'), 'INVALID_TOPIC');
    assert.ok(
      browser.errors.slice(before).every((e) => e.includes('400')),
      String(browser.errors),
    );
    browser.errors.length = before;
  });

  it('lists connections, consumers with their prefetch, sessions and workers', async () => {
    const { page } = browser;
    await req(base, 'POST', '/v1/queues/dash.work/batch', {
      body: { messages: [{ body: 'a' }, { body: 'b' }, { body: 'c' }] },
    });
    const consumer = client.consume('dash.work', { prefetch: 5 });
    const it = consumer[Symbol.asyncIterator]();
    await it.next();
    const w = startWorker(b.server, 'dash.svc', () => 1);
    try {
      await page.goto(`${base}/#/connections`);
      const row = page.locator('#consumers tbody tr', { hasText: 'dash.work' });
      await row.waitFor();
      assert.equal(await row.locator('td.prefetch').textContent(), '5');
      await waitText(row.locator('td.inflight'), /^3$/);
      const ferry = page.locator('#by-dialect [data-dialect="ferry"] b');
      assert.ok(Number(await ferry.textContent()) >= 1);
      const workers = page.locator('#workers tbody tr', { hasText: 'dash.svc' });
      await workers.waitFor();
      await browser.screenshot('dashboard-connections');

      // It refreshes by itself: a cancelled consumer goes; its session keeps the lease of the
      // message the application holds (the SDK gives back the ones it had not handed out).
      const sessionId = (await row.locator('td').first().textContent())!;
      await consumer.cancel();
      await row.waitFor({ state: 'detached' });
      const session = page.locator(`#sessions tbody tr[data-session="${sessionId}"]`);
      await waitText(session.locator('td').nth(2), /^1$/);
      assert.equal(await session.locator('td').nth(1).textContent(), '0', 'no consumers');
      // A consumer's queue link opens the queue.
      const again = client.consume('dash.work', { prefetch: 2 });
      const row2 = page.locator('#consumers tbody tr', { hasText: 'dash.work' });
      await waitText(row2.locator('td.prefetch'), /^2$/);
      await row2.locator('a').click();
      await page.locator('#queue-name', { hasText: 'dash.work' }).waitFor();
      await again.cancel();
    } finally {
      w.close();
    }
    assert.deepEqual(browser.errors, [], 'no errors in the page');
  });
});
