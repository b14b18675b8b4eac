/**
 * The pub/sub half of the storage contract (`Storage.pubsub`, src/storage/types.ts), through
 * the interface alone, so every backend runs the same cases. Times are injected; nothing waits.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type {
  ConfirmationRow,
  PubSubStorage,
  RetainedRow,
  Storage,
} from 'ferrymq-server/internal/storage/types.js';
import type { StorageFactory, StorageFixture } from './contract.js';

const T0 = Date.UTC(2030, 0, 1);

function retainedRow(topic: string, seq: number, body: string, o: Partial<RetainedRow> = {}) {
  return {
    topic,
    seq,
    frames: [Buffer.from(body)],
    headers: undefined,
    publishedAt: T0,
    expiresAt: null,
    ...o,
  } satisfies RetainedRow;
}

/** Topic and first frame of each retained row. */
const values = (rows: RetainedRow[]): [string, string][] =>
  rows.map((r) => [r.topic, r.frames[0]!.toString()]);

export function runPubSubStorageContract(name: string, makeStorage: StorageFactory): void {
  describe(`pub/sub storage contract: ${name}`, () => {
    let fixture: StorageFixture;
    let store: Storage;
    let p: PubSubStorage;
    let opened: Storage[] = [];

    beforeEach(async () => {
      fixture = await makeStorage();
      store = fixture.storage;
      opened = [store];
      await store.open();
      p = store.pubsub;
    });

    afterEach(async () => {
      for (const s of opened) await s.close().catch(() => undefined);
      await fixture.cleanup();
    });

    async function reopen(): Promise<void> {
      await store.close();
      store = await fixture.reopen();
      opened.push(store);
      await store.open();
      p = store.pubsub;
    }

    it('a new store has sequence 0 and no subscriptions', async () => {
      assert.deepEqual(await p.load(), { lastSeq: 0, subscriptions: [] });
      assert.deepEqual(await p.retained('', T0), []);
      assert.equal(await p.nextExpiry(), null);
      assert.deepEqual(await p.confirmations(''), []);
    });

    it('record keeps the highest sequence number, across a reopen; a lower one never lowers it', async () => {
      await p.record(5, { op: 'none' });
      assert.equal((await p.load()).lastSeq, 5);
      await p.record(9, { op: 'none' });
      await p.record(7, { op: 'none' });
      assert.equal((await p.load()).lastSeq, 9);
      await reopen();
      assert.equal((await p.load()).lastSeq, 9);
    });

    it('record set stores the retained value with every field; a later set replaces it', async () => {
      const frames = [Buffer.from('a'), Buffer.alloc(0), Buffer.from([0, 255])];
      await p.record(1, {
        op: 'set',
        row: retainedRow('t/1', 1, '', { frames, headers: { k: 'v' }, expiresAt: T0 + 500 }),
      });
      const [got] = await p.retained('t/1', T0);
      assert.deepEqual(got, {
        topic: 't/1',
        seq: 1,
        frames,
        headers: { k: 'v' },
        publishedAt: T0,
        expiresAt: T0 + 500,
      });
      await p.record(2, {
        op: 'set',
        row: retainedRow('t/1', 2, 'second', { publishedAt: T0 + 1 }),
      });
      const after = await p.retained('t/1', T0);
      assert.equal(after.length, 1);
      assert.equal(after[0]!.seq, 2);
      assert.equal(after[0]!.expiresAt, null);
      assert.equal(after[0]!.publishedAt, T0 + 1);
      assert.deepEqual(values(after), [['t/1', 'second']]);
      assert.equal((await p.load()).lastSeq, 2);
    });

    it('record delete removes the retained value and still records the sequence', async () => {
      await p.record(1, { op: 'set', row: retainedRow('t', 1, 'v') });
      await p.record(2, { op: 'delete', topic: 't' });
      assert.deepEqual(await p.retained('t', T0), []);
      assert.equal((await p.load()).lastSeq, 2);
      await p.record(3, { op: 'delete', topic: 'never-set' });
      assert.equal((await p.load()).lastSeq, 3);
    });

    it('record none leaves retained values alone', async () => {
      await p.record(1, { op: 'set', row: retainedRow('t', 1, 'v') });
      await p.record(2, { op: 'none' });
      assert.deepEqual(values(await p.retained('t', T0)), [['t', 'v']]);
    });

    it('retained reads topics by prefix, in topic order, without those expired at now', async () => {
      let seq = 0;
      const set = (topic: string, body: string, expiresAt: number | null = null) =>
        p.record(++seq, { op: 'set', row: retainedRow(topic, seq, body, { expiresAt }) });
      await set('b/2', 'b2');
      await set('a/x', 'ax');
      await set('b/1', 'b1');
      await set('b', 'b');
      await set('bz', 'bz');
      await set('b/old', 'gone', T0 + 10);
      await set('b/later', 'later', T0 + 11);
      assert.deepEqual(values(await p.retained('b/', T0 + 10)), [
        ['b/1', 'b1'],
        ['b/2', 'b2'],
        ['b/later', 'later'],
      ]);
      assert.deepEqual(values(await p.retained('b/', T0)), [
        ['b/1', 'b1'],
        ['b/2', 'b2'],
        ['b/later', 'later'],
        ['b/old', 'gone'],
      ]);
      assert.deepEqual(
        (await p.retained('', T0 + 100)).map((r) => r.topic),
        ['a/x', 'b', 'b/1', 'b/2', 'bz'],
      );
      assert.deepEqual(await p.retained('c', T0), []);
      await reopen();
      assert.deepEqual(values(await p.retained('a', T0)), [['a/x', 'ax']]);
    });

    it('retained ranges compare code points, not a locale (case and punctuation)', async () => {
      let seq = 0;
      for (const topic of ['a', 'B', 'a.b', 'A', 'a-b', 'é', 'ab']) {
        await p.record(++seq, { op: 'set', row: retainedRow(topic, seq, topic) });
      }
      assert.deepEqual(
        (await p.retained('', T0)).map((r) => r.topic),
        ['A', 'B', 'a', 'a-b', 'a.b', 'ab', 'é'],
      );
      assert.deepEqual(
        (await p.retained('a', T0)).map((r) => r.topic),
        ['a', 'a-b', 'a.b', 'ab'],
      );
    });

    it('expired lists topics whose value expired by now, at most max; nextExpiry is the earliest', async () => {
      let seq = 0;
      const set = (topic: string, expiresAt: number | null) =>
        p.record(++seq, { op: 'set', row: retainedRow(topic, seq, topic, { expiresAt }) });
      await set('forever', null);
      await set('e3', T0 + 30);
      await set('e1', T0 + 10);
      await set('e2', T0 + 20);
      assert.equal(await p.nextExpiry(), T0 + 10);
      assert.deepEqual(await p.expired(T0 + 9, 10), []);
      assert.deepEqual((await p.expired(T0 + 20, 10)).sort(), ['e1', 'e2']);
      const one = await p.expired(T0 + 20, 1);
      assert.equal(one.length, 1);
      assert.ok(['e1', 'e2'].includes(one[0]!));
      assert.deepEqual((await p.expired(T0 + 1000, 10)).sort(), ['e1', 'e2', 'e3']);
      await p.record(++seq, { op: 'delete', topic: 'e1' });
      assert.equal(await p.nextExpiry(), T0 + 20);
      for (const t of ['e2', 'e3']) await p.record(++seq, { op: 'delete', topic: t });
      assert.equal(await p.nextExpiry(), null, 'values without expiry do not count');
    });

    it('durable subscriptions are saved, replaced, deleted, and loaded in name order after a reopen', async () => {
      await p.saveSubscription({ name: 'zeta', pattern: 'z.#', createdAt: T0 });
      await p.saveSubscription({ name: 'alpha', pattern: 'a.*', createdAt: T0 + 1 });
      await p.saveSubscription({ name: 'mid', pattern: 'm', createdAt: T0 + 2 });
      await p.saveSubscription({ name: 'alpha', pattern: 'a.#', createdAt: T0 + 3 });
      assert.equal(await p.deleteSubscription('mid'), true);
      assert.equal(await p.deleteSubscription('mid'), false);
      assert.equal(await p.deleteSubscription('unknown'), false);
      await reopen();
      assert.deepEqual((await p.load()).subscriptions, [
        { name: 'alpha', pattern: 'a.#', createdAt: T0 + 3 },
        { name: 'zeta', pattern: 'z.#', createdAt: T0 },
      ]);
    });

    it('confirm keeps, per (node, topic), the highest sequence number, also within one call', async () => {
      const c = (node: string, topic: string, seq: number, at = T0 + seq): ConfirmationRow => ({
        node,
        topic,
        seq,
        at,
      });
      await p.confirm([c('n1', 'cfg/a', 5), c('n2', 'cfg/a', 3)]);
      await p.confirm([c('n1', 'cfg/a', 4), c('n2', 'cfg/a', 6)]);
      await p.confirm([c('n1', 'cfg/b', 2), c('n1', 'cfg/b', 9), c('n1', 'cfg/b', 7)]);
      await p.confirm([c('n3', 'cfg/b', 1, T0), c('n3', 'cfg/b', 1, T0 + 99)]);
      await p.confirm([]);
      await p.confirm([c('n1', 'other', 1)]);
      await reopen();
      assert.deepEqual(await p.confirmations('cfg/'), [
        c('n1', 'cfg/a', 5),
        c('n2', 'cfg/a', 6),
        c('n1', 'cfg/b', 9),
        c('n3', 'cfg/b', 1, T0),
      ]);
      assert.deepEqual(await p.confirmations('cfg/b'), [
        c('n1', 'cfg/b', 9),
        c('n3', 'cfg/b', 1, T0),
      ]);
      assert.deepEqual(await p.confirmations('other'), [c('n1', 'other', 1)]);
      assert.deepEqual(await p.confirmations('none'), []);
    });

    it('pub/sub calls share the group commit (one commit for a turn)', async () => {
      const before = store.metrics().commits;
      await Promise.all([
        p.record(1, { op: 'set', row: retainedRow('t', 1, 'v') }),
        p.saveSubscription({ name: 's', pattern: 't', createdAt: T0 }),
        p.confirm([{ node: 'n', topic: 't', seq: 1, at: T0 }]),
        p.record(2, { op: 'none' }),
      ]);
      assert.equal(store.metrics().commits - before, 1);
      const state = await p.load();
      assert.equal(state.lastSeq, 2);
      assert.equal(state.subscriptions.length, 1);
    });
  });
}
