/**
 * Deliver at the commit, confirm once durable (docs/semantics.md §1): the core hands messages
 * and jobs out as soon as their commit is done, and answers producers, submitters and durable
 * callers only after the store says the commit is durable. The store here is the real SQLite
 * store (in memory) whose durable() the test holds back, as a slow fsync would.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Broker, type Delivery } from 'ferrymq-server/internal/core/broker.js';
import { ManualClock } from 'ferrymq-server/internal/core/clock.js';
import type { WorkerHandle } from 'ferrymq-server/internal/core/job-types.js';
import { JobServer } from 'ferrymq-server/internal/core/jobs.js';
import type { Assignment } from 'ferrymq/model';
import { IN_MEMORY, SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { waitFor } from '../helpers/broker.js';

/** The SQLite store whose durability the test releases by hand. */
class HeldStorage extends SqliteStorage {
  private held: (() => void)[] = [];
  private holding = true;
  durableCalls = 0;

  constructor() {
    super({ dataDir: IN_MEMORY, sync: { mode: 'off' } });
    held.push(this);
    const durable = (): Promise<void> => {
      this.durableCalls++;
      if (!this.holding) return Promise.resolve();
      return new Promise<void>((resolve) => this.held.push(resolve));
    };
    this.durable = durable;
    Object.defineProperty(this.jobs, 'durable', { value: durable });
  }

  /** Lets every wait for durability so far resolve. */
  releaseDurable(): void {
    for (const r of this.held.splice(0)) r();
  }

  /** From now on, durable at once (closing the broker waits for what it started). */
  stopHolding(): void {
    this.holding = false;
    this.releaseDurable();
  }
}

const held: HeldStorage[] = [];
const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const h of held.splice(0)) h.stopHolding();
  for (const c of opened.splice(0).reverse()) await c.close();
});

/** A job server on a held store, with one worker of `svc` recording its assignments. */
async function jobHarness(): Promise<{
  storage: HeldStorage;
  jobs: JobServer;
  assigned: Assignment[];
  worker: WorkerHandle;
}> {
  const storage = new HeldStorage();
  await storage.open();
  opened.push(storage);
  const jobs = await JobServer.open({
    storage: storage.jobs,
    clock: new ManualClock(),
    random: () => 0.5,
  });
  opened.push(jobs);
  const assigned: Assignment[] = [];
  const worker = jobs.registerWorker(
    { assign: (a) => assigned.push(a), cancel: () => {} },
    { services: ['svc'], concurrency: 1 },
  );
  return { storage, jobs, assigned, worker };
}

/** Whether a promise has settled, looked at after the pending callbacks ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('deliver at the commit, confirm once durable', () => {
  it('a send reaches its consumer before the producer is confirmed, and is confirmed only once durable', async () => {
    const storage = new HeldStorage();
    const broker = await Broker.open({ storage, clock: new ManualClock(), random: () => 0.5 });
    opened.push(broker);
    const deliveries: Delivery[] = [];
    const consumer = broker.openSession({ deliver: (_tag, msgs) => deliveries.push(...msgs) });
    consumer.consume('q', { prefetch: 10 });
    const producer = broker.openSession({ deliver: () => {} });
    const send = producer.send('q', [{ frames: [Buffer.from('m')] }]);
    await waitFor(() => deliveries.length === 1, 'the delivery, before durability');
    assert.equal(await settled(send), false, 'not confirmed while the commit is not durable');
    storage.releaseDurable();
    const out = await send;
    assert.equal(out.ids[0], deliveries[0]!.id);
  });

  it('a durable call: the job is stored running for an idle worker (no read-back), and the answer waits for the result to be durable', async () => {
    const { storage, jobs, assigned, worker } = await jobHarness();
    const before = storage.metrics();
    const call = jobs.call({ service: 'svc', params: [Buffer.from('x')], durable: true });
    await waitFor(() => assigned.length === 1, 'the assignment, at the insert commit');
    assert.equal(storage.durableCalls, 0, 'the call does not wait for the insert to be durable');
    const atAssign = storage.metrics();
    assert.equal(atAssign.commits - before.commits, 1, 'one commit: inserted already running');
    assert.equal(atAssign.sqlStatements - before.sqlStatements, 1, 'one INSERT, no lease');
    const atRun = storage.metrics().commits;
    assert.equal((await storage.jobs.get(assigned[0]!.id))?.status, 'running');
    const reads = storage.metrics().commits - atRun;
    const completed = worker.complete(assigned[0]!.id, [Buffer.from('r')]);
    await waitFor(() => storage.durableCalls === 1, 'the wait for the result to be durable');
    assert.equal(await settled(call), false, 'no answer before the result is durable');
    storage.releaseDurable();
    assert.equal(await completed, null);
    const info = await call;
    assert.equal(info.status, 'done');
    assert.equal(info.result?.[0]?.toString(), 'r');
    assert.equal(
      storage.metrics().commits - before.commits - reads,
      2,
      'insert and finish: two commits',
    );
  });

  it('a durable submit is handed to a worker at its commit and confirmed once durable', async () => {
    const { storage, jobs, assigned } = await jobHarness();
    const submit = jobs.submit({ service: 'svc', params: [Buffer.from('x')] });
    await waitFor(() => assigned.length === 1, 'the assignment');
    assert.equal(await settled(submit), false);
    storage.releaseDurable();
    assert.equal((await submit).id, assigned[0]!.id);
  });
});
