/**
 * ZMWS 1.0 against a real broker over real sockets: raw workers and clients written from
 * the frame tables (test/helpers/zmws-peers.ts), and the TypeScript SDK on the same job
 * server, both ways. The heartbeat is shortened (--zmws-heartbeat) so that the 3-interval
 * purge is checked in real time within a second; the 5 s × 3 default is checked with a
 * manual clock in test/unit/zmws-dialect.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as zmq from 'zeromq';
import { connect, type FerryClient } from 'ferrymq';
import { startBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { RawSocket, texts } from '../helpers/zmq-inbox.js';
import { RawZmwsWorker } from '../helpers/zmws-peers.js';

/** Broker heartbeat in this test, ms: a silent worker is purged after 3 × this. */
const TEST_HEARTBEAT_MS = 150;
const WORKER_HEARTBEAT_MS = 50;
const ROUND_TRIPS = 1_000;

describe('ZMWS 1.0 dialect', { timeout: 60_000 }, () => {
  let broker: TestBroker;
  let clientEp: string;
  let workerEp: string;
  let ferry: FerryClient;
  const cleanup: (() => Promise<void> | void)[] = [];
  let nextId = 1;

  before(async () => {
    broker = await startBroker({
      zmws: 'true',
      'zmws-client': 'tcp://127.0.0.1:*',
      'zmws-worker': 'tcp://127.0.0.1:*',
      'zmws-heartbeat': String(TEST_HEARTBEAT_MS),
    });
    const eps = broker.server.zmwsEndpoints;
    assert.ok(eps);
    clientEp = eps.client;
    workerEp = eps.worker;
    ferry = await connect(broker.endpoint, { heartbeatMs: 200, requestTimeoutMs: 20_000 });
  });

  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await ferry.close({ timeoutMs: 500 }).catch(() => {});
    await broker.stop();
  });

  function worker(
    service: string,
    options: Partial<ConstructorParameters<typeof RawZmwsWorker>[2]> = {},
  ): RawZmwsWorker {
    const id = `${String(nextId++).padStart(4, '0')}-ABCD`;
    const w = new RawZmwsWorker(
      workerEp,
      service,
      { heartbeatMs: WORKER_HEARTBEAT_MS, ...options },
      id,
    );
    cleanup.push(() => w.close());
    return w;
  }

  /** A REQ client, as the ZMWS gateway and simple PHP clients use. */
  async function reqCall(...frames: string[]): Promise<string[]> {
    const req = new zmq.Request({ linger: 0, receiveTimeout: 5_000 });
    req.connect(clientEp);
    try {
      await req.send(frames);
      return texts(await req.receive());
    } finally {
      req.close();
    }
  }

  const reverse = (p: string): string =>
    JSON.stringify((JSON.parse(p) as { str: string }).str.split('').reverse().join(''));

  test('a raw worker registers and serves SYNC jobs with PARAM-JSON results', async () => {
    const w = worker('STR-REV', { handler: reverse });
    await waitFor(() => broker.server.jobs.hasWorkers('STR-REV'), 'the worker registered');
    const reply = await reqCall('PARAM-JSON: {"str":"Hello, world"}', 'JOB: SYNC-STR-REV');
    assert.equal(reply.length, 2);
    assert.match(reply[0]!, /^COMPLETE: STR-REV \[[0-9a-f]{32}\]$/);
    assert.equal(reply[1], 'PARAM-JSON: "dlrow ,olleH"');
    const job = w.jobs[0]!;
    assert.equal(job[1], '', 'the worker sees client id, empty, param, JOB');
    assert.equal(job[2], 'PARAM-JSON: {"str":"Hello, world"}');
    assert.equal(job[3], `JOB: ${reply[0]!.slice(-33, -1)}`);
  });

  test(`${ROUND_TRIPS} SYNC round trips from a DEALER client`, async () => {
    worker('ECHO', { handler: (p) => p });
    await waitFor(() => broker.server.jobs.hasWorkers('ECHO'), 'the worker registered');
    const d = RawSocket.dealer(clientEp);
    cleanup.push(() => d.close());
    for (let i = 0; i < ROUND_TRIPS; i++) {
      await d.send(`PARAM-JSON: ${i}`, 'JOB: SYNC-ECHO');
      const r = texts(await d.receive(`reply ${i}`));
      assert.deepEqual(
        [r[0], r[1]!.slice(0, 15), r[2]],
        ['', 'COMPLETE: ECHO ', `PARAM-JSON: ${i}`],
      );
    }
  });

  test('JOB: answers JOB: <id> <service> at once; the job runs when a worker comes', async () => {
    const [accepted] = await reqCall('PARAM-JSON: {"str":"later"}', 'JOB: LATER');
    const m = /^JOB: ([0-9a-f]{32}) LATER$/.exec(accepted!);
    assert.ok(m, accepted);
    const handle = ferry.job(m[1]!);
    assert.equal((await handle.status()).status, 'queued');
    worker('LATER', { handler: reverse });
    const done = await handle.wait({ timeoutMs: 5_000 });
    assert.equal(done.status, 'done');
    assert.equal(done.result?.[0]?.toString(), '"retal"');
  });

  test('SERVER-WORKERS lists a raw worker with its heartbeat expiry', async () => {
    worker('LISTED');
    await waitFor(() => broker.server.jobs.hasWorkers('LISTED'), 'registered');
    const [json] = await reqCall('SERVER-WORKERS');
    const list = JSON.parse(json!) as { workerid: string; service: string; hb: number }[];
    const entry = list.find((w) => w.service === 'LISTED');
    assert.ok(entry, json);
    assert.match(entry.workerid, /^\d{4}-ABCD$/);
    assert.ok(entry.hb > Date.now() / 1000, 'hb is the expiry, in seconds since the epoch');
  });

  test('the broker heartbeats idle workers; a silent one is purged and its job requeued', async () => {
    const hung = worker('FRAGILE', { hang: true });
    await waitFor(() => broker.server.jobs.hasWorkers('FRAGILE'), 'the first worker');
    await waitFor(() => hung.heartbeatsReceived > 0, 'a HEARTBEAT from the broker');
    const purgedBefore = broker.server.zmws!.counters.purged;
    const started = Date.now();
    const pending = reqCall('PARAM-JSON: {"str":"abc"}', 'SYNC-FRAGILE');
    await waitFor(() => hung.jobs.length === 1, 'the job at the hanging worker');
    const healthy = worker('FRAGILE', { handler: reverse });
    const reply = await pending;
    assert.equal(reply[1], 'PARAM-JSON: "cba"');
    assert.equal(healthy.served, 1, 'the second worker ran the requeued job');
    assert.equal(broker.server.zmws!.counters.purged, purgedBefore + 1);
    assert.ok(
      Date.now() - started >= TEST_HEARTBEAT_MS * 3 - 50,
      'not purged before 3 silent intervals',
    );
  });

  test('a raw ZMWS worker serves an SDK call, partials included', async () => {
    worker('ZMWS-STREAM', { handler: reverse, partials: () => ['1', '2'] });
    await waitFor(() => broker.server.jobs.hasWorkers('ZMWS-STREAM'), 'registered');
    const partials: string[] = [];
    const result = await ferry.call('ZMWS-STREAM', JSON.stringify({ str: 'sdk' }), {
      timeoutMs: 5_000,
      onPartial: (frames) => partials.push(frames[0]!.toString()),
    });
    assert.equal(result.toString(), '"kds"');
    assert.deepEqual(partials, ['1', '2']);
  });

  test('an SDK worker serves ZMWS clients: REQ (SYNC, JOB:) and DEALER with CONT', async () => {
    const w = ferry.worker('SDK-UPPER', async (job) => {
      const p = JSON.parse(job.params.toString()) as { str: string };
      await job.partial(JSON.stringify({ progress: 'half' }));
      return JSON.stringify(p.str.toUpperCase());
    });
    cleanup.push(() => w.close({ timeoutMs: 1_000 }));
    await w.ready;
    const reply = await reqCall('PARAM-JSON: {"str":"shout"}', 'JOB: SYNC-SDK-UPPER');
    assert.equal(reply[1], 'PARAM-JSON: "SHOUT"', 'a REQ gets only the final reply');
    const d = RawSocket.dealer(clientEp);
    cleanup.push(() => d.close());
    await d.send('PARAM-JSON: {"str":"x"}', 'JOB: SYNC-SDK-UPPER');
    const cont = texts(await d.receive('CONT'));
    assert.match(cont[1]!, /^CONT: SDK-UPPER \[[0-9a-f]{32}\]$/);
    assert.equal(cont[2], 'PARAM-JSON: {"progress":"half"}');
    const fin = texts(await d.receive('COMPLETE'));
    assert.equal(fin[2], 'PARAM-JSON: "X"');
    const [accepted] = await reqCall('PARAM-JSON: {"str":"async"}', 'SDK-UPPER');
    const id = /^JOB: ([0-9a-f]{32}) SDK-UPPER$/.exec(accepted!)![1]!;
    const done = await ferry.job(id).wait({ timeoutMs: 5_000 });
    assert.equal(done.result?.[0]?.toString(), '"ASYNC"');
  });

  test('malformed requests: FAIL where ZMWS answers, otherwise logged and dropped', async () => {
    assert.deepEqual(await reqCall('SYNC-NOBODY-HERE'), ['FAIL: NOBODY-HERE']);
    assert.deepEqual(await reqCall('JOB: not a service'), ['FAIL: not a service']);
    const dropped = broker.server.zmws!.counters.dropped;
    const w = RawSocket.dealer(workerEp, 'BAD-0001');
    cleanup.push(() => w.close());
    await w.send('one', 'two', 'three', 'four');
    await w.send('S', 'COMPLETE: unknown-job'); // an unknown worker answering: registers it
    await waitFor(() => broker.server.zmws!.counters.dropped >= dropped + 2, 'both counted');
    // Still serving.
    assert.match((await reqCall('SERVER-HIST'))[0]!, /^\[/);
  });
});
