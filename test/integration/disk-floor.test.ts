/**
 * The free-disk floor holds under a burst that lands between two of the once-a-second
 * readings. How, and why honestly: a real broker with real SQLite files in a temporary folder
 * on the real disk; only the statfs reading is replaced, by a "small disk" whose free space is
 * a fixed capacity minus the real size of the files in the data folder. Every byte the store
 * writes therefore shows up in the reading exactly as on a small filesystem, without mounting
 * one (a tmpfs mount would need root and cleanup that a killed test run cannot promise).
 * On a store that reads free space only once a second, the burst below writes well past the
 * floor before the next reading, and this test fails.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { connect, FerryError, type FerryClient } from 'ferrymq';
import { loadConfig, startServer, type RunningServer } from 'ferrymq-server';
import { tmpDir, waitFor } from '../helpers/broker.js';

const FLOOR_BYTES = 64 * 1024 * 1024;
/** Free space above the floor when the burst starts. */
const ROOM_BYTES = 4 * 1024 * 1024;
const BLOCK_BYTES = 4096;
const BODY_BYTES = 64 * 1024;
/** Messages in the burst: about three times the room. */
const BURST = 192;
/** Sends issued per event-loop turn (each turn is a SEND request and a group commit). */
const PER_TURN = 4;

/** Bytes of the files in `dir` (ferry.db, its WAL and shared-memory file, the lock). */
function usedBytes(dir: string): number {
  let n = 0;
  for (const f of fs.readdirSync(dir)) n += fs.statSync(path.join(dir, f)).size;
  return n;
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe('free-disk floor under a burst', () => {
  it('refuses the sends that would cross the floor with STORAGE_FULL before the next timed reading, and stores every accepted one', async () => {
    const dataDir = tmpDir();
    // The small disk: the floor plus the room, above what the folder holds at the first reading.
    let capacity: number | undefined;
    const free = (): number => {
      capacity ??= usedBytes(dataDir) + FLOOR_BYTES + ROOM_BYTES;
      return capacity - usedBytes(dataDir);
    };
    const config = loadConfig({
      flags: {
        bind: 'tcp://127.0.0.1:*',
        'log-level': 'silent',
        http: 'off',
        data: dataDir,
        'min-free-disk': String(FLOOR_BYTES),
      },
    });
    let server: RunningServer | undefined = await startServer(config, {
      statfs: () => ({ bavail: Math.max(0, Math.floor(free() / BLOCK_BYTES)), bsize: BLOCK_BYTES }),
    });
    cleanups.push(async () => server?.close());
    const c: FerryClient = await connect(server.endpoint, { requestTimeoutMs: 20_000 });
    cleanups.push(() => c.close({ timeoutMs: 500 }));
    await c.send('warm', 'up');

    const accepted: string[] = [];
    const refusedCodes: string[] = [];
    let lowestFree = free();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < BURST; i++) {
      const body = [Buffer.from(`m${i}`), Buffer.alloc(BODY_BYTES, i % 251)];
      sends.push(
        c.send('burst', body).then(
          (id) => {
            accepted.push(id);
            lowestFree = Math.min(lowestFree, free());
          },
          (err: unknown) => {
            refusedCodes.push(err instanceof FerryError ? err.code : String(err));
          },
        ),
      );
      if (i % PER_TURN === PER_TURN - 1) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(sends);

    assert.ok(refusedCodes.length > 0, `no send was refused (${accepted.length} accepted)`);
    assert.deepEqual([...new Set(refusedCodes)], ['STORAGE_FULL']);
    assert.ok(accepted.length > 0, 'nothing was accepted before the floor');
    assert.ok(
      lowestFree >= FLOOR_BYTES,
      `free space went ${FLOOR_BYTES - lowestFree} bytes below the floor during the burst`,
    );
    // Every accepted send is stored; the checkpoint at close (WAL into the file) stays above too.
    const depth = (await server.broker.queueStats('burst')).depth;
    assert.equal(depth, accepted.length);
    await c.close({ timeoutMs: 500 });
    await server.close();
    server = undefined;
    assert.ok(free() >= FLOOR_BYTES, `after the checkpoint: ${free()} bytes free`);
    // And restarted without the small disk, it holds exactly the accepted messages.
    server = await startServer({ ...config, minFreeDiskBytes: 0 });
    const running = server;
    await waitFor(
      async () => (await running.broker.queueStats('burst')).depth === accepted.length,
      'the accepted messages after a restart',
    );
  });
});
