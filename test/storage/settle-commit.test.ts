/**
 * Acks and job completions reach the disk with the next group commit, never later: issued in
 * one event-loop turn together with a large batch of sends, they are in the database file —
 * seen by a second, independent SQLite connection, as after a kill -9 — once that turn's
 * commit ran, before their promises are even awaited. A deferred, separately batched or
 * timer-driven ack or completion would fail this. Also: the recovery grace of the previous
 * run's leases, and acks re-sent after a restart (ackRecovered), and of its running jobs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import type { EnqueueItem, NewJobRow } from 'ferrymq-server/internal/storage/types.js';
import { tmpDir } from '../helpers/broker.js';

const T0 = Date.UTC(2030, 0, 1);
const JOB_ID = 'a'.repeat(32);
/** Sends committed in the same turn as the ack and the completion. */
const BURST = 2_000;

function item(body: string): EnqueueItem {
  return {
    queue: 'q',
    frames: [Buffer.from(body)],
    headers: undefined,
    priority: 0,
    enqueuedAt: T0,
    notBefore: T0,
    expiresAt: null,
    dedupKey: null,
    dedupUntil: 0,
  };
}

function jobRow(id: string): NewJobRow {
  return {
    id,
    service: 's',
    status: 'queued',
    priority: 0,
    maxAttempts: 3,
    params: [Buffer.from('p')],
    headers: undefined,
    createdAt: T0,
    notBefore: T0,
    expiresAt: null,
    dedupKey: null,
    dedupUntil: 0,
    parentId: null,
    children: null,
  };
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('settling reaches the disk with the next group commit', () => {
  it('an ack and a job completion issued in one turn with a burst of sends are in the file after that turn', async () => {
    const dataDir = tmpDir('ferry-settle-');
    dirs.push(dataDir);
    const store = new SqliteStorage({ dataDir, sync: { mode: 'batch', intervalMs: 60_000 } });
    await store.open();
    await store.enqueue([item('m1')]);
    const leased = await store.lease('q', 1, T0);
    const msgId = leased.messages[0]!.id;
    await store.jobs.insert([
      {
        id: JOB_ID,
        service: 's',
        status: 'queued',
        priority: 0,
        maxAttempts: 3,
        params: [Buffer.from('p')],
        headers: undefined,
        createdAt: T0,
        notBefore: T0,
        expiresAt: null,
        dedupKey: null,
        dedupUntil: 0,
        parentId: null,
        children: null,
      },
    ]);
    const [running] = await store.jobs.lease('s', 1, T0);
    const attempt = running!.attempts;
    const reader = new Database(store.dbPath, { readonly: true });
    try {
      const messageRows = (): number =>
        (
          reader.prepare('SELECT COUNT(*) AS n FROM messages WHERE id = ?').get(Number(msgId)) as {
            n: number;
          }
        ).n;
      const jobStatus = (): string =>
        (reader.prepare('SELECT status FROM jobs WHERE id = ?').get(JOB_ID) as { status: string })
          .status;
      assert.equal(messageRows(), 1);
      assert.equal(jobStatus(), 'running');

      // One turn: a burst of sends, the ack and the completion (promises not awaited yet).
      const sends = [];
      for (let i = 0; i < BURST; i++) sends.push(store.enqueue([item(`burst-${i}`)]));
      const acked = store.ack([{ id: msgId, attempts: 1 }]);
      const finished = store.jobs.finish(JOB_ID, attempt, {
        status: 'done',
        finishedAt: T0,
        retainUntil: T0 + 1_000,
        result: [Buffer.from('r')],
        error: undefined,
      });
      // The next turn: the group commit of the previous one has run (it was scheduled first).
      await new Promise((r) => setImmediate(r));
      assert.equal(messageRows(), 0, 'the ack is not in the file after the next commit');
      assert.equal(jobStatus(), 'done', 'the completion is not in the file after the next commit');
      assert.deepEqual(await acked, [true]);
      assert.equal(await finished, true);
      assert.equal((await Promise.all(sends)).length, BURST);
    } finally {
      reader.close();
      await store.close();
    }
  });
});

describe('recovery grace (SQLite)', () => {
  it('holds the previous run’s leases back until the grace ends; ackRecovered settles them at their attempt only', async () => {
    const dataDir = tmpDir('ferry-grace-');
    dirs.push(dataDir);
    const first = new SqliteStorage({ dataDir, sync: { mode: 'always' } });
    await first.open();
    await first.enqueue([item('a'), item('b')]);
    const leased = (await first.lease('q', 2, T0)).messages.map((m) => m.id);
    await first.close(); // the leases stay in the file, as after a kill
    const graceMs = 60_000;
    const store = new SqliteStorage({
      dataDir,
      sync: { mode: 'always' },
      recoveryGraceMs: graceMs,
    });
    const before = Date.now();
    const recovery = await store.open();
    try {
      assert.deepEqual(
        recovery.recoveredLeases.map((r) => [r.id, r.queue, r.attempts]),
        [
          [leased[0], 'q', 1],
          [leased[1], 'q', 1],
        ],
      );
      assert.equal(recovery.releasedLeases, 2);
      assert.ok(recovery.recoveryUntil! >= before + graceMs);
      assert.equal(recovery.nextDueAt, recovery.recoveryUntil);
      assert.deepEqual(
        [recovery.queues.get('q')!.scheduled, recovery.queues.get('q')!.ready],
        [2, 0],
      );
      assert.equal((await store.lease('q', 10, Date.now())).messages.length, 0, 'held back');
      assert.deepEqual(await store.ackRecovered([{ id: leased[0]!, attempts: 2 }]), [false]);
      assert.deepEqual(await store.ackRecovered([{ id: leased[0]!, attempts: 1 }]), [true]);
      assert.deepEqual(await store.ackRecovered([{ id: leased[0]!, attempts: 1 }]), [false]);
      // The grace ends: the other one is ready again, and its old ack no longer settles it.
      assert.deepEqual(await store.promoteDue(recovery.recoveryUntil!), [
        { queue: 'q', count: 1, bytes: 1 },
      ]);
      assert.deepEqual(await store.ackRecovered([{ id: leased[1]!, attempts: 1 }]), [false]);
      const again = await store.lease('q', 10, recovery.recoveryUntil!);
      assert.deepEqual(
        again.messages.map((m) => [m.id, m.attempts]),
        [[leased[1], 2]],
      );
    } finally {
      await store.close();
    }
  });

  it('without a grace, the previous run’s leases are ready at once', async () => {
    const dataDir = tmpDir('ferry-grace-');
    dirs.push(dataDir);
    const first = new SqliteStorage({ dataDir, sync: { mode: 'always' } });
    await first.open();
    await first.enqueue([item('a')]);
    await first.lease('q', 1, T0);
    await first.close();
    const store = new SqliteStorage({ dataDir, sync: { mode: 'always' } });
    const recovery = await store.open();
    try {
      assert.deepEqual(
        [recovery.releasedLeases, recovery.recoveredLeases, recovery.recoveryUntil],
        [1, [], null],
      );
      assert.equal(recovery.queues.get('q')!.ready, 1);
    } finally {
      await store.close();
    }
  });
});

describe('recovery grace of jobs (SQLite)', () => {
  const ids = ['b'.repeat(32), 'c'.repeat(32), 'd'.repeat(32)];

  /** A store left by a kill: two jobs running (attempt 1), one queued. */
  async function leftRunning(): Promise<string> {
    const dataDir = tmpDir('ferry-grace-');
    dirs.push(dataDir);
    const first = new SqliteStorage({ dataDir, sync: { mode: 'always' } });
    await first.open();
    await first.jobs.insert(ids.map(jobRow));
    assert.equal((await first.jobs.lease('s', 2, T0)).length, 2);
    await first.close(); // the jobs stay running in the file, as after a kill
    return dataDir;
  }

  it('leaves the previous run’s running jobs running and lists them; finish ends them at their attempt', async () => {
    const dataDir = await leftRunning();
    const store = new SqliteStorage({ dataDir, sync: { mode: 'always' }, recoveryGraceMs: 60_000 });
    const before = Date.now();
    const recovery = await store.open();
    try {
      assert.deepEqual(recovery.recoveredJobs, [
        { id: ids[0], service: 's', attempts: 1 },
        { id: ids[1], service: 's', attempts: 1 },
      ]);
      assert.equal(recovery.requeuedJobs, 0);
      assert.ok(recovery.recoveryUntil! >= before + 60_000);
      assert.equal((await store.jobs.counts()).get('s')!.running, 2);
      // Not handed out again while held: only the queued one leases.
      const leased = await store.jobs.lease('s', 10, T0);
      assert.deepEqual(
        leased.map((j) => j.id),
        [ids[2]],
      );
      const fin = { status: 'done' as const, finishedAt: T0, retainUntil: T0 + 1 };
      assert.equal(await store.jobs.finish(ids[0]!, 2, fin), false, 'another attempt');
      assert.equal(await store.jobs.finish(ids[0]!, 1, fin), true);
      assert.equal(await store.jobs.requeue(ids[1]!, 1, Date.now()), true, 'the grace ended');
      assert.deepEqual(
        [(await store.jobs.get(ids[0]!))!.status, (await store.jobs.get(ids[1]!))!.status],
        ['done', 'queued'],
      );
    } finally {
      await store.close();
    }
  });

  it('without a grace, the previous run’s running jobs are queued again at once', async () => {
    const dataDir = await leftRunning();
    const store = new SqliteStorage({ dataDir, sync: { mode: 'always' } });
    const recovery = await store.open();
    try {
      assert.deepEqual(
        [recovery.requeuedJobs, recovery.recoveredJobs, recovery.recoveryUntil],
        [2, [], null],
      );
      assert.equal((await store.jobs.counts()).get('s')!.queued, 3);
    } finally {
      await store.close();
    }
  });
});
