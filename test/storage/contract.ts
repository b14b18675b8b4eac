/**
 * The storage contract suite: every promise of `src/storage/types.ts`, checked through the
 * `Storage` interface alone, so that every backend (SQLite today, PostgreSQL later) runs the
 * same cases unchanged. A backend's test file calls {@link runStorageContract} with a factory.
 *
 * Times are injected (`now`, `enqueuedAt`, ...), so no case ever waits on the clock.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FerryError, type QueueCounts } from 'ferrymq/model';
import type {
  EnqueueItem,
  LeasedMessage,
  Storage,
  StorageRecovery,
} from 'ferrymq-server/internal/storage/types.js';

export interface StorageFixture {
  /** A store over fresh, empty data; not opened yet (the suite calls open()). */
  storage: Storage;
  /**
   * A new, not yet opened store over the same data as `storage`. Closes nothing itself: the
   * suite closes the previous store first.
   */
  reopen: () => Promise<Storage>;
  /** Removes the data; called after every case, once its stores are closed. */
  cleanup: () => Promise<void>;
}

export type StorageFactory = () => Promise<StorageFixture>;

/** A fixed, far-from-now clock origin: nothing here depends on the wall clock. */
const T0 = Date.UTC(2030, 0, 1);

const ZERO: QueueCounts = { ready: 0, leased: 0, scheduled: 0, dead: 0, bytes: 0 };

function counts(c: Partial<QueueCounts>): QueueCounts {
  return { ...ZERO, ...c };
}

/** A message of `queue` with body `body`, ready at once at T0, unless `o` says otherwise. */
function item(queue: string, body: string | Buffer[], o: Partial<EnqueueItem> = {}): EnqueueItem {
  return {
    queue,
    frames: typeof body === 'string' ? [Buffer.from(body)] : body,
    headers: undefined,
    priority: 0,
    enqueuedAt: T0,
    notBefore: o.enqueuedAt ?? T0,
    expiresAt: null,
    dedupKey: null,
    dedupUntil: 0,
    ...o,
  };
}

/** First frame of each message as text. */
function bodies(messages: readonly { frames: Buffer[] }[]): string[] {
  return messages.map((m) => m.frames[0]?.toString() ?? '<no frame>');
}

function hex(frames: readonly Uint8Array[]): string[] {
  return frames.map((f) => Buffer.from(f).toString('hex'));
}

function byQueue<T extends { queue: string }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
}

async function countsOf(s: Storage, queue: string): Promise<QueueCounts | undefined> {
  return (await s.counts()).get(queue);
}

async function leaseOne(s: Storage, queue: string, now = T0): Promise<LeasedMessage> {
  const { messages } = await s.lease(queue, 1, now);
  assert.equal(messages.length, 1, `expected one message to lease from ${queue}`);
  return messages[0]!;
}

async function enqueueOne(s: Storage, it: EnqueueItem): Promise<string> {
  const out = await s.enqueue([it]);
  assert.equal(out.ids.length, 1);
  return out.ids[0]!;
}

/** Enqueues `body` and dead-letters it; `queue` must have no other ready message. Returns its id. */
async function deadLetter(s: Storage, queue: string, body: string): Promise<string> {
  await s.enqueue([item(queue, body)]);
  const m = await leaseOne(s, queue);
  assert.deepEqual(
    await s.release([{ id: m.id, attempts: m.attempts, notBefore: T0, deadReason: 'x' }], T0),
    [true],
  );
  return m.id;
}

function isCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof FerryError, `expected a FerryError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

export function runStorageContract(name: string, makeStorage: StorageFactory): void {
  describe(`storage contract: ${name}`, () => {
    let fixture: StorageFixture;
    /** The store under test, opened. */
    let s: Storage;
    /** What open() reported for `s`. */
    let recovery: StorageRecovery;
    let opened: Storage[] = [];

    beforeEach(async () => {
      fixture = await makeStorage();
      s = fixture.storage;
      opened = [s];
      recovery = await s.open();
    });

    afterEach(async () => {
      for (const store of opened) await store.close().catch(() => undefined);
      await fixture.cleanup();
    });

    /** Closes the store under test, opens a new one over the same data, and returns open()'s report. */
    async function closeAndReopen(): Promise<StorageRecovery> {
      await s.close();
      s = await fixture.reopen();
      opened.push(s);
      recovery = await s.open();
      return recovery;
    }

    describe('open and queues', () => {
      it('open() on an empty store reports no queues, no released leases and nothing due', () => {
        assert.equal(recovery.queues.size, 0);
        assert.equal(recovery.releasedLeases, 0);
        assert.equal(recovery.nextDueAt, null);
      });

      it('ensureQueue creates an empty queue that counts() lists, and is idempotent', async () => {
        assert.equal((await s.counts()).size, 0);
        await s.ensureQueue('orders');
        await s.ensureQueue('orders');
        await s.ensureQueue('billing.v2:eu-1');
        const all = await s.counts();
        assert.deepEqual([...all.keys()].sort(), ['billing.v2:eu-1', 'orders']);
        assert.deepEqual(all.get('orders'), ZERO);
        assert.deepEqual(all.get('billing.v2:eu-1'), ZERO);
      });

      it('enqueue creates its queue on first use', async () => {
        await s.enqueue([item('fresh', 'abc')]);
        assert.deepEqual(await countsOf(s, 'fresh'), counts({ ready: 1, bytes: 3 }));
      });

      it('counts() reports every state and the bytes of live messages only, per queue', async () => {
        await s.enqueue([
          item('a', 'r1'), // ready, 2 bytes
          item('a', 'lease'), // leased below, 5 bytes
          item('a', 'sch', { notBefore: T0 + 1000 }), // scheduled, 3 bytes
          item('b', 'bb'),
        ]);
        const { messages } = await s.lease('a', 2, T0); // r1 and lease
        assert.deepEqual(bodies(messages), ['r1', 'lease']);
        // r1 goes to the dead letters: its bytes leave the live total.
        const r1 = messages[0]!;
        await s.release(
          [{ id: r1.id, attempts: r1.attempts, notBefore: T0, deadReason: 'bad' }],
          T0,
        );
        const all = await s.counts();
        assert.deepEqual(all.get('a'), { ready: 0, leased: 1, scheduled: 1, dead: 1, bytes: 8 });
        assert.deepEqual(all.get('b'), counts({ ready: 1, bytes: 2 }));
      });
    });

    describe('enqueue', () => {
      it('returns one id per item, in item order, all distinct', async () => {
        const out = await s.enqueue([item('q', 'a'), item('other', 'b'), item('q', 'c')]);
        assert.equal(out.ids.length, 3);
        assert.equal(new Set(out.ids).size, 3);
        assert.deepEqual(out.duplicate, [false, false, false]);
        assert.equal(out.replayed, false);
        const q = await s.browse('q', { limit: 10 });
        assert.deepEqual(
          q.map((m) => [m.id, m.frames[0]!.toString()]),
          [
            [out.ids[0], 'a'],
            [out.ids[2], 'c'],
          ],
        );
        const other = await s.browse('other', { limit: 10 });
        assert.deepEqual(
          other.map((m) => m.id),
          [out.ids[1]],
        );
      });

      it('ids increase: later enqueues sort after earlier ones in id order', async () => {
        const first = await s.enqueue([item('q', 'a'), item('q', 'b')]);
        const second = await s.enqueue([item('q', 'c')]);
        const third = await s.enqueue([item('q', 'd'), item('q', 'e')]);
        const all = [...first.ids, ...second.ids, ...third.ids];
        assert.equal(new Set(all).size, 5);
        const browsed = await s.browse('q', { limit: 10 });
        assert.deepEqual(
          browsed.map((m) => m.id),
          all,
        );
        assert.deepEqual(bodies(browsed), ['a', 'b', 'c', 'd', 'e']);
        // afterId agrees with that order.
        const after = await s.browse('q', { limit: 10, afterId: second.ids[0]! });
        assert.deepEqual(
          after.map((m) => m.id),
          third.ids,
        );
      });

      it('never reuses the id of a deleted message', async () => {
        const a = await enqueueOne(s, item('q', 'a'));
        const m = await leaseOne(s, 'q');
        assert.deepEqual(await s.ack([{ id: m.id, attempts: m.attempts }]), [true]);
        const b = await enqueueOne(s, item('q', 'b'));
        assert.notEqual(b, a);
        // A stale ack for the deleted message must not touch the new one.
        const mb = await leaseOne(s, 'q');
        assert.equal(mb.id, b);
        assert.deepEqual(await s.ack([{ id: a, attempts: mb.attempts }]), [false]);
        assert.deepEqual(await countsOf(s, 'q'), counts({ leased: 1, bytes: 1 }));
      });

      it('stores a message whose notBefore is in the future as scheduled, otherwise ready', async () => {
        await s.enqueue([
          item('q', 'now', { enqueuedAt: T0, notBefore: T0 }),
          item('q', 'past', { enqueuedAt: T0, notBefore: T0 - 5000 }),
          item('q', 'later', { enqueuedAt: T0, notBefore: T0 + 1 }),
        ]);
        const rows = await s.browse('q', { limit: 10 });
        assert.deepEqual(
          rows.map((m) => [m.frames[0]!.toString(), m.state]),
          [
            ['now', 'ready'],
            ['past', 'ready'],
            ['later', 'scheduled'],
          ],
        );
      });

      it('multi-frame bodies, empty frames and every byte value round-trip exactly', async () => {
        const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        const bodiesIn: Buffer[][] = [
          [allBytes],
          [Buffer.alloc(0)],
          [Buffer.from('head'), Buffer.alloc(0), allBytes, Buffer.alloc(0)],
          [Buffer.alloc(0), Buffer.alloc(0)],
          [Buffer.from([0, 0, 0, 4]), Buffer.from([0xff, 0x00])],
        ];
        const out = await s.enqueue(
          bodiesIn.map((frames, i) => item('bin', frames, { priority: 0, enqueuedAt: T0 + i })),
        );
        const sizes = bodiesIn.map((frames) => frames.reduce((n, f) => n + f.length, 0));

        const browsed = await s.browse('bin', { limit: 10 });
        assert.deepEqual(
          browsed.map((m) => hex(m.frames)),
          bodiesIn.map(hex),
        );
        assert.deepEqual(
          browsed.map((m) => m.size),
          sizes,
        );

        const leased = (await s.lease('bin', 10, T0 + 10)).messages;
        assert.deepEqual(
          leased.map((m) => m.id),
          out.ids,
        );
        assert.deepEqual(
          leased.map((m) => hex(m.frames)),
          bodiesIn.map(hex),
        );
        assert.deepEqual(
          leased.map((m) => m.size),
          sizes,
        );
        assert.deepEqual(
          await countsOf(s, 'bin'),
          counts({ leased: 5, bytes: sizes.reduce((a, b) => a + b, 0) }),
        );
      });

      it('headers round-trip through lease and browse; a message without headers has none', async () => {
        const headers = { 'content-type': 'application/json', 'x-ünï': 'ü ✓ "quoted"', empty: '' };
        await s.enqueue([item('h', 'with', { headers }), item('h', 'without')]);
        const browsed = await s.browse('h', { limit: 10 });
        assert.deepEqual(browsed[0]!.headers, headers);
        assert.equal(browsed[1]!.headers, undefined);
        const leased = (await s.lease('h', 10, T0)).messages;
        assert.deepEqual(leased[0]!.headers, headers);
        assert.equal(leased[1]!.headers, undefined);
      });

      it('browse shows every stored field as given', async () => {
        const id = await enqueueOne(
          s,
          item('f', 'body', {
            priority: 7,
            enqueuedAt: T0 + 1,
            notBefore: T0 + 500,
            expiresAt: T0 + 9000,
            dedupKey: 'k-1',
            dedupUntil: T0 + 60_000,
          }),
        );
        const [m] = await s.browse('f', { limit: 1 });
        assert.ok(m);
        assert.equal(m.id, id);
        assert.equal(m.queue, 'f');
        assert.deepEqual(hex(m.frames), hex([Buffer.from('body')]));
        assert.equal(m.priority, 7);
        assert.equal(m.attempts, 0);
        assert.equal(m.enqueuedAt, T0 + 1);
        assert.equal(m.notBefore, T0 + 500);
        assert.equal(m.expiresAt, T0 + 9000);
        assert.equal(m.dedupKey, 'k-1');
        assert.equal(m.size, 4);
        assert.equal(m.state, 'scheduled');
        assert.equal(m.deadReason, null);
      });
    });

    describe('lease', () => {
      it('leases the highest priority first, then the oldest first', async () => {
        await s.enqueue([
          item('p', 'p0-a', { priority: 0 }),
          item('p', 'p5-a', { priority: 5 }),
          item('p', 'p255', { priority: 255 }),
          item('p', 'p5-b', { priority: 5 }),
          item('p', 'p0-b', { priority: 0 }),
        ]);
        await s.enqueue([item('p', 'p5-c', { priority: 5 })]);
        const { messages } = await s.lease('p', 10, T0);
        assert.deepEqual(bodies(messages), ['p255', 'p5-a', 'p5-b', 'p5-c', 'p0-a', 'p0-b']);
        assert.deepEqual(
          messages.map((m) => m.priority),
          [255, 5, 5, 5, 0, 0],
        );
      });

      it('leases at most `max` messages and leaves the rest ready', async () => {
        await s.enqueue(['1', '2', '3', '4', '5'].map((b) => item('m', b)));
        assert.deepEqual(bodies((await s.lease('m', 2, T0)).messages), ['1', '2']);
        assert.deepEqual(await countsOf(s, 'm'), counts({ ready: 3, leased: 2, bytes: 5 }));
        assert.deepEqual(bodies((await s.lease('m', 2, T0)).messages), ['3', '4']);
        assert.deepEqual(bodies((await s.lease('m', 2, T0)).messages), ['5']);
        assert.deepEqual((await s.lease('m', 2, T0)).messages, []);
        assert.deepEqual(await countsOf(s, 'm'), counts({ leased: 5, bytes: 5 }));
      });

      it('leases nothing with max 0 or from a queue that does not exist', async () => {
        await s.enqueue([item('m', 'x')]);
        assert.deepEqual(await s.lease('m', 0, T0), {
          messages: [],
          expired: { count: 0, bytes: 0 },
        });
        assert.deepEqual(await s.lease('nope', 5, T0), {
          messages: [],
          expired: { count: 0, bytes: 0 },
        });
        assert.deepEqual(await countsOf(s, 'm'), counts({ ready: 1, bytes: 1 }));
      });

      it('marks the message leased and counts one more attempt per lease', async () => {
        const id = await enqueueOne(s, item('a', 'x', { priority: 3, enqueuedAt: T0 + 2 }));
        const first = await leaseOne(s, 'a', T0 + 10);
        assert.equal(first.id, id);
        assert.equal(first.attempts, 1);
        assert.equal(first.priority, 3);
        assert.equal(first.enqueuedAt, T0 + 2);
        assert.equal(first.size, 1);
        const [stored] = await s.browse('a', { limit: 1 });
        assert.equal(stored?.state, 'leased');
        assert.equal(stored?.attempts, 1);
        assert.deepEqual(await s.release([{ id, attempts: 1, notBefore: T0 + 10 }], T0 + 10), [
          true,
        ]);
        const second = await leaseOne(s, 'a', T0 + 20);
        assert.equal(second.id, id);
        assert.equal(second.attempts, 2);
      });

      it('does not lease leased, scheduled or dead messages', async () => {
        await s.enqueue([item('a', 'leased'), item('a', 'sched', { notBefore: T0 + 1000 })]);
        await leaseOne(s, 'a');
        await deadLetter(s, 'a', 'dead');
        assert.deepEqual((await s.lease('a', 10, T0)).messages, []);
      });
    });

    describe('enqueue already leased (the direct path)', () => {
      it('stores a leased: true message as leased at attempt 1, never handed out by lease()', async () => {
        const out = await s.enqueue([item('q', 'direct', { leased: true }), item('q', 'queued')]);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, leased: 1, bytes: 12 }));
        const leased = await s.lease('q', 10, T0);
        assert.deepEqual(
          leased.messages.map((m) => m.frames[0]!.toString()),
          ['queued'],
          'the directly leased message is not leased again',
        );
        assert.deepEqual(await s.ack([{ id: out.ids[0]!, attempts: 1 }]), [true]);
      });

      it('ignores leased: true for a scheduled message', async () => {
        await s.enqueue([item('q', 'later', { leased: true, notBefore: T0 + 1000 })]);
        assert.deepEqual(await countsOf(s, 'q'), counts({ scheduled: 1, bytes: 5 }));
      });

      it('releases a directly leased message on reopen, like any lease', async () => {
        await s.enqueue([item('q', 'direct', { leased: true })]);
        const r = await closeAndReopen();
        assert.equal(r.releasedLeases, 1);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, bytes: 6 }));
      });
    });

    describe('ack', () => {
      it('ack at the leased attempt deletes the message and returns true; a second ack returns false', async () => {
        await s.enqueue([item('q', 'x'), item('q', 'keep')]);
        const m = await leaseOne(s, 'q');
        assert.deepEqual(await s.ack([{ id: m.id, attempts: m.attempts }]), [true]);
        assert.deepEqual(bodies(await s.browse('q', { limit: 10 })), ['keep']);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, bytes: 4 }));
        assert.deepEqual(await s.ack([{ id: m.id, attempts: m.attempts }]), [false]);
      });

      it('ack at another attempt returns false and keeps the lease', async () => {
        await s.enqueue([item('q', 'x')]);
        const m = await leaseOne(s, 'q');
        assert.deepEqual(await s.ack([{ id: m.id, attempts: m.attempts + 1 }]), [false]);
        assert.deepEqual(await s.ack([{ id: m.id, attempts: 0 }]), [false]);
        assert.deepEqual(await countsOf(s, 'q'), counts({ leased: 1, bytes: 1 }));
        assert.deepEqual(await s.ack([{ id: m.id, attempts: m.attempts }]), [true]);
      });

      it('a stale ack from an earlier lease of the same message returns false', async () => {
        await s.enqueue([item('q', 'x')]);
        const first = await leaseOne(s, 'q');
        await s.release([{ id: first.id, attempts: first.attempts, notBefore: T0 }], T0);
        const second = await leaseOne(s, 'q');
        assert.deepEqual(await s.ack([{ id: first.id, attempts: first.attempts }]), [false]);
        assert.deepEqual(await s.ack([{ id: second.id, attempts: second.attempts }]), [true]);
      });

      it('does not ack a message that is ready, scheduled or dead', async () => {
        const dead = await deadLetter(s, 'q', 'dead');
        const ready = await enqueueOne(s, item('q', 'ready'));
        const sched = await enqueueOne(s, item('q', 'sched', { notBefore: T0 + 1000 }));
        assert.deepEqual(
          await s.ack([
            { id: ready, attempts: 0 },
            { id: sched, attempts: 0 },
            { id: dead, attempts: 1 },
          ]),
          [false, false, false],
        );
        assert.deepEqual(
          await countsOf(s, 'q'),
          counts({ ready: 1, scheduled: 1, dead: 1, bytes: 10 }),
        );
      });

      it('answers per ref, in ref order', async () => {
        await s.enqueue([item('q', 'a'), item('q', 'b')]);
        const [a, b] = (await s.lease('q', 2, T0)).messages;
        assert.ok(a && b);
        assert.deepEqual(
          await s.ack([
            { id: a.id, attempts: a.attempts },
            { id: a.id, attempts: a.attempts },
            { id: b.id, attempts: b.attempts + 5 },
            { id: b.id, attempts: b.attempts },
          ]),
          [true, false, false, true],
        );
        assert.deepEqual(await s.ack([]), []);
      });
    });

    describe('release', () => {
      it('release with notBefore not after now returns the message to ready', async () => {
        await s.enqueue([item('q', 'x')]);
        const m = await leaseOne(s, 'q');
        assert.deepEqual(
          await s.release([{ id: m.id, attempts: m.attempts, notBefore: T0 + 100 }], T0 + 100),
          [true],
        );
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, bytes: 1 }));
        const again = await leaseOne(s, 'q', T0 + 100);
        assert.equal(again.id, m.id);
        assert.equal(again.attempts, 2);
      });

      it('release with notBefore in the future schedules the message until promoteDue reaches it', async () => {
        await s.enqueue([item('q', 'x')]);
        const m = await leaseOne(s, 'q');
        assert.deepEqual(
          await s.release([{ id: m.id, attempts: m.attempts, notBefore: T0 + 5000 }], T0),
          [true],
        );
        assert.deepEqual(await countsOf(s, 'q'), counts({ scheduled: 1, bytes: 1 }));
        assert.equal(await s.nextDueAt(), T0 + 5000);
        assert.deepEqual((await s.lease('q', 10, T0)).messages, []);
        assert.deepEqual(await s.promoteDue(T0 + 4999), []);
        assert.deepEqual(await s.promoteDue(T0 + 5000), [{ queue: 'q', count: 1, bytes: 1 }]);
        const again = await leaseOne(s, 'q', T0 + 5000);
        assert.equal(again.id, m.id);
        assert.equal(again.attempts, 2);
      });

      it('release with a dead reason moves the message to the dead letters with that reason', async () => {
        await s.enqueue([item('q', 'poison')]);
        const m = await leaseOne(s, 'q');
        assert.deepEqual(
          await s.release(
            [{ id: m.id, attempts: m.attempts, notBefore: T0, deadReason: 'max attempts' }],
            T0,
          ),
          [true],
        );
        assert.deepEqual(await countsOf(s, 'q'), counts({ dead: 1 }));
        const [d] = await s.browse('q', { state: 'dead', limit: 10 });
        assert.equal(d?.id, m.id);
        assert.equal(d?.deadReason, 'max attempts');
        assert.equal(d?.attempts, 1);
        assert.deepEqual((await s.lease('q', 10, T0)).messages, []);
      });

      it('release with uncount gives back the attempt of that lease', async () => {
        await s.enqueue([item('q', 'x')]);
        const m = await leaseOne(s, 'q');
        assert.equal(m.attempts, 1);
        assert.deepEqual(
          await s.release([{ id: m.id, attempts: 1, notBefore: T0, uncount: true }], T0),
          [true],
        );
        assert.equal((await s.browse('q', { limit: 1 }))[0]?.attempts, 0);
        const again = await leaseOne(s, 'q');
        assert.equal(again.attempts, 1);
        // uncount applies to dead-lettering too.
        await s.release(
          [{ id: m.id, attempts: 1, notBefore: T0, deadReason: 'gone', uncount: true }],
          T0,
        );
        const [d] = await s.browse('q', { state: 'dead', limit: 1 });
        assert.equal(d?.attempts, 0);
      });

      it('release of a message not leased at that attempt returns false and changes nothing', async () => {
        await s.enqueue([item('q', 'leased')]);
        const m = await leaseOne(s, 'q');
        const ready = await enqueueOne(s, item('q', 'ready'));
        const out = await s.release(
          [
            { id: m.id, attempts: m.attempts + 1, notBefore: T0 },
            { id: m.id, attempts: m.attempts - 1, notBefore: T0, deadReason: 'no' },
            { id: ready, attempts: 0, notBefore: T0 + 10 },
            { id: ready, attempts: 1, notBefore: T0, deadReason: 'no' },
          ],
          T0,
        );
        assert.deepEqual(out, [false, false, false, false]);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, leased: 1, bytes: 11 }));
        assert.deepEqual(
          await s.release([{ id: m.id, attempts: m.attempts, notBefore: T0 + 10 }], T0),
          [true],
        );
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, scheduled: 1, bytes: 11 }));
      });
    });

    describe('scheduled messages', () => {
      it('a message scheduled at enqueue is not leased until promoteDue reaches its notBefore', async () => {
        await s.enqueue([
          item('q', 'late', { notBefore: T0 + 9000 }),
          item('q', 'soon', { notBefore: T0 + 5000 }),
          item('q', 'now'),
        ]);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, scheduled: 2, bytes: 11 }));
        assert.deepEqual(bodies((await s.lease('q', 10, T0)).messages), ['now']);
        assert.equal(await s.nextDueAt(), T0 + 5000);

        assert.deepEqual(await s.promoteDue(T0 + 4999), []);
        assert.deepEqual((await s.lease('q', 10, T0 + 4999)).messages, []);

        assert.deepEqual(await s.promoteDue(T0 + 5000), [{ queue: 'q', count: 1, bytes: 4 }]);
        assert.equal(await s.nextDueAt(), T0 + 9000);
        assert.deepEqual(bodies((await s.lease('q', 10, T0 + 5000)).messages), ['soon']);

        assert.deepEqual(await s.promoteDue(T0 + 20_000), [{ queue: 'q', count: 1, bytes: 4 }]);
        assert.equal(await s.nextDueAt(), null);
        assert.deepEqual(bodies((await s.lease('q', 10, T0 + 20_000)).messages), ['late']);
      });

      it('nextDueAt is null with nothing scheduled and the earliest notBefore across queues otherwise', async () => {
        assert.equal(await s.nextDueAt(), null);
        await s.enqueue([item('a', 'x')]);
        assert.equal(await s.nextDueAt(), null);
        await s.enqueue([item('a', 'x', { notBefore: T0 + 700 })]);
        await s.enqueue([item('b', 'x', { notBefore: T0 + 300 })]);
        await s.enqueue([item('c', 'x', { notBefore: T0 + 900 })]);
        assert.equal(await s.nextDueAt(), T0 + 300);
      });

      it('promoteDue reports a delta per queue and moves every due message to ready', async () => {
        await s.enqueue([
          item('a', 'a1', { notBefore: T0 + 10 }),
          item('a', 'a22', { notBefore: T0 + 20 }),
          item('b', 'b1', { notBefore: T0 + 10 }),
          item('b', 'later', { notBefore: T0 + 100 }),
        ]);
        const deltas = await s.promoteDue(T0 + 50);
        assert.deepEqual(byQueue(deltas), [
          { queue: 'a', count: 2, bytes: 5 },
          { queue: 'b', count: 1, bytes: 2 },
        ]);
        assert.deepEqual(await countsOf(s, 'a'), counts({ ready: 2, bytes: 5 }));
        assert.deepEqual(await countsOf(s, 'b'), counts({ ready: 1, scheduled: 1, bytes: 7 }));
        assert.deepEqual(await s.promoteDue(T0 + 50), []);
      });
    });

    describe('TTL', () => {
      it('lease skips and removes expired messages and reports them in `expired`', async () => {
        await s.enqueue([
          item('q', 'old1', { expiresAt: T0 + 100 }),
          item('q', 'keep', { expiresAt: null }),
          item('q', 'old22', { expiresAt: T0 + 100 }),
          item('q', 'fresh', { expiresAt: T0 + 10_000 }),
        ]);
        const out = await s.lease('q', 10, T0 + 101);
        assert.deepEqual(bodies(out.messages), ['keep', 'fresh']);
        assert.deepEqual(out.expired, { count: 2, bytes: 9 });
        assert.deepEqual(bodies(await s.browse('q', { limit: 10 })), ['keep', 'fresh']);
        assert.deepEqual(await countsOf(s, 'q'), counts({ leased: 2, bytes: 9 }));
      });

      it('lease delivers a message with a TTL that has not passed yet', async () => {
        await s.enqueue([item('q', 'x', { expiresAt: T0 + 100 })]);
        const out = await s.lease('q', 10, T0 + 99);
        assert.deepEqual(bodies(out.messages), ['x']);
        assert.deepEqual(out.expired, { count: 0, bytes: 0 });
      });

      it('sweepExpired removes expired ready and scheduled messages and reports deltas per queue', async () => {
        await s.enqueue([
          item('a', 'r-exp', { expiresAt: T0 + 10 }), // 5 bytes
          item('a', 's-exp', { notBefore: T0 + 5000, expiresAt: T0 + 10 }), // 5 bytes
          item('a', 'live', { expiresAt: T0 + 10_000 }),
          item('b', 'b-exp', { expiresAt: T0 + 20 }),
          item('b', 'no-ttl'),
          item('c', 'c-live', { expiresAt: T0 + 10_000 }),
        ]);
        const deltas = await s.sweepExpired(T0 + 100, 100);
        assert.deepEqual(byQueue(deltas), [
          { queue: 'a', ready: 1, scheduled: 1, bytes: 10 },
          { queue: 'b', ready: 1, scheduled: 0, bytes: 5 },
        ]);
        assert.deepEqual(bodies(await s.browse('a', { limit: 10 })), ['live']);
        assert.deepEqual(bodies(await s.browse('b', { limit: 10 })), ['no-ttl']);
        assert.deepEqual(await countsOf(s, 'a'), counts({ ready: 1, bytes: 4 }));
        assert.deepEqual(await countsOf(s, 'c'), counts({ ready: 1, bytes: 6 }));
        assert.deepEqual(await s.sweepExpired(T0 + 100, 100), []);
      });

      it('sweepExpired leaves leased and dead messages alone', async () => {
        await s.enqueue([item('q', 'leased', { expiresAt: T0 + 10 })]);
        const m = await leaseOne(s, 'q', T0);
        await s.enqueue([item('q', 'dead', { expiresAt: T0 + 10 })]);
        const d = await leaseOne(s, 'q', T0);
        await s.release([{ id: d.id, attempts: d.attempts, notBefore: T0, deadReason: 'x' }], T0);
        assert.deepEqual(await s.sweepExpired(T0 + 100, 100), []);
        assert.deepEqual(await countsOf(s, 'q'), counts({ leased: 1, dead: 1, bytes: 6 }));
        assert.deepEqual(await s.ack([{ id: m.id, attempts: m.attempts }]), [true]);
      });

      it('sweepExpired removes at most `max` messages per call', async () => {
        await s.enqueue(['1', '2', '3'].map((b) => item('q', b, { expiresAt: T0 + 10 })));
        const total = (deltas: { ready: number; scheduled: number }[]): number =>
          deltas.reduce((n, d) => n + d.ready + d.scheduled, 0);
        assert.equal(total(await s.sweepExpired(T0 + 100, 2)), 2);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, bytes: 1 }));
        assert.equal(total(await s.sweepExpired(T0 + 100, 2)), 1);
        assert.deepEqual(await countsOf(s, 'q'), ZERO);
      });
    });

    describe('dedup keys', () => {
      it('a second message with the same key within dedupUntil is a duplicate of the first and is not stored', async () => {
        const first = await s.enqueue([item('q', 'one', { dedupKey: 'k', dedupUntil: T0 + 1000 })]);
        assert.deepEqual(first.duplicate, [false]);
        const second = await s.enqueue([
          item('q', 'two', { enqueuedAt: T0 + 999, dedupKey: 'k', dedupUntil: T0 + 1999 }),
        ]);
        assert.deepEqual(second.ids, first.ids);
        assert.deepEqual(second.duplicate, [true]);
        assert.equal(second.replayed, false);
        assert.deepEqual(bodies(await s.browse('q', { limit: 10 })), ['one']);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, bytes: 3 }));
      });

      it('a repeated key inside one batch stores the first and marks the rest duplicates', async () => {
        const out = await s.enqueue([
          item('q', 'a', { dedupKey: 'k', dedupUntil: T0 + 1000 }),
          item('q', 'b', { dedupKey: 'other', dedupUntil: T0 + 1000 }),
          item('q', 'c', { dedupKey: 'k', dedupUntil: T0 + 1000 }),
        ]);
        assert.deepEqual(out.duplicate, [false, false, true]);
        assert.equal(out.ids[2], out.ids[0]);
        assert.notEqual(out.ids[1], out.ids[0]);
        assert.deepEqual(bodies(await s.browse('q', { limit: 10 })), ['a', 'b']);
      });

      it('the key holds for its window even after the first message was acked', async () => {
        const first = await s.enqueue([item('q', 'a', { dedupKey: 'k', dedupUntil: T0 + 1000 })]);
        const m = await leaseOne(s, 'q');
        await s.ack([{ id: m.id, attempts: m.attempts }]);
        const again = await s.enqueue([
          item('q', 'b', { enqueuedAt: T0 + 500, dedupKey: 'k', dedupUntil: T0 + 1500 }),
        ]);
        assert.deepEqual(again.duplicate, [true]);
        assert.deepEqual(again.ids, first.ids);
        assert.deepEqual(await countsOf(s, 'q'), ZERO);
      });

      it('after the key expired and was swept, the same key stores a new message', async () => {
        const first = await s.enqueue([item('q', 'a', { dedupKey: 'k', dedupUntil: T0 + 1000 })]);
        await s.sweepExpired(T0 + 1000, 100);
        const again = await s.enqueue([
          item('q', 'b', { enqueuedAt: T0 + 1000, dedupKey: 'k', dedupUntil: T0 + 2000 }),
        ]);
        assert.deepEqual(again.duplicate, [false]);
        assert.notEqual(again.ids[0], first.ids[0]);
        assert.deepEqual(bodies(await s.browse('q', { limit: 10 })), ['a', 'b']);
        // The new message holds the key for its own window.
        const third = await s.enqueue([
          item('q', 'c', { enqueuedAt: T0 + 1500, dedupKey: 'k', dedupUntil: T0 + 2500 }),
        ]);
        assert.deepEqual(third.duplicate, [true]);
        assert.deepEqual(third.ids, again.ids);
      });

      it('the same key in different queues does not collide', async () => {
        const out = await s.enqueue([
          item('a', 'x', { dedupKey: 'k', dedupUntil: T0 + 1000 }),
          item('b', 'y', { dedupKey: 'k', dedupUntil: T0 + 1000 }),
        ]);
        assert.deepEqual(out.duplicate, [false, false]);
        assert.notEqual(out.ids[0], out.ids[1]);
        assert.deepEqual(await countsOf(s, 'a'), counts({ ready: 1, bytes: 1 }));
        assert.deepEqual(await countsOf(s, 'b'), counts({ ready: 1, bytes: 1 }));
      });
    });

    describe('request keys', () => {
      it('a replay of a request key returns the first ids with replayed=true and stores nothing', async () => {
        const request = { key: 'req-1', until: T0 + 1000 };
        const first = await s.enqueue([item('q', 'a'), item('r', 'b')], request);
        assert.equal(first.replayed, false);
        const written = s.metrics().messagesWritten;
        const replay = await s.enqueue(
          [item('q', 'a', { enqueuedAt: T0 + 500 }), item('r', 'b', { enqueuedAt: T0 + 500 })],
          { key: 'req-1', until: T0 + 1500 },
        );
        assert.equal(replay.replayed, true);
        assert.deepEqual(replay.ids, first.ids);
        assert.equal(s.metrics().messagesWritten, written);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, bytes: 1 }));
        assert.deepEqual(await countsOf(s, 'r'), counts({ ready: 1, bytes: 1 }));
      });

      it('a different request key is a new request', async () => {
        const a = await s.enqueue([item('q', 'a')], { key: 'req-a', until: T0 + 1000 });
        const b = await s.enqueue([item('q', 'a')], { key: 'req-b', until: T0 + 1000 });
        assert.equal(b.replayed, false);
        assert.notDeepEqual(b.ids, a.ids);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 2, bytes: 2 }));
      });

      it('after the request key expired and was swept, the same key stores again', async () => {
        const first = await s.enqueue([item('q', 'a')], { key: 'req', until: T0 + 1000 });
        await s.sweepExpired(T0 + 1000, 100);
        const again = await s.enqueue([item('q', 'a', { enqueuedAt: T0 + 1000 })], {
          key: 'req',
          until: T0 + 2000,
        });
        assert.equal(again.replayed, false);
        assert.notDeepEqual(again.ids, first.ids);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 2, bytes: 2 }));
      });
    });

    describe('browse', () => {
      it('filters by state, honours limit and pages with afterId, in id order', async () => {
        const ids = (await s.enqueue(['a', 'b', 'c', 'd', 'e'].map((b) => item('q', b)))).ids;
        await s.enqueue([item('q', 'sched', { notBefore: T0 + 1000 })]);
        await s.lease('q', 2, T0); // a, b
        assert.deepEqual(bodies(await s.browse('q', { limit: 100 })), [
          'a',
          'b',
          'c',
          'd',
          'e',
          'sched',
        ]);
        assert.deepEqual(bodies(await s.browse('q', { state: 'ready', limit: 100 })), [
          'c',
          'd',
          'e',
        ]);
        assert.deepEqual(bodies(await s.browse('q', { state: 'leased', limit: 100 })), ['a', 'b']);
        assert.deepEqual(bodies(await s.browse('q', { state: 'scheduled', limit: 100 })), [
          'sched',
        ]);
        assert.deepEqual(await s.browse('q', { state: 'dead', limit: 100 }), []);
        assert.deepEqual(bodies(await s.browse('q', { limit: 2 })), ['a', 'b']);
        assert.deepEqual(bodies(await s.browse('q', { limit: 2, afterId: ids[1]! })), ['c', 'd']);
        assert.deepEqual(
          bodies(await s.browse('q', { state: 'ready', limit: 1, afterId: ids[2]! })),
          ['d'],
        );
        assert.deepEqual(
          bodies(await s.browse('q', { state: 'leased', limit: 10, afterId: ids[0]! })),
          ['b'],
        );
      });

      it('browse changes nothing', async () => {
        await s.enqueue([item('q', 'a'), item('q', 'b')]);
        await leaseOne(s, 'q');
        const before = await s.browse('q', { limit: 10 });
        await s.browse('q', { limit: 10 });
        await s.browse('q', { state: 'ready', limit: 10 });
        assert.deepEqual(await s.browse('q', { limit: 10 }), before);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, leased: 1, bytes: 2 }));
        assert.deepEqual(bodies((await s.lease('q', 10, T0)).messages), ['b']);
      });

      it('browse only shows messages of the queue asked for, and nothing for an unknown queue', async () => {
        await s.enqueue([item('a', 'a1'), item('b', 'b1'), item('a', 'a2')]);
        assert.deepEqual(bodies(await s.browse('a', { limit: 10 })), ['a1', 'a2']);
        assert.deepEqual(bodies(await s.browse('b', { limit: 10 })), ['b1']);
        assert.deepEqual(await s.browse('nope', { limit: 10 }), []);
      });
    });

    describe('oldestEnqueuedAt', () => {
      it('is null for an unknown or empty queue', async () => {
        assert.equal(await s.oldestEnqueuedAt('nope'), null);
        await s.ensureQueue('empty');
        assert.equal(await s.oldestEnqueuedAt('empty'), null);
      });

      it('is the enqueue time of the oldest live message, leased included, dead excluded', async () => {
        await s.enqueue([item('q', 'a', { enqueuedAt: T0 + 10 })]);
        await s.enqueue([item('q', 'b', { enqueuedAt: T0 + 20 })]);
        await s.enqueue([item('q', 'c', { enqueuedAt: T0 + 30, notBefore: T0 + 5000 })]);
        await s.enqueue([item('other', 'x', { enqueuedAt: T0 })]);
        assert.equal(await s.oldestEnqueuedAt('q'), T0 + 10);
        const a = await leaseOne(s, 'q', T0 + 40);
        assert.equal(await s.oldestEnqueuedAt('q'), T0 + 10);
        await s.ack([{ id: a.id, attempts: a.attempts }]);
        assert.equal(await s.oldestEnqueuedAt('q'), T0 + 20);
        const b = await leaseOne(s, 'q', T0 + 40);
        await s.release(
          [{ id: b.id, attempts: b.attempts, notBefore: T0, deadReason: 'x' }],
          T0 + 40,
        );
        assert.equal(await s.oldestEnqueuedAt('q'), T0 + 30);
        await s.purge('q', 'ready');
        assert.equal(await s.oldestEnqueuedAt('q'), null);
      });
    });

    describe('purge', () => {
      it("purge('ready') deletes ready and scheduled messages and leaves leased and dead ones", async () => {
        await s.enqueue([item('q', 'leased'), item('q', 'dead')]);
        const m = await leaseOne(s, 'q');
        const d = await leaseOne(s, 'q');
        await s.release([{ id: d.id, attempts: d.attempts, notBefore: T0, deadReason: 'x' }], T0);
        await s.enqueue([
          item('q', 'r1'),
          item('q', 'r22'),
          item('q', 'sched', { notBefore: T0 + 1000 }),
        ]);
        await s.enqueue([item('other', 'keep')]);
        assert.deepEqual(await s.purge('q', 'ready'), {
          ready: 2,
          scheduled: 1,
          dead: 0,
          bytes: 10,
        });
        assert.deepEqual(await countsOf(s, 'q'), counts({ leased: 1, dead: 1, bytes: 6 }));
        assert.deepEqual(await countsOf(s, 'other'), counts({ ready: 1, bytes: 4 }));
        assert.equal(await s.nextDueAt(), null);
        assert.deepEqual(await s.ack([{ id: m.id, attempts: m.attempts }]), [true]);
      });

      it("purge('dead') deletes the dead letters only", async () => {
        await deadLetter(s, 'q', 'd1');
        await deadLetter(s, 'q', 'd2');
        await deadLetter(s, 'other', 'd3');
        await s.enqueue([item('q', 'live')]);
        assert.deepEqual(await s.purge('q', 'dead'), { ready: 0, scheduled: 0, dead: 2, bytes: 0 });
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 1, bytes: 4 }));
        assert.deepEqual(await countsOf(s, 'other'), counts({ dead: 1 }));
      });

      it('purge of an unknown or empty queue removes nothing', async () => {
        const none = { ready: 0, scheduled: 0, dead: 0, bytes: 0 };
        assert.deepEqual(await s.purge('nope', 'ready'), none);
        assert.deepEqual(await s.purge('nope', 'dead'), none);
        await s.ensureQueue('empty');
        assert.deepEqual(await s.purge('empty', 'ready'), none);
      });
    });

    describe('redrive', () => {
      it('redrive without options moves every dead letter back to ready with attempts reset', async () => {
        const ids = [
          await deadLetter(s, 'q', 'd1'),
          await deadLetter(s, 'q', 'd22'),
          await deadLetter(s, 'q', 'd333'),
        ];
        await deadLetter(s, 'other', 'keep-dead');
        assert.deepEqual(await s.redrive('q', {}), { count: 3, bytes: 9 });
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 3, bytes: 9 }));
        assert.deepEqual(await countsOf(s, 'other'), counts({ dead: 1 }));
        const rows = await s.browse('q', { limit: 10 });
        assert.deepEqual(
          rows.map((r) => [r.id, r.state, r.attempts, r.deadReason]),
          [
            [ids[0], 'ready', 0, null],
            [ids[1], 'ready', 0, null],
            [ids[2], 'ready', 0, null],
          ],
        );
        const leased = (await s.lease('q', 10, T0)).messages;
        assert.deepEqual(
          leased.map((m) => m.attempts),
          [1, 1, 1],
        );
      });

      it('redrive by ids moves only those dead letters of the queue', async () => {
        const d1 = await deadLetter(s, 'q', 'd1');
        const d2 = await deadLetter(s, 'q', 'd2');
        const foreign = await deadLetter(s, 'other', 'od');
        const ready = await enqueueOne(s, item('q', 'ready'));
        assert.deepEqual(await s.redrive('q', { ids: [d2, foreign, ready] }), {
          count: 1,
          bytes: 2,
        });
        assert.deepEqual(bodies(await s.browse('q', { state: 'dead', limit: 10 })), ['d1']);
        assert.deepEqual(bodies(await s.browse('q', { state: 'ready', limit: 10 })), [
          'd2',
          'ready',
        ]);
        assert.deepEqual(await countsOf(s, 'other'), counts({ dead: 1 }));
        assert.equal((await s.browse('q', { state: 'dead', limit: 1 }))[0]?.id, d1);
      });

      it('redrive by limit moves at most that many dead letters', async () => {
        await deadLetter(s, 'q', 'd1');
        await deadLetter(s, 'q', 'd2');
        await deadLetter(s, 'q', 'd3');
        assert.equal((await s.redrive('q', { limit: 2 })).count, 2);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 2, dead: 1, bytes: 4 }));
        assert.equal((await s.redrive('q', { limit: 2 })).count, 1);
        assert.equal((await s.redrive('q', { limit: 2 })).count, 0);
      });

      it('redrive of an unknown queue moves nothing', async () => {
        assert.deepEqual(await s.redrive('nope', {}), { count: 0, bytes: 0 });
      });
    });

    describe('group commit', () => {
      it('calls issued in one turn commit together: exactly one more commit', async () => {
        await s.ensureQueue('q');
        const before = s.metrics();
        const calls: Promise<unknown>[] = [
          s.ensureQueue('q2'),
          s.enqueue([item('q', 'a')]),
          s.enqueue([item('q', 'b'), item('q2', 'c')]),
          s.enqueue([item('q', 'd')]),
          s.lease('q', 1, T0),
          s.counts(),
          s.browse('q', { limit: 10 }),
          s.nextDueAt(),
        ];
        await Promise.all(calls);
        const after = s.metrics();
        assert.equal(after.commits, before.commits + 1);
        assert.equal(after.operations, before.operations + calls.length);
        assert.equal(after.messagesWritten, before.messagesWritten + 4);
      });

      it('calls awaited one after the other commit one by one', async () => {
        const before = s.metrics().commits;
        await s.enqueue([item('q', 'a')]);
        await s.enqueue([item('q', 'b')]);
        await s.lease('q', 1, T0);
        assert.equal(s.metrics().commits, before + 3);
      });

      it('calls made in later microtasks of the same turn share its commit', async () => {
        const before = s.metrics().commits;
        const first = s.enqueue([item('q', 'a')]);
        await Promise.resolve();
        const second = s.enqueue([item('q', 'b')]);
        await Promise.resolve();
        const third = s.lease('q', 10, T0);
        await Promise.all([first, second, third]);
        assert.equal(s.metrics().commits, before + 1);
        assert.deepEqual(bodies((await third).messages), ['a', 'b']);
      });

      it('calls of one turn apply in call order', async () => {
        const early = s.lease('q', 10, T0);
        const enq = s.enqueue([item('q', 'a'), item('q', 'b')]);
        const seen = s.browse('q', { limit: 10 });
        const late = s.lease('q', 1, T0);
        const count = s.counts();
        const [e, ids, b, l, c] = await Promise.all([early, enq, seen, late, count]);
        assert.deepEqual(e.messages, []);
        assert.deepEqual(bodies(b), ['a', 'b']);
        assert.deepEqual(
          l.messages.map((m) => m.id),
          [ids.ids[0]],
        );
        assert.deepEqual(c.get('q'), counts({ ready: 1, leased: 1, bytes: 2 }));
      });

      it('every promise of the turn resolves only after its commit', async () => {
        const before = s.metrics().commits;
        const seenAtResolve: number[] = [];
        const note = (): void => {
          seenAtResolve.push(s.metrics().commits);
        };
        await Promise.all([
          s.enqueue([item('q', 'a')]).then(note),
          s.counts().then(note),
          s.lease('q', 1, T0).then(note),
        ]);
        assert.deepEqual(seenAtResolve, [before + 1, before + 1, before + 1]);
      });

      it('a failing call rejects alone; the other calls of its turn commit', async () => {
        // NaN is no storable priority: the backend must refuse that item.
        const before = s.metrics().commits;
        const results = await Promise.allSettled([
          s.enqueue([item('q', 'a')]),
          s.enqueue([item('q', 'bad', { priority: Number.NaN })]),
          s.enqueue([item('q', 'b')]),
          s.lease('q', 10, T0),
        ]);
        assert.deepEqual(
          results.map((r) => r.status),
          ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
        );
        assert.equal(s.metrics().commits, before + 1);
        const leased = results[3].status === 'fulfilled' ? results[3].value : undefined;
        assert.deepEqual(bodies(leased?.messages ?? []), ['a', 'b']);
        assert.deepEqual(bodies(await s.browse('q', { limit: 10 })), ['a', 'b']);
      });

      it('a failing call leaves nothing of itself behind, and later messages land in their own queues', async () => {
        // The failing enqueue would create queue 'ghost' and store a valid first item.
        await assert.rejects(
          s.enqueue([item('ghost', 'valid'), item('ghost', 'bad', { priority: Number.NaN })]),
        );
        assert.deepEqual(await s.browse('ghost', { limit: 10 }), []);
        assert.deepEqual((await countsOf(s, 'ghost')) ?? ZERO, ZERO);
        assert.equal(s.metrics().messagesWritten, 0);

        await s.enqueue([item('ghost', 'g1')]);
        await s.enqueue([item('other', 'o1')]);
        const all = await s.counts();
        assert.deepEqual(all.get('ghost'), counts({ ready: 1, bytes: 2 }));
        assert.deepEqual(all.get('other'), counts({ ready: 1, bytes: 2 }));
        assert.deepEqual(bodies(await s.browse('ghost', { limit: 10 })), ['g1']);
        assert.deepEqual(bodies(await s.browse('other', { limit: 10 })), ['o1']);
        assert.deepEqual(bodies((await s.lease('other', 10, T0)).messages), ['o1']);

        // And the same holds for a fresh reader of the data.
        await closeAndReopen();
        assert.deepEqual(bodies(await s.browse('ghost', { limit: 10 })), ['g1']);
        assert.deepEqual(bodies(await s.browse('other', { limit: 10 })), ['o1']);
      });
    });

    describe('persistence', () => {
      it('stored messages, their fields and queue counters survive close and reopen', async () => {
        const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        await s.ensureQueue('empty');
        await s.enqueue([
          item('q', [Buffer.from('multi'), Buffer.alloc(0), allBytes], {
            headers: { k: 'v' },
            priority: 9,
            expiresAt: T0 + 100_000,
          }),
          item('q', 'sched', { notBefore: T0 + 7000 }),
        ]);
        await deadLetter(s, 'q', 'dead');
        const before = await s.browse('q', { limit: 10 });
        const countsBefore = await s.counts();

        const rec = await closeAndReopen();
        assert.equal(rec.releasedLeases, 0);
        assert.equal(rec.nextDueAt, T0 + 7000);
        assert.deepEqual(rec.queues, countsBefore);
        assert.deepEqual(rec.queues.get('empty'), ZERO);
        assert.deepEqual(await s.counts(), countsBefore);
        const after = await s.browse('q', { limit: 10 });
        assert.deepEqual(
          after.map((m) => ({ ...m, frames: hex(m.frames) })),
          before.map((m) => ({ ...m, frames: hex(m.frames) })),
        );
        assert.equal(await s.nextDueAt(), T0 + 7000);
      });

      it('messages leased at close are ready again after reopen, and open() reports them released', async () => {
        await s.enqueue([item('q', 'a'), item('q', 'b'), item('q', 'c'), item('other', 'o')]);
        await s.lease('q', 2, T0);
        await s.lease('other', 1, T0);
        const rec = await closeAndReopen();
        assert.equal(rec.releasedLeases, 3);
        assert.deepEqual(rec.queues.get('q'), counts({ ready: 3, bytes: 3 }));
        assert.deepEqual(rec.queues.get('other'), counts({ ready: 1, bytes: 1 }));
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 3, bytes: 3 }));
        assert.deepEqual(bodies((await s.lease('q', 10, T0)).messages), ['a', 'b', 'c']);
        // Released once: a second reopen has nothing left to release but what was leased since.
        const again = await closeAndReopen();
        assert.equal(again.releasedLeases, 3);
        const third = await closeAndReopen();
        assert.equal(third.releasedLeases, 0);
      });

      it('close() commits the calls still pending in its turn', async () => {
        const pending = s.enqueue([item('q', 'last')]);
        await s.close();
        const out = await pending;
        assert.equal(out.ids.length, 1);
        s = await fixture.reopen();
        opened.push(s);
        await s.open();
        assert.deepEqual(bodies(await s.browse('q', { limit: 10 })), ['last']);
      });

      it('ids are not reused after the newest message was deleted and the store reopened', async () => {
        const first = await enqueueOne(s, item('q', 'a'));
        const m = await leaseOne(s, 'q');
        await s.ack([{ id: m.id, attempts: m.attempts }]);
        await closeAndReopen();
        const second = await enqueueOne(s, item('q', 'b'));
        assert.notEqual(second, first);
        assert.deepEqual(
          (await s.browse('q', { limit: 10, afterId: first })).map((r) => r.id),
          [second],
        );
      });

      it('dedup and request keys survive close and reopen', async () => {
        const d = await s.enqueue([item('q', 'a', { dedupKey: 'k', dedupUntil: T0 + 1000 })]);
        const r = await s.enqueue([item('q', 'b')], { key: 'req', until: T0 + 1000 });
        await closeAndReopen();
        const dup = await s.enqueue([
          item('q', 'a', { enqueuedAt: T0 + 10, dedupKey: 'k', dedupUntil: T0 + 1010 }),
        ]);
        assert.deepEqual(dup.duplicate, [true]);
        assert.deepEqual(dup.ids, d.ids);
        const replay = await s.enqueue([item('q', 'b', { enqueuedAt: T0 + 10 })], {
          key: 'req',
          until: T0 + 1010,
        });
        assert.equal(replay.replayed, true);
        assert.deepEqual(replay.ids, r.ids);
        assert.deepEqual(await countsOf(s, 'q'), counts({ ready: 2, bytes: 2 }));
      });
    });

    describe('close', () => {
      it('after close() every call rejects with SHUTTING_DOWN', async () => {
        await s.enqueue([item('q', 'a')]);
        await s.close();
        const calls: [string, () => Promise<unknown>][] = [
          ['ensureQueue', () => s.ensureQueue('q')],
          ['enqueue', () => s.enqueue([item('q', 'b')])],
          [
            'enqueue with request key',
            () => s.enqueue([item('q', 'b')], { key: 'r', until: T0 + 1 }),
          ],
          ['lease', () => s.lease('q', 1, T0)],
          ['ack', () => s.ack([{ id: '1', attempts: 1 }])],
          ['release', () => s.release([{ id: '1', attempts: 1, notBefore: T0 }], T0)],
          ['promoteDue', () => s.promoteDue(T0)],
          ['nextDueAt', () => s.nextDueAt()],
          ['sweepExpired', () => s.sweepExpired(T0, 10)],
          ['counts', () => s.counts()],
          ['browse', () => s.browse('q', { limit: 10 })],
          ['oldestEnqueuedAt', () => s.oldestEnqueuedAt('q')],
          ['purge ready', () => s.purge('q', 'ready')],
          ['purge dead', () => s.purge('q', 'dead')],
          ['redrive', () => s.redrive('q', {})],
        ];
        for (const [what, call] of calls) {
          const p = call(); // must return a rejected promise, not throw
          await assert.rejects(p, isCode('SHUTTING_DOWN'), what);
        }
      });
    });

    describe('metrics', () => {
      it('metrics name the backend and count commits, operations and messages written', async () => {
        const m0 = s.metrics();
        assert.equal(typeof m0.backend, 'string');
        assert.ok(m0.backend.length > 0);
        await s.enqueue([item('q', 'a', { dedupKey: 'k', dedupUntil: T0 + 1000 }), item('q', 'b')]);
        await s.enqueue([item('q', 'dup', { dedupKey: 'k', dedupUntil: T0 + 1000 })]);
        const m1 = s.metrics();
        assert.equal(m1.commits, m0.commits + 2);
        assert.equal(m1.operations, m0.operations + 2);
        assert.equal(m1.messagesWritten, m0.messagesWritten + 2);
        assert.ok(m1.commitMsTotal >= m0.commitMsTotal);
        assert.ok(m1.commitMsMax >= 0 && m1.commitMsMax <= m1.commitMsTotal);
        assert.ok(m1.sizeBytes >= 0);
      });
    });
  });
}
