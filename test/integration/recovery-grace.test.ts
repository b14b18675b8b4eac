/**
 * Acks in flight when the broker went down settle after it is back: a consumer's lease of the
 * previous run is held back for the recovery grace, and the ACK the SDK re-sends once it
 * reconnected (new session, same message id) deletes the message instead of answering
 * LEASE_LOST — which meant a redelivery, a duplicate. A raw DEALER plays the consumer so the
 * test decides exactly when the ACK goes out. The same for jobs: a job running at the crash
 * is held for the grace, and the COMPLETE its SDK worker sends again (or sends late) ends it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as zmq from 'zeromq';
import { connect } from 'ferrymq';
import { decodeReply, encodeRequest, splitMessages, type Reply } from 'ferrymq/protocol';
import { replyDropper } from '../helpers/reply-dropper.js';
import {
  freePort,
  killHard,
  spawnBroker,
  tmpDir,
  waitFor,
  type ChildBroker,
} from '../helpers/broker.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function rawPeer(endpoint: string) {
  const sock = new zmq.Dealer({ linger: 0 });
  sock.connect(endpoint);
  cleanups.push(async () => sock.close());
  let n = 0;
  const inbox: Reply[] = [];
  void (async () => {
    for await (const frames of sock) inbox.push(decodeReply(frames));
  })().catch(() => {});
  return {
    inbox,
    async call(
      cmd: Parameters<typeof encodeRequest>[0],
      args: Record<string, unknown>,
    ): Promise<Reply> {
      const id = Buffer.from(`r${++n}`);
      await sock.send(encodeRequest(cmd, id, args, []));
      let r: Reply | undefined;
      await waitFor(
        () => (r = inbox.find((x) => x.requestId.equals(id))) !== undefined,
        `reply to ${cmd}`,
      );
      return r!;
    },
  };
}

describe('recovery grace after a restart', () => {
  it('an ack re-sent after the broker restarted settles the previous run’s lease: no redelivery', async () => {
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const args = ['--data', tmpDir(), '--bind', endpoint, '--heartbeat', '200'];
    let b: ChildBroker = await spawnBroker(args);
    // A polite stop at the end (SIGTERM), so the restarted broker leaves its coverage data.
    cleanups.push(async () => {
      b.child.kill('SIGTERM');
      await b.exited;
    });
    const producer = await connect(endpoint, { heartbeatMs: 200 });
    cleanups.push(() => producer.close({ timeoutMs: 0 }));
    await producer.send('grace', 'acked across the restart');
    await producer.send('grace', 'never acked');

    const raw = rawPeer(endpoint);
    assert.equal((await raw.call('HELLO', { heartbeatMs: 30_000 })).kind, 'OK');
    assert.equal((await raw.call('CONSUME', { queue: 'grace', prefetch: 2 })).kind, 'OK');
    await waitFor(
      () => raw.inbox.filter((r) => r.kind === 'DELIVER').length >= 1,
      'the deliveries of the previous run',
    );
    const delivered = raw.inbox
      .filter((r) => r.kind === 'DELIVER')
      .flatMap((r) => splitMessages(r.args['messages'], r.payload));
    assert.equal(delivered.length, 2);
    const first = delivered.find((m) => m.frames[0]!.toString() === 'acked across the restart')!;
    const firstId = String((first.spec as { id?: unknown }).id);

    // The broker dies with both messages leased; it comes back on the same folder.
    await killHard(b);
    b = await spawnBroker(args);
    const admin = await connect(endpoint, { heartbeatMs: 200 });
    cleanups.push(() => admin.close({ timeoutMs: 0 }));
    const stats = async () => (await admin.stats('grace')).queues.find((q) => q.name === 'grace')!;
    const before = await stats();
    assert.equal(before.scheduled, 2, 'both leases are held back for the grace');
    assert.equal(before.ready, 0);

    // The consumer reconnects (a new session) and re-sends its ACK.
    assert.equal((await raw.call('HELLO', { heartbeatMs: 30_000 })).kind, 'OK');
    const ack = await raw.call('ACK', { ids: [firstId] });
    assert.equal(ack.kind, 'OK');
    assert.deepEqual(ack.args, { done: 1, failed: [] });
    const after1 = await stats();
    assert.equal(after1.depth, 1, 'the acked message is gone, the other one still held');
    // A second ACK of the same id finds nothing to settle.
    const again = await raw.call('ACK', { ids: [firstId] });
    assert.deepEqual(again.args['failed'], [{ id: firstId, code: 'LEASE_LOST' }]);

    // Past the grace the unacked one is delivered again — and only that one.
    const consumer = await connect(endpoint, { heartbeatMs: 200 });
    cleanups.push(() => consumer.close({ timeoutMs: 0 }));
    const got: string[] = [];
    const c = consumer.consume('grace');
    void (async () => {
      for await (const m of c) {
        got.push(m.body.toString());
        await m.ack();
      }
    })().catch(() => {});
    await waitFor(() => got.length === 1, 'the unacked message after the grace', {
      timeoutMs: 15_000,
    });
    assert.deepEqual(got, ['never acked']);
    await waitFor(async () => (await stats()).depth === 0, 'the queue empty');
  });
});

describe('recovery grace of jobs after a restart', () => {
  it('a completion lost at the kill, or made while the broker was down, ends the job: it runs once', async () => {
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const args = ['--data', tmpDir(), '--bind', endpoint, '--heartbeat', '200'];
    let b: ChildBroker = await spawnBroker(args);
    cleanups.push(async () => {
      b.child.kill('SIGTERM');
      await b.exited;
    });
    // The worker's first COMPLETE never reaches the broker (lost with it at the kill).
    const proxy = await replyDropper(endpoint, ['COMPLETE'], { lose: 'request' });
    cleanups.push(async () => proxy.close());
    const producer = await connect(endpoint, { heartbeatMs: 100 });
    cleanups.push(() => producer.close({ timeoutMs: 0 }));
    const workerClient = await connect(proxy.endpoint, { heartbeatMs: 100 });
    cleanups.push(() => workerClient.close({ timeoutMs: 0 }));
    const runs = new Map<string, number>();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const w = workerClient.worker(
      'graced',
      async (job) => {
        runs.set(job.params.toString(), (runs.get(job.params.toString()) ?? 0) + 1);
        if (job.params.toString() === 'slow') await held;
        return `done ${job.params.toString()}`;
      },
      { concurrency: 2 },
    ); // the lost completion keeps its slot
    cleanups.push(() => w.close({ timeoutMs: 0 }));
    await w.ready;

    const lost = await producer.submit('graced', 'lost');
    await waitFor(() => proxy.dropped.get('COMPLETE') === 1, 'the first completion lost');
    const slow = await producer.submit('graced', 'slow');
    await waitFor(() => runs.get('slow') === 1, 'the slow job running');
    const status = async (id: string) => (await producer.job(id).status()).status;
    assert.equal(await status(lost.id), 'running');

    await killHard(b);
    release(); // it completes while the broker is down
    b = await spawnBroker(args);

    await waitFor(async () => (await status(lost.id)) === 'done', 'the lost completion settled', {
      timeoutMs: 15_000,
    });
    await waitFor(async () => (await status(slow.id)) === 'done', 'the late completion settled', {
      timeoutMs: 15_000,
    });
    assert.deepEqual((await producer.job(lost.id).result()).map(String), ['done lost']);
    assert.deepEqual((await producer.job(slow.id).result()).map(String), ['done slow']);
    // Past the grace nothing is queued again: each job ran once.
    const jobs = await producer.jobs({ service: 'graced' });
    assert.deepEqual(
      jobs.map((j) => j.status),
      ['done', 'done'],
    );
    assert.deepEqual(Object.fromEntries(runs), { lost: 1, slow: 1 });
  });
});
