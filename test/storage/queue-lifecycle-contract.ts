/**
 * The queue life-cycle half of the storage contract (`deleteQueue`, `saveQueueSettings` and
 * the `settings` open() reports; src/storage/types.ts), through the interface alone, so every
 * backend runs the same cases. Times are injected; nothing waits.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type {
  EnqueueItem,
  Storage,
  StorageRecovery,
} from 'ferrymq-server/internal/storage/types.js';
import type { StorageFactory, StorageFixture } from './contract.js';

const T0 = Date.UTC(2030, 0, 1);

function item(queue: string, body: string, o: Partial<EnqueueItem> = {}): EnqueueItem {
  return {
    queue,
    frames: [Buffer.from(body)],
    headers: undefined,
    priority: 0,
    enqueuedAt: T0,
    notBefore: T0,
    expiresAt: null,
    dedupKey: null,
    dedupUntil: 0,
    ...o,
  };
}

export function runQueueLifecycleContract(name: string, makeStorage: StorageFactory): void {
  describe(`storage contract, queue life cycle: ${name}`, () => {
    let fixture: StorageFixture;
    let s: Storage;
    let opened: Storage[] = [];

    beforeEach(async () => {
      fixture = await makeStorage();
      s = fixture.storage;
      opened = [s];
      await s.open();
    });

    afterEach(async () => {
      for (const store of opened) await store.close().catch(() => undefined);
      await fixture.cleanup();
    });

    async function closeAndReopen(): Promise<StorageRecovery> {
      await s.close();
      s = await fixture.reopen();
      opened.push(s);
      return s.open();
    }

    it('deleteQueue removes the queue and its messages in every state; other queues keep theirs', async () => {
      await s.enqueue([
        item('gone', 'ready'),
        item('gone', 'leased'),
        item('gone', 'later', { notBefore: T0 + 60_000 }),
        item('gone', 'dead'),
        item('kept', 'k'),
      ]);
      const leased = await s.lease('gone', 2, T0);
      assert.equal(leased.messages.length, 2);
      const dead = leased.messages[1]!;
      assert.deepEqual(
        await s.release([{ id: dead.id, attempts: 1, notBefore: T0, deadReason: 'x' }], T0),
        [true],
      );
      const out = await s.deleteQueue('gone');
      assert.deepEqual(out, { existed: true, messages: 4 });
      const counts = await s.counts();
      assert.equal(counts.has('gone'), false);
      assert.equal(counts.get('kept')?.ready, 1);
      assert.deepEqual(await s.browse('gone', { limit: 10 }), []);
      assert.equal(await s.oldestEnqueuedAt('gone'), null);
      // The leased message is gone too: its ack finds nothing.
      assert.deepEqual(await s.ack([{ id: leased.messages[0]!.id, attempts: 1 }]), [false]);
      assert.equal(await s.nextDueAt(), null, 'its scheduled message no longer comes due');
    });

    it('deleteQueue of an unknown queue reports it did not exist and changes nothing', async () => {
      await s.enqueue([item('kept', 'k')]);
      assert.deepEqual(await s.deleteQueue('nope'), { existed: false, messages: 0 });
      assert.equal((await s.counts()).get('kept')?.ready, 1);
    });

    it('a deleted queue stays deleted after reopen', async () => {
      await s.enqueue([item('gone', 'a'), item('kept', 'k')]);
      await s.deleteQueue('gone');
      const rec = await closeAndReopen();
      assert.equal(rec.queues.has('gone'), false);
      assert.equal(rec.queues.get('kept')?.ready, 1);
    });

    it('a queue used again after its delete starts empty, and the old dedup keys are gone', async () => {
      await s.enqueue([item('q', 'first', { dedupKey: 'k', dedupUntil: T0 + 60_000 })]);
      await s.saveQueueSettings('q', { paused: true, overrides: { maxAttempts: 2 } });
      await s.deleteQueue('q');
      const again = await s.enqueue([
        item('q', 'second', { dedupKey: 'k', dedupUntil: T0 + 60_000 }),
      ]);
      assert.deepEqual(again.duplicate, [false], 'a dedup key of the deleted queue does not match');
      const msgs = await s.browse('q', { limit: 10 });
      assert.deepEqual(
        msgs.map((m) => m.frames[0]!.toString()),
        ['second'],
      );
      const rec = await closeAndReopen();
      assert.equal(rec.settings.has('q'), false, 'its settings went with it');
    });

    it('deleteQueue in the same turn as an enqueue to that queue applies in call order', async () => {
      await s.enqueue([item('q', 'old')]);
      const [del, add] = await Promise.all([s.deleteQueue('q'), s.enqueue([item('q', 'new')])]);
      assert.equal(del.messages, 1);
      assert.equal(add.ids.length, 1);
      assert.deepEqual(
        (await s.browse('q', { limit: 10 })).map((m) => m.frames[0]!.toString()),
        ['new'],
      );
    });

    it('saveQueueSettings is reported by open() after reopen; an empty setting is removed', async () => {
      await s.ensureQueue('a');
      await s.saveQueueSettings('a', { paused: true, overrides: {} });
      await s.saveQueueSettings('b', {
        paused: false,
        overrides: { ackTimeoutMs: 1234, maxDepth: 5 },
      });
      await s.saveQueueSettings('c', { paused: true, overrides: {} });
      await s.saveQueueSettings('c', { paused: false, overrides: {} });
      const rec = await closeAndReopen();
      assert.deepEqual(rec.settings.get('a'), { paused: true, overrides: {} });
      assert.deepEqual(rec.settings.get('b'), {
        paused: false,
        overrides: { ackTimeoutMs: 1234, maxDepth: 5 },
      });
      assert.equal(rec.settings.has('c'), false);
      assert.ok(rec.queues.has('b'), 'saving settings creates the queue');
    });

    it('saving empty settings for an unknown queue creates nothing', async () => {
      await s.saveQueueSettings('ghost', { paused: false, overrides: {} });
      assert.equal((await s.counts()).has('ghost'), false);
    });

    it('open() of a store with no settings reports an empty map', async () => {
      const rec = await closeAndReopen();
      assert.equal(rec.settings.size, 0);
    });
  });
}
