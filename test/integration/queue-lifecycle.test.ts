/**
 * The queue life cycle end to end through the SDK: a real broker on tcp://127.0.0.1:*, its
 * SQLite store in a temporary folder, restarts over the same folder. Each case names the
 * promise of docs/semantics.md ("Queue life cycle") it checks.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FerryError, type FerryClient, type Message } from 'ferrymq';
import { encodeRequest, decodeReply } from 'ferrymq/protocol';
import { startBroker, TestResources, waitFor, type TestBroker } from '../helpers/broker.js';
import { RawSocket } from '../helpers/zmq-inbox.js';

const resources = new TestResources();
const client = (endpoint: string): Promise<FerryClient> => resources.client(endpoint);

after(() => resources.closeAll());

async function broker(
  flags: Record<string, string> = {},
  extra: Parameters<typeof startBroker>[1] = {},
): Promise<TestBroker> {
  const b = await startBroker(flags, extra);
  resources.brokers.push(b);
  return b;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof FerryError, `expected a FerryError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/**
 * Round trip through a control queue: once its message is delivered back to `c`, any
 * delivery the broker made before has reached `c` too (one connection, in order).
 */
async function flushDeliveries(c: FerryClient, name: string): Promise<void> {
  const control = `control.${name}`;
  await c.send(control, 'ping');
  for await (const m of c.consume(control, { prefetch: 1 })) {
    await m.ack();
    break;
  }
}

/** Collects what a consumer iterates, and how it ended. */
function collect(
  c: FerryClient,
  queue: string,
): {
  got: Message[];
  ended: Promise<unknown>;
} {
  const got: Message[] = [];
  const ended = (async () => {
    try {
      for await (const m of c.consume(queue, { prefetch: 10 })) got.push(m);
      return 'done';
    } catch (err) {
      return err;
    }
  })();
  return { got, ended };
}

describe('queue life cycle through the SDK', () => {
  it('delete refuses a non-empty queue, force deletes it; its consumer ends with QUEUE_DELETED; deleted stays deleted after a restart', async () => {
    const b = await broker();
    const c = await client(b.endpoint);
    await c.send('d.q', 'a');
    await c.send('d.kept', 'k');
    await rejectsWith(c.deleteQueue('d.q'), 'QUEUE_NOT_EMPTY');
    assert.equal((await c.stats('d.q')).queues[0]!.ready, 1, 'refused: the message stays');
    const consumer = collect(c, 'd.q');
    await waitFor(() => consumer.got.length === 1, 'delivery');
    assert.deepEqual(await c.deleteQueue('d.q', { force: true }), { deleted: 'd.q', messages: 1 });
    const ended = await consumer.ended;
    assert.ok(ended instanceof FerryError && ended.code === 'QUEUE_DELETED', String(ended));
    assert.equal(await consumer.got[0]!.ack(), 'lease-lost', 'its lease went with the queue');
    assert.deepEqual((await c.queues()).sort(), ['d.kept']);
    await rejectsWith(c.stats('d.q'), 'QUEUE_NOT_FOUND');
    await rejectsWith(c.deleteQueue('d.q'), 'QUEUE_NOT_FOUND');
    await c.close();
    await b.stop();
    const b2 = await broker({ data: b.dataDir });
    const c2 = await client(b2.endpoint);
    assert.deepEqual(await c2.queues(), ['d.kept']);
    await rejectsWith(c2.deleteQueue('d.kept'), 'QUEUE_NOT_EMPTY');
  });

  it('a rejected send leaves no queue behind', async () => {
    const b = await broker({ 'max-message-bytes': '16' });
    const c = await client(b.endpoint);
    await rejectsWith(c.send('r.big', 'x'.repeat(17)), 'MESSAGE_TOO_LARGE');
    await rejectsWith(c.send('r.prio', 'x', { priority: 999 }), 'BAD_ARGUMENTS');
    await rejectsWith(c.send('r.delay', 'x', { delayMs: -1 }), 'BAD_ARGUMENTS');
    await rejectsWith(
      c.send('r.hdr', 'x', { headers: { k: 1 as unknown as string } }),
      'BAD_ARGUMENTS',
    );
    await rejectsWith(c.sendMulticast(['r.m1', 'r.m2'], 'x'.repeat(17)), 'MESSAGE_TOO_LARGE');
    await rejectsWith(c.send('bad name', 'x'), 'INVALID_QUEUE_NAME');
    assert.deepEqual(await c.queues(), []);
    assert.equal((await c.stats()).queues.length, 0);
  });

  it('pause stops deliveries (sends are stored) across a restart; resume delivers', async () => {
    const b = await broker();
    const c = await client(b.endpoint);
    await c.send('p.q', 'before');
    await c.pauseQueue('p.q');
    await c.send('p.q', 'while paused');
    const consumer = collect(c, 'p.q');
    await flushDeliveries(c, 'p1');
    assert.equal(consumer.got.length, 0, 'nothing delivered while paused');
    const s = (await c.stats('p.q')).queues[0]!;
    assert.equal(s.paused, true);
    assert.equal(s.ready, 2);
    await c.close();
    await b.stop();

    const b2 = await broker({ data: b.dataDir });
    const c2 = await client(b2.endpoint);
    assert.equal((await c2.stats('p.q')).queues[0]!.paused, true, 'still paused after restart');
    const after = collect(c2, 'p.q');
    await flushDeliveries(c2, 'p2');
    assert.equal(after.got.length, 0, 'nothing delivered after the restart either');
    await c2.resumeQueue('p.q');
    await waitFor(() => after.got.length === 2, 'both delivered after resume');
    assert.deepEqual(
      after.got.map((m) => m.body.toString()),
      ['before', 'while paused'],
    );
    assert.equal((await c2.stats('p.q')).queues[0]!.paused, false);
    await rejectsWith(c2.pauseQueue('p.none'), 'QUEUE_NOT_FOUND');
  });

  it('runtime policy wins over the config file, is shown in stats, survives a restart, and resets', async () => {
    const extra = { queues: { 'pol.q': { maxDepth: 5, maxAttempts: 3 } } };
    const b = await broker({}, extra);
    const c = await client(b.endpoint);
    await c.send('pol.q', 'a');
    let info = await c.queuePolicy('pol.q');
    assert.equal(info.policy.maxDepth, 5);
    assert.deepEqual(info.overrides, {});
    info = await c.setQueuePolicy('pol.q', { maxDepth: 1, ackTimeoutMs: 4_000 });
    assert.deepEqual(info.overrides, { maxDepth: 1, ackTimeoutMs: 4_000 });
    await rejectsWith(c.send('pol.q', 'b'), 'QUEUE_FULL');
    await rejectsWith(c.setQueuePolicy('pol.q', { maxDepth: -1 }), 'INVALID_POLICY');
    await rejectsWith(
      c.setQueuePolicy('pol.q', { bogus: 1 } as unknown as { maxDepth: number }),
      'INVALID_POLICY',
    );
    await rejectsWith(c.setQueuePolicy('pol.none', { maxDepth: 1 }), 'QUEUE_NOT_FOUND');
    await c.close();
    await b.stop();

    const b2 = await broker({ data: b.dataDir }, extra);
    const c2 = await client(b2.endpoint);
    const s = (await c2.stats('pol.q')).queues[0]!;
    assert.deepEqual(s.overrides, { maxDepth: 1, ackTimeoutMs: 4_000 });
    assert.equal(s.policy.maxDepth, 1);
    assert.equal(s.policy.maxAttempts, 3, 'the config value where nothing was set at runtime');
    await rejectsWith(c2.send('pol.q', 'b'), 'QUEUE_FULL');
    info = await c2.setQueuePolicy('pol.q', { maxDepth: null });
    assert.equal(info.policy.maxDepth, 5, 'dropped: the config value applies again');
    await c2.send('pol.q', 'b');
    info = await c2.resetQueuePolicy('pol.q');
    assert.deepEqual(info.overrides, {});
    assert.equal(info.policy.maxDepth, 5);
    assert.deepEqual((await c2.stats('pol.q')).queues[0]!.overrides, {});
  });

  it('deleteSubscription deletes a durable subscription and its queue; its subscriber ends with QUEUE_DELETED', async () => {
    const b = await broker();
    const c = await client(b.endpoint);
    const subscriber = await client(b.endpoint);
    const sub = subscriber.subscribe('ds/**', { durable: 'ds1' });
    await sub.ready;
    const ended = (async () => {
      try {
        for await (const m of sub) await m.ack();
        return 'done';
      } catch (err) {
        return err;
      }
    })();
    await c.publish('ds/a', 'x');
    assert.ok((await c.queues()).includes('sub:ds1'));
    await c.deleteSubscription('ds1');
    assert.equal((await c.queues()).includes('sub:ds1'), false);
    const why = await ended;
    assert.ok(why instanceof FerryError && why.code === 'QUEUE_DELETED', String(why));
    await rejectsWith(c.deleteSubscription('ds1'), 'SUBSCRIPTION_NOT_FOUND');
  });
});

describe('queue life-cycle commands on the wire', () => {
  it('refuse bad arguments with coded errors', async () => {
    const b = await broker();
    const c = await client(b.endpoint);
    await c.send('w.q', 'a');
    const sock = RawSocket.dealer(b.endpoint);
    try {
      let n = 0;
      const ask = async (command: string, args: Record<string, unknown>): Promise<unknown> => {
        const id = Buffer.from(`r${++n}`);
        await sock.sock.send(encodeRequest(command as 'PING', id, args));
        for (let i = 0; i < 10; i++) {
          const r = decodeReply(await sock.receive(command));
          if (r.requestId.equals(id)) return r.kind === 'ERROR' ? r.args['code'] : r.args;
        }
        throw new Error(`no reply to ${command}`);
      };
      await ask('HELLO', {});
      assert.equal(await ask('QUEUE_DELETE', {}), 'BAD_ARGUMENTS');
      assert.equal(await ask('QUEUE_DELETE', { queue: 'w.q', force: 'yes' }), 'BAD_ARGUMENTS');
      assert.equal(await ask('QUEUE_DELETE', { queue: 'w.q', extra: 1 }), 'BAD_ARGUMENTS');
      assert.equal(await ask('QUEUE_DELETE', { queue: 'w.q' }), 'QUEUE_NOT_EMPTY');
      assert.equal(await ask('QUEUE_PAUSE', { queue: 7 }), 'BAD_ARGUMENTS');
      assert.equal(await ask('QUEUE_RESUME', { queue: 'bad name' }), 'INVALID_QUEUE_NAME');
      assert.equal(await ask('QUEUE_POLICY', { queue: 'w.q', policy: 'x' }), 'INVALID_POLICY');
      assert.equal(await ask('QUEUE_POLICY', { queue: 'w.q', policy: [1] }), 'INVALID_POLICY');
      assert.equal(
        await ask('QUEUE_POLICY', { queue: 'w.q', policy: { maxAttempts: 'many' } }),
        'INVALID_POLICY',
      );
      assert.equal(await ask('QUEUE_POLICY', { queue: 'w.q', reset: 'yes' }), 'BAD_ARGUMENTS');
      assert.deepEqual(await ask('QUEUE_PAUSE', { queue: 'w.q' }), { queue: 'w.q', paused: true });
      const read = (await ask('QUEUE_POLICY', { queue: 'w.q' })) as { overrides: unknown };
      assert.deepEqual(read.overrides, {});
      // The broker still serves after all that.
      assert.deepEqual(await c.queues(), ['w.q']);
    } finally {
      sock.close();
    }
  });
});
