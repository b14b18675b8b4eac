/**
 * The PZQ dialect against a real broker over real sockets, with raw peers written from the
 * frame tables (research/protocols.md §1.2): a DEALER producer, a ROUTER consumer that
 * connects to the broker's DEALER, a REQ monitor.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as zmq from 'zeromq';
import { connect } from 'ferrymq';
import {
  PZQ_EMPTY_MESSAGE_TEXT,
  PZQ_NO_DELIMITER_TEXT,
} from 'ferrymq-server/internal/dialects/pzq/pzq-frames.js';
import { startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { RawSocket, texts } from '../helpers/zmq-inbox.js';

const MESSAGES = 10_000;
const WINDOW = 200;
/** Short ack timeout for the redelivery tests, µs. */
const SHORT_ACK_TIMEOUT_US = 300_000;

function pzqFlags(ackTimeoutUs: number): Record<string, string> {
  return {
    pzq: 'true',
    'pzq-receive': 'tcp://127.0.0.1:*',
    'pzq-send': 'tcp://127.0.0.1:*',
    'pzq-ack-timeout': String(ackTimeoutUs),
  };
}

function endpointsOf(b: TestBroker): { receive: string; send: string; monitor: string } {
  const e = b.server.pzqEndpoints;
  assert.ok(e, 'the broker serves PZQ');
  return e;
}

/** Asks the monitor (a REQ, as PZQMonitor) and parses its lines as the PHP client does. */
async function monitor(endpoint: string): Promise<Record<string, number>> {
  const req = new zmq.Request({ linger: 0, receiveTimeout: 5_000 });
  req.connect(endpoint);
  try {
    await req.send('MONITOR');
    const [text] = await req.receive();
    const lines = text!
      .toString()
      .split('\n')
      .filter((l) => l !== '');
    assert.equal(lines.length, 6, `six lines, got ${JSON.stringify(lines)}`);
    const out: Record<string, number> = {};
    for (const l of lines) {
      const [k, v] = l.split(': ');
      out[k!] = Number(v);
    }
    assert.deepEqual(Object.keys(out), [
      'messages',
      'messages_inflight',
      'db_size',
      'inflight_db_size',
      'syncs',
      'expired_messages',
    ]);
    return out;
  } finally {
    req.close();
  }
}

/** Sends one message as PZQProducer::produce does and returns the ACK frames. */
async function produce(p: RawSocket, id: string, ...body: string[]): Promise<string[]> {
  await p.send(id, '', ...body);
  return texts(await p.receive(`the ACK of ${id}`));
}

interface DeliveryFrames {
  peer: Buffer;
  key: string;
  sentUs: number;
  timeoutUs: number;
  body: string[];
}

async function consumeOne(c: RawSocket, timeoutMs = 5_000): Promise<DeliveryFrames> {
  const m = await c.receive('a delivery', timeoutMs);
  assert.ok(m.length >= 6, `a delivery has at least six frames; got ${m.length}`);
  assert.equal(m[4]!.length, 0, 'frame 4 is the empty delimiter');
  return {
    peer: m[0]!,
    key: m[1]!.toString(),
    sentUs: Number(m[2]!.toString()),
    timeoutUs: Number(m[3]!.toString()),
    body: texts(m.slice(5)),
  };
}

describe('PZQ dialect: producers, consumers, monitor', { timeout: 120_000 }, () => {
  let broker: TestBroker;
  let ep: { receive: string; send: string; monitor: string };
  const open: RawSocket[] = [];
  const raw = (s: RawSocket): RawSocket => (open.push(s), s);

  /** Closes a consumer and waits until the broker saw it go (so nothing is sent to it after). */
  const closeConsumer = async (c: RawSocket): Promise<void> => {
    c.close();
    await waitFor(() => broker.server.pzq!.connectedConsumers === 0, 'the consumer gone');
  };

  before(async () => {
    broker = await startBroker(pzqFlags(SHORT_ACK_TIMEOUT_US));
    ep = endpointsOf(broker);
    assert.match(ep.monitor, /^ipc:\/\/.*pzq-monitor$/);
  });

  after(async () => {
    for (const s of open) s.close();
    await broker.stop();
  });

  test('malformed producer messages get PZQ NACK texts; headers are ignored', async () => {
    const p = raw(RawSocket.dealer(ep.receive));
    await p.send('too-short'); // two frames with the routing id: dropped, no reply
    await p.send('m1', 'no delimiter here');
    assert.deepEqual(texts(await p.receive('NACK 1')), ['m1', '0', '', PZQ_NO_DELIMITER_TEXT]);
    await p.send('m2', '');
    assert.deepEqual(texts(await p.receive('NACK 2')), ['m2', '0', '', PZQ_EMPTY_MESSAGE_TEXT]);
    await p.send('m3', 'X-Header: 1', 'REPLICA:ignored', '', 'hdr-body');
    assert.deepEqual(texts(await p.receive('ACK 3')), ['m3', '1', '']);
    await waitFor(() => broker.server.pzq!.counters.dropped === 1, 'the short message dropped');
    const c = raw(RawSocket.connectingRouter(ep.send));
    const d = await consumeOne(c);
    assert.deepEqual(d.body, ['hdr-body'], 'only the frames after the delimiter are stored');
    await c.send(d.peer, d.key, '1');
    await waitFor(() => broker.server.pzq!.counters.acked === 1, 'the ACK taken');
    await closeConsumer(c);
    await waitFor(async () => (await monitor(ep.monitor))['messages'] === 0, 'queue empty');
  });

  test('an un-acked message comes back after the ack timeout with the same key; "0" too', async () => {
    const p = raw(RawSocket.dealer(ep.receive));
    assert.deepEqual(await produce(p, 'r1', 'again', 'two frames'), ['r1', '1', '']);
    const c = raw(RawSocket.connectingRouter(ep.send));
    const first = await consumeOne(c);
    assert.deepEqual(first.body, ['again', 'two frames']);
    assert.equal(first.timeoutUs, SHORT_ACK_TIMEOUT_US);
    assert.ok(Math.abs(first.sentUs / 1000 - Date.now()) < 5_000, 'sent time is µs since epoch');
    const started = Date.now();
    const second = await consumeOne(c, 5_000); // not acked: redelivered after ~300 ms
    assert.equal(second.key, first.key, 'same broker key');
    assert.ok(Date.now() - started >= 200, 'not before the ack timeout');
    assert.ok(second.sentUs > first.sentUs);
    const stats = await monitor(ep.monitor);
    assert.ok(stats['expired_messages']! >= 1, 'the expiry is counted');
    // "0": eligible again at once.
    await c.send(second.peer, second.key, '0');
    const third = await consumeOne(c, 1_000);
    assert.equal(third.key, first.key);
    await c.send(third.peer, third.key, '1');
    await waitFor(async () => (await monitor(ep.monitor))['messages'] === 0, 'acked away');
    await closeConsumer(c);
  });

  test('the monitor lines follow the queue: stored, in flight, acked', async () => {
    const before = await monitor(ep.monitor);
    assert.equal(before['messages'], 0);
    assert.equal(before['messages_inflight'], 0);
    assert.equal(before['inflight_db_size'], 0);
    assert.ok(before['db_size']! > 0, 'the store has a size');
    const p = raw(RawSocket.dealer(ep.receive));
    for (let i = 0; i < 3; i++) assert.equal((await produce(p, `s${i}`, 'abcd'))[1], '1');
    const stored = await monitor(ep.monitor);
    assert.equal(stored['messages'], 3);
    assert.equal(stored['messages_inflight'], 0);
    assert.ok(stored['syncs']! > before['syncs']!, 'each stored batch is synced');
    const c = raw(RawSocket.connectingRouter(ep.send));
    const got = [await consumeOne(c), await consumeOne(c), await consumeOne(c)];
    const inflight = await monitor(ep.monitor);
    assert.equal(inflight['messages'], 3);
    assert.equal(inflight['messages_inflight'], 3);
    assert.equal(inflight['inflight_db_size'], 12);
    for (const d of got) await c.send(d.peer, d.key, '1');
    await waitFor(async () => {
      const s = await monitor(ep.monitor);
      return s['messages'] === 0 && s['messages_inflight'] === 0 && s['inflight_db_size'] === 0;
    }, 'all acked');
    await closeConsumer(c);
  });

  test('a consumer that vanishes mid-stream loses nothing: another one gets it all', async () => {
    const total = 1_000;
    const p = raw(RawSocket.dealer(ep.receive));
    for (let i = 0; i < total; i++) await p.send(`v${i}`, '', `vanish ${i}`);
    for (let i = 0; i < total; i++) assert.equal(texts(await p.receive('an ACK'))[1], '1');
    const a = RawSocket.connectingRouter(ep.send);
    for (let i = 0; i < 50; i++) await consumeOne(a); // taken, never acked
    await closeConsumer(a);
    const b = raw(RawSocket.connectingRouter(ep.send));
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const m = await b.tryReceive(20);
        if (m) {
          seen.add(m[5]!.toString());
          await b.send(m[0]!, m[1]!, '1');
        }
        return seen.size === total;
      },
      `all ${total} at the second consumer`,
      { timeoutMs: 20_000, intervalMs: 0 },
    );
    await waitFor(async () => (await monitor(ep.monitor))['messages'] === 0, 'all acked');
    await closeConsumer(b);
  });

  test('a PZQ producer feeds a Ferry SDK consumer, and an SDK producer a PZQ consumer', async () => {
    const client = await connect(broker.endpoint);
    try {
      const p = raw(RawSocket.dealer(ep.receive));
      assert.equal((await produce(p, 'x1', 'from pzq'))[1], '1');
      const sub = client.consume('pzq', { prefetch: 10 });
      const it = sub[Symbol.asyncIterator]();
      const m = (await it.next()).value as { body: Buffer; ack(): Promise<void> };
      assert.equal(m.body.toString(), 'from pzq');
      await m.ack();
      await sub.cancel();
      await client.send('pzq', ['from', 'sdk']);
      const c = raw(RawSocket.connectingRouter(ep.send));
      const d = await consumeOne(c);
      assert.deepEqual(d.body, ['from', 'sdk']);
      await c.send(d.peer, d.key, '1');
      await waitFor(async () => (await monitor(ep.monitor))['messages'] === 0, 'acked');
      await closeConsumer(c);
    } finally {
      await client.close();
    }
  });
});

describe('PZQ dialect: 10,000 messages with acks both ways', { timeout: 120_000 }, () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startBroker({ ...pzqFlags(30_000_000), sync: 'batch:5' });
  });
  after(async () => broker.stop());

  test(`a raw producer and two raw consumers move ${MESSAGES} messages`, async (t) => {
    const ep = endpointsOf(broker);
    const producer = RawSocket.dealer(ep.receive);
    const consumers = [RawSocket.connectingRouter(ep.send), RawSocket.connectingRouter(ep.send)];
    const seen = new Map<string, number>();
    let acksSent = 0;
    const deadline = Date.now() + 90_000;
    const consuming = consumers.map(async (c) => {
      while (seen.size < MESSAGES && Date.now() < deadline) {
        const m = await c.tryReceive(100);
        if (!m) continue;
        const body = m[5]!.toString();
        seen.set(body, (seen.get(body) ?? 0) + 1);
        await c.send(m[0]!, m[1]!, '1');
        acksSent++;
      }
    });
    const started = Date.now();
    let sent = 0;
    let acked = 0;
    const producing = (async () => {
      while (acked < MESSAGES) {
        while (sent < MESSAGES && sent - acked < WINDOW) {
          await producer.send(`id-${sent}`, '', `body-${sent}`);
          sent++;
        }
        const ack = texts(await producer.receive('a producer ACK', 10_000));
        assert.equal(ack[1], '1', `stored: ${ack.join('|')}`);
        acked++;
      }
    })();
    await producing;
    await waitFor(() => seen.size === MESSAGES, `all ${MESSAGES} consumed`, { timeoutMs: 60_000 });
    await waitFor(() => broker.server.pzq!.counters.acked >= MESSAGES, 'every consumer ACK taken', {
      timeoutMs: 30_000,
    });
    const s = await broker.server.broker.queueStats('pzq');
    assert.equal(s.depth, 0);
    t.diagnostic(
      `${MESSAGES} produced, acked, consumed and acked in ${Date.now() - started} ms ` +
        `(${acksSent} consumer acks)`,
    );
    producer.close();
    for (const c of consumers) c.close();
    await Promise.all(consuming);
  });
});
