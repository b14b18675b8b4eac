/**
 * The job server end to end: a real broker on tcp://127.0.0.1:*, SDK clients and workers over
 * real sockets. Each test names the promise of docs/jobs.md it checks.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect, FerryError, JobFailure, type FerryClient, type JobUpdate } from 'ferrymq';
import {
  freePort,
  spawnBroker,
  tmpDir,
  waitFor,
  type ChildBroker,
  type TestBroker,
  TestResources,
} from '../helpers/broker.js';

const resources = new TestResources();
const broker = (flags: Record<string, string> = {}): Promise<TestBroker> => resources.broker(flags);
const client = (endpoint: string, heartbeatMs = 200): Promise<FerryClient> =>
  resources.client(endpoint, heartbeatMs);

after(() => resources.closeAll());

async function rejectsWith(p: Promise<unknown>, code: string): Promise<FerryError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return err instanceof FerryError && err.code === code;
  });
  return caught as FerryError;
}

describe('jobs over the wire', () => {
  it("call returns the worker's result", async () => {
    const b = await broker();
    const w = await client(b.endpoint);
    const c = await client(b.endpoint);
    const worker = w.worker('upper', (job) => job.params.toString().toUpperCase());
    await worker.ready;
    assert.equal((await c.call('upper', 'hello')).toString(), 'HELLO');
    // Many sequential calls go round the workers; every one answered.
    for (let i = 0; i < 200; i++) {
      assert.equal((await c.call('upper', `m${i}`)).toString(), `M${i}`);
    }
    await worker.close();
  });

  it('a JSON result and multi-frame params and results travel intact', async () => {
    const b = await broker();
    const w = await client(b.endpoint);
    const c = await client(b.endpoint);
    await w.worker('sum', (job) => ({ n: job.frames.length, first: job.params.toString() })).ready;
    await w.worker('echo-frames', (job) => job.frames).ready;
    const out = JSON.parse((await c.call('sum', ['a', 'b', 'c'])).toString()) as Json;
    assert.deepEqual(out, { n: 3, first: 'a' });
    const frames = await c.callFrames('echo-frames', [Buffer.from([0, 1]), Buffer.alloc(0)]);
    assert.deepEqual(frames, [Buffer.from([0, 1]), Buffer.alloc(0)]);
  });

  it('submit with no worker connected: stored, run once a worker starts, result fetched by id', async () => {
    const b = await broker();
    const c = await client(b.endpoint);
    const job = await c.submit('reports', JSON.stringify({ month: 11 }));
    assert.match(job.id, /^[0-9a-f]{32}$/);
    assert.equal((await job.status()).status, 'queued');
    const w = await client(b.endpoint);
    await w.worker(
      'reports',
      (j) => `report for ${String((JSON.parse(j.params.toString()) as Json)['month'])}`,
    ).ready;
    const [result] = await job.result({ timeoutMs: 10_000 });
    assert.equal(result!.toString(), 'report for 11');
    const info = await c.job(job.id).status();
    assert.equal(info.status, 'done');
    assert.equal(info.result![0]!.toString(), 'report for 11');
    const listed = await c.jobs({ service: 'reports' });
    assert.equal(listed[0]!.id, job.id);
  });

  it('a handler that throws fails the attempt; retried, then failed with its code', async () => {
    const b = await broker({ 'retry-base': '10', 'retry-max': '20' });
    const w = await client(b.endpoint);
    const c = await client(b.endpoint);
    let runs = 0;
    await w.worker('flaky', (job) => {
      runs++;
      if (job.attempt < 3) throw new Error(`attempt ${job.attempt} failed`);
      return 'third time';
    }).ready;
    const out = await c.call('flaky', 'x', { maxAttempts: 3 });
    assert.equal(out.toString(), 'third time');
    assert.equal(runs, 3);
    await w.worker('broken', () => {
      throw new JobFailure('bad input', 'BAD_INPUT', false);
    }).ready;
    const err = await rejectsWith(c.call('broken', 'x'), 'JOB_FAILED');
    const job = (err.details?.['job'] ?? {}) as { error?: { code: string }; attempts?: number };
    assert.equal(job.error?.code, 'BAD_INPUT');
    assert.equal(job.attempts, 1, 'retry: false fails at once');
  });

  it('progress and partials reach the caller in order', async () => {
    const b = await broker();
    const w = await client(b.endpoint);
    const c = await client(b.endpoint);
    await w.worker('steps', async (job) => {
      for (let i = 1; i <= 5; i++) {
        await job.progress({ step: i, of: 5 });
        await job.partial(`part-${i}`);
      }
      return 'all done';
    }).ready;
    const progress: unknown[] = [];
    const partials: string[] = [];
    const out = await c.call('steps', 'go', {
      onProgress: (p) => progress.push(p),
      onPartial: (frames) => partials.push(frames[0]!.toString()),
    });
    assert.equal(out.toString(), 'all done');
    assert.deepEqual(partials, ['part-1', 'part-2', 'part-3', 'part-4', 'part-5']);
    assert.deepEqual(progress.at(-1), { step: 5, of: 5 });
    // A durable job's updates can be followed by id, from the start.
    const job = await c.submit('steps', 'again');
    const updates: JobUpdate[] = [];
    for await (const u of job.updates()) updates.push(u);
    assert.deepEqual(
      updates
        .filter((u) => u.type === 'partial')
        .map((u) => (u.type === 'partial' ? u.body.toString() : '')),
      ['part-1', 'part-2', 'part-3', 'part-4', 'part-5'],
    );
    const final = updates.at(-1)!;
    assert.equal(final.type, 'final');
    assert.equal(final.type === 'final' ? final.job.status : '', 'done');
  });

  it('cancel reaches the worker running the job (AbortSignal)', async () => {
    const b = await broker();
    const w = await client(b.endpoint);
    const c = await client(b.endpoint);
    let aborted = false;
    let started = false;
    await w.worker('long', (job) => {
      started = true;
      return new Promise((_resolve, reject) => {
        job.signal.addEventListener('abort', () => {
          aborted = true;
          reject(job.signal.reason as Error);
        });
      });
    }).ready;
    const job = await c.submit('long', 'x');
    await waitFor(() => started, 'the worker started the job');
    const info = await job.cancel();
    assert.equal(info.status, 'cancelled');
    await waitFor(() => aborted, "the worker's signal aborted");
    await rejectsWith(job.result(), 'JOB_CANCELLED');
  });

  it('a worker killed mid-job: the job is requeued after missed heartbeats and completed by another', async () => {
    const b = await broker({ heartbeat: '100' });
    const dying = await connect(b.endpoint, { heartbeatMs: 100 });
    const c = await client(b.endpoint);
    let startedOnDying = false;
    await dying.worker('work', () => {
      startedOnDying = true;
      return new Promise(() => {}); // never finishes
    }).ready;
    const job = await c.submit('work', 'x');
    await waitFor(() => startedOnDying, 'the first worker got the job');
    // Silence it: close its socket without a BYE (as a crash would).
    await (dying as unknown as { conn: { close(): Promise<void> } }).conn.close();
    const healthy = await client(b.endpoint, 100);
    await healthy.worker('work', (j) => `done on attempt ${j.attempt}`).ready;
    const [r] = await job.result({ timeoutMs: 10_000 });
    assert.equal(r!.toString(), 'done on attempt 2');
    await dying.close({ timeoutMs: 0 });
  });

  it('a run past the job timeout is taken back (signal aborted) and runs again; the slot is freed by the report', async () => {
    const b = await broker({ 'job-timeout': '300' });
    const w = await client(b.endpoint);
    const c = await client(b.endpoint);
    const attempts: number[] = [];
    await w.worker('slow-then-fast', (job) => {
      attempts.push(job.attempt);
      if (job.attempt > 1) return 'second time lucky';
      return new Promise((_resolve, reject) => {
        job.signal.addEventListener('abort', () => reject(job.signal.reason as Error));
      });
    }).ready;
    const out = await c.call('slow-then-fast', 'x', { timeoutMs: 10_000 });
    assert.equal(out.toString(), 'second time lucky');
    assert.deepEqual(attempts, [1, 2]);
  });

  it('multicast completes only when every service has', async () => {
    const b = await broker();
    const w = await client(b.endpoint);
    const c = await client(b.endpoint);
    let releaseB: (() => void) | undefined;
    await w.worker('node-a', () => 'a-ok').ready;
    await w.worker('node-b', () => new Promise<string>((r) => (releaseB = () => r('b-ok')))).ready;
    const job = await c.multicast(['node-a', 'node-b'], 'config v2');
    await waitFor(() => releaseB !== undefined, 'node-b got its job');
    const mid = await job.status();
    assert.equal(mid.status, 'running');
    assert.equal(mid.children!.length, 2);
    releaseB!();
    const [summary] = await job.result({ timeoutMs: 10_000 });
    const list = JSON.parse(summary!.toString()) as { service: string; status: string }[];
    assert.deepEqual(
      list.map((x) => `${x.service}:${x.status}`),
      ['node-a:done', 'node-b:done'],
    );
  });

  it('results are forgotten after their retention', async () => {
    const b = await broker({ 'job-retention': '300' });
    const w = await client(b.endpoint);
    const c = await client(b.endpoint);
    await w.worker('quick', () => 'r').ready;
    const job = await c.submit('quick', 'x');
    await job.result({ timeoutMs: 10_000 });
    await waitFor(
      async () => {
        try {
          await job.status();
          return false;
        } catch (err) {
          return err instanceof FerryError && err.code === 'JOB_NOT_FOUND';
        }
      },
      'the job is forgotten',
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  });

  it('a call past its timeout rejects with TIMEOUT', async () => {
    const b = await broker();
    const c = await client(b.endpoint);
    await rejectsWith(c.call('nobody-serves-this', 'x', { timeoutMs: 200 }), 'TIMEOUT');
  });

  it('lists services and workers; the idle hook fires when quiet', async () => {
    const b = await broker();
    const w = await client(b.endpoint);
    const c = await client(b.endpoint);
    let idles = 0;
    const worker = w.worker(['svc-a', 'svc-b'], () => 'ok', {
      concurrency: 3,
      name: 'test-worker',
      idleMs: 50,
      onIdle: () => idles++,
    });
    await worker.ready;
    await c.call('svc-a', 'x');
    const services = await c.services();
    const a = services.find((s) => s.name === 'svc-a')!;
    assert.equal(a.workers, 1);
    assert.equal(a.done, 1);
    const workers = await c.workers();
    const me = workers.find((x) => x.name === 'test-worker')!;
    assert.deepEqual(me.services, ['svc-a', 'svc-b']);
    assert.equal(me.concurrency, 3);
    assert.equal(me.completed, 1);
    await waitFor(() => idles >= 1, 'the idle hook ran');
  });

  it('answers bad job input with coded errors and keeps serving', async () => {
    const b = await broker();
    const c = await client(b.endpoint);
    await rejectsWith(c.call('bad name!', 'x'), 'INVALID_SERVICE_NAME');
    await rejectsWith(c.submit('s', 'x', { priority: 999 }), 'BAD_ARGUMENTS');
    await rejectsWith(c.job('not-an-id').status(), 'BAD_ARGUMENTS');
    await rejectsWith(c.job('0'.repeat(32)).status(), 'JOB_NOT_FOUND');
    await rejectsWith(c.job('0'.repeat(32)).cancel(), 'JOB_NOT_FOUND');
    await rejectsWith(c.multicast([], 'x'), 'BAD_ARGUMENTS');
    const bad = c.worker('bad name!', () => 'x');
    await rejectsWith(bad.ready, 'INVALID_SERVICE_NAME');
    // Still serving.
    const w = await client(b.endpoint);
    await w.worker('ok', () => 'fine').ready;
    assert.equal((await c.call('ok', 'x')).toString(), 'fine');
  });
});

describe('jobs survive kill -9', () => {
  it('a job submitted before a SIGKILL of the broker runs once a worker is there after restart', async () => {
    const dataDir = tmpDir();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const args = ['--data', dataDir, '--bind', endpoint, '--heartbeat', '200'];
    let b: ChildBroker = await spawnBroker(args);
    const c = await connect(endpoint, { heartbeatMs: 100, requestTimeoutMs: 30_000 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push((await c.submit('after-crash', `job-${i}`)).id);
      b.child.kill('SIGKILL');
      await b.exited;
      b = await spawnBroker(args);
      const w = await connect(endpoint, { heartbeatMs: 100 });
      const seen = new Set<string>();
      await w.worker(
        'after-crash',
        (j) => {
          seen.add(j.id);
          return `ok ${j.params.toString()}`;
        },
        { concurrency: 4 },
      ).ready;
      for (let i = 0; i < ids.length; i++) {
        const [r] = await c.job(ids[i]!).result({ timeoutMs: 20_000 });
        assert.equal(r!.toString(), `ok job-${i}`);
      }
      assert.equal(seen.size, ids.length);
      await w.close({ timeoutMs: 1000 });
    } finally {
      await c.close({ timeoutMs: 500 }).catch(() => {});
      b.child.kill('SIGKILL');
      await b.exited;
    }
  });
});

type Json = Record<string, unknown>;
