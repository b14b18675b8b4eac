/**
 * The job server on its own: an in-memory store, a hand-driven clock, no sockets.
 * Each test names the promise of docs/jobs.md it checks.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import type { WorkerHandle } from 'ferrymq-server/internal/core/job-types.js';
import { type Assignment, FerryError, type JobEvent, type JobPolicy } from 'ferrymq/model';
import { JobServer } from 'ferrymq-server/internal/core/jobs.js';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { waitFor } from '../helpers/broker.js';

interface TestWorker {
  handle: WorkerHandle;
  assigned: Assignment[];
  cancelled: string[];
}

interface Harness {
  jobs: JobServer;
  clock: ManualClock;
  storage: SqliteStorage;
  worker(services: string[] | string, concurrency?: number): TestWorker;
}

const open: { jobs: JobServer; storage: SqliteStorage }[] = [];

async function harness(policy: Partial<JobPolicy> = {}): Promise<Harness> {
  const clock = new ManualClock();
  const storage = new SqliteStorage({ dataDir: IN_MEMORY, sync: { mode: 'off' } });
  await storage.open();
  const jobs = await JobServer.open({
    storage: storage.jobs,
    clock,
    random: () => 0.5,
    defaultPolicy: policy,
  });
  open.push({ jobs, storage });
  return {
    jobs,
    clock,
    storage,
    worker(services, concurrency = 1) {
      const assigned: Assignment[] = [];
      const cancelled: string[] = [];
      const handle = jobs.registerWorker(
        { assign: (a) => assigned.push(a), cancel: (id) => cancelled.push(id) },
        { services: Array.isArray(services) ? services : [services], concurrency },
      );
      return { handle, assigned, cancelled };
    },
  };
}

const p = (s: string): Buffer[] => [Buffer.from(s)];
const until = (cond: () => boolean | Promise<boolean>): Promise<void> =>
  waitFor(cond, cond.toString().slice(0, 120), { timeoutMs: 5_000 });

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.jobs.close();
    await h.storage.close();
  }
});

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof FerryError && err.code === code);
}

describe('job server', () => {
  it('call: the worker gets the params and the caller the result (transient, no store)', async () => {
    const h = await harness();
    const w = h.worker('echo');
    const opsBefore = h.storage.metrics().operations;
    const call = h.jobs.call({ service: 'echo', params: p('hi') });
    await until(() => w.assigned.length === 1);
    const a = w.assigned[0]!;
    assert.equal(a.params[0]!.toString(), 'hi');
    assert.equal(a.attempt, 1);
    assert.equal(await w.handle.complete(a.id, p('HI')), null);
    const info = await call;
    assert.equal(info.status, 'done');
    assert.equal(info.durable, false);
    assert.equal(info.result![0]!.toString(), 'HI');
    assert.equal(h.storage.metrics().operations, opsBefore, 'a transient call touches no store');
  });

  it('submit with no worker: stored, then run when a worker registers; result kept', async () => {
    const h = await harness();
    const info = await h.jobs.submit({ service: 'resize', params: p('img-1') });
    assert.match(info.id, /^[0-9a-f]{32}$/);
    assert.equal(info.status, 'queued');
    assert.equal((await h.jobs.get(info.id))!.status, 'queued');
    const w = h.worker('resize');
    await until(() => w.assigned.length === 1);
    assert.equal((await h.jobs.get(info.id))!.status, 'running');
    await w.handle.complete(w.assigned[0]!.id, p('ok'));
    const done = await h.jobs.get(info.id);
    assert.equal(done!.status, 'done');
    assert.equal(done!.result![0]!.toString(), 'ok');
    assert.equal(done!.attempts, 1);
    assert.ok(done!.retainUntil! > h.clock.now());
  });

  it('dispatch is least recently used among free workers (round robin under equal load)', async () => {
    const h = await harness();
    const ws = [h.worker('s'), h.worker('s'), h.worker('s')];
    const order: number[] = [];
    for (let i = 0; i < 6; i++) {
      const call = h.jobs.call({ service: 's', params: p(String(i)) });
      await until(() =>
        ws.some((w) => w.assigned.length > 0 && !w.assigned.at(-1)!.id.startsWith('x')),
      );
      const k = ws.findIndex(
        (w) => w.assigned.length > 0 && !w.assigned.at(-1)!.id.startsWith('x'),
      );
      order.push(k);
      const a = ws[k]!.assigned.at(-1)!;
      await ws[k]!.handle.complete(a.id, p('r'));
      a.id = `x${a.id}`; // mark handled
      await call;
    }
    assert.deepEqual(order, [0, 1, 2, 0, 1, 2]);
  });

  it('a worker takes at most `concurrency` jobs; the rest wait', async () => {
    const h = await harness();
    const w = h.worker('s', 2);
    for (let i = 0; i < 5; i++) void h.jobs.call({ service: 's', params: p(String(i)) });
    await until(() => w.assigned.length === 2);
    await w.handle.complete(w.assigned[0]!.id, p('r'));
    await until(() => w.assigned.length === 3);
    assert.equal(w.assigned[2]!.params[0]!.toString(), '2', 'FIFO within a priority');
  });

  it('higher priority first', async () => {
    const h = await harness();
    const infos = [];
    for (const prio of [1, 5, 3]) {
      infos.push(await h.jobs.submit({ service: 's', params: p(`p${prio}`), priority: prio }));
    }
    const w = h.worker('s');
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      await until(() => w.assigned.length === i + 1);
      seen.push(w.assigned[i]!.params[0]!.toString());
      await w.handle.complete(w.assigned[i]!.id, p('r'));
    }
    assert.deepEqual(seen, ['p5', 'p3', 'p1']);
  });

  it('a failed attempt is retried with backoff, then failed at max attempts', async () => {
    const h = await harness({ maxAttempts: 2, retryBaseMs: 1000 });
    const w = h.worker('s');
    const info = await h.jobs.submit({ service: 's', params: p('x') });
    await until(() => w.assigned.length === 1);
    await w.handle.fail(info.id, { code: 'BOOM', message: 'first' });
    assert.equal((await h.jobs.get(info.id))!.status, 'queued');
    h.clock.advance(400); // backoff with random 0.5: 750 ms
    await new Promise((r) => setImmediate(r));
    assert.equal(w.assigned.length, 1, 'not before the backoff');
    h.clock.advance(400);
    await until(() => w.assigned.length === 2);
    assert.equal(w.assigned[1]!.attempt, 2);
    await w.handle.fail(info.id, { code: 'BOOM', message: 'second' });
    const failed = await h.jobs.get(info.id);
    assert.equal(failed!.status, 'failed');
    assert.deepEqual(failed!.error, { code: 'BOOM', message: 'second' });
    assert.equal(failed!.attempts, 2);
  });

  it('fail with retry: false fails at once', async () => {
    const h = await harness();
    const w = h.worker('s');
    const call = h.jobs.call({ service: 's', params: p('x') });
    await until(() => w.assigned.length === 1);
    await w.handle.fail(w.assigned[0]!.id, { code: 'BAD_INPUT', message: 'no' }, { retry: false });
    const info = await call;
    assert.equal(info.status, 'failed');
    assert.equal(info.error!.code, 'BAD_INPUT');
  });

  it('a worker that goes away has its running jobs requeued to another worker, attempt counted', async () => {
    const h = await harness();
    const a = h.worker('s');
    const info = await h.jobs.submit({ service: 's', params: p('x') });
    await until(() => a.assigned.length === 1);
    a.handle.close();
    const b = h.worker('s');
    await until(() => b.assigned.length === 1);
    assert.equal(b.assigned[0]!.id, info.id);
    assert.equal(b.assigned[0]!.attempt, 2);
    assert.equal(await a.handle.complete(info.id, p('late')), 'LEASE_LOST');
    await b.handle.complete(info.id, p('ok'));
    assert.equal((await h.jobs.get(info.id))!.status, 'done');
  });

  it('worker lost on the last attempt: failed with WORKER_LOST', async () => {
    const h = await harness({ maxAttempts: 1 });
    const a = h.worker('s');
    const call = h.jobs.call({ service: 's', params: p('x'), durable: true });
    await until(() => a.assigned.length === 1);
    a.handle.close();
    const info = await call;
    assert.equal(info.status, 'failed');
    assert.equal(info.error!.code, 'WORKER_LOST');
  });

  it('a job past its run timeout is taken back (the worker told) and requeued; extend keeps it', async () => {
    const h = await harness({ runTimeoutMs: 1000 });
    const w = h.worker('s', 2);
    const j1 = await h.jobs.submit({ service: 's', params: p('1') });
    const j2 = await h.jobs.submit({ service: 's', params: p('2') });
    await until(() => w.assigned.length === 2);
    assert.equal(w.handle.extend(j2.id, 5000), null);
    h.clock.advance(1300);
    await until(() => w.cancelled.includes(j1.id));
    assert.ok(!w.cancelled.includes(j2.id), 'the extended job keeps running');
    // The overdue job keeps its slot until the worker reports it: never more than 2 at once.
    await new Promise((r) => setImmediate(r));
    assert.equal(w.assigned.length, 2);
    assert.equal(await w.handle.complete(j1.id, p('late')), 'LEASE_LOST');
    await until(() => w.assigned.length === 3);
    assert.equal(w.assigned[2]!.id, j1.id);
    assert.equal(w.assigned[2]!.attempt, 2);
  });

  it('cancel: a queued job is cancelled at once; a running one reaches its worker', async () => {
    const h = await harness();
    const queued = await h.jobs.submit({ service: 'nobody', params: p('x') });
    const c1 = await h.jobs.cancel(queued.id);
    assert.equal(c1.status, 'cancelled');
    assert.equal((await h.jobs.get(queued.id))!.status, 'cancelled');
    const w = h.worker('s');
    const call = h.jobs.call({ service: 's', params: p('y') });
    await until(() => w.assigned.length === 1);
    const id = w.assigned[0]!.id;
    const c2 = await h.jobs.cancel(id);
    assert.equal(c2.status, 'cancelled');
    assert.deepEqual(w.cancelled, [id]);
    const info = await call;
    assert.equal(info.status, 'cancelled');
    assert.equal(info.error!.code, 'JOB_CANCELLED');
    assert.equal(
      await w.handle.complete(id, p('late')),
      null,
      'a late report is taken and ignored',
    );
    assert.equal((await h.jobs.get(id))!.status, 'cancelled');
    await rejectsWith(h.jobs.cancel('0'.repeat(32)), 'JOB_NOT_FOUND');
  });

  it('progress and partials reach a watcher in order; a late watcher gets them replayed', async () => {
    const h = await harness();
    const info = await h.jobs.submit({ service: 's', params: p('x') });
    const events: JobEvent[] = [];
    await h.jobs.watch(info.id, (e) => events.push(e));
    const w = h.worker('s');
    await until(() => w.assigned.length === 1);
    w.handle.progress(info.id, 0.5);
    w.handle.partial(info.id, p('part-1'));
    w.handle.partial(info.id, p('part-2'));
    await w.handle.complete(info.id, p('final'));
    await until(() => events.some((e) => e.type === 'final'));
    const kinds = events.map((e) =>
      e.type === 'partial'
        ? `partial:${e.frames[0]!.toString()}`
        : e.type === 'status'
          ? `status:${e.status}`
          : e.type,
    );
    assert.deepEqual(kinds, [
      'status:queued',
      'status:running',
      'progress',
      'partial:part-1',
      'partial:part-2',
      'final',
    ]);
    const late: JobEvent[] = [];
    await h.jobs.watch(info.id, (e) => late.push(e));
    assert.deepEqual(
      late.filter((e) => e.type === 'partial').map((e) => (e.type === 'partial' ? e.seq : 0)),
      [1, 2],
    );
    assert.equal(late.at(-1)!.type, 'final');
    const stored = await h.jobs.get(info.id);
    assert.equal(stored!.progress, 0.5);
    assert.equal(stored!.partials, 2);
  });

  it('multicast completes only when every service has', async () => {
    const h = await harness();
    const a = h.worker('a');
    const b = h.worker('b');
    const parent = await h.jobs.multicast(['a', 'b'], { params: p('cfg') });
    assert.equal(parent.children!.length, 2);
    await until(() => a.assigned.length === 1 && b.assigned.length === 1);
    await a.handle.complete(a.assigned[0]!.id, p('A'));
    await new Promise((r) => setImmediate(r));
    assert.equal((await h.jobs.get(parent.id))!.status, 'running');
    await b.handle.complete(b.assigned[0]!.id, p('B'));
    await until(async () => (await h.jobs.get(parent.id))!.status === 'done');
    const done = await h.jobs.get(parent.id);
    const summary = JSON.parse(done!.result![0]!.toString()) as {
      service: string;
      status: string;
    }[];
    assert.deepEqual(
      summary.map((s) => `${s.service}:${s.status}`),
      ['a:done', 'b:done'],
    );
  });

  it('multicast fails when a service fails', async () => {
    const h = await harness();
    const a = h.worker('a');
    const b = h.worker('b');
    const parent = await h.jobs.multicast(['a', 'b'], { params: p('cfg'), maxAttempts: 1 });
    await until(() => a.assigned.length === 1 && b.assigned.length === 1);
    await a.handle.complete(a.assigned[0]!.id, p('A'));
    await b.handle.fail(b.assigned[0]!.id, { code: 'X', message: 'no' });
    await until(async () => (await h.jobs.get(parent.id))!.status === 'failed');
  });

  it('final jobs are forgotten after their retention', async () => {
    const h = await harness({ retentionMs: 5000 });
    const w = h.worker('s');
    const info = await h.jobs.submit({ service: 's', params: p('x') });
    await until(() => w.assigned.length === 1);
    await w.handle.complete(info.id, p('r'));
    h.clock.advance(4000);
    await new Promise((r) => setImmediate(r));
    assert.ok(await h.jobs.get(info.id), 'kept within retention');
    h.clock.advance(2000);
    await until(async () => (await h.jobs.get(info.id)) === null);
  });

  it('a queued job past its ttl expires (durable and transient)', async () => {
    const h = await harness();
    const d = await h.jobs.submit({ service: 'none', params: p('x'), ttlMs: 1500 });
    const t = h.jobs.call({ service: 'none', params: p('y'), ttlMs: 1500 });
    h.clock.advance(2100);
    await until(async () => (await h.jobs.get(d.id))!.status === 'expired');
    const ti = await t;
    assert.equal(ti.status, 'expired');
    assert.equal(ti.error!.code, 'JOB_EXPIRED');
  });

  it('a dedup key within the window returns the first job', async () => {
    const h = await harness();
    const a = await h.jobs.submit({ service: 's', params: p('x'), dedupKey: 'k1' });
    const b = await h.jobs.submit({ service: 's', params: p('x'), dedupKey: 'k1' });
    assert.equal(b.id, a.id);
    const counts = await h.storage.jobs.counts();
    assert.equal(counts.get('s')!.queued, 1);
  });

  it('a call past its timeout rejects with TIMEOUT and the job is cancelled', async () => {
    const h = await harness();
    const w = h.worker('slow');
    const call = h.jobs.call({ service: 'slow', params: p('x') }, { timeoutMs: 1000 });
    await until(() => w.assigned.length === 1);
    h.clock.advance(1001);
    await rejectsWith(call, 'TIMEOUT');
    await until(() => w.cancelled.length === 1);
  });

  it('refuses bad input with codes', async () => {
    const h = await harness({ maxQueued: 2 });
    await rejectsWith(
      h.jobs.submit({ service: 'bad name', params: p('x') }),
      'INVALID_SERVICE_NAME',
    );
    await rejectsWith(h.jobs.submit({ service: 's', params: [] }), 'BAD_ARGUMENTS');
    await rejectsWith(
      h.jobs.submit({ service: 's', params: p('x'), priority: 300 }),
      'BAD_ARGUMENTS',
    );
    await rejectsWith(h.jobs.submit({ service: 's', params: p('x'), ttlMs: -1 }), 'BAD_ARGUMENTS');
    await rejectsWith(h.jobs.get('nope'), 'BAD_ARGUMENTS');
    await h.jobs.submit({ service: 's', params: p('1') });
    await h.jobs.submit({ service: 's', params: p('2') });
    await rejectsWith(h.jobs.submit({ service: 's', params: p('3') }), 'QUEUE_FULL');
    assert.throws(
      () => h.jobs.registerWorker({ assign: () => {}, cancel: () => {} }, { services: [] }),
      (e: unknown) => e instanceof FerryError && e.code === 'BAD_ARGUMENTS',
    );
    assert.throws(
      () =>
        h.jobs.registerWorker(
          { assign: () => {}, cancel: () => {} },
          { services: ['s'], concurrency: 0 },
        ),
      (e: unknown) => e instanceof FerryError && e.code === 'BAD_ARGUMENTS',
    );
  });

  it('lists services and workers with their counts', async () => {
    const h = await harness();
    const w = h.worker(['a', 'b'], 3);
    await h.jobs.submit({ service: 'a', params: p('x') });
    await until(() => w.assigned.length === 1);
    const services = await h.jobs.services();
    const a = services.find((s) => s.name === 'a')!;
    assert.equal(a.workers, 1);
    assert.equal(a.running, 1);
    assert.equal(a.idleSlots, 2);
    const workers = h.jobs.workers();
    assert.equal(workers.length, 1);
    assert.deepEqual(workers[0]!.services, ['a', 'b']);
    assert.ok(h.jobs.hasWorkers('b'));
    assert.ok(!h.jobs.hasWorkers('c'));
  });

  it("the service counters kept in memory match the store's after every kind of transition", async () => {
    const h = await harness({ maxAttempts: 2, retryBaseMs: 10, retentionMs: 60_000 });
    const w = h.worker(['s', 'm1', 'm2']);
    const done = await h.jobs.submit({ service: 's', params: p('done') });
    const failing = await h.jobs.submit({ service: 's', params: p('fail') });
    const queuedCancel = await h.jobs.submit({ service: 'nobody', params: p('c') });
    await h.jobs.submit({ service: 'nobody', params: p('ttl'), ttlMs: 100 });
    const forgotten = await h.jobs.submit({ service: 'nobody', params: p('f') });
    await h.jobs.cancel(queuedCancel.id);
    await h.jobs.forget(forgotten.id);
    await until(() => w.assigned.length === 1);
    await w.handle.complete(done.id, p('ok'));
    await until(() => w.assigned.length === 2);
    await w.handle.fail(failing.id, { code: 'X', message: 'once' });
    h.clock.advance(20);
    await until(() => w.assigned.length === 3);
    await w.handle.fail(failing.id, { code: 'X', message: 'twice' });
    const running = await h.jobs.submit({ service: 's', params: p('running') });
    await until(() => w.assigned.length === 4);
    await h.jobs.cancel(running.id);
    await w.handle.complete(running.id, p('late')); // frees the slot; ignored
    const mc = await h.jobs.multicast(['m1', 'm2'], { params: p('mc') });
    await until(() => w.assigned.length === 5);
    await w.handle.complete(w.assigned[4]!.id, p('a'));
    h.clock.advance(1000); // the ttl sweep
    await until(
      async () => (await h.jobs.get(mc.id))!.status !== 'done' && w.assigned.length === 6,
    );
    await w.handle.complete(w.assigned[5]!.id, p('b'));
    await until(async () => (await h.jobs.get(mc.id))!.status === 'done');
    const stored = await h.storage.jobs.counts();
    const listed = await h.jobs.services();
    for (const svc of listed) {
      const c = stored.get(svc.name)!;
      for (const status of [
        'queued',
        'running',
        'done',
        'failed',
        'cancelled',
        'expired',
      ] as const) {
        assert.equal(svc[status], c[status], `${svc.name} ${status}`);
      }
    }
    const s = listed.find((x) => x.name === 's')!;
    assert.deepEqual([s.done, s.failed, s.cancelled], [1, 1, 1]);
    const nobody = listed.find((x) => x.name === 'nobody')!;
    assert.deepEqual([nobody.queued, nobody.cancelled, nobody.expired], [0, 1, 1]);
  });
  it('slots freed while a lease is in flight share the next lease (not one lease per slot)', async () => {
    const h = await harness();
    const JOBS = 300;
    for (let i = 0; i < JOBS; i++) await h.jobs.submit({ service: 'bulk', params: p(`j${i}`) });
    const storage = h.storage.jobs;
    const lease = storage.lease.bind(storage);
    let leases = 0;
    storage.lease = (...args: Parameters<typeof lease>) => {
      leases++;
      return lease(...args);
    };
    const w = h.worker('bulk', 100);
    let completed = 0;
    // Complete every job as soon as it is assigned: each completion frees a slot.
    while (completed < JOBS) {
      await until(() => w.assigned.length > completed);
      const batch = w.assigned.slice(completed);
      completed += batch.length;
      await Promise.all(batch.map((a) => w.handle.complete(a.id, p('ok'))));
    }
    await until(
      async () => (await h.jobs.services()).find((x) => x.name === 'bulk')?.done === JOBS,
    );
    // One lease per round of freed slots: 300 jobs in rounds of up to 100 take a handful;
    // a lease per freed slot would take about 300.
    assert.ok(leases <= 20, `${leases} leases for ${JOBS} jobs`);
  });
});
