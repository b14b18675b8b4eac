/**
 * Batched publishes (PubSub.publishMany, what the SDK's PUBLISH of one tick becomes): one
 * storage call and one delivery per durable consumer for the whole batch, and per-publish
 * refusals exactly as if each had been published alone.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Broker, type Delivery } from 'ferrymq-server/internal/core/broker.js';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import { PubSub, type PublishItem } from 'ferrymq-server/internal/core/pubsub.js';
import { FerryError } from 'ferrymq/model';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';

const open: { broker: Broker; pubsub: PubSub }[] = [];

async function harness(
  queuePolicies: Record<string, { maxDepth: number }> = {},
): Promise<{ broker: Broker; pubsub: PubSub; storage: SqliteStorage }> {
  const clock = new ManualClock();
  const storage = new SqliteStorage({ dataDir: IN_MEMORY, sync: { mode: 'off' } });
  const broker = await Broker.open({ storage, clock, queuePolicies });
  const pubsub = await PubSub.open({ storage: storage.pubsub, broker, clock });
  open.push({ broker, pubsub });
  return { broker, pubsub, storage };
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    h.pubsub.close();
    await h.broker.close();
  }
});

const item = (topic: string, body: string, retain = false): PublishItem => ({
  topic,
  frames: [Buffer.from(body)],
  options: { retain },
});

/** Settles every promise, as { seq } or { code }. */
function outcomes(
  list: Promise<{ seq: number }>[],
): Promise<({ seq: number } | { code: string })[]> {
  return Promise.all(
    list.map((p) =>
      p.then(
        (o) => ({ seq: o.seq }),
        (err: unknown) => ({ code: err instanceof FerryError ? err.code : String(err) }),
      ),
    ),
  );
}

describe('batched publishes', () => {
  it('store a batch in one commit and hand each durable consumer one delivery, in order', async () => {
    const h = await harness();
    await h.pubsub.ensureDurable('n1', 'cfg/**');
    await h.pubsub.ensureDurable('n2', 'cfg/**');
    const calls: { tag: string; messages: Delivery[] }[] = [];
    const session = h.broker.openSession({ deliver: (tag, m) => calls.push({ tag, messages: m }) });
    session.consume('sub:n1', { tag: 'c1' });
    session.consume('sub:n2', { tag: 'c2' });
    // Let the consumers' first (empty) lease finish, so the batch takes the direct path.
    await new Promise((r) => setImmediate(() => setImmediate(r)));
    const before = h.storage.metrics();
    const items = Array.from({ length: 5 }, (_, i) => item(`cfg/${i % 2}`, `v${i}`));
    const out = await Promise.all(h.pubsub.publishMany(items));
    const after = h.storage.metrics();
    assert.deepEqual(
      out.map((o) => [o.seq, o.durable]),
      [1, 2, 3, 4, 5].map((s) => [s, 2]),
    );
    assert.equal(after.commits - before.commits, 1, 'one commit for the whole batch');
    assert.equal(after.messagesWritten - before.messagesWritten, 10, 'a copy per subscription');
    assert.deepEqual(
      calls.map((c) => [c.tag, c.messages.map((m) => m.headers?.['ferry-seq'])]),
      [
        ['c1', ['1', '2', '3', '4', '5']],
        ['c2', ['1', '2', '3', '4', '5']],
      ],
      'one delivery per consumer carrying the whole batch in publish order',
    );
    assert.equal(h.pubsub.stats().published, 5);
  });

  it('a batch a subscription limit refuses goes one by one: only the publishes over it fail', async () => {
    const h = await harness({ 'sub:tiny': { maxDepth: 3 } });
    await h.pubsub.ensureDurable('tiny', 't/**');
    const items = Array.from({ length: 5 }, (_, i) => item(`t/${i}`, `v${i}`, true));
    const out = await outcomes(h.pubsub.publishMany(items));
    assert.deepEqual(out, [
      { seq: 1 },
      { seq: 2 },
      { seq: 3 },
      { code: 'QUEUE_FULL' },
      { code: 'QUEUE_FULL' },
    ]);
    const retained = await h.pubsub.retained('t/');
    assert.deepEqual(
      retained.items.map((m) => m.topic),
      ['t/0', 't/1', 't/2'],
      'a refused publish stores no retained value',
    );
  });

  it('a publish of a batch that fails its own checks is refused alone', async () => {
    const h = await harness();
    const out = await outcomes(
      h.pubsub.publishMany([item('a', '1'), item('bad/*', '2'), item('b', '3')]),
    );
    assert.deepEqual(out, [{ seq: 1 }, { code: 'INVALID_TOPIC' }, { seq: 2 }]);
  });
});
