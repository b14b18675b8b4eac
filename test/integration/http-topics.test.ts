/**
 * Pub/sub over HTTP against a real broker: publish (retained and not), read the retained
 * values, and subscribe as server-sent events (snapshot, snapshot-end, messages), with SDK
 * subscribers and HTTP publishers seeing the same topic. Every stream read is bounded.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { TestResources, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { readEvents, req, type Loose } from '../helpers/http.js';

describe('HTTP topics', () => {
  const res = new TestResources();
  let b: TestBroker;
  let base: string;

  before(async () => {
    b = await startBroker({}, { http: '127.0.0.1:0' });
    base = b.server.httpUrl!;
  });
  after(async () => {
    await res.closeAll();
    await b.stop();
  });

  it('publishes, keeps retained values, reads them by pattern, deletes with an empty body', async () => {
    const one = await req(base, 'POST', '/v1/topics/publish', {
      body: { topic: 't/config/db', json: { host: 'a' }, retain: true, headers: { by: 'me' } },
    });
    assert.equal(one.status, 201, one.text);
    assert.equal(typeof one.body.seq, 'number');
    assert.equal(one.body.durable, 0);
    await req(base, 'POST', '/v1/topics/publish', {
      body: { topic: 't/config/cache', body: 'on', retain: true },
    });
    const live = await req(base, 'POST', '/v1/topics/publish', {
      body: { topic: 't/config/noise', body: 'not kept' },
    });
    assert.equal(live.status, 201);
    const kept = await req(base, 'GET', '/v1/topics/retained?pattern=t/config/*');
    assert.equal(kept.status, 200, kept.text);
    const byTopic = new Map((kept.body.items as Loose[]).map((m) => [m.topic, m]));
    assert.deepEqual([...byTopic.keys()].sort(), ['t/config/cache', 't/config/db']);
    assert.equal(byTopic.get('t/config/db').body, '{"host":"a"}');
    assert.deepEqual(byTopic.get('t/config/db').headers, { by: 'me' });
    assert.equal(byTopic.get('t/config/cache').retained, true);
    assert.ok(kept.body.seq >= one.body.seq);
    // Binary values come back as base64.
    await req(base, 'POST', '/v1/topics/publish', {
      body: { topic: 't/bin', body: 'AAEC', encoding: 'base64', retain: true },
    });
    const bin = await req(base, 'GET', '/v1/topics/retained?pattern=t/bin');
    assert.deepEqual([bin.body.items[0].encoding, bin.body.items[0].body], ['base64', 'AAEC']);
    // An empty retained publish deletes the value.
    await req(base, 'POST', '/v1/topics/publish', {
      body: { topic: 't/config/cache', body: '', retain: true },
    });
    const after = await req(base, 'GET', '/v1/topics/retained?pattern=t/config/');
    assert.deepEqual(
      (after.body.items as Loose[]).map((m) => m.topic),
      ['t/config/db'],
    );
  });

  it('a subscription stream sends the snapshot, snapshot-end, then each publish in order', async () => {
    await req(base, 'POST', '/v1/topics/publish', {
      body: { topic: 's/a', body: 'retained-a', retain: true },
    });
    const c = await res.client(b.endpoint);
    const events = readEvents(
      `${base}/v1/topics/subscribe?pattern=s/**&snapshot=true`,
      (evs) => evs.filter((e) => e.event === 'message').length >= 3,
    );
    // Publish once the subscription exists: later publishes reach it after its snapshot.
    await waitFor(
      () => b.server.stats.snapshot().then((s) => (s.pubsub?.liveSubscriptions ?? 0) > 0),
      'the HTTP subscription is open',
    );
    await req(base, 'POST', '/v1/topics/publish', { body: { topic: 's/b', body: 'one' } });
    await c.publish('s/c/d', 'two');
    await req(base, 'POST', '/v1/topics/publish', { body: { topic: 'other', body: 'no' } });
    await req(base, 'POST', '/v1/topics/publish', { body: { topic: 's/b', json: [3] } });
    const got = await events;
    assert.deepEqual(
      got.map((e) => [e.event, e.data.topic ?? null, e.data.body ?? null]),
      [
        ['snapshot', 's/a', 'retained-a'],
        ['snapshot-end', null, null],
        ['message', 's/b', 'one'],
        ['message', 's/c/d', 'two'],
        ['message', 's/b', '[3]'],
      ],
    );
    const seqs = got.filter((e) => e.event === 'message').map((e) => e.data.seq as number);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
      'in publish order',
    );
    await waitFor(
      () => b.server.stats.snapshot().then((s) => s.pubsub?.liveSubscriptions === 0),
      'the subscription ended with its stream',
    );
  });

  it('a stream that is not read falls behind its window: dropped event, then the end', async () => {
    // A reader that stops reading: node's client, paused, so the socket's buffers fill up.
    const url = new URL(`${base}/v1/topics/subscribe?pattern=slow/**&window=2`);
    const res0 = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(url, resolve).on('error', reject);
    });
    assert.equal(res0.statusCode, 200);
    res0.pause();
    await waitFor(
      () => b.server.stats.snapshot().then((s) => (s.pubsub?.liveSubscriptions ?? 0) > 0),
      'the slow subscription is open',
    );
    const dropped = () =>
      b.server.stats.snapshot().then((s) => (s.pubsub?.droppedSubscribers ?? 0) > 0);
    const big = 'x'.repeat(256 * 1024);
    // At most 200 × 256 KB (50 MB): far beyond what loopback socket buffers hold.
    for (let i = 0; i < 200 && !(await dropped()); i++) {
      const r = await req(base, 'POST', '/v1/topics/publish', {
        body: { topic: 'slow/t', body: big },
      });
      assert.equal(r.status, 201, r.text);
    }
    assert.ok(await dropped(), 'the subscription was dropped');
    // Reading again: the events written before the drop, then `dropped`, then the end.
    const text = await new Promise<string>((resolve, reject) => {
      let t = '';
      res0.setEncoding('utf8');
      res0.on('data', (d: string) => (t += d));
      res0.on('end', () => resolve(t));
      res0.on('error', reject);
      res0.resume();
    });
    const blocks = text.split('\n\n').filter((x) => x.startsWith('event: '));
    const last = blocks.at(-1)!;
    assert.match(last, /^event: dropped\ndata: \{"code":"SUBSCRIBER_DROPPED"/);
    assert.ok(blocks.length >= 2, 'some messages came first');
  });

  it('answers bad input with coded errors', async () => {
    const cases: [string, Promise<Awaited<ReturnType<typeof req>>>, number, string][] = [
      [
        'no topic',
        req(base, 'POST', '/v1/topics/publish', { body: { body: 'x' } }),
        400,
        'BAD_ARGUMENTS',
      ],
      [
        'wildcard topic',
        req(base, 'POST', '/v1/topics/publish', { body: { topic: 'a/*', body: 'x' } }),
        400,
        'INVALID_TOPIC',
      ],
      [
        'two bodies',
        req(base, 'POST', '/v1/topics/publish', { body: { topic: 'a', body: 'x', json: 1 } }),
        400,
        'BAD_ARGUMENTS',
      ],
      [
        'reserved header',
        req(base, 'POST', '/v1/topics/publish', {
          body: { topic: 'a', body: 'x', headers: { 'ferry-seq': '1' } },
        }),
        400,
        'BAD_ARGUMENTS',
      ],
      [
        'bad pattern',
        req(base, 'GET', '/v1/topics/retained?pattern=a/**/b/**'),
        400,
        'INVALID_TOPIC',
      ],
      [
        'bad subscribe pattern',
        req(base, 'GET', '/v1/topics/subscribe?pattern=a%23'),
        400,
        'INVALID_TOPIC',
      ],
      ['window 0', req(base, 'GET', '/v1/topics/subscribe?window=0'), 400, 'BAD_ARGUMENTS'],
      [
        'form publish',
        req(base, 'POST', '/v1/topics/publish', {
          raw: 'topic=a&body=x',
          contentType: 'application/x-www-form-urlencoded',
        }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
    ];
    for (const [what, p, status, code] of cases) {
      const r = await p;
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.equal(r.body.code, code, `${what}: ${r.text}`);
    }
  });
});
