/**
 * The job half of the storage contract (`Storage.jobs`, src/storage/types.ts), through the
 * interface alone, so every backend runs the same cases. Times are injected; nothing waits.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type {
  JobStorage,
  NewJobRow,
  Storage,
  StorageRecovery,
} from 'ferrymq-server/internal/storage/types.js';
import type { StorageFactory, StorageFixture } from './contract.js';

const T0 = Date.UTC(2030, 0, 1);
let seq = 0;

function jobId(): string {
  return (++seq).toString(16).padStart(32, '0');
}

function job(service: string, params: string | Buffer[], o: Partial<NewJobRow> = {}): NewJobRow {
  return {
    id: jobId(),
    service,
    status: 'queued',
    priority: 0,
    maxAttempts: 3,
    params: typeof params === 'string' ? [Buffer.from(params)] : params,
    headers: undefined,
    createdAt: T0,
    notBefore: T0,
    expiresAt: null,
    dedupKey: null,
    dedupUntil: 0,
    parentId: null,
    children: null,
    ...o,
  };
}

const text = (rows: { params: Buffer[] }[]): string[] => rows.map((r) => r.params[0]!.toString());

export function runJobStorageContract(name: string, makeStorage: StorageFactory): void {
  describe(`job storage contract: ${name}`, () => {
    let fixture: StorageFixture;
    let store: Storage;
    let j: JobStorage;
    let opened: Storage[] = [];

    beforeEach(async () => {
      fixture = await makeStorage();
      store = fixture.storage;
      opened = [store];
      await store.open();
      j = store.jobs;
    });

    afterEach(async () => {
      for (const s of opened) await s.close().catch(() => undefined);
      await fixture.cleanup();
    });

    async function reopen(): Promise<StorageRecovery> {
      await store.close();
      store = await fixture.reopen();
      opened.push(store);
      const rec = await store.open();
      j = store.jobs;
      return rec;
    }

    it('stores jobs and reads them back with every field', async () => {
      const multi = [Buffer.from('a'), Buffer.alloc(0), Buffer.from([0, 255])];
      const row = job('s', multi, { headers: { k: 'v' }, priority: 7, expiresAt: T0 + 5000 });
      const out = await j.insert([row]);
      assert.deepEqual(out, { ids: [row.id], duplicate: [false] });
      const got = await j.get(row.id);
      assert.ok(got);
      assert.equal(got.status, 'queued');
      assert.deepEqual(got.params, multi);
      assert.deepEqual(got.headers, { k: 'v' });
      assert.equal(got.priority, 7);
      assert.equal(got.attempts, 0);
      assert.equal(got.maxAttempts, 3);
      assert.equal(got.expiresAt, T0 + 5000);
      assert.equal(got.result, null);
      assert.equal(await j.get(jobId()), null);
    });

    it('leases due jobs of one service: highest priority, then oldest; marks them running', async () => {
      await j.insert([
        job('s', 'low'),
        job('s', 'high', { priority: 9 }),
        job('s', 'later', { notBefore: T0 + 1000 }),
        job('other', 'x'),
        job('s', 'low2'),
      ]);
      const rows = await j.lease('s', 10, T0);
      assert.deepEqual(text(rows), ['high', 'low', 'low2']);
      assert.ok(rows.every((r) => r.status === 'running' && r.attempts === 1));
      assert.equal((await j.get(rows[0]!.id))!.startedAt, T0);
      assert.deepEqual(await j.lease('s', 10, T0), [], 'running jobs are not leased again');
      assert.deepEqual(text(await j.lease('s', 10, T0 + 1000)), ['later']);
      assert.equal((await j.lease('other', 1, T0)).length, 1);
    });

    it('lease honours max', async () => {
      await j.insert([job('s', '1'), job('s', '2'), job('s', '3')]);
      assert.equal((await j.lease('s', 2, T0)).length, 2);
      assert.equal((await j.lease('s', 2, T0)).length, 1);
    });

    it('finish ends a running attempt once, with its result or error', async () => {
      const [a, b] = [job('s', 'a'), job('s', 'b')];
      await j.insert([a, b]);
      await j.lease('s', 2, T0);
      const result = [Buffer.from('r1'), Buffer.from('r2')];
      assert.equal(
        await j.finish(a.id, 1, {
          status: 'done',
          finishedAt: T0 + 1,
          retainUntil: T0 + 99,
          result,
        }),
        true,
      );
      assert.equal(
        await j.finish(a.id, 1, { status: 'done', finishedAt: T0 + 2, retainUntil: T0 + 99 }),
        false,
        'not running any more',
      );
      assert.equal(
        await j.finish(b.id, 2, { status: 'done', finishedAt: T0 + 1, retainUntil: T0 + 99 }),
        false,
        'wrong attempt',
      );
      const err = { code: 'BOOM', message: 'no' };
      assert.equal(
        await j.finish(b.id, 1, {
          status: 'failed',
          finishedAt: T0 + 1,
          retainUntil: T0 + 99,
          error: err,
        }),
        true,
      );
      const da = await j.get(a.id);
      assert.equal(da!.status, 'done');
      assert.deepEqual(da!.result, result);
      assert.equal(da!.finishedAt, T0 + 1);
      assert.equal(da!.retainUntil, T0 + 99);
      assert.deepEqual((await j.get(b.id))!.error, err);
    });

    it('requeue puts a running job back (attempt kept, or undone), due at notBefore', async () => {
      const a = job('s', 'a');
      await j.insert([a]);
      await j.lease('s', 1, T0);
      assert.equal(await j.requeue(a.id, 2, T0), false, 'wrong attempt');
      assert.equal(await j.requeue(a.id, 1, T0 + 500), true);
      const q = await j.get(a.id);
      assert.equal(q!.status, 'queued');
      assert.equal(q!.attempts, 1);
      assert.deepEqual(await j.lease('s', 1, T0 + 499), []);
      const again = await j.lease('s', 1, T0 + 500);
      assert.equal(again[0]!.attempts, 2);
      assert.equal(await j.requeue(a.id, 2, T0, true), true);
      assert.equal((await j.get(a.id))!.attempts, 1, 'uncounted');
    });

    it('settle ends a queued or running job, not a final one', async () => {
      const [a, b] = [job('s', 'a'), job('s', 'b')];
      await j.insert([a, b]);
      await j.lease('s', 1, T0);
      const f = {
        status: 'cancelled' as const,
        finishedAt: T0 + 3,
        retainUntil: T0 + 100,
        error: { code: 'JOB_CANCELLED', message: 'c' },
      };
      const ra = await j.settle(a.id, f);
      assert.equal(ra!.row.status, 'cancelled');
      assert.equal(ra!.previous, 'running');
      const rb = await j.settle(b.id, f);
      assert.equal(rb!.row.status, 'cancelled');
      assert.equal(rb!.previous, 'queued');
      assert.equal(await j.settle(a.id, { ...f, status: 'expired' }), null);
      assert.equal(
        await j.finish(a.id, 1, { status: 'done', finishedAt: T0, retainUntil: T0 }),
        false,
      );
      assert.equal(await j.settle(jobId(), f), null);
    });

    it('progress and partials are kept in order', async () => {
      const a = job('s', 'a');
      await j.insert([a]);
      await j.setProgress(a.id, JSON.stringify({ step: 2 }));
      await j.addPartial(a.id, 1, [Buffer.from('p1')]);
      await j.addPartial(a.id, 2, [Buffer.from('p2a'), Buffer.from('p2b')]);
      const got = await j.get(a.id);
      assert.equal(got!.progress, '{"step":2}');
      assert.equal(got!.partials, 2);
      const parts = await j.partials(a.id);
      assert.deepEqual(
        parts.map((p) => [p.seq, p.frames.map((f) => f.toString())]),
        [
          [1, ['p1']],
          [2, ['p2a', 'p2b']],
        ],
      );
    });

    it('a dedup key within its window returns the first job and stores nothing', async () => {
      const a = job('s', 'a', { dedupKey: 'k', dedupUntil: T0 + 1000 });
      const b = job('s', 'b', { dedupKey: 'k', dedupUntil: T0 + 1000, createdAt: T0 + 10 });
      const c = job('other', 'c', { dedupKey: 'k', dedupUntil: T0 + 1000 });
      const out = await j.insert([a, b, c]);
      assert.deepEqual(out.ids, [a.id, a.id, c.id]);
      assert.deepEqual(out.duplicate, [false, true, false]);
      assert.equal(await j.get(b.id), null);
      const late = job('s', 'late', { dedupKey: 'k', dedupUntil: T0 + 5000, createdAt: T0 + 1000 });
      assert.deepEqual((await j.insert([late])).duplicate, [false], 'past the window');
    });

    it('counts by service and status', async () => {
      await j.insert([job('a', '1'), job('a', '2'), job('b', '3')]);
      await j.lease('a', 1, T0);
      const c = await j.counts();
      assert.deepEqual(c.get('a'), {
        queued: 1,
        running: 1,
        done: 0,
        failed: 0,
        cancelled: 0,
        expired: 0,
      });
      assert.equal(c.get('b')!.queued, 1);
    });

    it('sweep finds queued jobs past their ttl and deletes final jobs past retention', async () => {
      const ttl = job('s', 'ttl', { expiresAt: T0 + 100 });
      const fin = job('s', 'fin', { priority: 9 });
      const fresh = job('s', 'fresh', { expiresAt: T0 + 500 });
      await j.insert([ttl, fin, fresh]);
      const [first] = await j.lease('s', 1, T0);
      assert.equal(first!.id, fin.id);
      await j.finish(first!.id, 1, { status: 'done', finishedAt: T0, retainUntil: T0 + 50 });
      await j.addPartial(first!.id, 1, [Buffer.from('p')]);
      const out = await j.sweep(T0 + 100, 100);
      assert.deepEqual(
        out.pastTtl.map((r) => r.id),
        [ttl.id],
      );
      assert.deepEqual(out.forgotten, [{ service: 's', status: 'done', count: 1 }]);
      assert.equal(await j.get(first!.id), null);
      assert.deepEqual(await j.partials(first!.id), []);
      assert.equal((await j.get(ttl.id))!.status, 'queued', 'the core settles it');
    });

    it('lists newest first, by service and status', async () => {
      const rows = [job('a', '1'), job('b', '2'), job('a', '3')];
      await j.insert(rows);
      await j.lease('a', 1, T0);
      assert.deepEqual(text(await j.list({ limit: 10 })), ['3', '2', '1']);
      assert.deepEqual(text(await j.list({ service: 'a', limit: 10 })), ['3', '1']);
      assert.deepEqual(text(await j.list({ service: 'a', status: 'queued', limit: 10 })), ['3']);
      assert.equal((await j.list({ limit: 1 })).length, 1);
    });

    it('remove deletes a job and its partials', async () => {
      const a = job('s', 'a');
      await j.insert([a]);
      await j.addPartial(a.id, 1, [Buffer.from('p')]);
      assert.deepEqual(await j.remove(a.id), { service: 's', status: 'queued' });
      assert.equal(await j.remove(a.id), null);
      assert.equal(await j.get(a.id), null);
      assert.deepEqual(await j.partials(a.id), []);
    });

    it('jobs survive reopen; running ones are queued again and reported', async () => {
      const [a, b, c] = [job('s', 'a'), job('s', 'b'), job('s', 'c')];
      await j.insert([a, b, c]);
      await j.lease('s', 2, T0);
      await j.finish(a.id, 1, {
        status: 'done',
        finishedAt: T0,
        retainUntil: T0 + 10,
        result: [Buffer.from('r')],
      });
      const rec = await reopen();
      assert.equal(rec.requeuedJobs, 1);
      assert.equal((await j.get(b.id))!.status, 'queued');
      assert.equal((await j.get(b.id))!.attempts, 1, 'the attempt stays counted');
      assert.deepEqual((await j.get(a.id))!.result, [Buffer.from('r')]);
      const c2 = await j.counts();
      assert.equal(c2.get('s')!.queued, 2);
      assert.equal(c2.get('s')!.done, 1);
    });

    it('job calls share the group commit with queue calls (one commit for a turn)', async () => {
      const before = store.metrics().commits;
      await Promise.all([
        j.insert([job('s', 'a')]),
        store.enqueue([
          {
            queue: 'q',
            frames: [Buffer.from('m')],
            headers: undefined,
            priority: 0,
            enqueuedAt: T0,
            notBefore: T0,
            expiresAt: null,
            dedupKey: null,
            dedupUntil: 0,
          },
        ]),
        j.insert([job('s', 'b')]),
      ]);
      assert.equal(store.metrics().commits - before, 1);
    });
  });
}
