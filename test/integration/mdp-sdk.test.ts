/**
 * Majordomo and the TypeScript SDK share one job server: MDP workers serve SDK calls, SDK
 * workers serve MDP clients (0.1 and 0.2, partials included), and Titanic ids are SDK job
 * ids. Real broker, real sockets, raw MDP peers from test/helpers/mdp-peers.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type FerryClient } from 'ferrymq';
import { startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import {
  RawPeer,
  RawWorker,
  clientRequestV1,
  clientRequestV2,
  texts,
} from '../helpers/mdp-peers.js';

describe('MDP ⇄ Ferry SDK', { timeout: 60_000 }, () => {
  let broker: TestBroker;
  let mdp: string;
  let ferry: FerryClient;
  const cleanup: (() => Promise<void> | void)[] = [];

  before(async () => {
    broker = await startBroker({ mdp: 'tcp://127.0.0.1:*' });
    mdp = broker.server.mdpEndpoint!;
    ferry = await connect(broker.endpoint, { heartbeatMs: 200, requestTimeoutMs: 20_000 });
  });

  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await ferry.close({ timeoutMs: 500 }).catch(() => {});
    await broker.stop();
  });

  async function mdpClient(): Promise<RawPeer> {
    const c = await RawPeer.connect(mdp);
    cleanup.push(() => c.close());
    return c;
  }

  test('an MDP/0.1 worker serves an SDK call', async () => {
    const w = await RawWorker.start(mdp, 'mdp-upper', {
      handler: (body) => body.map((f) => Buffer.from(f.toString().toUpperCase())),
    });
    cleanup.push(() => w.close());
    await waitFor(() => broker.server.jobs.hasWorkers('mdp-upper'), 'the MDP worker');
    const frames = await ferry.callFrames('mdp-upper', ['from', 'the sdk'], { timeoutMs: 5_000 });
    assert.deepEqual(texts(frames), ['FROM', 'THE SDK']);
    assert.equal(w.served, 1);
  });

  test('an MDP/0.2 worker streams partials to an SDK call, in order', async () => {
    const w = await RawWorker.start(mdp, 'mdp-stream', {
      version: 2,
      partials: () => ['one', 'two', 'three'].map((p) => [Buffer.from(p)]),
      handler: () => [Buffer.from('end')],
    });
    cleanup.push(() => w.close());
    await waitFor(() => broker.server.jobs.hasWorkers('mdp-stream'), 'the MDP/0.2 worker');
    const partials: string[] = [];
    const result = await ferry.call('mdp-stream', 'go', {
      timeoutMs: 5_000,
      onPartial: (frames) => partials.push(frames[0]!.toString()),
    });
    assert.equal(result.toString(), 'end');
    assert.deepEqual(partials, ['one', 'two', 'three']);
  });

  test('an SDK worker serves MDP/0.1 and MDP/0.2 clients, partials as PARTIAL', async () => {
    const w = ferry.worker('sdk-served', async (job) => {
      for (const f of job.frames) await job.partial(`saw ${f.toString()}`);
      return job.frames.map((f) => f.toString().split('').reverse().join(''));
    });
    cleanup.push(() => w.close({ timeoutMs: 1_000 }));
    await w.ready;
    const c = await mdpClient();
    await c.send(clientRequestV1('sdk-served', 'abc', 'xyz'));
    assert.deepEqual(texts(await c.receive('the 0.1 REPLY')), [
      '',
      'MDPC01',
      'sdk-served',
      'cba',
      'zyx',
    ]);
    await c.send(clientRequestV2('sdk-served', 'abc', 'xyz'));
    const got: string[][] = [];
    for (let i = 0; i < 3; i++) got.push(texts(await c.receive(`0.2 message ${i + 1} of 3`)));
    assert.deepEqual(got, [
      ['MDPC02', '\x02', 'sdk-served', 'saw abc'],
      ['MDPC02', '\x02', 'sdk-served', 'saw xyz'],
      ['MDPC02', '\x03', 'sdk-served', 'cba', 'zyx'],
    ]);
  });

  test('Titanic ids are SDK job ids, both ways', async () => {
    const w = ferry.worker('titanic-sdk', (job) => `done ${job.params.toString()}`);
    cleanup.push(() => w.close({ timeoutMs: 1_000 }));
    await w.ready;
    const c = await mdpClient();
    // Titanic request, seen through the SDK.
    await c.send(clientRequestV1('titanic.request', 'titanic-sdk', 'via titanic'));
    const [, , , status, id] = texts(await c.receive('titanic.request'));
    assert.equal(status, '200');
    const job = await ferry.job(id!).wait({ timeoutMs: 5_000 });
    assert.equal(job.status, 'done');
    assert.equal(job.result?.[0]?.toString(), 'done via titanic');
    // SDK submit, read through Titanic.
    const submitted = await ferry.submit('titanic-sdk', 'via sdk');
    await submitted.wait({ timeoutMs: 5_000 });
    await c.send(clientRequestV1('titanic.reply', submitted.id));
    assert.deepEqual(texts(await c.receive('titanic.reply')), [
      '',
      'MDPC01',
      'titanic.reply',
      '200',
      'done via sdk',
    ]);
  });
});
