/**
 * Producer flow control (docs/semantics.md §10, docs/operations.md "Limits and backpressure"):
 * when a queue's ready backlog passes flowBacklogFactor × its consumers' total prefetch, the
 * confirms of new sends are held until consumers bring it back under; a queue without
 * consumers holds nothing. The core on its own: in-memory store, hand-driven clock.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Broker, type Delivery } from 'ferrymq-server/internal/core/broker.js';
import { MAINTENANCE_INTERVAL_MS } from 'ferrymq-server/internal/core/broker-types.js';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { waitFor } from '../helpers/broker.js';

const open: Broker[] = [];
afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
});

async function broker(
  flowBacklogFactor: number,
  maxHeldConfirms?: number,
): Promise<{ b: Broker; clock: ManualClock }> {
  const clock = new ManualClock();
  const b = await Broker.open({
    storage: new SqliteStorage({ dataDir: IN_MEMORY, sync: { mode: 'off' } }),
    clock,
    random: () => 0.5,
    limits: { flowBacklogFactor, ...(maxHeldConfirms ? { maxHeldConfirms } : {}) },
  });
  open.push(b);
  return { b, clock };
}

const msg = (s: string) => [{ frames: [Buffer.from(s)] }];

/** Sends `n` one-message sends at once; tracks which were confirmed. */
function sendMany(send: (i: number) => Promise<unknown>, n: number): { confirmed: Set<number> } {
  const confirmed = new Set<number>();
  for (let i = 0; i < n; i++) void send(i).then(() => confirmed.add(i));
  return { confirmed };
}

async function heldNow(b: Broker, queue: string): Promise<number> {
  return (await b.queueStats(queue))?.confirmsHeld ?? -1;
}

describe('producer flow control', () => {
  it('holds confirms while the ready backlog is over factor × prefetch, and releases them as consumers catch up', async () => {
    const { b } = await broker(2);
    const got: Delivery[] = [];
    const consumer = b.openSession({ deliver: (_t, m) => got.push(...m) });
    consumer.consume('q', { prefetch: 1 });
    const producer = b.openSession({ deliver: () => {} });
    // Bound: 2 × 1 = 2 ready. 6 sends: 1 leased to the consumer, 5 ready — over the bound.
    const { confirmed } = sendMany((i) => producer.send('q', msg(`m${i}`)), 6);
    await waitFor(async () => (await heldNow(b, 'q')) > 0, 'some confirms held');
    assert.ok(confirmed.size < 6, `held: ${6 - confirmed.size} of 6`);
    const stats = await b.queueStats('q');
    assert.ok(stats.confirmsHeldTotal >= stats.confirmsHeld);
    // The consumer works the backlog down; every confirm is answered once it is under 2.
    let acked = 0;
    await waitFor(async () => {
      if (got.length > acked) await consumer.ack([got[acked++]!.id]);
      return confirmed.size === 6;
    }, 'every send confirmed as the consumer catches up');
    assert.equal(await heldNow(b, 'q'), 0);
    assert.ok(acked <= 4, `released once the backlog was back under the bound (acks: ${acked})`);
  });

  it('never holds a queue without consumers (a backlog then is what was asked for)', async () => {
    const { b } = await broker(2);
    const producer = b.openSession({ deliver: () => {} });
    for (let i = 0; i < 50; i++) await producer.send('backlog', msg(`m${i}`));
    assert.equal((await b.queueStats('backlog'))?.ready, 50);
    assert.equal((await b.queueStats('backlog'))?.confirmsHeldTotal, 0);
  });

  it('answers held confirms when the consumers leave (at the next maintenance pass at the latest)', async () => {
    const { b, clock } = await broker(1);
    const consumer = b.openSession({ deliver: () => {} });
    const tag = consumer.consume('q', { prefetch: 1 });
    const producer = b.openSession({ deliver: () => {} });
    const { confirmed } = sendMany((i) => producer.send('q', msg(`m${i}`)), 5);
    await waitFor(async () => (await heldNow(b, 'q')) > 0, 'some confirms held');
    consumer.cancel(tag);
    clock.advance(MAINTENANCE_INTERVAL_MS);
    await waitFor(() => confirmed.size === 5, 'every confirm answered');
  });

  it('holds at most maxHeldConfirms per queue: a producer that never waits costs bounded memory', async () => {
    const { b } = await broker(1, 5);
    const consumer = b.openSession({ deliver: () => {} });
    consumer.consume('q', { prefetch: 1 }); // never acks
    const producer = b.openSession({ deliver: () => {} });
    const { confirmed } = sendMany((i) => producer.send('q', msg(`m${i}`)), 40);
    await waitFor(() => confirmed.size === 40 - 5, 'all but the 5 held confirmed');
    assert.equal(await heldNow(b, 'q'), 5);
    assert.equal((await b.queueStats('q'))?.depth, 40, 'every message stored');
  });

  it('is off with factor 0', async () => {
    const { b } = await broker(0);
    const consumer = b.openSession({ deliver: () => {} });
    consumer.consume('q', { prefetch: 1 });
    const producer = b.openSession({ deliver: () => {} });
    for (let i = 0; i < 20; i++) await producer.send('q', msg(`m${i}`));
    assert.equal((await b.queueStats('q'))?.confirmsHeldTotal, 0);
  });
});
