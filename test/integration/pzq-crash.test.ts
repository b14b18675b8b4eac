/**
 * PZQ over a broker killed with SIGKILL: every message acked to a PZQ producer is delivered
 * after the restart, and a message that was in flight (delivered, not acked) comes back at
 * once with the same key, without waiting for its ack timeout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freePort, killHard, spawnBroker, tmpDir, waitFor } from '../helpers/broker.js';
import { prng, seeded } from '../helpers/seed.js';
import { RawSocket, texts } from '../helpers/zmq-inbox.js';

/** Long enough that a redelivery within the test can only come from the restart. */
const ACK_TIMEOUT_US = 60_000_000;
const WINDOW = 50;

describe('PZQ crash safety (kill -9)', { timeout: 120_000 }, () => {
  it(
    'acked messages survive; an in-flight one is redelivered with its key',
    seeded(async (t) => {
      const dataDir = tmpDir();
      const [port, receivePort, sendPort] = [await freePort(), await freePort(), await freePort()];
      const receive = `tcp://127.0.0.1:${receivePort}`;
      const send = `tcp://127.0.0.1:${sendPort}`;
      const args = [
        '--data',
        dataDir,
        '--bind',
        `tcp://127.0.0.1:${port}`,
        '--pzq',
        '--pzq-receive',
        receive,
        '--pzq-send',
        send,
        '--pzq-ack-timeout',
        String(ACK_TIMEOUT_US),
      ];
      let broker = await spawnBroker(args);
      const producer = RawSocket.dealer(receive);
      let consumer: RawSocket | undefined;
      try {
        // One message delivered and left un-acked.
        await producer.send('first', '', 'in-flight');
        assert.deepEqual(texts(await producer.receive('ACK of first')), ['first', '1', '']);
        consumer = RawSocket.connectingRouter(send);
        const held = await consumer.receive('the in-flight delivery');
        const heldKey = held[1]!.toString();
        assert.equal(held[5]!.toString(), 'in-flight');
        consumer.close();
        consumer = undefined;

        // Stream, and kill the broker at a random point with sends in flight.
        const acked = new Set<string>();
        const killAfter = 100 + prng('pzq kill point').int(300);
        let sent = 0;
        while (acked.size < killAfter) {
          while (sent - acked.size < WINDOW) {
            await producer.send(`id-${sent}`, '', `body-${sent}`);
            sent++;
          }
          const ack = texts(await producer.receive('a producer ACK'));
          assert.equal(ack[1], '1');
          acked.add(ack[0]!.replace('id-', 'body-'));
        }
        await killHard(broker);
        broker = await spawnBroker(args);

        consumer = RawSocket.connectingRouter(send);
        const seen = new Map<string, string>();
        const c = consumer;
        await waitFor(
          async () => {
            const m = await c.tryReceive(50);
            if (m) {
              seen.set(m[5]!.toString(), m[1]!.toString());
              await c.send(m[0]!, m[1]!, '1');
            }
            return [...acked].every((b) => seen.has(b)) && seen.has('in-flight');
          },
          'every acked message and the in-flight one after the restart',
          { timeoutMs: 30_000, intervalMs: 0 },
        );
        assert.equal(seen.get('in-flight'), heldKey, 'the in-flight message keeps its key');
        t.diagnostic(
          `killed after ${acked.size} producer ACKs (${sent} sent); ` +
            `${seen.size} distinct messages delivered after the restart`,
        );
      } finally {
        producer.close();
        consumer?.close();
        broker.child.kill('SIGKILL');
        await broker.exited;
      }
    }),
  );
});
