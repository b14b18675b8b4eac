/**
 * The core's queue life cycle on its own (SQLite store, a hand-driven clock, no sockets):
 * delete (refused while not empty, forced), pause and resume, runtime policy, and refused
 * sends that must leave no queue behind. Each case names the promise of docs/semantics.md
 * ("Queue life cycle") it checks.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { afterEach, describe, it } from 'node:test';
import { Broker, type Delivery, type Session } from 'ferrymq-server/internal/core/broker.js';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import { FerryError, type QueuePolicy } from 'ferrymq/model';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { tmpDir, waitFor } from '../helpers/broker.js';

interface Harness {
  broker: Broker;
  clock: ManualClock;
  session: Session;
  deliveries: Delivery[];
  cancelled: { tag: string; code: string }[];
}

const open: Broker[] = [];
const dirs: string[] = [];

interface HarnessOptions {
  policy?: Partial<QueuePolicy>;
  queuePolicies?: Record<string, Partial<QueuePolicy>>;
  dataDir?: string;
  maxMessageBytes?: number;
}

async function harness(o: HarnessOptions = {}): Promise<Harness> {
  const clock = new ManualClock();
  const broker = await Broker.open({
    storage: new SqliteStorage({ dataDir: o.dataDir ?? IN_MEMORY, sync: { mode: 'off' } }),
    clock,
    random: () => 0.5,
    defaultPolicy: o.policy ?? {},
    queuePolicies: o.queuePolicies ?? {},
    ...(o.maxMessageBytes ? { limits: { maxMessageBytes: o.maxMessageBytes } } : {}),
  });
  open.push(broker);
  const deliveries: Delivery[] = [];
  const cancelled: { tag: string; code: string }[] = [];
  const session = broker.openSession({
    deliver: (_tag, msgs) => deliveries.push(...msgs),
    cancelled: (tag, reason) => cancelled.push({ tag, code: reason.code }),
  });
  return { broker, clock, session, deliveries, cancelled };
}

const body = (s: string): Buffer[] => [Buffer.from(s)];
const text = (d: Delivery): string => d.frames[0]!.toString();

afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  await assert.rejects(
    async () => (typeof p === 'function' ? p() : p),
    (err: unknown) => err instanceof FerryError && err.code === code,
    `expected ${code}`,
  );
}

/**
 * Sends to a control queue with its own consumer and waits for that delivery, then makes a
 * store round trip: every delivery the broker would have made before is out by then.
 */
async function settleDeliveries(h: Harness, what: string): Promise<void> {
  const control = `control-${what.replace(/[^A-Za-z0-9]/g, '')}`;
  const got: Delivery[] = [];
  const s = h.broker.openSession({ deliver: (_t, m) => got.push(...m) });
  s.consume(control, { prefetch: 1 });
  await s.send(control, [{ frames: body('ping') }]);
  await waitFor(() => got.length === 1, `control delivery (${what})`);
  await h.broker.queueStats(control);
  s.close();
}

describe('queue life cycle: delete', () => {
  it('an empty queue is deleted: gone from the list and the stats', async () => {
    const h = await harness();
    await h.session.send('q', [{ frames: body('a') }]);
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'delivery');
    await h.session.ack([h.deliveries[0]!.id]);
    assert.deepEqual(await h.broker.deleteQueue('q'), { messages: 0 });
    assert.deepEqual(h.broker.listQueues(), []);
    await rejectsWith(h.broker.queueStats('q'), 'QUEUE_NOT_FOUND');
    assert.equal(h.broker.stats().queues, 0);
    assert.deepEqual(h.cancelled, [{ tag: 'c1', code: 'QUEUE_DELETED' }]);
  });

  it('a queue holding ready, delayed, leased or dead messages is refused with QUEUE_NOT_EMPTY, and kept', async () => {
    const h = await harness();
    await h.session.send('ready', [{ frames: body('r') }]);
    await h.session.send('delayed', [{ frames: body('d'), delayMs: 60_000 }]);
    await h.session.send('leased', [{ frames: body('l') }]);
    await h.session.send('dead', [{ frames: body('x') }]);
    h.session.consume('leased', { prefetch: 1 });
    h.session.consume('dead', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 2, 'two deliveries');
    const dead = h.deliveries.find((d) => d.queue === 'dead')!;
    await h.session.nack([dead.id], { dead: true });
    for (const q of ['ready', 'delayed', 'leased', 'dead']) {
      await rejectsWith(h.broker.deleteQueue(q), 'QUEUE_NOT_EMPTY');
      const s = await h.broker.queueStats(q);
      assert.equal(s.ready + s.scheduled + s.leased + s.dead, 1, `${q} keeps its message`);
    }
    const leased = h.deliveries.find((d) => d.queue === 'leased')!;
    assert.deepEqual(await h.session.ack([leased.id]), [null], 'its lease still holds');
    assert.deepEqual(h.cancelled, []);
  });

  it('a send not yet committed counts: delete without force is refused', async () => {
    const h = await harness();
    await h.session.send('q', []);
    h.session.consume('q', { prefetch: 1 }); // creates it empty
    const sending = h.session.send('q', [{ frames: body('in flight') }]);
    await rejectsWith(h.broker.deleteQueue('q'), 'QUEUE_NOT_EMPTY');
    await sending;
  });

  it('force deletes every message; consumers get QUEUE_DELETED; their leases are lost; the name starts afresh', async () => {
    const h = await harness();
    await h.session.send('q', [
      { frames: body('a') },
      { frames: body('b') },
      { frames: body('later'), delayMs: 60_000 },
    ]);
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'one delivery');
    const held = h.deliveries[0]!;
    assert.deepEqual(await h.broker.deleteQueue('q', { force: true }), { messages: 3 });
    assert.deepEqual(h.cancelled, [{ tag: 'c1', code: 'QUEUE_DELETED' }]);
    assert.deepEqual(h.broker.listQueues(), []);
    assert.equal(h.broker.stats().leases, 0);
    assert.deepEqual(await h.session.ack([held.id]), ['LEASE_LOST']);
    // The delayed message does not come back when its time comes.
    h.clock.advance(61_000);
    await h.session.send('q', [{ frames: body('new') }]);
    const s = await h.broker.queueStats('q');
    assert.equal(s.depth, 1, 'only the new message');
    assert.equal(s.consumers, 0, 'the old consumer stays cancelled');
    assert.deepEqual(
      (await h.broker.peek('q')).map((m) => m.frames[0]!.toString()),
      ['new'],
    );
  });

  it('unknown queues answer QUEUE_NOT_FOUND; bad names and a non-boolean force are refused', async () => {
    const h = await harness();
    await rejectsWith(h.broker.deleteQueue('nope'), 'QUEUE_NOT_FOUND');
    await rejectsWith(h.broker.deleteQueue('bad name'), 'INVALID_QUEUE_NAME');
    await h.session.send('q', [{ frames: body('a') }]);
    await rejectsWith(
      h.broker.deleteQueue('q', { force: 'yes' as unknown as boolean }),
      'BAD_ARGUMENTS',
    );
    assert.deepEqual(h.broker.listQueues(), ['q']);
  });

  it('a deleted queue stays deleted after a restart, even one named in the config', async () => {
    const dataDir = tmpDir('ferry-lifecycle-');
    dirs.push(dataDir);
    const queuePolicies = { configured: { maxAttempts: 3 } };
    const h = await harness({ dataDir, queuePolicies });
    await h.session.send('configured', [{ frames: body('a') }]);
    await h.session.send('kept', [{ frames: body('k') }]);
    await h.broker.deleteQueue('configured', { force: true });
    await h.broker.close();
    const h2 = await harness({ dataDir, queuePolicies });
    assert.deepEqual(h2.broker.listQueues(), ['kept']);
    // Used again, it gets the config file's policy.
    await h2.session.send('configured', [{ frames: body('b') }]);
    assert.equal((await h2.broker.queueStats('configured')).policy.maxAttempts, 3);
  });
});

describe('queue life cycle: refused sends leave no queue', () => {
  it('every refused send, multicast and consume leaves no queue behind', async () => {
    const h = await harness({ maxMessageBytes: 10, queuePolicies: { tiny: { maxBytes: 3 } } });
    const s = h.session;
    await rejectsWith(s.send('a', [{ frames: [] }]), 'BAD_ARGUMENTS');
    await rejectsWith(s.send('b', [{ frames: body('x'.repeat(11)) }]), 'MESSAGE_TOO_LARGE');
    await rejectsWith(s.send('c', [{ frames: body('x'), priority: 999 }]), 'BAD_ARGUMENTS');
    await rejectsWith(s.send('d', [{ frames: body('x'), delayMs: -1 }]), 'BAD_ARGUMENTS');
    await rejectsWith(s.send('e', [{ frames: body('x'), ttlMs: 0 }]), 'BAD_ARGUMENTS');
    await rejectsWith(
      s.send('f', [{ frames: body('x'), headers: { k: 1 as unknown as string } }]),
      'BAD_ARGUMENTS',
    );
    await rejectsWith(s.send('g', [{ frames: body('x'), dedupKey: '' }]), 'BAD_ARGUMENTS');
    await rejectsWith(s.send('h', [{ frames: body('x') }], { requestKey: '' }), 'BAD_ARGUMENTS');
    await rejectsWith(s.send('tiny', [{ frames: body('four') }]), 'QUEUE_FULL');
    await rejectsWith(s.send('ok', [{ frames: body('x') }, { frames: [] }]), 'BAD_ARGUMENTS');
    await rejectsWith(
      s.multicast(['m1', 'm2'], { frames: body('x'.repeat(11)) }),
      'MESSAGE_TOO_LARGE',
    );
    await rejectsWith(s.multicast(['m3', 'tiny'], { frames: body('four') }), 'QUEUE_FULL');
    await rejectsWith(s.sendToQueues(['m4', 'tiny'], { frames: body('four') }), 'QUEUE_FULL');
    await rejectsWith(() => s.consume('i', { prefetch: 0 }), 'BAD_ARGUMENTS');
    await rejectsWith(() => s.consume('j', { ackTimeoutMs: -5 }), 'BAD_ARGUMENTS');
    await rejectsWith(() => s.consume('k', { tag: '' }), 'BAD_ARGUMENTS');
    assert.deepEqual(h.broker.listQueues(), []);
    assert.equal((await h.broker.allQueueStats()).length, 0);
    // An accepted send still creates its queue.
    await s.send('ok', [{ frames: body('x') }]);
    assert.deepEqual(h.broker.listQueues(), ['ok']);
  });
});

describe('queue life cycle: pause and resume', () => {
  it('a paused queue stores sends and delivers nothing; resume delivers them', async () => {
    const h = await harness();
    await h.session.send('q', []);
    h.session.consume('q', { prefetch: 10 });
    await h.session.send('q', [{ frames: body('warm') }]);
    await waitFor(() => h.deliveries.length === 1, 'delivery before the pause');
    await h.session.ack([h.deliveries[0]!.id]);
    await h.broker.pauseQueue('q');
    const stats = await h.broker.queueStats('q');
    assert.equal(stats.paused, true);
    // The direct path (an idle consumer with credit) and the store path both stay shut.
    await h.session.send('q', [{ frames: body('a') }]);
    await h.session.send('q', [{ frames: body('b') }, { frames: body('c') }]);
    await settleDeliveries(h, 'paused');
    assert.equal(h.deliveries.length, 1, 'nothing delivered while paused');
    assert.equal((await h.broker.queueStats('q')).ready, 3, 'the sends are stored');
    await h.broker.resumeQueue('q');
    assert.equal((await h.broker.queueStats('q')).paused, false);
    await waitFor(() => h.deliveries.length === 4, 'deliveries after resume');
    assert.deepEqual(h.deliveries.slice(1).map(text), ['a', 'b', 'c']);
  });

  it('leases out before the pause stay valid; what comes back (nack, ack timeout) waits for resume', async () => {
    const h = await harness({ policy: { ackTimeoutMs: 1_000 } });
    await h.session.send('q', [{ frames: body('a') }, { frames: body('b') }]);
    h.session.consume('q', { prefetch: 2 });
    await waitFor(() => h.deliveries.length === 2, 'two deliveries');
    await h.broker.pauseQueue('q');
    await h.session.nack([h.deliveries[0]!.id], { delayMs: 0 });
    h.clock.advance(1_100); // b's ack timeout passes
    await waitFor(async () => (await h.broker.queueStats('q')).ready === 2, 'both back to ready');
    await settleDeliveries(h, 'returned');
    assert.equal(h.deliveries.length, 2, 'no redelivery while paused');
    await h.broker.resumeQueue('q');
    await waitFor(() => h.deliveries.length === 4, 'redelivered after resume');
  });

  it('pause and resume of an unknown queue answer QUEUE_NOT_FOUND and create nothing', async () => {
    const h = await harness();
    await rejectsWith(h.broker.pauseQueue('nope'), 'QUEUE_NOT_FOUND');
    await rejectsWith(h.broker.resumeQueue('nope'), 'QUEUE_NOT_FOUND');
    await rejectsWith(h.broker.pauseQueue('bad name'), 'INVALID_QUEUE_NAME');
    assert.deepEqual(h.broker.listQueues(), []);
  });

  it('a pause and runtime policy survive a restart; a resume too', async () => {
    const dataDir = tmpDir('ferry-lifecycle-');
    dirs.push(dataDir);
    const h = await harness({ dataDir });
    await h.session.send('p', [{ frames: body('a') }]);
    await h.session.send('r', [{ frames: body('b') }]);
    await h.broker.pauseQueue('p');
    await h.broker.pauseQueue('r');
    await h.broker.resumeQueue('r');
    await h.broker.setQueuePolicy('p', { maxAttempts: 4, ackTimeoutMs: 2_500 });
    await h.broker.close();
    const h2 = await harness({ dataDir });
    const p = await h2.broker.queueStats('p');
    assert.equal(p.paused, true);
    assert.deepEqual(p.overrides, { maxAttempts: 4, ackTimeoutMs: 2_500 });
    assert.equal(p.policy.maxAttempts, 4);
    assert.equal((await h2.broker.queueStats('r')).paused, false);
    h2.session.consume('p', { prefetch: 1 });
    h2.session.consume('r', { prefetch: 1 });
    await waitFor(() => h2.deliveries.length === 1, 'r delivers');
    await h2.broker.queueStats('p');
    assert.deepEqual(h2.deliveries.map(text), ['b'], 'p stays paused after the restart');
    await h2.broker.resumeQueue('p');
    await waitFor(() => h2.deliveries.length === 2, 'p delivers after resume');
  });
});

describe('queue life cycle: runtime policy', () => {
  it('a runtime value wins over the config file until dropped or reset', async () => {
    const h = await harness({
      policy: { maxAttempts: 7 },
      queuePolicies: { q: { maxAttempts: 3, maxDepth: 100 } },
    });
    await h.session.send('q', [{ frames: body('a') }]);
    assert.equal(h.broker.queuePolicy('q').policy.maxAttempts, 3, 'config queue over default');
    let info = await h.broker.setQueuePolicy('q', { maxAttempts: 5, maxDepth: 1 });
    assert.deepEqual(info.overrides, { maxAttempts: 5, maxDepth: 1 });
    assert.equal(info.policy.maxAttempts, 5);
    const s = await h.broker.queueStats('q');
    assert.deepEqual(s.overrides, { maxAttempts: 5, maxDepth: 1 });
    assert.equal(s.policy.maxDepth, 1);
    await rejectsWith(h.session.send('q', [{ frames: body('b') }]), 'QUEUE_FULL');
    info = await h.broker.setQueuePolicy('q', { maxDepth: null });
    assert.deepEqual(info.overrides, { maxAttempts: 5 });
    assert.equal(info.policy.maxDepth, 100, 'the config value again');
    await h.session.send('q', [{ frames: body('b') }]);
    info = await h.broker.setQueuePolicy('q', {}, { reset: true });
    assert.deepEqual(info.overrides, {});
    assert.equal(info.policy.maxAttempts, 3);
  });

  it('a new ack timeout applies at once to consumers that did not set their own', async () => {
    const h = await harness({ policy: { ackTimeoutMs: 60_000 } });
    await h.session.send('q', [{ frames: body('a') }]);
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'delivery');
    await h.broker.setQueuePolicy('q', { ackTimeoutMs: 500 });
    await h.session.nack([h.deliveries[0]!.id], { delayMs: 0 });
    await waitFor(() => h.deliveries.length === 2, 'redelivery under the new policy');
    h.clock.advance(600);
    await waitFor(() => h.deliveries.length === 3, 'redelivered after the new, shorter timeout');
    assert.equal(h.deliveries[2]!.attempt, 3);
  });

  it('a new max attempts applies to the next failure', async () => {
    const h = await harness();
    await h.session.send('q', [{ frames: body('a') }]);
    await h.broker.setQueuePolicy('q', { maxAttempts: 1 });
    h.session.consume('q', { prefetch: 1 });
    await waitFor(() => h.deliveries.length === 1, 'delivery');
    await h.session.nack([h.deliveries[0]!.id], { delayMs: 0 });
    await waitFor(async () => (await h.broker.queueStats('q')).dead === 1, 'dead-lettered');
  });

  it('unknown keys and values out of bounds are INVALID_POLICY and change nothing', async () => {
    const h = await harness();
    await h.session.send('q', [{ frames: body('a') }]);
    await h.broker.setQueuePolicy('q', { maxDepth: 10 });
    const bad: unknown[] = [
      { nope: 1 },
      { maxAttempts: 0 },
      { maxAttempts: 1.5 },
      { ackTimeoutMs: '100' },
      { maxDepth: -1 },
      { retryBaseMs: 10_000, retryMaxMs: 1_000 },
      [],
      null,
    ];
    for (const changes of bad) {
      await rejectsWith(
        h.broker.setQueuePolicy('q', changes as Record<string, number>),
        'INVALID_POLICY',
      );
    }
    assert.deepEqual(h.broker.queuePolicy('q').overrides, { maxDepth: 10 });
    await rejectsWith(h.broker.setQueuePolicy('nope', { maxDepth: 1 }), 'QUEUE_NOT_FOUND');
    await rejectsWith(
      h.broker.setQueuePolicy('q', {}, { reset: 1 as unknown as boolean }),
      'BAD_ARGUMENTS',
    );
  });
});
