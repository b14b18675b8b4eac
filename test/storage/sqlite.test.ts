/**
 * The storage contract against the SQLite backend (a fresh data folder per case), and the
 * promises only SQLite makes: WAL, its migrations table, and its sync policies.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { FerryError } from 'ferrymq/model';
import {
  SQLITE_DB_FILE,
  SqliteStorage,
} from 'ferrymq-server/internal/storage/sqlite/sqlite-storage.js';
import { SQLITE_MIGRATIONS } from 'ferrymq-server/internal/storage/sqlite/migrations/index.js';
import { MIGRATION_0001_INIT } from 'ferrymq-server/internal/storage/sqlite/migrations/0001-init.js';
import type { EnqueueItem, Storage, SyncPolicy } from 'ferrymq-server/internal/storage/types.js';
import { tmpDir, waitFor } from '../helpers/broker.js';
import { runStorageContract, type StorageFactory } from './contract.js';
import { runJobStorageContract } from './jobs-contract.js';
import { runPubSubStorageContract } from './pubsub-contract.js';
import { runQueueLifecycleContract } from './queue-lifecycle-contract.js';

const ALWAYS: SyncPolicy = { mode: 'always' };

const sqliteFixture: StorageFactory = async () => {
  const dataDir = tmpDir('ferry-storage-');
  const make = (): SqliteStorage => new SqliteStorage({ dataDir, sync: ALWAYS });
  return {
    storage: make(),
    reopen: async () => make(),
    cleanup: async () => fs.rmSync(dataDir, { recursive: true, force: true }),
  };
};

runStorageContract('sqlite', sqliteFixture);
runJobStorageContract('sqlite', sqliteFixture);
runPubSubStorageContract('sqlite', sqliteFixture);
runQueueLifecycleContract('sqlite', sqliteFixture);

const T0 = Date.UTC(2030, 0, 1);

function item(queue: string, body: string): EnqueueItem {
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
  };
}

describe('sqlite storage (SQLite only)', () => {
  const dirs: string[] = [];
  const stores: Storage[] = [];

  function newDir(): string {
    const dir = tmpDir('ferry-sqlite-');
    dirs.push(dir);
    return dir;
  }

  function store(dataDir: string, sync: SyncPolicy = ALWAYS): SqliteStorage {
    const s = new SqliteStorage({ dataDir, sync });
    stores.push(s);
    return s;
  }

  /** Runs `fn` over a second, read-only connection to the database file. */
  function inspect<T>(dataDir: string, fn: (db: Database.Database) => T): T {
    const db = new Database(path.join(dataDir, SQLITE_DB_FILE), { readonly: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  }

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('SQLite: keeps its data in <dataDir>/ferry.db in WAL mode', async () => {
    const dir = newDir();
    const s = store(dir);
    await s.open();
    await s.enqueue([item('q', 'a')]);
    assert.equal(s.metrics().backend, 'sqlite');
    assert.equal(s.metrics().path, path.join(dir, 'ferry.db'));
    assert.ok(fs.existsSync(path.join(dir, 'ferry.db')));
    assert.equal(
      inspect(dir, (db) => db.pragma('journal_mode', { simple: true })),
      'wal',
    );
    assert.ok(s.metrics().sizeBytes > 0);
  });

  it('SQLite: the migrations table records every schema version, in order', async () => {
    const dir = newDir();
    await store(dir).open();
    const versions = inspect(dir, (db) =>
      db
        .prepare<[], { version: number }>('SELECT version FROM migrations ORDER BY version')
        .all()
        .map((r) => r.version),
    );
    assert.deepEqual(
      versions,
      SQLITE_MIGRATIONS.map((m) => m.version),
    );
    assert.deepEqual(versions, [1, 2, 3, 4, 5]);
  });

  it('SQLite: a store at schema 1 (an older Ferry) is upgraded on open and keeps its messages', async () => {
    const dir = newDir();
    const db = new Database(path.join(dir, SQLITE_DB_FILE));
    db.exec(MIGRATION_0001_INIT);
    db.exec(
      'CREATE TABLE migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    db.prepare('INSERT INTO migrations VALUES (1, ?, ?)').run('init', Date.now());
    db.prepare('INSERT INTO queues(name, created_at) VALUES (?, ?)').run('old', Date.now());
    db.prepare(
      `INSERT INTO messages(queue_id, state, priority, not_before, attempts, enqueued_at, size,
         nframes, body) VALUES (1, 0, 0, 0, 0, 0, 3, 1, ?)`,
    ).run(Buffer.from('old'));
    db.close();
    const s2 = store(dir);
    const recovery = await s2.open();
    assert.equal(recovery.queues.get('old')?.ready, 1);
    const counts = await s2.jobs.counts();
    assert.equal(counts.size, 0, 'the jobs table exists and is empty');
    await s2.close();
  });

  it('SQLite: reopening applies no migration twice', async () => {
    const dir = newDir();
    const first = store(dir);
    await first.open();
    await first.close();
    await store(dir).open();
    const n = inspect(
      dir,
      (db) => db.prepare<[], { n: number }>('SELECT count(*) AS n FROM migrations').get()?.n,
    );
    assert.equal(n, SQLITE_MIGRATIONS.length);
  });

  it('SQLite: a data folder written by a newer schema is refused on open with STORAGE_ERROR', async () => {
    const dir = newDir();
    const first = store(dir);
    await first.open();
    await first.enqueue([item('q', 'kept')]);
    await first.close();
    const db = new Database(path.join(dir, SQLITE_DB_FILE));
    db.prepare('INSERT INTO migrations(version, name, applied_at) VALUES (?, ?, ?)').run(
      999,
      'from-the-future',
      T0,
    );
    db.close();

    await assert.rejects(store(dir).open(), (err: unknown) => {
      assert.ok(err instanceof FerryError, `expected a FerryError, got ${String(err)}`);
      assert.equal(err.code, 'STORAGE_ERROR');
      return true;
    });
    // Refusing touched nothing.
    const rows = inspect(dir, (d) =>
      d.prepare<[], { n: number }>('SELECT count(*) AS n FROM messages').get(),
    );
    assert.equal(rows?.n, 1);
  });

  const policies: [string, SyncPolicy][] = [
    ['always', { mode: 'always' }],
    ['batch:20', { mode: 'batch', intervalMs: 20 }],
    ['off', { mode: 'off' }],
  ];
  for (const [label, sync] of policies) {
    it(`SQLite: sync policy ${label} opens, round-trips and survives a reopen`, async () => {
      const dir = newDir();
      const s = store(dir, sync);
      await s.open();
      assert.equal(s.metrics().sync, label);
      const { ids } = await s.enqueue([item('q', 'a'), item('q', 'b')]);
      const { messages } = await s.lease('q', 1, T0);
      assert.deepEqual(
        messages.map((m) => [m.id, m.frames[0]!.toString()]),
        [[ids[0], 'a']],
      );
      assert.deepEqual(await s.ack([{ id: ids[0]!, attempts: 1 }]), [true]);
      await s.close();

      const again = store(dir, sync);
      const rec = await again.open();
      assert.deepEqual(rec.queues.get('q'), {
        ready: 1,
        leased: 0,
        scheduled: 0,
        dead: 0,
        bytes: 1,
      });
      const rows = await again.browse('q', { limit: 10 });
      assert.deepEqual(
        rows.map((m) => [m.id, m.frames[0]!.toString()]),
        [[ids[1], 'b']],
      );
    });
  }

  it('SQLite: under sync always, hot-path calls resolve at the commit and durable() fsyncs once for all of them', async () => {
    const s = store(newDir(), { mode: 'always' });
    await s.open();
    await s.enqueue([item('q', 'a')]);
    await Promise.all([s.enqueue([item('q', 'b')]), s.lease('q', 2, T0)]);
    await s.counts();
    const before = s.metrics();
    assert.equal(before.commits, 3);
    assert.equal(before.fsyncs, 0, 'enqueue, lease and reads resolve at their commit');
    await s.durable();
    assert.equal(s.metrics().fsyncs, 1, 'one fsync covers the three commits');
    await s.durable();
    assert.equal(s.metrics().fsyncs, 1, 'nothing committed since: nothing to fsync');
    // An administrative call resolves only once durable: its own fsync.
    await s.saveQueueSettings('q', { paused: true, overrides: {} });
    assert.equal(s.metrics().fsyncs, 2);
    // Jobs share the same durability.
    await s.jobs.durable();
    assert.equal(s.metrics().fsyncs, 2);
  });

  it("SQLite: under sync always, commits nobody waits on (acks, leases) are fsync'd within a second", async () => {
    const s = store(newDir(), { mode: 'always' });
    await s.open();
    const { ids } = await s.enqueue([item('q', 'a')]);
    const { messages } = await s.lease('q', 1, T0);
    await s.ack([{ id: ids[0]!, attempts: messages[0]!.attempts }]);
    assert.equal(s.metrics().fsyncs, 0, 'nothing waited for durability');
    await waitFor(() => s.metrics().fsyncs >= 1, 'the background fsync', { timeoutMs: 3_000 });
  });

  it('SQLite: under sync always, durable() waits for an fsync that started after the commit (group fsync)', async () => {
    const s = store(newDir(), { mode: 'always' });
    await s.open();
    // Commits in three turns, each followed by a wait for durability, all at once: each wait
    // resolves after an fsync that covers its commit, and never more fsyncs than commits.
    const seen: number[] = [];
    await Promise.all(
      ['x', 'y', 'z'].map((body, i) =>
        new Promise((r) => setTimeout(r, i)).then(async () => {
          await s.enqueue([item('q', body)]);
          const fsyncsAtCommit = s.metrics().fsyncs;
          await s.durable();
          seen.push(fsyncsAtCommit);
          assert.ok(s.metrics().fsyncs > fsyncsAtCommit, 'an fsync finished after the commit');
        }),
      ),
    );
    const m = s.metrics();
    assert.equal(seen.length, 3);
    assert.ok(m.fsyncs >= 1 && m.fsyncs <= m.commits, `fsyncs ${m.fsyncs}, commits ${m.commits}`);
  });

  it('SQLite: under sync off, commits never fsync', async () => {
    const s = store(newDir(), { mode: 'off' });
    await s.open();
    await s.enqueue([item('q', 'a')]);
    await s.lease('q', 1, T0);
    assert.equal(s.metrics().commits, 2);
    assert.equal(s.metrics().fsyncs, 0);
  });
  it("SQLite: under sync batch, commits do not fsync; the WAL is fsync'd on the timer, and at close what the timer had not yet", async () => {
    const s = store(newDir(), { mode: 'batch', intervalMs: 20 });
    await s.open();
    await s.enqueue([item('q', 'a')]);
    assert.equal(s.metrics().fsyncs, 0, 'the commit itself did not fsync');
    // The timer's fsync runs on the thread pool: this loop keeps turning while it does.
    await waitFor(() => s.metrics().fsyncs >= 1, 'the interval fsync of the WAL', {
      timeoutMs: 5_000,
    });
    const afterTimer = s.metrics().fsyncs;
    // Nothing new committed: the timer has nothing to push.
    await s.counts();
    await s.enqueue([item('q', 'b')]);
    // Committed just now, before the next tick: close pushes it out itself.
    await s.close();
    assert.ok(s.metrics().fsyncs > afterTimer, 'close fsyncs what the timer had not yet');
  });

  it('SQLite: a call that fills the store fails alone with STORAGE_FULL; the rest of its turn commits', async () => {
    const dir = newDir();
    const s = new SqliteStorage({ dataDir: dir, sync: ALWAYS, maxStoreBytes: 256 * 1024 });
    stores.push(s);
    await s.open();
    const first = await s.enqueue([item('q', 'first')]);
    const leased = await s.lease('q', 1, T0);
    const big: EnqueueItem = { ...item('q', 'big'), frames: [Buffer.alloc(1024 * 1024, 1)] };
    // One turn: an ack, a send that cannot fit, and a small send.
    const [ack, tooBig, small] = await Promise.allSettled([
      s.ack([{ id: first.ids[0]!, attempts: leased.messages[0]!.attempts }]),
      s.enqueue([big]),
      s.enqueue([item('q', 'small')]),
    ]);
    assert.deepEqual(ack, { status: 'fulfilled', value: [true] });
    assert.equal(tooBig.status, 'rejected');
    assert.ok(tooBig.status === 'rejected' && tooBig.reason instanceof FerryError);
    assert.equal(tooBig.reason.code, 'STORAGE_FULL');
    assert.equal(small.status, 'fulfilled');
    const bodies = (await s.browse('q', { limit: 10 })).map((m) => m.frames[0]!.toString());
    assert.deepEqual(bodies, ['small']);
  });
});
