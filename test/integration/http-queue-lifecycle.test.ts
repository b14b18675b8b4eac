/**
 * The queue life-cycle routes of the HTTP gateway against a real broker: delete (refused,
 * forced, a waiting long poll answered QUEUE_DELETED), pause and resume, runtime policy,
 * restarts over the same data folder, refused sends leaving no queue, and deleting durable
 * subscriptions. Every bad input gets a coded error.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { req } from '../helpers/http.js';
import { connect } from 'ferrymq';

const brokers: TestBroker[] = [];
after(async () => {
  for (const b of brokers.splice(0)) await b.stop().catch(() => {});
});

async function gateway(
  flags: Record<string, string> = {},
): Promise<{ b: TestBroker; base: string }> {
  const b = await startBroker(flags, { http: '127.0.0.1:0', maxMessageBytes: 64 });
  brokers.push(b);
  return { b, base: b.server.httpUrl! };
}

describe('HTTP queue life cycle', () => {
  it('DELETE /v1/queues/:queue refuses a non-empty queue (409), force deletes it, then 404', async () => {
    const { base } = await gateway();
    await req(base, 'POST', '/v1/queues/hl.del/messages', { body: { body: 'a' } });
    const refused = await req(base, 'DELETE', '/v1/queues/hl.del');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'QUEUE_NOT_EMPTY');
    assert.equal((await req(base, 'GET', '/v1/queues/hl.del')).body.ready, 1, 'kept');
    const bad = await req(base, 'DELETE', '/v1/queues/hl.del?force=maybe');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'BAD_ARGUMENTS');
    const extra = await req(base, 'DELETE', '/v1/queues/hl.del?purge=1');
    assert.equal(extra.body.code, 'BAD_ARGUMENTS');
    const forced = await req(base, 'DELETE', '/v1/queues/hl.del?force=true');
    assert.equal(forced.status, 200);
    assert.deepEqual(forced.body, { deleted: 'hl.del', messages: 1 });
    const gone = await req(base, 'GET', '/v1/queues/hl.del');
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'QUEUE_NOT_FOUND');
    assert.equal((await req(base, 'DELETE', '/v1/queues/hl.del')).body.code, 'QUEUE_NOT_FOUND');
    const badName = await req(base, 'DELETE', '/v1/queues/bad%20name');
    assert.equal(badName.body.code, 'INVALID_QUEUE_NAME');
    const names = (await req(base, 'GET', '/v1/queues')).body.queues.map(
      (q: { name: string }) => q.name,
    );
    assert.equal(names.includes('hl.del'), false);
  });

  it('a long poll waiting on a queue that gets deleted is answered 410 QUEUE_DELETED', async () => {
    const { base } = await gateway();
    // Create the queue empty through a waiting poll, then delete it.
    const poll = req(base, 'POST', '/v1/queues/hl.poll/consume?wait=30000');
    await waitFor(
      async () => (await req(base, 'GET', '/v1/queues/hl.poll')).body?.consumers === 1,
      'the poll is waiting',
    );
    assert.equal((await req(base, 'DELETE', '/v1/queues/hl.poll')).status, 200);
    const answered = await poll;
    assert.equal(answered.status, 410);
    assert.equal(answered.body.code, 'QUEUE_DELETED');
  });

  it('pause and resume: a paused queue takes sends and hands out nothing; it stays paused across a restart', async () => {
    const { b, base } = await gateway();
    await req(base, 'POST', '/v1/queues/hl.p/messages', { body: { body: 'a' } });
    const paused = await req(base, 'POST', '/v1/queues/hl.p/pause');
    assert.equal(paused.status, 200);
    assert.deepEqual(paused.body, { queue: 'hl.p', paused: true });
    assert.equal(
      (await req(base, 'POST', '/v1/queues/hl.p/messages', { body: { body: 'b' } })).status,
      201,
    );
    const none = await req(base, 'POST', '/v1/queues/hl.p/consume?max=10');
    assert.deepEqual(none.body, { messages: [] });
    const stats = (await req(base, 'GET', '/v1/queues/hl.p')).body;
    assert.equal(stats.paused, true);
    assert.equal(stats.ready, 2);
    const unknown = await req(base, 'POST', '/v1/queues/hl.none/pause');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 'QUEUE_NOT_FOUND');
    assert.equal((await req(base, 'GET', '/v1/queues/hl.none')).status, 404, 'not created');
    await b.stop();
    brokers.splice(brokers.indexOf(b), 1);

    const again = await gateway({ data: b.dataDir });
    const base2 = again.base;
    assert.equal((await req(base2, 'GET', '/v1/queues/hl.p')).body.paused, true);
    const still = await req(base2, 'POST', '/v1/queues/hl.p/consume?max=10');
    assert.deepEqual(still.body, { messages: [] });
    const resumed = await req(base2, 'POST', '/v1/queues/hl.p/resume');
    assert.deepEqual(resumed.body, { queue: 'hl.p', paused: false });
    const got = await req(base2, 'POST', '/v1/queues/hl.p/consume?max=10&wait=10000');
    assert.deepEqual(
      got.body.messages.map((m: { body: string }) => m.body),
      ['a', 'b'],
    );
  });

  it('runtime policy: GET, PATCH (null drops a key), DELETE resets; bad values are INVALID_POLICY; kept across a restart', async () => {
    const { b, base } = await gateway();
    await req(base, 'POST', '/v1/queues/hl.pol/messages', { body: { body: 'a' } });
    const first = await req(base, 'GET', '/v1/queues/hl.pol/policy');
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.overrides, {});
    const patched = await req(base, 'PATCH', '/v1/queues/hl.pol/policy', {
      body: { maxDepth: 1, maxAttempts: 2 },
    });
    assert.equal(patched.status, 200);
    assert.deepEqual(patched.body.overrides, { maxDepth: 1, maxAttempts: 2 });
    assert.equal(patched.body.policy.maxDepth, 1);
    const full = await req(base, 'POST', '/v1/queues/hl.pol/messages', { body: { body: 'b' } });
    assert.equal(full.status, 429);
    assert.equal(full.body.code, 'QUEUE_FULL');
    for (const bad of [
      { maxDepth: -1 },
      { nope: 1 },
      { maxAttempts: 'x' },
      { ackTimeoutMs: 1.5 },
    ]) {
      const r = await req(base, 'PATCH', '/v1/queues/hl.pol/policy', { body: bad });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.code, 'INVALID_POLICY', JSON.stringify(bad));
    }
    const notJson = await req(base, 'PATCH', '/v1/queues/hl.pol/policy', { raw: '{' });
    assert.equal(notJson.body.code, 'BAD_JSON');
    const notObject = await req(base, 'PATCH', '/v1/queues/hl.pol/policy', { body: [1] });
    assert.equal(notObject.status, 400);
    const unknown = await req(base, 'PATCH', '/v1/queues/hl.none/policy', {
      body: { maxDepth: 1 },
    });
    assert.equal(unknown.body.code, 'QUEUE_NOT_FOUND');
    const stats = (await req(base, 'GET', '/v1/queues/hl.pol')).body;
    assert.deepEqual(stats.overrides, { maxDepth: 1, maxAttempts: 2 });
    assert.equal(stats.policy.maxAttempts, 2);
    await b.stop();
    brokers.splice(brokers.indexOf(b), 1);

    const { base: base2 } = await gateway({ data: b.dataDir });
    assert.deepEqual((await req(base2, 'GET', '/v1/queues/hl.pol/policy')).body.overrides, {
      maxDepth: 1,
      maxAttempts: 2,
    });
    const dropped = await req(base2, 'PATCH', '/v1/queues/hl.pol/policy', {
      body: { maxDepth: null },
    });
    assert.deepEqual(dropped.body.overrides, { maxAttempts: 2 });
    assert.equal(dropped.body.policy.maxDepth, 0, 'the default again');
    const reset = await req(base2, 'DELETE', '/v1/queues/hl.pol/policy');
    assert.equal(reset.status, 200);
    assert.deepEqual(reset.body.overrides, {});
  });

  it('refused sends leave no queue behind', async () => {
    const { base } = await gateway();
    const cases: [string, unknown, number][] = [
      ['/v1/queues/hl.r1/messages', { body: 'x'.repeat(65) }, 413],
      ['/v1/queues/hl.r2/messages', { body: 'a', priority: 999 }, 400],
      ['/v1/queues/hl.r3/messages', { body: 'a', frames: ['b'] }, 400],
      ['/v1/queues/hl.r4/batch', { messages: [{ body: 'a' }, { body: 'x'.repeat(65) }] }, 413],
      ['/v1/queues/hl.r5/messages', { nothing: true }, 400],
    ];
    for (const [path, body, status] of cases) {
      const r = await req(base, 'POST', path, { body });
      assert.equal(r.status, status, `${path}: ${r.text}`);
    }
    assert.deepEqual((await req(base, 'GET', '/v1/queues')).body.queues, []);
  });

  it('DELETE /v1/subscriptions/:name deletes a durable subscription and its queue', async () => {
    const { b, base } = await gateway();
    const c = await connect(b.endpoint);
    try {
      await c.subscribe('hs/**', { durable: 'hs1' }).ready;
      await c.publish('hs/a', 'x');
      await waitFor(async () => (await c.queues()).includes('sub:hs1'), 'its queue');
      const r = await req(base, 'DELETE', '/v1/subscriptions/hs1');
      assert.equal(r.status, 204);
      assert.equal((await c.queues()).includes('sub:hs1'), false);
      const again = await req(base, 'DELETE', '/v1/subscriptions/hs1');
      assert.equal(again.status, 404);
      assert.equal(again.body.code, 'SUBSCRIPTION_NOT_FOUND');
      const bad = await req(base, 'DELETE', '/v1/subscriptions/bad%20name');
      assert.equal(bad.status, 400);
    } finally {
      await c.close();
    }
  });
});
