/** The pub/sub core without sockets: a manual clock and an in-memory store. */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Broker, type Delivery } from 'ferrymq-server/internal/core/broker.js';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import { PubSub, type LiveSink, type TopicMessage } from 'ferrymq-server/internal/core/pubsub.js';
import { FerryError } from 'ferrymq/model';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';

const open: { broker: Broker; pubsub: PubSub }[] = [];

async function harness(): Promise<{ broker: Broker; pubsub: PubSub; clock: ManualClock }> {
  const clock = new ManualClock();
  const storage = new SqliteStorage({ dataDir: IN_MEMORY, sync: { mode: 'off' } });
  const broker = await Broker.open({ storage, clock });
  const pubsub = await PubSub.open({ storage: storage.pubsub, broker, clock, liveWindow: 5 });
  open.push({ broker, pubsub });
  return { broker, pubsub, clock };
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    h.pubsub.close();
    await h.broker.close();
  }
});

interface Recorder extends LiveSink {
  got: TopicMessage[];
  snapshots: { items: TopicMessage[]; seq: number; last: boolean }[];
  dropped_: FerryError[];
}

function recorder(): Recorder {
  const r: Recorder = {
    got: [],
    snapshots: [],
    dropped_: [],
    messages: (batch) => r.got.push(...batch),
    snapshot: (items, seq, last) => r.snapshots.push({ items, seq, last }),
    dropped: (err) => r.dropped_.push(err),
  };
  return r;
}

const b = (s: string): Buffer[] => [Buffer.from(s)];
/** Lets the store's turn commit and the promises after it run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(() => setImmediate(r)));

describe('pub/sub core', () => {
  it('numbers publishes strictly increasing and hands them to live subscribers in order', async () => {
    const h = await harness();
    const r = recorder();
    h.pubsub.subscribeLive('a/**', r, { window: 0 });
    const seqs = await Promise.all(
      [1, 2, 3, 4].map((i) => h.pubsub.publish(`a/${i % 2}`, b(`${i}`))),
    );
    assert.deepEqual(
      seqs.map((s) => s.seq),
      [1, 2, 3, 4],
    );
    assert.deepEqual(
      r.got.map((m) => m.seq),
      [1, 2, 3, 4],
    );
  });

  it('hands the publishes of one group commit to a live subscriber as one batch, in order', async () => {
    const h = await harness();
    const batches: number[][] = [];
    const r = recorder();
    r.messages = (batch) => {
      batches.push(batch.map((m) => m.seq));
      r.got.push(...batch);
    };
    h.pubsub.subscribeLive('g/**', r, { window: 0 });
    // Published in one turn: one transaction, so one hand-out (one TOPIC on the wire).
    await Promise.all([1, 2, 3, 4, 5].map((i) => h.pubsub.publish(`g/${i % 3}`, b(`${i}`))));
    // The next turn's publish is a commit of its own: a batch of its own.
    await h.pubsub.publish('g/0', b('6'));
    assert.deepEqual(batches, [[1, 2, 3, 4, 5], [6]]);
  });

  it('a snapshot reflects exactly the publishes numbered up to its seq, later ones follow', async () => {
    const h = await harness();
    await h.pubsub.publish('c/x', b('1'), { retain: true });
    const late = h.pubsub.publish('c/x', b('2'), { retain: true }); // queued in the same turn
    const r = recorder();
    h.pubsub.subscribeLive('c/', r, { snapshot: true });
    const after = h.pubsub.publish('c/x', b('3'), { retain: true });
    await Promise.all([late, after]);
    await settle();
    assert.equal(r.snapshots.length, 1);
    const snap = r.snapshots[0]!;
    assert.equal(snap.seq, 2);
    assert.deepEqual(
      snap.items.map((m) => m.frames[0]!.toString()),
      ['2'],
    );
    assert.deepEqual(
      r.got.map((m) => m.seq),
      [3],
    );
  });

  it('expires a retained value on the clock and publishes the delete', async () => {
    const h = await harness();
    const r = recorder();
    h.pubsub.subscribeLive('t/', r, { window: 0 });
    await h.pubsub.publish('t/a', b('v'), { retain: true, ttlMs: 500 });
    h.clock.advance(400);
    await settle();
    assert.equal((await h.pubsub.retained('t/')).items.length, 1);
    h.clock.advance(200);
    for (let i = 0; i < 10 && r.got.length < 2; i++) await settle();
    assert.equal((await h.pubsub.retained('t/')).items.length, 0);
    assert.equal(r.got.at(-1)!.deleted, true);
  });

  it('drops a live subscriber past its window and tells it', async () => {
    const h = await harness();
    const r = recorder();
    const sub = h.pubsub.subscribeLive('w/**', r); // the harness window: 5
    for (let i = 0; i < 5; i++) await h.pubsub.publish('w/x', b(`${i}`));
    sub.consumed(5);
    for (let i = 0; i < 6; i++) await h.pubsub.publish('w/x', b(`${i}`));
    assert.equal(r.dropped_.length, 1);
    assert.equal(r.dropped_[0]!.code, 'SUBSCRIBER_DROPPED');
    assert.equal(h.pubsub.stats().droppedSubscribers, 1);
  });

  it('copies into durable subscriptions and waits for named nodes in a rollout', async () => {
    const h = await harness();
    await h.pubsub.ensureDurable('n1', 'cfg/**');
    await h.pubsub.ensureDurable('n2', 'cfg/**');
    const deliveries: Delivery[] = [];
    const session = h.broker.openSession({ deliver: (_t, m) => deliveries.push(...m) });
    session.consume('sub:n1');
    const rollout = h.pubsub.rollout('cfg/db', b('v1'), { timeoutMs: 1_000 });
    for (let i = 0; i < 10 && deliveries.length === 0; i++) await settle();
    assert.equal(deliveries.length, 1);
    assert.equal(deliveries[0]!.headers?.['ferry-topic'], 'cfg/db');
    await h.pubsub.confirm('n1', [{ topic: 'cfg/db', seq: 1 }]);
    h.clock.advance(1_000);
    const out = await rollout;
    assert.deepEqual([out.complete, out.confirmed, out.pending], [false, ['n1'], ['n2']]);
    const status = await h.pubsub.status('cfg/**');
    assert.deepEqual(
      status[0]!.nodes.map((n) => [n.node, n.current]),
      [['n1', true]],
    );
  });
});
