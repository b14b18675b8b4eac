/**
 * The PZQ dialect without sockets: frames in through its handlers, frames out through
 * captured outputs, over a real broker on an in-memory store with a manual clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Broker } from 'ferrymq-server/internal/core/broker.js';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import { PzqDialect } from 'ferrymq-server/internal/dialects/pzq/pzq-dialect.js';
import fc from 'fast-check';
import {
  PZQ_EMPTY_MESSAGE_TEXT,
  PZQ_NO_DELIMITER_TEXT,
  decodeConsumerAck,
  decodeProducerMessage,
  encodeDelivery,
  encodeMonitorReply,
} from 'ferrymq-server/internal/dialects/pzq/pzq-frames.js';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { fcOptions } from '../helpers/seed.js';

const E = Buffer.alloc(0);
const b = (s: string): Buffer => Buffer.from(s);
const text = (frames: Buffer[]): string[] => frames.map((f) => f.toString('latin1'));
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

async function setup(): Promise<{
  broker: Broker;
  clock: ManualClock;
  pzq: PzqDialect;
  producer: Buffer[][];
  consumers: Buffer[][];
  monitor: Buffer[][];
}> {
  const clock = new ManualClock();
  const broker = await Broker.open({
    storage: new SqliteStorage({ dataDir: IN_MEMORY, sync: { mode: 'off' } }),
    clock,
  });
  const producer: Buffer[][] = [];
  const consumers: Buffer[][] = [];
  const monitor: Buffer[][] = [];
  const pzq = new PzqDialect(
    broker,
    {
      toProducer: (_peer, frames) => producer.push(frames),
      toConsumers: (frames) => consumers.push(frames),
      toMonitor: (_peer, frames) => monitor.push(frames),
    },
    { queue: 'pzq', ackTimeoutUs: 2_000_000, clock },
  );
  return { broker, clock, pzq, producer, consumers, monitor };
}

/** Waits (bounded) for the store's promises to run. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (cond()) return;
    await settle();
  }
  assert.fail(`never happened: ${what}`);
}

describe('PZQ frames', () => {
  it('decodes producer messages as PZQ does', () => {
    assert.deepEqual(decodeProducerMessage([b('id')]), {
      kind: 'dropped',
      reason: 'fewer than two frames',
    });
    assert.deepEqual(decodeProducerMessage([]).kind, 'dropped');
    assert.deepEqual(decodeProducerMessage([b('id'), b('x')]), {
      kind: 'refused',
      id: b('id'),
      text: PZQ_NO_DELIMITER_TEXT,
    });
    assert.deepEqual(decodeProducerMessage([b('id'), b('h'), E]), {
      kind: 'refused',
      id: b('id'),
      text: PZQ_EMPTY_MESSAGE_TEXT,
    });
    assert.deepEqual(decodeProducerMessage([b('id'), b('h1'), b('h2'), E, b('a'), E]), {
      kind: 'message',
      id: b('id'),
      headers: [b('h1'), b('h2')],
      body: [b('a'), E],
    });
    assert.equal(decodeProducerMessage([E, E, b('x')]).kind, 'message', 'an empty id is an id');
  });

  it('encodes deliveries and the monitor reply, decodes consumer ACKs', () => {
    assert.deepEqual(text(encodeDelivery('42', 1_700_000_000_000_123.5, 5e6, [b('x')])), [
      '42',
      '1700000000000123',
      '5000000',
      '',
      'x',
    ]);
    assert.deepEqual(decodeConsumerAck([b('42'), b('1'), b('extra')]), {
      kind: 'ack',
      key: '42',
      ok: true,
    });
    assert.deepEqual(decodeConsumerAck([b('42'), b('0')]), { kind: 'ack', key: '42', ok: false });
    assert.equal(decodeConsumerAck([b('42')]).kind, 'invalid');
    assert.equal(decodeConsumerAck([E, b('1')]).kind, 'invalid');
    assert.equal(decodeConsumerAck([b('42'), b('yes')]).kind, 'invalid');
    const reply = encodeMonitorReply({
      messages: 1,
      messagesInflight: 2,
      dbSize: 3,
      inflightDbSize: 4,
      syncs: 5,
      expiredMessages: 6,
    });
    assert.equal(reply[0]!.length, 0);
    assert.equal(
      reply[1]!.toString(),
      'messages: 1\nmessages_inflight: 2\ndb_size: 3\ninflight_db_size: 4\nsyncs: 5\nexpired_messages: 6\n',
    );
  });
});

describe('PZQ dialect', () => {
  it('stores, then ACKs; delivers only while a consumer is connected; redelivers on timeout', async () => {
    const { broker, clock, pzq, producer, consumers } = await setup();
    try {
      pzq.handleProducer(b('P'), [b('m1'), E, b('body')]);
      await until(() => producer.length === 1, 'the ACK');
      assert.deepEqual(text(producer[0]!), ['m1', '1', '']);
      await settle();
      assert.equal(consumers.length, 0, 'nothing delivered without a consumer');
      pzq.consumersChanged(1);
      await until(() => consumers.length === 1, 'a delivery');
      const d = text(consumers[0]!);
      assert.deepEqual(d.slice(2), ['2000000', '', 'body']);
      assert.equal(d[1], String(clock.now() * 1000));
      clock.advance(2_100);
      await until(() => consumers.length === 2, 'the redelivery');
      assert.equal(text(consumers[1]!)[0], d[0], 'same key');
      assert.equal((await pzq.monitorStats()).expiredMessages, 1);
      pzq.handleConsumer([b(d[0]!), b('1')]);
      await until(() => pzq.counters.acked === 1, 'the ACK taken');
      assert.equal((await pzq.monitorStats()).messages, 0);
      pzq.consumersChanged(0);
      pzq.handleProducer(b('P'), [b('m2'), E, b('later')]);
      await until(() => producer.length === 2, 'the second ACK');
      await settle();
      assert.equal(consumers.length, 2, 'paused while no consumer is connected');
    } finally {
      pzq.close();
      await broker.close();
    }
  });

  it('deliveries still queued when the last consumer left go back at once, uncounted', async () => {
    const { broker, pzq, producer, consumers } = await setup();
    try {
      for (let i = 0; i < 3; i++) pzq.handleProducer(b('P'), [b(`m${i}`), E, b(`body ${i}`)]);
      await until(() => producer.length === 3, 'the ACKs');
      pzq.consumersChanged(1);
      await until(() => consumers.length === 3, 'three deliveries');
      assert.equal((await pzq.monitorStats()).messagesInflight, 3);
      // The transport hands back what it had not sent when the consumer went away.
      pzq.takeBack(consumers.splice(0));
      pzq.consumersChanged(0);
      await until(() => broker.stats().leases === 0, 'the leases released');
      const stats = await broker.queueStats('pzq');
      assert.equal(stats.ready, 3);
      assert.equal(stats.ackTimeouts, 0);
      pzq.consumersChanged(1);
      await until(() => consumers.length === 3, 'delivered again');
      const peeked = await broker.peek('pzq', { state: 'leased', limit: 10 });
      assert.deepEqual(
        peeked.map((m) => m.attempts),
        [1, 1, 1],
        'taken back uncounted: still the first attempt',
      );
    } finally {
      pzq.close();
      await broker.close();
    }
  });

  it('survives 20,000 random messages on every socket and still serves', async () => {
    const pieces = ['', '0', '1', 'MONITOR', 'id', '\u0000', 'x'.repeat(300)];
    const frame = fc
      .oneof(
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 2, maxLength: 2 }) },
        { weight: 3, arbitrary: fc.constantFrom(...pieces) },
      )
      .map((f) => Buffer.from(f));
    const message = fc.record({
      where: fc.constantFrom('producer', 'consumer', 'monitor'),
      peer: fc.nat(8),
      frames: fc.array(frame, { maxLength: 6 }),
    });
    // 20 runs of up to 2,000 messages each (about 20,000 in all), each on a fresh broker.
    const messages = fc.array(message, { maxLength: 2_000, size: 'max' });
    await fc.assert(
      fc.asyncProperty(messages, async (msgs) => {
        const { broker, pzq, producer, consumers, monitor } = await setup();
        try {
          pzq.consumersChanged(1);
          for (const [i, m] of msgs.entries()) {
            assert.doesNotThrow(() => {
              if (m.where === 'producer') pzq.handleProducer(b(`p${m.peer}`), m.frames);
              else if (m.where === 'consumer') pzq.handleConsumer(m.frames);
              else pzq.handleMonitor(b(`m${m.peer}`), m.frames);
            });
            if (i % 1_000 === 0) await settle();
          }
          await settle();
          producer.length = 0;
          consumers.length = 0;
          monitor.length = 0;
          pzq.handleProducer(b('P'), [b('after'), E, b('still')]);
          await until(() => producer.some((m) => text(m)[0] === 'after'), 'the ACK after the fuzz');
          assert.deepEqual(text(producer.find((m) => text(m)[0] === 'after')!), ['after', '1', '']);
          pzq.handleMonitor(b('M'), [E, b('MONITOR')]);
          await until(() => monitor.length === 1, 'a monitor reply');
          assert.equal(text(monitor[0]!)[1]!.split('\n').length, 7);
        } finally {
          pzq.close();
          await broker.close();
        }
      }),
      fcOptions(20),
    );
  });
});
