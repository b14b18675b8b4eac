/**
 * Requests re-sent after a broker crash are stored once. The broker stores a request, and is
 * killed (SIGKILL) before its reply reaches the client (a proxy loses the reply): the SDK
 * sends the request again to the restarted broker, which must find it by the key the SDK put
 * on it and store nothing more — a publish's durable copy, a queue multicast's copies, a job
 * multicast, a durable call (which must also run once) and a submit.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as zmq from 'zeromq';
import { connect, type FerryClient } from 'ferrymq';
import { decodeReply, encodeRequest, type Reply } from 'ferrymq/protocol';
import {
  freePort,
  killHard,
  spawnBroker,
  startBroker,
  tmpDir,
  waitFor,
  type ChildBroker,
} from '../helpers/broker.js';
import { replyDropper } from '../helpers/reply-dropper.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function depth(admin: FerryClient, queue: string): Promise<number> {
  const q = (await admin.stats(queue)).queues.find((x) => x.name === queue);
  return q?.depth ?? 0;
}

describe('requests re-sent after a broker crash', () => {
  it('are stored once: publish, send multicast, job multicast, durable call, submit', async () => {
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const args = ['--data', tmpDir(), '--bind', endpoint, '--heartbeat', '200'];
    let b: ChildBroker = await spawnBroker(args);
    cleanups.push(async () => {
      b.child.kill('SIGTERM');
      await b.exited;
    });
    const admin = await connect(endpoint, { heartbeatMs: 100 });
    cleanups.push(() => admin.close({ timeoutMs: 0 }));
    // A durable subscription with nobody attached: it stores a copy of each publish.
    const sub = admin.subscribe('news/**', { durable: 'keep' });
    await sub.ready;
    await sub.close();

    const proxy = await replyDropper(endpoint, [
      'PUBLISH',
      'SEND_MULTICAST',
      'MULTICAST',
      'SUBMIT',
    ]);
    cleanups.push(async () => proxy.close());
    const c = await connect(proxy.endpoint, { heartbeatMs: 100 });
    cleanups.push(() => c.close({ timeoutMs: 0 }));

    const published = c.publish('news/a', 'once');
    const copied = c.sendMulticast(['mc-a', 'mc-b'], 'copy');
    const fanned = c.multicast(['svc-a', 'svc-b'], 'params');
    const submitted = c.submit('svc-sub', 'params');
    // No worker yet: the call waits, its job stored, and is sent again after the restart.
    const called = c.call('svc-call', 'params', { durable: true });
    await waitFor(() => proxy.dropped.size === 4, 'the broker stored four requests, replies lost');
    await waitFor(
      async () => (await admin.jobs({ service: 'svc-call' })).length === 1,
      'the durable call stored',
    );

    await killHard(b);
    b = await spawnBroker(args);

    await Promise.all([published, copied, fanned, submitted]);
    let runs = 0;
    const w = admin.worker('svc-call', () => {
      runs++;
      return 'result';
    });
    cleanups.push(() => w.close());
    assert.equal((await called).toString(), 'result');

    assert.equal(await depth(admin, 'sub:keep'), 1, 'one durable copy of the publish');
    assert.equal(await depth(admin, 'mc-a'), 1, 'one copy in mc-a');
    assert.equal(await depth(admin, 'mc-b'), 1, 'one copy in mc-b');
    for (const service of ['~multicast', 'svc-a', 'svc-b', 'svc-sub', 'svc-call']) {
      assert.equal((await admin.jobs({ service })).length, 1, `one job of ${service}`);
    }
    assert.equal(runs, 1, 'the durable call ran once');
    assert.equal((await fanned).id, (await admin.jobs({ service: '~multicast' }))[0]!.id);
  });
});

describe('request keys: bad input', () => {
  it('refuses a malformed requestKey or dedupKey with BAD_ARGUMENTS, and announces request-keys', async () => {
    const b = await startBroker();
    cleanups.push(() => b.stop());
    const sock = new zmq.Dealer({ linger: 0 });
    sock.connect(b.endpoint);
    cleanups.push(async () => sock.close());
    const inbox: Reply[] = [];
    void (async () => {
      for await (const frames of sock) inbox.push(decodeReply(frames));
    })().catch(() => {});
    let n = 0;
    const call = async (
      cmd: Parameters<typeof encodeRequest>[0],
      args: Record<string, unknown>,
      payload: Buffer[] = [],
    ): Promise<Reply> => {
      const id = Buffer.from(`r${++n}`);
      await sock.send(encodeRequest(cmd, id, args, payload));
      let r: Reply | undefined;
      await waitFor(() => (r = inbox.find((x) => x.requestId.equals(id))) !== undefined, cmd);
      return r!;
    };
    const hello = await call('HELLO', {});
    assert.ok((hello.args['features'] as string[]).includes('request-keys'));
    const p = [Buffer.from('x')];
    const cases: [Parameters<typeof encodeRequest>[0], Record<string, unknown>][] = [
      ['PUBLISH', { topic: 'news/a', requestKey: 7 }],
      ['PUBLISH', { topic: 'news/a', requestKey: '' }],
      ['PUBLISH', { topic: 'news/a', requestKey: 'k'.repeat(257) }],
      ['PUBLISH', { messages: [{ topic: 'news/a' }], requestKey: 'k'.repeat(257) }],
      ['PUBLISH', { messages: [{ topic: 'news/a' }], requestKey: false }],
      ['SEND_MULTICAST', { queues: ['a', 'b'], requestKey: 5 }],
      ['SEND_MULTICAST', { queues: ['a', 'b'], requestKey: '' }],
      ['CALL', { service: 's', dedupKey: 'k' }], // not durable: nothing to find it by
      ['CALL', { service: 's', durable: true, dedupKey: 9 }],
      ['MULTICAST', { services: ['a', 'b'], durable: false, dedupKey: 'k' }],
      ['MULTICAST', { services: ['a', 'b'], dedupKey: '' }],
    ];
    for (const [cmd, args] of cases) {
      const r = await call(cmd, args, p);
      assert.equal(r.kind, 'ERROR', `${cmd} ${JSON.stringify(args)}`);
      assert.equal(r.args['code'], 'BAD_ARGUMENTS', `${cmd} ${JSON.stringify(args)}`);
    }
    // Nothing was stored by the refused requests; a well-formed keyed one is taken.
    assert.deepEqual(b.server.broker.listQueues(), []);
    const ok = await call('SEND_MULTICAST', { queues: ['a', 'b'], requestKey: 'k1' }, p);
    const again = await call('SEND_MULTICAST', { queues: ['a', 'b'], requestKey: 'k1' }, p);
    assert.equal(ok.kind, 'OK');
    assert.deepEqual(again.args['ids'], ok.args['ids'], 'a replay answers the first ids');
    assert.equal((await b.server.broker.queueStats('a')).depth, 1);
  });
});
