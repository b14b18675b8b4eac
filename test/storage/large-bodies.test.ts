/**
 * Large message bodies in the SQLite store are kept in chunks (sqlite-bodies.ts): what is
 * read back — leased, browsed, one by id — is what was stored, for one frame and for several
 * frames crossing chunk boundaries; the chunks go with their message however it is deleted;
 * a body of exactly one chunk stays in one piece.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { packFrames } from 'ferrymq-server/internal/storage/frames-codec.js';
import {
  BODY_CHUNK_BYTES,
  packedChunks,
  packedLength,
} from 'ferrymq-server/internal/storage/sqlite/sqlite-bodies.js';
import { SqliteStorage } from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import type { EnqueueItem } from 'ferrymq-server/internal/storage/types.js';
import { tmpDir } from '../helpers/broker.js';
import { prng } from '../helpers/seed.js';

const T0 = Date.UTC(2030, 0, 1);
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function item(frames: Buffer[]): EnqueueItem {
  return {
    queue: 'big',
    frames,
    headers: undefined,
    priority: 0,
    enqueuedAt: T0,
    notBefore: T0,
    expiresAt: null,
    dedupKey: null,
    dedupUntil: 0,
  };
}

/** A buffer of `n` seeded random bytes. */
function bytes(rand: ReturnType<typeof prng>, n: number): Buffer {
  return rand.bytes(n);
}

describe('large bodies in chunks (SQLite)', () => {
  it('packs chunk by chunk exactly what packFrames packs', () => {
    const rand = prng('chunks');
    const cases = [
      [bytes(rand, 3 * BODY_CHUNK_BYTES + 17)],
      [bytes(rand, BODY_CHUNK_BYTES - 2), bytes(rand, 5), bytes(rand, BODY_CHUNK_BYTES + 3)],
      [Buffer.alloc(0), bytes(rand, 2 * BODY_CHUNK_BYTES)],
    ];
    for (const frames of cases) {
      const chunks = [...packedChunks(frames)];
      assert.ok(chunks.every((c) => c.length <= BODY_CHUNK_BYTES));
      assert.equal(packedLength(frames), packFrames(frames).length);
      assert.ok(Buffer.concat(chunks).equals(packFrames(frames)));
    }
  });

  it('reads back what it stored, and deletes the chunks with their message', async () => {
    const dataDir = tmpDir('ferry-chunks-');
    dirs.push(dataDir);
    const store = new SqliteStorage({ dataDir, sync: { mode: 'always' } });
    await store.open();
    const rand = prng('bodies');
    const one = [bytes(rand, 3 * BODY_CHUNK_BYTES + 1)];
    const several = [
      bytes(rand, BODY_CHUNK_BYTES + 5),
      bytes(rand, 9),
      bytes(rand, BODY_CHUNK_BYTES),
    ];
    const exact = [bytes(rand, BODY_CHUNK_BYTES)];
    const reader = new Database(store.dbPath, { readonly: true });
    const chunkRows = (): number =>
      (reader.prepare('SELECT count(*) AS n FROM message_chunks').get() as { n: number }).n;
    try {
      const { ids } = await store.enqueue([item(one), item(several), item(exact)]);
      assert.equal(chunkRows(), 4 + 3, 'one: 4 chunks, several: 3, exact: none');
      const same = (got: Buffer[], want: Buffer[]): void => {
        assert.equal(got.length, want.length);
        got.forEach((f, i) => assert.ok(f.equals(want[i]!), `frame ${i}`));
      };
      const browsed = await store.browse('big', { limit: 10 });
      [one, several, exact].forEach((want, i) => same(browsed[i]!.frames, want));
      same((await store.message('big', ids[1]!))!.frames, several);
      const leased = await store.lease('big', 10, T0);
      [one, several, exact].forEach((want, i) => same(leased.messages[i]!.frames, want));
      // Acked: its chunks are gone.
      assert.deepEqual(await store.ack([{ id: ids[0]!, attempts: 1 }]), [true]);
      assert.equal(chunkRows(), 3);
      await store.release(
        leased.messages.slice(1).map((m) => ({ id: m.id, attempts: m.attempts, notBefore: T0 })),
        T0,
      );
      await store.purge('big', 'ready');
      assert.equal(chunkRows(), 0, 'purged: no chunk left');
      await store.enqueue([item(one)]);
      assert.equal(chunkRows(), 4);
      await store.deleteQueue('big');
      assert.equal(chunkRows(), 0, 'queue deleted: no chunk left');
    } finally {
      reader.close();
      await store.close();
    }
  });
});
