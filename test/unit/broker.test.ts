/**
 * The core on its own: an in-memory store, a hand-driven clock, no sockets.
 * Each test names the promise of docs/semantics.md it checks.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Broker, type Delivery, type Session } from 'ferrymq-server/internal/core/broker.js';
import { retryDelayMs } from 'ferrymq-server/internal/core/backoff.js';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import { FerryError, type QueuePolicy } from 'ferrymq/model';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { waitFor } from '../helpers/broker.js';

interface Harness {
  broker: Broker;
  clock: ManualClock;
  session: Session;
  deliveries: Delivery[];
}

const open: Broker[] = [];

async function harness(
  policy: Partial<QueuePolicy> = {},
  opts: { storageLow?: () => boolean; maxMessageBytes?: number } = {},
): Promise<Harness> {
  const clock = new ManualClock();
  const broker = await Broker.open({
    storage: new SqliteStorage({ dataDir: IN_MEMORY, sync: { mode: 'off' } }),
    clock,
    random: () => 0.5,
    defaultPolicy: policy,
    ...(opts.storageLow ? { isStorageLow: opts.storageLow } : {}),
    ...(opts.maxMessageBytes ? { limits: { maxMessageBytes: opts.maxMessageBytes } } : {}),
  });
  open.push(broker);
  const deliveries: Delivery[] = [];
  const session = broker.openSession({ deliver: (_tag, msgs) => deliveries.push(...msgs) });
  return { broker, clock, session, deliveries };
}

const body = (s: string): Buffer[] => [Buffer.from(s)];
const text = (d: Delivery): string => d.frames[0]!.toString();

afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
});

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  await assert.rejects(
    async () => (typeof p === 'function' ? p() : p),
    (err: unknown) => err instanceof FerryError && err.code === code,
  );
}

describe('core broker', () => {
  it('never repeats a session id, within a run or across runs (docs/protocol.md, HELLO)', async () => {
    const first = await harness();
    const second = await harness(); // another run of the broker: a new Broker, as after a restart
    const ids = [
      first.session.id,
      first.broker.openSession({ deliver: () => {} }).id,
      second.session.id,
      second.broker.openSession({ deliver: () => {} }).id,
    ];
    assert.equal(new Set(ids).size, ids.length, ids.join(' '));
    assert.match(ids[0]!, /^s1-[0-9a-f]{8}$/);
    assert.match(ids[2]!, /^s1-[0-9a-f]{8}$/, 'numbering restarts, the run tag differs');
  });

  it('delivers in priority order, then oldest first', async () => {
    const h = await harness();
    await h.session.send('q', [
      { frames: body('low-1') },
      { frames: body('high'), priority: 9 },
      { frames: body('low-2') },
      { frames: body('mid'), priority: 5 },
    ]);
    h.session.consume('q', { prefetch: 10 });
    await waitFor(() => h.deliveries.length === 4, 'four deliveries');
    assert.deepEqual(h.deliveries.map(text), ['high', 'mid', 'low-1', 'low-2']);
  });

  it('never delivers more than prefetch unacked messages, and acks free credit', async () => {
    const h = await harness();
    await h.session.send(
      'q',
      Array.from({ length: 50 }, (_, i) => ({ frames: body(`m${i}`) })),
    );
    h.session.consume('q', { prefetch: 5 });
    await waitFor(() => h.deliveries.length === 5, 'first window');
    assert.equal(h.broker.stats().leases, 5);
    await h.session.ack(h.deliveries.slice(0, 2).map((d) => d.id));
    await waitFor(() => h.deliveries.length === 7, 'two more after two acks');
    assert.equal(h.broker.stats().leases, 5);
  });

  it('keeps memory bounded by prefetch, not by queue depth', async () => {
    const h = await harness();
    for (let i = 0; i < 10; i++) {
      await h.session.send(
        'deep',
        Array.from({ length: 500 }, () => ({ frames: body('x') })),
      );
    }
    h.session.consume('deep', { prefetch: 3 });
    await waitFor(() => h.deliveries.length === 3, 'three deliveries');
    const qs = await h.broker.queueStats('deep');
    assert.equal(qs.depth, 5000);
    assert.equal(qs.ready, 4997);
    assert.equal(h.broker.stats().leases, 3, 'only leased messages are held in memory');
  });

  it('redelivers an unacked message after its ack timeout, with attempt + 1', async () => {
    const h = await harness({ ackTimeoutMs: 1_000 });
    await h.session.send('q', [{ frames: body('a') }]);
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'first delivery');
    h.clock.advance(900);
    assert.equal(h.deliveries.length, 1, 'not before the timeout');
    h.clock.advance(300);
    await waitFor(() => h.deliveries.length === 2, 'redelivery');
    assert.equal(h.deliveries[1]!.id, h.deliveries[0]!.id);
    assert.equal(h.deliveries[1]!.attempt, 2);
    assert.deepEqual(await h.session.ack([h.deliveries[0]!.id]), [null]);
  });

  it('honours a per-consumer ack timeout and extend()', async () => {
    const h = await harness({ ackTimeoutMs: 60_000 });
    await h.session.send('q', [{ frames: body('a') }]);
    h.session.consume('q', { prefetch: 1, ackTimeoutMs: 500 });
    await waitFor(() => h.deliveries.length === 1, 'delivery');
    h.clock.advance(400);
    assert.deepEqual(h.session.extend([h.deliveries[0]!.id], 2_000), [null]);
    h.clock.advance(1_500);
    assert.equal(h.deliveries.length, 1, 'extended lease holds');
    h.clock.advance(700);
    await waitFor(() => h.deliveries.length === 2, 'redelivery after the extension');
  });

  it('redelivers at once when a session closes, to another consumer', async () => {
    const h = await harness();
    await h.session.send('q', [{ frames: body('a') }]);
    const other: Delivery[] = [];
    const s2 = h.broker.openSession({ deliver: (_t, m) => other.push(...m) });
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'first delivery');
    s2.consume('q', { prefetch: 1 });
    h.session.close();
    await waitFor(() => other.length === 1, 'redelivered to the other session');
    assert.equal(other[0]!.attempt, 2);
    await rejectsWith(h.session.send('q', [{ frames: body('late') }]), 'SHUTTING_DOWN');
  });

  it('answers LEASE_LOST for acks of messages not held', async () => {
    const h = await harness();
    await h.session.send('q', [{ frames: body('a') }]);
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'delivery');
    const s2 = h.broker.openSession({ deliver: () => {} });
    assert.deepEqual(await s2.ack([h.deliveries[0]!.id]), ['LEASE_LOST']);
    assert.deepEqual(await h.session.ack([h.deliveries[0]!.id, '999999']), [null, 'LEASE_LOST']);
    assert.deepEqual(await h.session.ack([h.deliveries[0]!.id]), ['LEASE_LOST'], 'a second ack');
  });

  it('nack without delay retries after exponential backoff with jitter', async () => {
    assert.equal(
      retryDelayMs(1, 1000, 60_000, () => 0),
      500,
    );
    assert.equal(
      retryDelayMs(1, 1000, 60_000, () => 1),
      1000,
    );
    assert.equal(
      retryDelayMs(3, 1000, 60_000, () => 0.5),
      3000,
    );
    assert.equal(
      retryDelayMs(20, 1000, 60_000, () => 1),
      60_000,
      'capped',
    );
    const h = await harness({ retryBaseMs: 1_000, retryMaxMs: 60_000 });
    await h.session.send('q', [{ frames: body('a') }]);
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'delivery 1');
    await h.session.nack([h.deliveries[0]!.id]);
    // attempt 1, random 0.5 → 750 ms
    h.clock.advance(700);
    assert.equal(h.deliveries.length, 1);
    assert.equal((await h.broker.queueStats('q')).scheduled, 1);
    h.clock.advance(100);
    await waitFor(() => h.deliveries.length === 2, 'delivery 2');
    await h.session.nack([h.deliveries[1]!.id]);
    // attempt 2 → 2000 × 0.75 = 1500 ms
    h.clock.advance(1_400);
    assert.equal(h.deliveries.length, 2);
    h.clock.advance(150);
    await waitFor(() => h.deliveries.length === 3, 'delivery 3');
    assert.equal(h.deliveries[2]!.attempt, 3);
  });

  it('nack with delayMs 0 redelivers at once; dead: true dead-letters at once', async () => {
    const h = await harness();
    await h.session.send('q', [{ frames: body('a') }]);
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'delivery');
    await h.session.nack([h.deliveries[0]!.id], { delayMs: 0 });
    await waitFor(() => h.deliveries.length === 2, 'immediate redelivery');
    await h.session.nack([h.deliveries[1]!.id], { dead: true });
    const qs = await h.broker.queueStats('q');
    assert.equal(qs.dead, 1);
    assert.equal(qs.depth, 0);
    const dead = await h.broker.peek('q', { state: 'dead' });
    assert.equal(dead[0]!.deadReason, 'rejected');
  });

  it('moves a message to the dead letters after max attempts, and redrive brings it back', async () => {
    const h = await harness({ maxAttempts: 3 });
    await h.session.send('q', [{ frames: body('poison') }]);
    h.session.consume('q', { prefetch: 1 });
    for (let n = 1; n <= 3; n++) {
      await waitFor(() => h.deliveries.length === n, `delivery ${n}`);
      await h.session.nack([h.deliveries[n - 1]!.id], { delayMs: 0 });
    }
    await waitFor(async () => (await h.broker.queueStats('q')).dead === 1, 'dead-lettered');
    assert.equal(h.deliveries.length, 3);
    const [dead] = await h.broker.peek('q', { state: 'dead' });
    assert.equal(dead!.deadReason, 'max-attempts');
    assert.equal(dead!.attempts, 3);
    assert.equal(await h.broker.redrive('q'), 1);
    await waitFor(() => h.deliveries.length === 4, 'redriven delivery');
    assert.equal(h.deliveries[3]!.attempt, 1, 'attempts reset by redrive');
  });

  it('holds delayed messages until their time', async () => {
    const h = await harness();
    await h.session.send('q', [{ frames: body('later'), delayMs: 5_000 }, { frames: body('now') }]);
    h.session.consume('q', { prefetch: 10 });
    await waitFor(() => h.deliveries.length === 1, 'the undelayed one');
    assert.equal(text(h.deliveries[0]!), 'now');
    h.clock.advance(4_900);
    assert.equal(h.deliveries.length, 1);
    h.clock.advance(200);
    await waitFor(() => h.deliveries.length === 2, 'the delayed one');
    assert.equal(text(h.deliveries[1]!), 'later');
  });

  it('discards messages whose TTL passed before delivery', async () => {
    const h = await harness();
    await h.session.send('q', [
      { frames: body('short'), ttlMs: 1_000 },
      { frames: body('long'), ttlMs: 60_000 },
    ]);
    h.clock.advance(1_500);
    h.session.consume('q', { prefetch: 10 });
    await waitFor(() => h.deliveries.length === 1, 'one delivery');
    assert.equal(text(h.deliveries[0]!), 'long');
    const qs = await h.broker.queueStats('q');
    assert.equal(qs.expired, 1);
    assert.equal(qs.depth, 1);
  });

  it('stores a repeated dedup key once within the window, again after it', async () => {
    const h = await harness({ dedupWindowMs: 10_000 });
    const a = await h.session.send('q', [{ frames: body('a'), dedupKey: 'k1' }]);
    const b = await h.session.send('q', [{ frames: body('a-again'), dedupKey: 'k1' }]);
    assert.deepEqual(b.ids, a.ids);
    assert.deepEqual(b.duplicates, [0]);
    assert.equal((await h.broker.queueStats('q')).depth, 1);
    h.clock.advance(10_001);
    const c = await h.session.send('q', [{ frames: body('a-later'), dedupKey: 'k1' }]);
    assert.notDeepEqual(c.ids, a.ids);
    assert.equal((await h.broker.queueStats('q')).depth, 2);
  });

  it('replays a request key without storing again', async () => {
    const h = await harness();
    const a = await h.session.send('q', [{ frames: body('1') }, { frames: body('2') }], {
      requestKey: 'r1',
    });
    const b = await h.session.send('q', [{ frames: body('1') }, { frames: body('2') }], {
      requestKey: 'r1',
    });
    assert.deepEqual(b.ids, a.ids);
    assert.equal(b.replayed, true);
    assert.equal((await h.broker.queueStats('q')).depth, 2);
  });

  it('refuses sends past max depth or max bytes with QUEUE_FULL, storing nothing', async () => {
    const h = await harness({ maxDepth: 3 });
    await h.session.send('q', [{ frames: body('1') }, { frames: body('2') }]);
    await rejectsWith(
      h.session.send('q', [{ frames: body('3') }, { frames: body('4') }]),
      'QUEUE_FULL',
    );
    assert.equal((await h.broker.queueStats('q')).depth, 2, 'all or nothing');
    await h.session.send('q', [{ frames: body('3') }]);
    await rejectsWith(h.session.send('q', [{ frames: body('4') }]), 'QUEUE_FULL');

    const hb = await harness({ maxBytes: 10 });
    await hb.session.send('b', [{ frames: [Buffer.alloc(8)] }]);
    await rejectsWith(hb.session.send('b', [{ frames: [Buffer.alloc(3)] }]), 'QUEUE_FULL');
  });

  it('refuses sends with STORAGE_FULL while the disk is low, but still takes acks', async () => {
    let low = false;
    const h = await harness({}, { storageLow: () => low });
    await h.session.send('q', [{ frames: body('a') }]);
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'delivery');
    low = true;
    await rejectsWith(h.session.send('q', [{ frames: body('b') }]), 'STORAGE_FULL');
    assert.deepEqual(await h.session.ack([h.deliveries[0]!.id]), [null]);
    low = false;
    await h.session.send('q', [{ frames: body('c') }]);
  });

  it('answers bad input with coded errors', async () => {
    const h = await harness({}, { maxMessageBytes: 100 });
    await rejectsWith(h.session.send('bad name!', [{ frames: body('x') }]), 'INVALID_QUEUE_NAME');
    await rejectsWith(h.session.send('', [{ frames: body('x') }]), 'INVALID_QUEUE_NAME');
    await rejectsWith(h.session.send('q', [{ frames: [Buffer.alloc(101)] }]), 'MESSAGE_TOO_LARGE');
    await rejectsWith(h.session.send('q', [{ frames: [] }]), 'BAD_ARGUMENTS');
    await rejectsWith(h.session.send('q', [{ frames: body('x'), priority: 256 }]), 'BAD_ARGUMENTS');
    await rejectsWith(h.session.send('q', [{ frames: body('x'), priority: 1.5 }]), 'BAD_ARGUMENTS');
    await rejectsWith(h.session.send('q', [{ frames: body('x'), delayMs: -1 }]), 'BAD_ARGUMENTS');
    await rejectsWith(h.session.send('q', [{ frames: body('x'), ttlMs: 0 }]), 'BAD_ARGUMENTS');
    await rejectsWith(h.session.send('q', [{ frames: body('x'), dedupKey: '' }]), 'BAD_ARGUMENTS');
    await rejectsWith(
      h.session.send('q', [{ frames: body('x'), headers: { a: 1 as unknown as string } }]),
      'BAD_ARGUMENTS',
    );
    await rejectsWith(() => h.session.consume('q', { prefetch: 0 }), 'BAD_ARGUMENTS');
    await rejectsWith(() => h.session.consume('q', { ackTimeoutMs: -5 }), 'BAD_ARGUMENTS');
    h.session.consume('q', { tag: 't' });
    await rejectsWith(() => h.session.consume('q', { tag: 't' }), 'CONSUMER_EXISTS');
    await rejectsWith(() => h.session.cancel('nope'), 'CONSUMER_NOT_FOUND');
    await rejectsWith(h.broker.peek('missing'), 'QUEUE_NOT_FOUND');
    await rejectsWith(h.session.nack(['1'], { delayMs: Number.NaN }), 'BAD_ARGUMENTS');
    assert.equal((await h.broker.queueStats('q')).depth, 0, 'nothing stored by bad sends');
  });

  it('purges ready messages but leaves leased ones to finish', async () => {
    const h = await harness();
    await h.session.send('q', [
      { frames: body('1') },
      { frames: body('2') },
      { frames: body('3') },
    ]);
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'delivery');
    assert.equal(await h.broker.purge('q'), 2);
    const qs = await h.broker.queueStats('q');
    assert.equal(qs.depth, 1);
    assert.equal(qs.leased, 1);
    assert.deepEqual(await h.session.ack([h.deliveries[0]!.id]), [null]);
  });

  it('spreads deliveries across consumers of a queue', async () => {
    const h = await harness();
    const a: Delivery[] = [];
    const b: Delivery[] = [];
    const sa = h.broker.openSession({ deliver: (_t, m) => a.push(...m) });
    const sb = h.broker.openSession({ deliver: (_t, m) => b.push(...m) });
    sa.consume('w', { prefetch: 2 });
    sb.consume('w', { prefetch: 2 });
    await h.session.send(
      'w',
      Array.from({ length: 4 }, (_, i) => ({ frames: body(`${i}`) })),
    );
    await waitFor(() => a.length + b.length === 4, 'four deliveries');
    assert.equal(a.length, 2);
    assert.equal(b.length, 2);
  });
  describe('direct path (store leased, deliver from memory)', () => {
    it('delivers a message sent while a consumer waits in the same commit as its store', async () => {
      const h = await harness();
      h.session.consume('d', { prefetch: 10 });
      await waitFor(async () => (await h.broker.queueStats('d')).consumers === 1, 'consumer');
      const out = await h.session.send('d', [{ frames: body('fast') }]);
      // No second round trip to the store: the delivery is made as the send commits.
      assert.equal(h.deliveries.length, 1);
      assert.equal(h.deliveries[0]!.id, out.ids[0]);
      assert.equal(h.deliveries[0]!.attempt, 1);
      const stored = await h.broker.peek('d', { state: 'leased' });
      assert.equal(stored.length, 1, 'stored as leased');
      assert.deepEqual(await h.session.ack(out.ids), [null]);
      assert.equal((await h.broker.queueStats('d')).depth, 0);
    });

    it('keeps FIFO: a backlog is delivered before anything new', async () => {
      const h = await harness();
      await h.session.send('f', [{ frames: body('old-1') }, { frames: body('old-2') }]);
      h.session.consume('f', { prefetch: 1 });
      await waitFor(() => h.deliveries.length === 1, 'first of the backlog');
      await h.session.send('f', [{ frames: body('new') }]);
      for (let n = 1; n <= 3; n++) {
        await waitFor(() => h.deliveries.length === n, `delivery ${n}`);
        await h.session.ack([h.deliveries[n - 1]!.id]);
      }
      assert.deepEqual(h.deliveries.map(text), ['old-1', 'old-2', 'new']);
    });

    it('goes through the queue when one request mixes priorities, keeping priority order', async () => {
      const h = await harness();
      h.session.consume('p', { prefetch: 1 });
      await waitFor(async () => (await h.broker.queueStats('p')).consumers === 1, 'consumer');
      await h.session.send('p', [{ frames: body('low') }, { frames: body('high'), priority: 7 }]);
      await waitFor(() => h.deliveries.length === 1, 'first');
      assert.equal(text(h.deliveries[0]!), 'high');
    });

    it('does not leak credit when a directly leased message turns out to be a duplicate', async () => {
      const h = await harness();
      h.session.consume('dup', { prefetch: 1 });
      await waitFor(async () => (await h.broker.queueStats('dup')).consumers === 1, 'consumer');
      const a = await h.session.send('dup', [{ frames: body('a'), dedupKey: 'k' }]);
      assert.equal(h.deliveries.length, 1);
      await h.session.ack(a.ids);
      const again = await h.session.send('dup', [{ frames: body('a'), dedupKey: 'k' }]);
      assert.deepEqual(again.duplicates, [0]);
      await h.session.send('dup', [{ frames: body('b') }]);
      await waitFor(() => h.deliveries.length === 2, 'the next message still gets through');
      assert.equal(text(h.deliveries[1]!), 'b');
    });

    it('returns a direct message to the queue, uncounted, when its consumer left before the commit', async () => {
      const h = await harness();
      const s2 = h.broker.openSession({ deliver: () => {} });
      s2.consume('gone', { prefetch: 5 });
      await waitFor(async () => (await h.broker.queueStats('gone')).consumers === 1, 'consumer');
      const sending = h.session.send('gone', [{ frames: body('x') }]);
      s2.close(); // before the commit
      await sending;
      h.session.consume('gone', { prefetch: 5 });
      await waitFor(() => h.deliveries.length === 1, 'delivered to the remaining consumer');
      assert.equal(h.deliveries[0]!.attempt, 1, 'the undelivered lease did not count');
    });
  });
});
