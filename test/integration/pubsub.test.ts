/**
 * Pub/sub end to end: a real broker on tcp://127.0.0.1:*, SDK publishers and subscribers over
 * real sockets. Each test names the promise of docs/pubsub.md it checks.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  connect,
  FerryError,
  type FerryClient,
  type TopicMessage,
  type TopicSubscription,
} from 'ferrymq';
import {
  freePort,
  spawnBroker,
  startBroker,
  tmpDir,
  waitFor,
  type ChildBroker,
  type TestBroker,
  TestResources,
} from '../helpers/broker.js';

const resources = new TestResources();
const brokers = resources.brokers;
const broker = (flags: Record<string, string> = {}): Promise<TestBroker> => resources.broker(flags);
const client = (endpoint: string, heartbeatMs = 200): Promise<FerryClient> =>
  resources.client(endpoint, heartbeatMs);

after(() => resources.closeAll());

/** Reads `n` messages from a subscription (acking each), with a deadline. */
async function take(
  sub: TopicSubscription,
  n: number,
  timeoutMs = 15_000,
  ack = true,
): Promise<TopicMessage[]> {
  const out: TopicMessage[] = [];
  if (n === 0) return out;
  const it = sub[Symbol.asyncIterator]();
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} messages`);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`got ${out.length} of ${n} messages`)), left);
      }),
    ]).finally(() => clearTimeout(timer));
    if (r.done) throw new Error(`subscription ended after ${out.length} of ${n}`);
    out.push(r.value);
    if (ack) await r.value.ack();
  }
  return out;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof FerryError && err.code === code);
}

describe('live subscribers', () => {
  it('get what is published while connected, in publish order, by exact, prefix and wildcard', async () => {
    const b = await broker();
    const pub = await client(b.endpoint);
    const s = await client(b.endpoint);
    const exact = s.subscribe('config/db/primary');
    const prefix = s.subscribe('config/');
    const star = s.subscribe('config/*/primary');
    const deep = s.subscribe('config/**');
    await Promise.all([exact.ready, prefix.ready, star.ready, deep.ready]);
    const topics = ['config/db/primary', 'config/db/replica', 'config/cache/primary', 'other/x'];
    const seqs: number[] = [];
    for (let i = 0; i < 50; i++) {
      for (const t of topics) seqs.push(await pub.publish(t, `${t}#${i}`));
    }
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, 'seq increases');
    const e = await take(exact, 50);
    assert.deepEqual(
      e.map((m) => m.body.toString()),
      Array.from({ length: 50 }, (_, i) => `config/db/primary#${i}`),
    );
    const p = await take(prefix, 150);
    assert.ok(p.every((m) => m.topic.startsWith('config/')));
    for (let i = 1; i < p.length; i++) assert.ok(p[i]!.seq > p[i - 1]!.seq, 'in order');
    const st = await take(star, 100);
    assert.ok(st.every((m) => m.topic.endsWith('/primary')));
    assert.equal((await take(deep, 150)).length, 150);
  });

  it('a slow live subscriber is dropped and told so; the publisher is not slowed', async () => {
    const b = await broker({ 'live-window': '1000' });
    const pub = await client(b.endpoint);
    const slow = await client(b.endpoint);
    const fast = await client(b.endpoint);
    const never = slow.subscribe('feed/**'); // never read
    const reader = fast.subscribe('feed/**');
    await Promise.all([never.ready, reader.ready]);
    const total = 5_000;
    const wave = 250;
    const started = Date.now();
    const got = take(reader, total);
    for (let i = 0; i < total; i += wave) {
      await Promise.all(Array.from({ length: wave }, (_, k) => pub.publish('feed/a', `m${i + k}`)));
    }
    const publishMs = Date.now() - started;
    assert.equal((await got).length, total, 'the reading subscriber got everything');
    assert.ok(publishMs < 10_000, `publishing took ${publishMs} ms`);
    const it = never[Symbol.asyncIterator]();
    let caught: unknown;
    try {
      for (let i = 0; i <= total; i++) {
        const r = await it.next();
        if (r.done) break;
      }
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof FerryError, 'the iterator ends with an error');
    assert.equal(caught.code, 'SUBSCRIBER_DROPPED');
    assert.equal(b.server.pubsub.stats().droppedSubscribers, 1);
    assert.equal((await pub.stats()).pubsub?.droppedSubscribers, 1, 'STATS reports it');
  });
});

describe('durable subscriptions', () => {
  it('a durable subscriber away during 1,000 publishes gets all 1,000 in order when it returns', async () => {
    const b = await broker();
    const pub = await client(b.endpoint);
    const first = await client(b.endpoint);
    const sub = first.subscribe('orders/**', { durable: 'billing' });
    await sub.ready;
    await first.close({ timeoutMs: 1_000 });
    const publishes: Promise<number>[] = [];
    for (let i = 0; i < 1_000; i++) publishes.push(pub.publish(`orders/${i % 7}`, `order-${i}`));
    await Promise.all(publishes);
    const back = await client(b.endpoint);
    const again = back.subscribe('orders/**', { durable: 'billing', prefetch: 200 });
    const got = await take(again, 1_000);
    assert.deepEqual(
      got.map((m) => m.body.toString()),
      Array.from({ length: 1_000 }, (_, i) => `order-${i}`),
    );
    for (let i = 1; i < got.length; i++) assert.ok(got[i]!.seq > got[i - 1]!.seq);
  });

  it('an unacked durable message is redelivered', async () => {
    const b = await broker();
    const pub = await client(b.endpoint);
    const c1 = await client(b.endpoint);
    const s1 = c1.subscribe('jobs/x', { durable: 'redo', ackTimeoutMs: 200 });
    await s1.ready;
    await pub.publish('jobs/x', 'once');
    const [m] = await take(s1, 1, 5_000, false);
    assert.equal(m!.body.toString(), 'once');
    const [again] = await take(s1, 1, 5_000);
    assert.equal(again!.body.toString(), 'once');
    assert.equal(again!.seq, m!.seq);
  });

  it('closing a durable subscriber gives back what it had buffered, at once', async () => {
    const b = await broker();
    const pub = await client(b.endpoint);
    const c1 = await client(b.endpoint);
    const s1 = c1.subscribe('buf/**', { durable: 'buffered', prefetch: 50 });
    await s1.ready;
    await Promise.all(Array.from({ length: 20 }, (_, i) => pub.publish('buf/x', `m${i}`)));
    const [first] = await take(s1, 1);
    assert.equal(first!.body.toString(), 'm0');
    await s1.close();
    const c2 = await client(b.endpoint);
    const s2 = c2.subscribe('buf/**', { durable: 'buffered' });
    const rest = await take(s2, 19, 5_000); // well before the 30 s ack timeout
    assert.deepEqual(
      rest.map((m) => m.body.toString()),
      Array.from({ length: 19 }, (_, i) => `m${i + 1}`),
    );
  });

  it('a queue group shares one subscription: each message to exactly one member', async () => {
    const b = await broker();
    const pub = await client(b.endpoint);
    const a = await client(b.endpoint);
    const c = await client(b.endpoint);
    const ga = a.subscribe('work/**', { group: 'resizers', prefetch: 10 });
    const gc = c.subscribe('work/**', { group: 'resizers', prefetch: 10 });
    await Promise.all([ga.ready, gc.ready]);
    await Promise.all(Array.from({ length: 300 }, (_, i) => pub.publish('work/img', `w${i}`)));
    const seen: string[] = [];
    const counts = [0, 0];
    const drain = async (s: TopicSubscription, k: number): Promise<void> => {
      for await (const m of s) {
        seen.push(m.body.toString());
        counts[k]!++;
        await m.ack();
        if (seen.length === 300) break;
      }
    };
    const da = drain(ga, 0);
    const dc = drain(gc, 1);
    await waitFor(() => seen.length >= 300, '300 group messages');
    assert.equal(new Set(seen).size, 300, 'no duplicates');
    assert.ok(counts[0]! > 0 && counts[1]! > 0, `both members got some: ${counts.join('/')}`);
    await ga.close();
    await gc.close();
    await Promise.race([Promise.all([da, dc]), Promise.resolve()]);
  });

  it('a publish refused by a full durable subscription stores nothing (QUEUE_FULL)', async () => {
    const b = await startBroker({}, { queues: { 'sub:tiny': { maxDepth: 2 } } });
    brokers.push(b);
    const c = await client(b.endpoint);
    const s = c.subscribe('limit/**', { durable: 'tiny' });
    await s.ready;
    await s.close();
    await c.publish('limit/a', 'one', { retain: true });
    await c.publish('limit/a', 'two', { retain: true });
    await rejectsWith(c.publish('limit/a', 'three', { retain: true }), 'QUEUE_FULL');
    const r = await c.retained('limit/a');
    assert.equal(r.messages[0]!.body.toString(), 'two', 'the refused value was not retained');
  });

  it('refuses a durable name with another pattern, bad patterns and bad topics', async () => {
    const b = await broker();
    const c = await client(b.endpoint);
    await c.subscribe('a/**', { durable: 'd1' }).ready;
    await rejectsWith(c.subscribe('b/**', { durable: 'd1' }).ready, 'SUBSCRIPTION_CONFLICT');
    await rejectsWith(c.subscribe('a/x*/b').ready, 'INVALID_TOPIC');
    await rejectsWith(c.subscribe('a/**/b/**').ready, 'INVALID_TOPIC');
    await rejectsWith(c.subscribe('').ready, 'INVALID_TOPIC');
    await rejectsWith(c.publish('a/*', 'x'), 'INVALID_TOPIC');
    await rejectsWith(c.publish('a\nb', 'x'), 'INVALID_TOPIC');
    await rejectsWith(c.publish('a', 'x', { ttlMs: -1 }), 'BAD_ARGUMENTS');
    await rejectsWith(c.publish('a', 'x', { headers: { 'ferry-topic': 'b' } }), 'BAD_ARGUMENTS');
    await rejectsWith(c.subscribe('a/**', { durable: 'bad name' }).ready, 'BAD_ARGUMENTS');
    await rejectsWith(c.rollout('a', 'x', { nodes: ['ok', 'not ok'] }), 'BAD_ARGUMENTS');
    await rejectsWith(c.deleteSubscription('nope'), 'SUBSCRIPTION_NOT_FOUND');
    await c.deleteSubscription('d1');
  });
});

describe('retained state', () => {
  it('a late joiner gets the snapshot, then every update after it: no gap, no duplicate', async () => {
    const b = await broker();
    const pub = await client(b.endpoint);
    const keys = 200;
    for (let k = 0; k < keys; k++) {
      await pub.publish(`cfg/k${k}`, 'v0', { retain: true });
    }
    // Keep publishing while the late joiner subscribes and takes its snapshot.
    let stop = false;
    let round = 0;
    const lastValue = new Map<string, string>();
    const writer = (async () => {
      while (!stop) {
        round++;
        const batch: Promise<number>[] = [];
        for (let k = 0; k < keys; k += 7) {
          const v = `v${round}`;
          lastValue.set(`cfg/k${k}`, v);
          batch.push(pub.publish(`cfg/k${k}`, v, { retain: true }));
        }
        await Promise.all(batch);
      }
    })();
    const late = await client(b.endpoint);
    const sub = late.subscribe('cfg/', { snapshot: true });
    const state = new Map<string, string>();
    let snapshotSeq = 0;
    let lastSeq = 0;
    const seenSeqs = new Set<number>();
    let updates = 0;
    const reader = (async () => {
      for await (const m of sub) {
        assert.ok(!seenSeqs.has(m.seq) || m.snapshot, `duplicate seq ${m.seq}`);
        if (m.snapshot) {
          snapshotSeq = Math.max(snapshotSeq, m.seq);
        } else {
          assert.ok(m.seq > lastSeq, 'updates in order');
          updates++;
        }
        seenSeqs.add(m.seq);
        lastSeq = Math.max(lastSeq, m.seq);
        state.set(m.topic, m.body.toString());
        if (m.topic === 'cfg/k0' && m.body.toString() === 'final') break;
      }
    })();
    try {
      await waitFor(() => updates >= 50, 'updates after the snapshot');
    } finally {
      stop = true;
      await writer;
    }
    const finalSeq = await pub.publish('cfg/k0', 'final', { retain: true });
    lastValue.set('cfg/k0', 'final');
    await reader;
    assert.equal(state.size, keys);
    for (const [k, v] of lastValue) assert.equal(state.get(k), v, `${k} converged`);
    // Every publish after the snapshot was seen: no gap in the sequence numbers.
    for (let q = snapshotSeq + 1; q <= finalSeq; q++) assert.ok(seenSeqs.has(q), `gap at ${q}`);
    const stored = await pub.retained('cfg/');
    assert.equal(stored.messages.length, keys);
    for (const m of stored.messages) assert.equal(state.get(m.topic), m.body.toString());
  });

  it('an empty retained value deletes; a TTL expires it, and subscribers see the delete', async () => {
    const b = await broker();
    const c = await client(b.endpoint);
    await c.publish('ttl/a', 'short', { retain: true, ttlMs: 150 });
    await c.publish('ttl/b', 'stays', { retain: true });
    await c.publish('ttl/c', 'gone', { retain: true });
    const watcher = c.subscribe('ttl/');
    await watcher.ready;
    await c.publish('ttl/c', '', { retain: true });
    await waitFor(
      async () => (await c.retained('ttl/')).messages.length === 1,
      'ttl/a expired and ttl/c deleted',
    );
    const left = await c.retained('ttl/**');
    assert.deepEqual(
      left.messages.map((m) => m.topic),
      ['ttl/b'],
    );
    const events = await take(watcher, 2);
    assert.ok(events.every((m) => m.deleted && m.retained));
    assert.deepEqual(events.map((m) => m.topic).sort(), ['ttl/a', 'ttl/c']);
  });
});

describe('confirmed rollout', () => {
  it('waits for three named nodes, one of which was down and comes back', async () => {
    const b = await broker();
    const admin = await client(b.endpoint);
    const nodes = ['node-1', 'node-2', 'node-3'];
    const conns: FerryClient[] = [];
    const run = (conn: FerryClient, node: string): Promise<void> => {
      const sub = conn.subscribe('fleet/**', { durable: node, snapshot: true });
      return (async () => {
        for await (const m of sub) await m.ack();
      })().catch(() => {});
    };
    for (const n of nodes) {
      const conn = await client(b.endpoint);
      conns.push(conn);
      const sub = conn.subscribe('fleet/**', { durable: n });
      await sub.ready;
      await sub.close();
    }
    // node-1 and node-2 run; node-3 is down.
    void run(conns[0]!, 'node-1');
    void run(conns[1]!, 'node-2');
    const first = await admin.rollout('fleet/db', 'v1', { nodes, timeoutMs: 500 });
    assert.equal(first.complete, false);
    assert.deepEqual(first.confirmed, ['node-1', 'node-2']);
    assert.deepEqual(first.pending, ['node-3']);
    const status = await admin.topicStatus('fleet/**');
    assert.equal(status.length, 1);
    assert.equal(status[0]!.seq, first.seq);
    assert.deepEqual(
      status[0]!.nodes.map((n) => [n.node, n.current]),
      [
        ['node-1', true],
        ['node-2', true],
      ],
    );
    // The next rollout waits; node-3 comes back during it and catches up.
    const second = admin.rollout('fleet/db', 'v2', { nodes, timeoutMs: 10_000 });
    await waitFor(
      async () =>
        (await admin.topicStatus('fleet/db'))[0]!.nodes.filter((n) => n.current).length >= 2,
      'two nodes confirmed v2',
    );
    void run(conns[2]!, 'node-3');
    const done = await second;
    assert.equal(done.complete, true);
    assert.deepEqual(done.confirmed, nodes);
    assert.deepEqual(done.pending, []);
    const after = await admin.topicStatus('fleet/db');
    assert.ok(after[0]!.nodes.every((n) => n.seq === done.seq && n.current));
  });
});

describe('pub/sub survives kill -9', () => {
  it('retained values and durable backlogs acknowledged before a SIGKILL are there after restart', async () => {
    const dataDir = tmpDir();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const args = ['--data', dataDir, '--bind', endpoint, '--heartbeat', '200'];
    let b: ChildBroker = await spawnBroker(args);
    const c = await connect(endpoint, { heartbeatMs: 100, requestTimeoutMs: 30_000 });
    try {
      const s = c.subscribe('crash/**', { durable: 'keeper' });
      await s.ready;
      await s.close();
      const seqs: number[] = [];
      for (let i = 0; i < 100; i++) {
        seqs.push(await c.publish(`crash/k${i % 10}`, `v${i}`, { retain: true }));
      }
      b.child.kill('SIGKILL');
      await b.exited;
      b = await spawnBroker(args);
      const r = await c.retained('crash/');
      assert.equal(r.messages.length, 10);
      for (const m of r.messages) {
        const k = Number(m.topic.slice('crash/k'.length));
        assert.equal(m.body.toString(), `v${90 + k}`);
      }
      assert.ok(r.seq >= seqs.at(-1)!, 'the sequence survives');
      const next = await c.publish('crash/after', 'x', { retain: true });
      assert.ok(next > seqs.at(-1)!, 'numbers keep increasing after a restart');
      const back = c.subscribe('crash/**', { durable: 'keeper' });
      const got = await take(back, 101);
      assert.deepEqual(
        got.map((m) => m.seq),
        [...seqs, next],
      );
      await back.close();
    } finally {
      await c.close({ timeoutMs: 500 }).catch(() => {});
      b.child.kill('SIGKILL');
      await b.exited;
    }
  });
});

describe('multicast to queues', () => {
  it('one send reaches several queues and is done when every copy is acked', async () => {
    const b = await broker();
    const producer = await client(b.endpoint);
    const consumer = await client(b.endpoint);
    const waiting = producer.sendMulticast(['mc-a', 'mc-b', 'mc-c'], 'hello', {
      wait: true,
      timeoutMs: 10_000,
    });
    for (const q of ['mc-a', 'mc-b', 'mc-c']) {
      for await (const m of consumer.consume(q)) {
        assert.equal(m.body.toString(), 'hello');
        await m.ack();
        break;
      }
    }
    const out = await waiting;
    assert.equal(out.complete, true);
    assert.deepEqual(out.acked, ['mc-a', 'mc-b', 'mc-c']);
    assert.equal(Object.keys(out.ids).length, 3);
    const quick = await producer.sendMulticast(['mc-a', 'mc-d'], 'x', {
      wait: true,
      timeoutMs: 200,
    });
    assert.equal(quick.complete, false);
    assert.deepEqual(quick.pending, ['mc-a', 'mc-d']);
    await rejectsWith(producer.sendMulticast(['a', 'a'], 'x'), 'BAD_ARGUMENTS');
    await rejectsWith(producer.sendMulticast(['bad name'], 'x'), 'INVALID_QUEUE_NAME');
    await rejectsWith(producer.sendMulticast([], 'x'), 'BAD_ARGUMENTS');
  });
});

describe('pub/sub commands refuse bad arguments with a code', () => {
  it('answers every malformed topic command with an ERROR and keeps serving', async () => {
    const b = await broker();
    const c = await client(b.endpoint);
    const raw = (
      c as unknown as {
        request(cmd: string, args: Record<string, unknown>, payload?: Buffer[]): Promise<unknown>;
      }
    ).request.bind(c);
    const x = [Buffer.from('x')];
    await rejectsWith(raw('PUBLISH', { topic: 5 }, x), 'BAD_ARGUMENTS');
    await rejectsWith(raw('PUBLISH', { topic: 'a' }, []), 'BAD_FRAME');
    await rejectsWith(raw('PUBLISH', { topic: 'a', retain: 'yes' }, x), 'BAD_ARGUMENTS');
    await rejectsWith(raw('PUBLISH', { topic: 'a', headers: [1] }, x), 'BAD_ARGUMENTS');
    await rejectsWith(raw('PUBLISH', { topic: 'a', color: 'red' }, x), 'BAD_ARGUMENTS');
    await rejectsWith(raw('SUBSCRIBE', { pattern: 'a' }), 'BAD_ARGUMENTS');
    await rejectsWith(raw('SUBSCRIBE', { pattern: 'a', subscription: '' }), 'BAD_ARGUMENTS');
    await rejectsWith(
      raw('SUBSCRIBE', { pattern: 'a', subscription: 's', window: -1 }),
      'BAD_ARGUMENTS',
    );
    await rejectsWith(
      raw('SUBSCRIBE', { pattern: 'a', subscription: 's', durable: 'x', group: 'y' }),
      'BAD_ARGUMENTS',
    );
    await rejectsWith(
      raw('SUBSCRIBE', { pattern: 'a', subscription: 's', prefetch: 5 }),
      'BAD_ARGUMENTS',
    );
    await rejectsWith(raw('UNSUBSCRIBE', {}), 'BAD_ARGUMENTS');
    await rejectsWith(raw('UNSUBSCRIBE', { subscription: 'nope' }), 'SUBSCRIPTION_NOT_FOUND');
    await rejectsWith(raw('TOPIC_ACK', { subscription: 's', count: -1 }), 'BAD_ARGUMENTS');
    await rejectsWith(raw('RETAINED', { pattern: 'a/b*' }), 'INVALID_TOPIC');
    await rejectsWith(raw('CONFIRM', { node: 'n', items: 'x' }), 'BAD_ARGUMENTS');
    await rejectsWith(
      raw('CONFIRM', { node: 'n', items: [{ topic: 'a', seq: 0 }] }),
      'BAD_ARGUMENTS',
    );
    await rejectsWith(raw('CONFIRM', { node: 'bad node', items: [] }), 'BAD_ARGUMENTS');
    await rejectsWith(raw('ROLLOUT', { topic: 'a', nodes: [1] }, x), 'BAD_ARGUMENTS');
    await rejectsWith(raw('ROLLOUT', { topic: 'a', timeoutMs: 0 }, x), 'BAD_ARGUMENTS');
    await rejectsWith(raw('ROLLOUT', { topic: 'a' }, []), 'BAD_FRAME');
    await rejectsWith(raw('TOPIC_STATUS', {}), 'BAD_ARGUMENTS');
    await rejectsWith(raw('SEND_MULTICAST', { queues: 'q' }, x), 'BAD_ARGUMENTS');
    await rejectsWith(raw('SEND_MULTICAST', { queues: ['q'] }, []), 'BAD_FRAME');
    assert.ok((await c.publish('still/serving', 'yes')) > 0);
  });
});
