/**
 * A consumer's credit in bytes (consumerMaxBytes) and the broker-wide cap on bytes in flight
 * (maxInflightBytes): what a consumer that never acks can pin is bounded in bytes, not only
 * by its prefetch in messages (docs/semantics.md §6).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Broker, type Delivery } from 'ferrymq-server/internal/core/broker.js';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { waitFor } from '../helpers/broker.js';

const KIB = 1024;
const open: Broker[] = [];

async function brokerWith(limits: { consumerMaxBytes?: number; maxInflightBytes?: number }) {
  const broker = await Broker.open({
    storage: new SqliteStorage({ dataDir: IN_MEMORY, sync: { mode: 'off' } }),
    clock: new ManualClock(),
    limits,
  });
  open.push(broker);
  return broker;
}

const kib = (n: number): { frames: Buffer[] } => ({ frames: [Buffer.alloc(n * KIB, 1)] });

afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
});

describe('credit in bytes', () => {
  it('delivers no more than consumerMaxBytes to a consumer, then more as it acks', async () => {
    const broker = await brokerWith({ consumerMaxBytes: 10 * KIB });
    const got: Delivery[] = [];
    const s = broker.openSession({ deliver: (_t, m) => got.push(...m) });
    await s.send(
      'q',
      Array.from({ length: 100 }, () => kib(1)),
    );
    s.consume('q', { prefetch: 1_000 });
    await waitFor(() => got.length >= 10, 'the first deliveries');
    const qs = await broker.queueStats('q');
    assert.equal(qs.leased, 10, '10 × 1 KiB fill the 10 KiB credit; prefetch 1,000 does not');
    assert.equal(got.length, 10);
    await s.ack(got.slice(0, 5).map((d) => d.id));
    await waitFor(() => got.length === 15, 'five more after five acks');
    assert.equal((await broker.queueStats('q')).leased, 10);
  });

  it('still delivers a message larger than consumerMaxBytes to a consumer holding nothing', async () => {
    const broker = await brokerWith({ consumerMaxBytes: 4 * KIB });
    const got: Delivery[] = [];
    const s = broker.openSession({ deliver: (_t, m) => got.push(...m) });
    await s.send('big', [kib(16), kib(16)]);
    s.consume('big', { prefetch: 10 });
    await waitFor(() => got.length === 1, 'the first large message');
    assert.equal((await broker.queueStats('big')).leased, 1, 'one at a time');
    await s.ack([got[0]!.id]);
    await waitFor(() => got.length === 2, 'the second after the ack');
  });

  it('caps bytes in flight broker-wide and resumes other queues when some are settled', async () => {
    const broker = await brokerWith({ maxInflightBytes: 8 * KIB, consumerMaxBytes: 1024 * KIB });
    const a: Delivery[] = [];
    const b: Delivery[] = [];
    const sa = broker.openSession({ deliver: (_t, m) => a.push(...m) });
    const sb = broker.openSession({ deliver: (_t, m) => b.push(...m) });
    await sa.send(
      'a',
      Array.from({ length: 20 }, () => kib(1)),
    );
    await sb.send(
      'b',
      Array.from({ length: 20 }, () => kib(1)),
    );
    sa.consume('a', { prefetch: 100 });
    await waitFor(() => a.length === 8, 'queue a fills the broker-wide cap');
    sb.consume('b', { prefetch: 100 });
    assert.equal(broker.stats().leases, 8, 'nothing for b while the cap is full');
    await sa.ack(a.slice(0, 4).map((d) => d.id));
    await waitFor(() => b.length > 0, 'b gets deliveries once a settles some');
    assert.ok(
      broker.stats().leases <= 8 + 1,
      `in flight stays at the cap (${broker.stats().leases})`,
    );
  });
});
