/**
 * Pub/sub across several active brokers on one PostgreSQL store (docs/postgres.md,
 * "Publishes"): real brokers on tcp://127.0.0.1:*, the local PostgreSQL, one fresh schema per
 * test. Live subscribers on every broker see every broker's publishes in one order with the
 * store's sequence numbers; durable subscriptions created on another broker get copies; a
 * snapshot on one broker joins the updates published on another without a gap or a
 * duplicate; a Clone (12/CHP) client on one broker follows updates set through another.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { connect, type FerryClient, type TopicMessage, type TopicSubscription } from 'ferrymq';
import { freePort, REPO_ROOT, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { dropSchema, freshSchemaName, PG_TEST_URL } from '../helpers/postgres.js';

/** The shortest liveness timeout the config accepts. */
const NODE_TIMEOUT_MS = 3_000;
const TAKE_TIMEOUT_MS = 20_000;

const brokers: TestBroker[] = [];
const clients: FerryClient[] = [];
const schemas: string[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close({ timeoutMs: 500 }).catch(() => {});
  for (const b of brokers.splice(0)) await b.stop().catch(() => {});
});

after(async () => {
  for (const s of schemas.splice(0)) await dropSchema(s);
});

function newSchema(): string {
  const s = freshSchemaName('ferry_ps');
  schemas.push(s);
  return s;
}

async function broker(
  schema: string,
  nodeId: string,
  extra: Record<string, string> = {},
): Promise<TestBroker> {
  const b = await startBroker({
    store: PG_TEST_URL,
    'store-schema': schema,
    'node-id': nodeId,
    'node-timeout': String(NODE_TIMEOUT_MS),
    ...extra,
  });
  brokers.push(b);
  return b;
}

async function client(endpoint: string): Promise<FerryClient> {
  const c = await connect(endpoint, { heartbeatMs: 200, requestTimeoutMs: 20_000 });
  clients.push(c);
  return c;
}

/** Reads `n` messages from a subscription (acking each), with a deadline. */
async function take(sub: TopicSubscription, n: number): Promise<TopicMessage[]> {
  const out: TopicMessage[] = [];
  const it = sub[Symbol.asyncIterator]();
  const deadline = Date.now() + TAKE_TIMEOUT_MS;
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
    await r.value.ack();
  }
  return out;
}

function summary(msgs: TopicMessage[]): string[] {
  return msgs.map((m) => `${m.seq} ${m.topic} ${m.body.toString()}`);
}

/** Both brokers see each other alive (so commits notify). */
async function peersSeen(c: FerryClient): Promise<void> {
  await waitFor(
    async () => ((await c.stats()).cluster?.nodes.length ?? 0) >= 2,
    'both brokers listed',
  );
}

describe('pub/sub across brokers on one PostgreSQL store', () => {
  it('a publish on A reaches live subscribers on A and B with one sequence number', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    const ca = await client(a.endpoint);
    const cb = await client(b.endpoint);
    const subA = ca.subscribe('news/**');
    const subB = cb.subscribe('news/**');
    await Promise.all([subA.ready, subB.ready]);
    const seq = await ca.publish('news/today', 'hello');
    const [gotA] = await take(subA, 1);
    const [gotB] = await take(subB, 1);
    assert.equal(gotA!.seq, seq);
    assert.deepEqual(summary([gotB!]), summary([gotA!]));
    // And the other way round, numbered after it.
    const seq2 = await cb.publish('news/tomorrow', 'bye');
    assert.equal(seq2, seq + 1, 'numbers are cluster-wide');
    assert.deepEqual(summary(await take(subA, 1)), [`${seq2} news/tomorrow bye`]);
    assert.deepEqual(summary(await take(subB, 1)), [`${seq2} news/tomorrow bye`]);
  });

  it('concurrent publishes on A and B: every subscriber sees one gap-free order', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    const pa = await client(a.endpoint);
    const pb = await client(b.endpoint);
    await peersSeen(pa);
    const subs = [
      (await client(a.endpoint)).subscribe('load/**'),
      (await client(b.endpoint)).subscribe('load/**'),
      (await client(b.endpoint)).subscribe('load/**'),
    ];
    await Promise.all(subs.map((s) => s.ready));
    const n = 200;
    const burst = 20;
    const run = async (c: FerryClient, name: string): Promise<number[]> => {
      const seqs: number[] = [];
      for (let i = 0; i < n; i += burst) {
        const got = await Promise.all(
          Array.from({ length: burst }, (_, k) => c.publish(`load/${name}`, `${name}-${i + k}`)),
        );
        seqs.push(...got);
      }
      return seqs;
    };
    const [seqsA, seqsB] = await Promise.all([run(pa, 'a'), run(pb, 'b')]);
    const all = [...seqsA, ...seqsB].sort((x, y) => x - y);
    assert.equal(new Set(all).size, 2 * n, 'no number given twice');
    assert.equal(all[all.length - 1]! - all[0]!, 2 * n - 1, 'numbers without a gap');
    const seen = await Promise.all(subs.map((s) => take(s, 2 * n)));
    const first = summary(seen[0]!);
    for (const other of seen.slice(1)) assert.deepEqual(summary(other), first, 'one order');
    for (let i = 1; i < seen[0]!.length; i++) {
      assert.equal(seen[0]![i]!.seq, seen[0]![i - 1]!.seq + 1, 'strictly increasing, no gap');
    }
    // Each publisher's own publishes in the order it made them, with the numbers it was told.
    for (const [name, seqs] of [
      ['a', seqsA],
      ['b', seqsB],
    ] as const) {
      const mine = seen[0]!.filter((m) => m.topic === `load/${name}`);
      assert.deepEqual(
        mine.map((m) => m.seq),
        seqs,
      );
      assert.deepEqual(
        mine.map((m) => m.body.toString()),
        Array.from({ length: n }, (_, i) => `${name}-${i}`),
      );
    }
  });

  it('a durable subscription created on B after A started gets A’s publishes', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    const ca = await client(a.endpoint);
    const cb = await client(b.endpoint);
    const sub = cb.subscribe('orders/**', { durable: 'billing' });
    await sub.ready;
    await waitFor(
      async () => (await ca.stats()).pubsub?.durableSubscriptions === 1,
      'broker A knows the subscription created on B',
    );
    const seqs: number[] = [];
    for (let i = 0; i < 10; i++) seqs.push(await ca.publish('orders/new', `order-${i}`));
    const got = await take(sub, 10);
    assert.deepEqual(
      got.map((m) => m.body.toString()),
      Array.from({ length: 10 }, (_, i) => `order-${i}`),
    );
    assert.deepEqual(
      got.map((m) => m.seq),
      seqs,
      'copies carry the store’s numbers',
    );
    // Deleted on B: A stops copying.
    await cb.deleteSubscription('billing');
    await waitFor(
      async () => (await ca.stats()).pubsub?.durableSubscriptions === 0,
      'broker A forgets the subscription deleted on B',
    );
  });

  it('a snapshot on B joins updates published on A: no gap, no duplicate', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const b = await broker(schema, 'node-b');
    const pub = await client(a.endpoint);
    const keys = 50;
    for (let k = 0; k < keys; k++) await pub.publish(`cfg/k${k}`, 'v0', { retain: true });
    const first = await client(b.endpoint);
    const seen = (await first.retained('cfg/')).messages;
    assert.equal(seen.length, keys, 'retained values set on A are in B’s snapshot');
    // Keep publishing on A while a late joiner on B subscribes with a snapshot.
    let stop = false;
    let round = 0;
    const lastValue = new Map<string, string>();
    const writer = (async () => {
      while (!stop && round < 10_000) {
        round++;
        const batch: Promise<number>[] = [];
        for (let k = 0; k < keys; k += 7) {
          lastValue.set(`cfg/k${k}`, `v${round}`);
          batch.push(pub.publish(`cfg/k${k}`, `v${round}`, { retain: true }));
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
        await m.ack();
        if (m.topic === 'cfg/k0' && m.body.toString() === 'final') break;
      }
    })();
    try {
      await waitFor(() => updates >= 50, 'updates after the snapshot', { timeoutMs: 20_000 });
    } finally {
      stop = true;
      await writer;
    }
    const finalSeq = await pub.publish('cfg/k0', 'final', { retain: true });
    lastValue.set('cfg/k0', 'final');
    await reader;
    assert.equal(state.size, keys);
    for (const [k, v] of lastValue) assert.equal(state.get(k), v, `${k} converged`);
    for (let q = snapshotSeq + 1; q <= finalSeq; q++) assert.ok(seenSeqs.has(q), `gap at ${q}`);
  });

  it('a Clone client on B follows updates set through A', async () => {
    const schema = newSchema();
    const a = await broker(schema, 'node-a');
    const port = await cloneBase();
    await broker(schema, 'node-b', { clone: String(port) });
    const pub = await client(a.endpoint);
    await peersSeen(pub);
    for (let k = 0; k < 5; k++) await pub.publish(`/cl/k${k}`, 'v0', { retain: true });
    const py = spawn('/usr/bin/python3', [
      path.join(REPO_ROOT, 'test', 'fixtures', 'clone_watch.py'),
      '127.0.0.1',
      String(port),
      '/cl/',
    ]);
    const killTimer = setTimeout(() => py.kill('SIGKILL'), 60_000);
    let stdout = '';
    let stderr = '';
    py.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    py.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => py.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => stdout.includes('SNAPSHOT'), 'the clone client took its snapshot', {
        timeoutMs: 20_000,
      });
      for (let round = 1; round <= 20; round++) {
        await Promise.all(
          Array.from({ length: 5 }, (_, k) =>
            pub.publish(`/cl/k${k}`, `v${round}`, { retain: true }),
          ),
        );
      }
      await pub.publish('/cl/k2', '', { retain: true }); // a delete
      const doneSeq = await pub.publish('/cl/done', 'yes', { retain: true });
      assert.equal(await exited, 0, stderr);
      const r = JSON.parse(stdout.split('\n').find((l) => l.startsWith('{'))!) as {
        kthxbai: number;
        updates: number;
        in_order: boolean;
        last: number;
        state: Record<string, string>;
      };
      assert.ok(r.in_order, 'KVPUB updates gap-free after KTHXBAI');
      assert.ok(r.updates >= 100, `updates through KVPUB (${r.updates})`);
      assert.equal(r.last, doneSeq);
      const stored = await pub.retained('/cl/');
      const expected = Object.fromEntries(stored.messages.map((m) => [m.topic, m.body.toString()]));
      assert.deepEqual(r.state, expected, 'the clone client converged on the store');
      assert.equal(r.state['/cl/k2'], undefined);
    } finally {
      clearTimeout(killTimer);
      py.kill('SIGKILL');
    }
  });
});

/** Three consecutive free ports (P, P+1, P+2), checked one by one. */
async function cloneBase(): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const p = await freePort();
    if (p + 2 > 65_535) continue;
    const ok = await Promise.all([1, 2].map((k) => portFree(p + k)));
    if (ok.every(Boolean)) return p;
  }
  throw new Error('no three consecutive free ports');
}

async function portFree(port: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
