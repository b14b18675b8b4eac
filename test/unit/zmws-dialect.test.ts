/**
 * The ZMWS 1.0 dialect without sockets: frames in through its handlers, frames out through
 * captured outputs, over the real job server on an in-memory store with a manual clock (so
 * the 5 s × 3 heartbeat rules are checked without waiting for them).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import { JobServer } from 'ferrymq-server/internal/core/jobs.js';
import fc from 'fast-check';
import {
  decodeParam,
  framesToJson,
  parseClientRequest,
} from 'ferrymq-server/internal/dialects/zmws/zmws-commands.js';
import {
  ZMWS_HEARTBEAT_INTERVAL_MS,
  ZMWS_HEARTBEAT_LIVENESS,
  ZMWS_SYNC_TTL_MS,
  ZmwsDialect,
} from 'ferrymq-server/internal/dialects/zmws/zmws-dialect.js';
import { decodeWorkerMessage } from 'ferrymq-server/internal/dialects/zmws/zmws-frames.js';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { waitFor } from '../helpers/broker.js';
import { fcOptions } from '../helpers/seed.js';

const E = Buffer.alloc(0);
const b = (s: string): Buffer => Buffer.from(s);
const text = (frames: Buffer[]): string[] => frames.map((f) => f.toString('latin1'));

interface Sent {
  peer: string;
  frames: Buffer[];
}

interface Harness {
  jobs: JobServer;
  clock: ManualClock;
  zmws: ZmwsDialect;
  /** Removes and returns what was sent to a client / worker peer. */
  client(peer: string): string[][];
  worker(peer: string): string[][];
}

const opened: { jobs: JobServer; storage: SqliteStorage; zmws: ZmwsDialect }[] = [];

async function harness(): Promise<Harness> {
  const clock = new ManualClock();
  const storage = new SqliteStorage({ dataDir: IN_MEMORY, sync: { mode: 'off' } });
  await storage.open();
  const jobs = await JobServer.open({ storage: storage.jobs, clock, random: () => 0.5 });
  const toClients: Sent[] = [];
  const toWorkers: Sent[] = [];
  const zmws = new ZmwsDialect(
    jobs,
    {
      toClient: (peer, frames) => toClients.push({ peer: peer.toString(), frames }),
      toWorker: (peer, frames) => toWorkers.push({ peer: peer.toString(), frames }),
    },
    { clock },
  );
  opened.push({ jobs, storage, zmws });
  const take = (list: Sent[], peer: string): string[][] => {
    const out: string[][] = [];
    for (let i = 0; i < list.length;) {
      if (list[i]!.peer === peer) out.push(text(list.splice(i, 1)[0]!.frames));
      else i++;
    }
    return out;
  };
  return {
    jobs,
    clock,
    zmws,
    client: (peer) => take(toClients, peer),
    worker: (peer) => take(toWorkers, peer),
  };
}

async function closeOpened(): Promise<void> {
  for (const o of opened.splice(0)) {
    o.zmws.close();
    await o.jobs.close();
    await o.storage.close();
  }
}

afterEach(closeOpened);

/** Waits for something sent to a peer; returns it (bounded). */
async function next(get: () => string[][], what: string): Promise<string[]> {
  let got: string[][] = [];
  await waitFor(() => (got = get()).length > 0, what, { timeoutMs: 5_000, intervalMs: 1 });
  assert.equal(got.length, 1, `one message: ${JSON.stringify(got)}`);
  return got[0]!;
}

describe('ZMWS commands and frames', () => {
  it('parses client requests as ZMWS 1.0 does', () => {
    assert.deepEqual(parseClientRequest([b('JOB: SYNC-STR-REV')]), {
      kind: 'job',
      service: 'STR-REV',
      sync: true,
      param: undefined,
    });
    const r = parseClientRequest([b('PARAM-JSON: {"str":"hi"}'), b('STR-REV')]);
    assert.equal(r.kind, 'job');
    assert.equal((r as { sync: boolean }).sync, false);
    const param = (r as { param: { key: string; value: Buffer; json: boolean } }).param;
    assert.equal(param.key, 'PARAM-JSON');
    assert.equal(param.value.toString(), '{"str":"hi"}');
    assert.equal(param.json, true);
    assert.equal(decodeParam(b('JSON-PARAM: 1'))?.json, true);
    assert.equal(decodeParam(b('PARAM-PHP: a:0:{}'))?.json, false);
    assert.equal(decodeParam(b('HELLO: x')), undefined);
    assert.equal(decodeParam(b('no separator')), undefined);
    assert.deepEqual(parseClientRequest([b('JOB: SERVER-WORKERS')]), {
      kind: 'server',
      query: 'SERVER-WORKERS',
    });
    assert.deepEqual(parseClientRequest([b('SYNC-SERVER-HIST')]), {
      kind: 'server',
      query: 'SERVER-HIST',
    });
    assert.equal(parseClientRequest([]).kind, 'invalid');
    assert.equal(parseClientRequest([b('JOB: ')]).kind, 'invalid');
    assert.equal(parseClientRequest([b('JOB: SYNC-')]).kind, 'invalid');
    assert.equal(parseClientRequest([b('x'.repeat(1_000))]).kind, 'invalid');
    assert.equal(framesToJson([]), 'null');
    assert.equal(framesToJson([b('{"a":1}')]), '{"a":1}');
    assert.equal(framesToJson([b('plain')]), '"plain"');
    assert.equal(framesToJson([b('a'), b('b')]), '["a","b"]');
  });

  it('decodes worker messages', () => {
    assert.deepEqual(decodeWorkerMessage([b('STR-REV'), b('READY')]), {
      kind: 'ready',
      service: 'STR-REV',
    });
    assert.deepEqual(decodeWorkerMessage([b('HEARTBEAT')]), { kind: 'heartbeat' });
    const done = decodeWorkerMessage([b('PARAM-JSON: "olleh"'), b('STR-REV'), b('COMPLETE: j1')]);
    assert.equal(done.kind, 'result');
    assert.equal((done as { outcome: string }).outcome, 'COMPLETE');
    assert.equal((done as { jobId: string }).jobId, 'j1');
    assert.equal(
      (decodeWorkerMessage([b('S'), b('FAIL: j2')]) as { outcome: string }).outcome,
      'FAIL',
    );
    for (const bad of [
      [],
      [b('READY')],
      [b('x'), b('y'), b('z'), b('w')],
      [E, b('READY')],
      [b('S'), b('DONE: j')],
      [b('S'), b('COMPLETE: ')],
      [b('nope'), b('S'), b('COMPLETE: j')],
      [b('P'), b('S'), b('READY')],
    ]) {
      assert.equal(decodeWorkerMessage(bad).kind, 'invalid', JSON.stringify(text(bad)));
    }
  });
});

describe('ZMWS dialect', () => {
  it('a worker registers and serves a SYNC job from a REQ client with a PARAM-JSON result', async () => {
    const h = await harness();
    h.zmws.handleWorker(b('W-1'), [b('STR-REV'), b('READY')]);
    h.zmws.handleClient(b('C'), [E, b('PARAM-JSON: {"str":"Hello"}'), b('JOB: SYNC-STR-REV')]);
    const job = await next(() => h.worker('W-1'), 'the job at the worker');
    assert.equal(job.length, 4);
    assert.equal(job[1], '');
    assert.equal(job[2], 'PARAM-JSON: {"str":"Hello"}');
    const jobId = job[3]!.replace('JOB: ', '');
    assert.match(jobId, /^[0-9a-f]{32}$/);
    assert.equal(job[0], jobId, 'the client id frame carries the job id');
    h.zmws.handleWorker(b('W-1'), [
      b('PARAM-JSON: "olleH"'),
      b('STR-REV'),
      b(`COMPLETE: ${jobId}`),
    ]);
    const reply = await next(() => h.client('C'), 'the SYNC reply');
    assert.deepEqual(reply, ['', `COMPLETE: STR-REV [${jobId}]`, 'PARAM-JSON: "olleH"']);
  });

  it('JOB: answers with the job id once stored; the job runs and is done in the store', async () => {
    const h = await harness();
    h.zmws.handleClient(b('C'), [E, b('JSON-PARAM: [1,2]'), b('JOB: LOG')]);
    const [, accepted] = await next(() => h.client('C'), 'the async reply');
    const m = /^JOB: ([0-9a-f]{32}) LOG$/.exec(accepted!);
    assert.ok(m, accepted);
    const jobId = m[1]!;
    h.zmws.handleWorker(b('W'), [b('LOG'), b('READY')]);
    const job = await next(() => h.worker('W'), 'the job at the worker');
    assert.equal(job[2], 'JSON-PARAM: [1,2]', 'the parameter as the client sent it');
    h.zmws.handleWorker(b('W'), [b('LOG'), b(`COMPLETE: ${jobId}`)]);
    await waitFor(async () => (await h.jobs.get(jobId))?.status === 'done', 'done');
    assert.deepEqual(h.client('C'), [], 'no second reply to an async client');
  });

  it('SYNC for a service no worker ever offered, or an invalid name, answers FAIL', async () => {
    const h = await harness();
    h.zmws.handleClient(b('C'), [E, b('SYNC-NOBODY')]);
    assert.deepEqual(await next(() => h.client('C'), 'FAIL'), ['', 'FAIL: NOBODY']);
    h.zmws.handleClient(b('C'), [E, b('JOB: bad name!')]);
    assert.deepEqual(await next(() => h.client('C'), 'FAIL'), ['', 'FAIL: bad name!']);
  });

  it('a FAIL from the worker reaches a SYNC client as FAIL with its answer', async () => {
    const h = await harness();
    h.zmws.handleWorker(b('W'), [b('S'), b('READY')]);
    h.zmws.handleClient(b('C'), [E, b('SYNC-S')]);
    const job = await next(() => h.worker('W'), 'the job');
    assert.equal(job[2], 'JOB: S', 'no parameters: the request frame instead, as ZMWS does');
    const jobId = job[3]!.slice(5);
    h.zmws.handleWorker(b('W'), [b('PARAM-JSON: {"why":"disk"}'), b('S'), b(`FAIL: ${jobId}`)]);
    assert.deepEqual(await next(() => h.client('C'), 'FAIL'), [
      '',
      `FAIL: S [${jobId}]`,
      'PARAM-JSON: {"why":"disk"}',
    ]);
    assert.equal((await h.jobs.get(jobId))?.status ?? 'failed', 'failed');
  });

  it('CONT partials go to a DEALER client (no delimiter), not to a REQ client', async () => {
    const h = await harness();
    h.zmws.handleWorker(b('W'), [b('S'), b('READY')]);
    h.zmws.handleClient(b('D'), [b('PARAM-JSON: 1'), b('JOB: SYNC-S')]);
    let job = await next(() => h.worker('W'), 'job 1');
    let id = job[3]!.slice(5);
    h.zmws.handleWorker(b('W'), [b('PARAM-JSON: "part"'), b('S'), b(`CONT: ${id}`)]);
    assert.deepEqual(await next(() => h.client('D'), 'CONT'), [
      '',
      `CONT: S [${id}]`,
      'PARAM-JSON: "part"',
    ]);
    h.zmws.handleWorker(b('W'), [b('PARAM-JSON: "end"'), b('S'), b(`COMPLETE: ${id}`)]);
    assert.deepEqual((await next(() => h.client('D'), 'COMPLETE'))[1], `COMPLETE: S [${id}]`);
    h.zmws.handleClient(b('R'), [E, b('JOB: SYNC-S')]);
    job = await next(() => h.worker('W'), 'job 2');
    id = job[3]!.slice(5);
    h.zmws.handleWorker(b('W'), [b('PARAM-JSON: "part"'), b('S'), b(`CONT: ${id}`)]);
    h.zmws.handleWorker(b('W'), [b('PARAM-JSON: "end"'), b('S'), b(`COMPLETE: ${id}`)]);
    assert.deepEqual(await next(() => h.client('R'), 'only the final reply'), [
      '',
      `COMPLETE: S [${id}]`,
      'PARAM-JSON: "end"',
    ]);
  });

  it('heartbeats idle workers every 5 s; purges one silent for 15 s and requeues its job', async () => {
    const h = await harness();
    h.zmws.handleWorker(b('A'), [b('S'), b('READY')]);
    h.zmws.handleClient(b('C'), [E, b('JOB: SYNC-S')]);
    const job = await next(() => h.worker('A'), 'the job at A');
    const jobId = job[3]!.slice(5);
    h.zmws.handleWorker(b('B'), [b('S'), b('READY')]);
    for (let t = 0; t < 4; t++) {
      h.clock.advance(ZMWS_HEARTBEAT_INTERVAL_MS);
      h.zmws.handleWorker(b('B'), [b('HEARTBEAT')]); // B keeps talking; A (busy) is silent
    }
    assert.equal(h.zmws.counters.purged, 1, 'A purged after 15 s of silence');
    let toB: string[][] = [];
    await waitFor(
      () => (toB = [...toB, ...h.worker('B')]).some((m) => m[3] === `JOB: ${jobId}`),
      'the same job, requeued to B',
    );
    const beats = toB.filter((m) => m.length === 1 && m[0] === 'HEARTBEAT').length;
    assert.ok(beats >= 3, `B, idle, got a heartbeat every 5 s (${beats})`);
    assert.equal(toB.length, beats + 1, 'heartbeats and the job, nothing else');
    assert.deepEqual(h.worker('A'), [], 'a busy worker gets no heartbeat');
    h.zmws.handleWorker(b('B'), [b('PARAM-JSON: 2'), b('S'), b(`COMPLETE: ${jobId}`)]);
    assert.deepEqual((await next(() => h.client('C'), 'reply'))[1], `COMPLETE: S [${jobId}]`);
    // A comes back talking: an answer from an unknown worker registers it again (as ZMWS).
    h.zmws.handleWorker(b('A'), [b('S'), b(`COMPLETE: ${jobId}`)]);
    assert.equal(h.zmws.workerCount, 2);
    h.clock.advance(ZMWS_HEARTBEAT_INTERVAL_MS * ZMWS_HEARTBEAT_LIVENESS + 1_000);
    assert.equal(h.zmws.workerCount, 0, 'both silent past the liveness');
  });

  it('a SYNC job no worker starts within its TTL is answered FAIL with the reason', async () => {
    const h = await harness();
    h.zmws.handleWorker(b('W'), [b('GONE'), b('READY')]);
    h.clock.advance(ZMWS_HEARTBEAT_INTERVAL_MS * (ZMWS_HEARTBEAT_LIVENESS + 1));
    assert.equal(h.zmws.workerCount, 0, 'the worker was purged');
    h.worker('W');
    h.zmws.handleClient(b('C'), [E, b('SYNC-GONE')]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(h.client('C'), [], 'a seen service: queued, not refused');
    h.clock.advance(ZMWS_SYNC_TTL_MS + 1_000);
    const reply = await next(() => h.client('C'), 'the FAIL after the TTL');
    assert.match(reply[1]!, /^FAIL: GONE \[[0-9a-f]{32}\]$/);
    assert.match(reply[2]!, /^PARAM-JSON: ".+"$/);
  });

  it('a job taken back from a ZMWS worker keeps it busy until its late answer', async () => {
    const h = await harness();
    h.zmws.handleWorker(b('W'), [b('S'), b('READY')]);
    h.zmws.handleClient(b('C1'), [E, b('PARAM-JSON: 1'), b('JOB: S')]);
    const first = await next(() => h.worker('W'), 'job 1');
    const id1 = first[3]!.slice(5);
    await h.jobs.cancel(id1);
    h.zmws.handleClient(b('C2'), [E, b('PARAM-JSON: 2'), b('JOB: S')]);
    await next(() => h.client('C2'), 'job 2 accepted');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(h.worker('W'), [], 'no second job while the first is unanswered');
    h.zmws.handleWorker(b('W'), [b('S'), b(`COMPLETE: ${id1}`)]);
    const second = await next(() => h.worker('W'), 'job 2 after the late answer');
    assert.equal(second[2], 'PARAM-JSON: 2');
    assert.equal((await h.jobs.get(id1))?.status, 'cancelled');
  });

  it('SERVER-WORKERS, SERVER-JOBS, SERVER-ACTIVE and SERVER-HIST answer JSON', async () => {
    const h = await harness();
    const ask = async (q: string): Promise<Record<string, unknown>[]> => {
      h.zmws.handleClient(b('Q'), [E, b(q)]);
      const r = await next(() => h.client('Q'), q);
      assert.equal(r.length, 2);
      return JSON.parse(r[1]!) as Record<string, unknown>[];
    };
    h.zmws.handleWorker(b('W1'), [b('S'), b('READY')]);
    const workers = await ask('SERVER-WORKERS');
    assert.equal(workers.length, 1);
    assert.equal(workers[0]!['workerid'], 'W1');
    assert.equal(workers[0]!['service'], 'S');
    assert.equal(workers[0]!['hb'], (h.clock.now() + 15_000) / 1000);
    h.zmws.handleClient(b('C'), [E, b('JOB: OTHER')]);
    await next(() => h.client('C'), 'accepted');
    const queued = await ask('JOB: SERVER-JOBS');
    assert.deepEqual(
      queued.map((j) => j['service']),
      ['OTHER'],
    );
    h.zmws.handleClient(b('C'), [E, b('SYNC-S')]);
    const job = await next(() => h.worker('W1'), 'job');
    const active = await ask('SERVER-ACTIVE');
    assert.deepEqual(
      active.map((j) => j['jobid']),
      [job[3]!.slice(5)],
    );
    h.zmws.handleWorker(b('W1'), [b('S'), b(job[3]!.replace('JOB', 'COMPLETE'))]);
    await next(() => h.client('C'), 'done');
    const hist = await ask('SERVER-HIST');
    assert.equal(hist.at(-1)!['jobid'], job[3]!.slice(5));
    assert.equal(hist.at(-1)!['status'], 'done');
  });

  it('survives 20,000 random messages on both sockets and still serves', async () => {
    const pieces = [
      '',
      'READY',
      'HEARTBEAT',
      'S',
      'JOB: S',
      'SYNC-S',
      'JOB: SYNC-S',
      'SERVER-WORKERS',
      'SERVER-HIST',
      'COMPLETE: x',
      'FAIL: 0123',
      'CONT: y',
      'PARAM-JSON: {',
      'PARAM-JSON: 1',
      'JOB: bad name',
      '\u00ff\u0000',
    ];
    const frame = fc
      .oneof(
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 3, maxLength: 3 }) },
        { weight: 4, arbitrary: fc.constantFrom(...pieces) },
      )
      .map((f) => Buffer.from(f));
    const message = fc.record({
      toClient: fc.boolean(),
      peer: fc.nat(19),
      frames: fc.array(frame, { maxLength: 4 }),
    });
    // 20 runs of up to 2,000 messages each (about 20,000 in all), each on a fresh harness.
    const messages = fc.array(message, { maxLength: 2_000, size: 'max' });
    await fc.assert(
      fc.asyncProperty(messages, async (msgs) => {
        try {
          const h = await harness();
          for (const [i, m] of msgs.entries()) {
            const peer = b(`p${m.peer}`);
            assert.doesNotThrow(() =>
              m.toClient
                ? h.zmws.handleClient(peer, m.frames)
                : h.zmws.handleWorker(peer, m.frames),
            );
            if (i % 500 === 0) {
              h.clock.advance(1_000);
              await new Promise((r) => setImmediate(r));
            }
          }
          h.clock.advance(60_000);
          await new Promise((r) => setImmediate(r));
          h.client('Z');
          h.zmws.handleWorker(b('GOOD'), [b('FUZZ-OK'), b('READY')]);
          h.zmws.handleClient(b('Z'), [E, b('PARAM-JSON: "still"'), b('SYNC-FUZZ-OK')]);
          let job: string[] = [];
          await waitFor(
            () => (job = h.worker('GOOD').find((m) => m[3]?.startsWith('JOB: ')) ?? []).length > 0,
            'a job after the fuzz',
          );
          assert.equal(job[2], 'PARAM-JSON: "still"');
          h.zmws.handleWorker(b('GOOD'), [
            b('PARAM-JSON: "ok"'),
            b('FUZZ-OK'),
            b(job[3]!.replace('JOB', 'COMPLETE')),
          ]);
          const reply = await next(() => h.client('Z'), 'the reply after the fuzz');
          assert.equal(reply[2], 'PARAM-JSON: "ok"');
        } finally {
          await closeOpened();
        }
      }),
      fcOptions(20),
    );
  });
});
