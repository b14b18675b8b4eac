/**
 * The embedded SQLite store: better-sqlite3, WAL, and group commit (every call of one
 * event-loop turn in one transaction, one fsync, then every promise of the turn resolves).
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { FerryError } from 'ferrymq/model';
import { BATCH_SIZE_BOUNDS, DURATION_MS_BOUNDS, Histogram } from 'ferrymq/model';
import type { Headers, MessageState, QueueCounts, StoredMessage } from 'ferrymq/model';
import { packFrames, unpackFrames } from '../frames-codec.js';
import type {
  BrowseOptions,
  EnqueueItem,
  EnqueueOutcome,
  EnqueueRequestKey,
  ExpiryDelta,
  LeaseOutcome,
  LeaseRef,
  PurgeOutcome,
  QueueDelta,
  RedriveOptions,
  ReleaseItem,
  Storage,
  StorageRecovery,
  SyncPolicy,
} from '../types.js';
import type { StorageMetrics } from 'ferrymq/model';
import { SQLITE_MIGRATIONS } from './migrations/index.js';
import { SqliteJobStorage } from './sqlite-jobs.js';
import { SqlitePubSubStorage } from './sqlite-pubsub.js';

export const SQLITE_DB_FILE = 'ferry.db';
/** Page cache per connection (negative = KiB in SQLite's terms). */
const CACHE_SIZE_KIB = 8 * 1024;
/** Keep the WAL file from growing past this after a checkpoint. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

const STATE_READY = 0;
const STATE_LEASED = 1;
const STATE_SCHEDULED = 2;
const STATE_DEAD = 3;
const STATE_CODES: Record<MessageState, number> = {
  ready: STATE_READY,
  leased: STATE_LEASED,
  scheduled: STATE_SCHEDULED,
  dead: STATE_DEAD,
};
const STATE_NAMES: MessageState[] = ['ready', 'leased', 'scheduled', 'dead'];

/** Pass as dataDir for a store that lives in memory only (unit tests of the core). */
export const IN_MEMORY = ':memory:';

export interface SqliteStorageOptions {
  /** Folder holding ferry.db and its WAL, or IN_MEMORY. */
  dataDir: string;
  sync: SyncPolicy;
  /** Cap on the database size in bytes (0 = none): past it, writes fail with STORAGE_FULL. */
  maxStoreBytes?: number;
}

interface PendingCall {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

interface MessageRow {
  id: number;
  queue_id: number;
  state: number;
  priority: number;
  not_before: number;
  expires_at: number | null;
  attempts: number;
  enqueued_at: number;
  size: number;
  nframes: number;
  headers: string | null;
  dedup_key: string | null;
  dead_reason: string | null;
  body: Buffer;
}

/** A ready row as the lease query returns it (raw mode: an array, in SELECT order). */
type LeaseRow = [
  id: number,
  priority: number,
  attempts: number,
  enqueuedAt: number,
  size: number,
  nframes: number,
  headers: string | null,
  body: Buffer,
  expiresAt: number | null,
];

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: Database.Database) {
  return {
    queueId: db.prepare<[string], { id: number }>('SELECT id FROM queues WHERE name = ?'),
    insertQueue: db.prepare<[string, number]>(
      'INSERT OR IGNORE INTO queues(name, created_at) VALUES (?, ?)',
    ),
    insertMessage: db.prepare(
      `INSERT INTO messages(queue_id, state, priority, not_before, expires_at, attempts, enqueued_at,
         size, nframes, headers, dedup_key, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    getIdem: db.prepare<[string, string, number], { ids: string }>(
      'SELECT ids FROM idempotency WHERE scope = ? AND key = ? AND expires_at > ?',
    ),
    putIdem: db.prepare<[string, string, string, number]>(
      'INSERT OR REPLACE INTO idempotency(scope, key, ids, expires_at) VALUES (?, ?, ?, ?)',
    ),
    // Rows as arrays, not objects: measured 25 % cheaper per leased message (see LeaseRow).
    selectReady: db
      .prepare<[number, number], LeaseRow>(
        `SELECT id, priority, attempts, enqueued_at, size, nframes, headers, body, expires_at
         FROM messages WHERE queue_id = ? AND state = 0 ORDER BY priority DESC, id LIMIT ?`,
      )
      .raw(true),
    markLeased: db.prepare<[number]>(
      'UPDATE messages SET state = 1, attempts = attempts + 1 WHERE id = ?',
    ),
    deleteById: db.prepare<[number]>('DELETE FROM messages WHERE id = ?'),
    ack: db.prepare<[number, number]>(
      'DELETE FROM messages WHERE id = ? AND state = 1 AND attempts = ?',
    ),
    releaseTo: db.prepare<[number, number, number, number, number]>(
      `UPDATE messages SET state = ?, not_before = ?, attempts = attempts - ?
       WHERE id = ? AND state = 1 AND attempts = ?`,
    ),
    releaseDead: db.prepare<[string, number, number, number]>(
      `UPDATE messages SET state = 3, dead_reason = ?, attempts = attempts - ?
       WHERE id = ? AND state = 1 AND attempts = ?`,
    ),
    dueCounts: db.prepare<[number], { name: string; n: number; bytes: number }>(
      `SELECT q.name AS name, count(*) AS n, sum(m.size) AS bytes FROM messages m
       JOIN queues q ON q.id = m.queue_id
       WHERE m.state = 2 AND m.not_before <= ? GROUP BY q.name`,
    ),
    promote: db.prepare<[number]>(
      'UPDATE messages SET state = 0 WHERE state = 2 AND not_before <= ?',
    ),
    nextDue: db.prepare<[], { t: number | null }>(
      'SELECT min(not_before) AS t FROM messages WHERE state = 2',
    ),
    expiredRows: db.prepare<
      [number, number],
      { id: number; name: string; state: number; size: number }
    >(
      `SELECT m.id AS id, q.name AS name, m.state AS state, m.size AS size FROM messages m
       JOIN queues q ON q.id = m.queue_id
       WHERE m.expires_at <= ? AND m.state IN (0, 2) LIMIT ?`,
    ),
    sweepIdem: db.prepare<[number]>('DELETE FROM idempotency WHERE expires_at <= ?'),
    counts: db.prepare<[], { name: string; state: number | null; n: number; bytes: number | null }>(
      `SELECT q.name AS name, m.state AS state, count(m.id) AS n, sum(m.size) AS bytes
       FROM queues q LEFT JOIN messages m ON m.queue_id = q.id GROUP BY q.name, m.state`,
    ),
    oldest: db.prepare<[number], { t: number }>(
      'SELECT enqueued_at AS t FROM messages WHERE queue_id = ? AND state != 3 ORDER BY id LIMIT 1',
    ),
    purgeStats: db.prepare<[number], { state: number; n: number; bytes: number }>(
      `SELECT state, count(*) AS n, sum(size) AS bytes FROM messages
       WHERE queue_id = ? AND state IN (0, 2) GROUP BY state`,
    ),
    purgeLive: db.prepare<[number]>('DELETE FROM messages WHERE queue_id = ? AND state IN (0, 2)'),
    purgeDead: db.prepare<[number]>('DELETE FROM messages WHERE queue_id = ? AND state = 3'),
    redriveOne: db.prepare<[number, number], { size: number }>(
      `UPDATE messages SET state = 0, attempts = 0, dead_reason = NULL, not_before = enqueued_at
       WHERE id = ? AND queue_id = ? AND state = 3 RETURNING size`,
    ),
    deadIds: db.prepare<[number, number], { id: number }>(
      'SELECT id FROM messages WHERE queue_id = ? AND state = 3 ORDER BY id LIMIT ?',
    ),
    releaseAllLeases: db.prepare('UPDATE messages SET state = 0 WHERE state = 1'),
  };
}

function mapSqliteError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  const code = (err as { code?: unknown }).code;
  if (code === 'SQLITE_FULL') {
    return new FerryError('STORAGE_FULL', 'the disk is full; the write was not stored', {
      cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new FerryError('STORAGE_ERROR', `storage write failed: ${message}`, { cause: err });
}

export class SqliteStorage implements Storage {
  readonly dbPath: string;
  private readonly sync: SyncPolicy;
  private readonly maxStoreBytes: number;
  private db: Database.Database | undefined;
  private st!: Statements;
  private readonly queueIds = new Map<string, number>();
  private pending: PendingCall[] = [];
  readonly jobs = new SqliteJobStorage(<T>(fn: () => T) => this.call(fn));
  readonly pubsub = new SqlitePubSubStorage(<T>(fn: () => T) => this.call(fn));
  private flushScheduled = false;
  private closed = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private walFd: number | undefined;
  private dirtySinceSync = false;
  /** Under `batch`: the WAL fsync running on libuv's thread pool, if one is. */
  private walSyncInFlight: Promise<void> | undefined;
  private readonly m = {
    commits: 0,
    operations: 0,
    messagesWritten: 0,
    fsyncs: 0,
    commitMsTotal: 0,
    commitMsMax: 0,
  };
  private readonly commitMs = new Histogram(DURATION_MS_BOUNDS);
  private readonly commitBatchOps = new Histogram(BATCH_SIZE_BOUNDS);
  private readonly fsyncMs = new Histogram(DURATION_MS_BOUNDS);

  constructor(options: SqliteStorageOptions) {
    this.dbPath =
      options.dataDir === IN_MEMORY ? IN_MEMORY : path.join(options.dataDir, SQLITE_DB_FILE);
    this.sync = options.sync;
    this.maxStoreBytes = options.maxStoreBytes ?? 0;
  }

  async open(): Promise<StorageRecovery> {
    const db = new Database(this.dbPath);
    this.db = db;
    db.pragma('journal_mode = WAL');
    db.pragma(
      `synchronous = ${this.sync.mode === 'always' ? 'FULL' : this.sync.mode === 'batch' ? 'NORMAL' : 'OFF'}`,
    );
    db.pragma(`cache_size = -${CACHE_SIZE_KIB}`);
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    db.pragma('foreign_keys = OFF');
    db.pragma('busy_timeout = 5000');
    this.migrate(db);
    if (this.maxStoreBytes > 0) {
      const pageSize = Number(db.pragma('page_size', { simple: true }));
      db.pragma(`max_page_count = ${Math.max(1, Math.floor(this.maxStoreBytes / pageSize))}`);
    }
    this.st = prepareStatements(db);
    const releasedLeases = this.st.releaseAllLeases.run().changes;
    const requeuedJobs = this.jobs.open(db);
    this.pubsub.open(db);
    if (this.sync.mode === 'batch') {
      const interval = this.sync.intervalMs;
      this.syncTimer = setInterval(() => this.startWalSync(), interval);
      this.syncTimer.unref();
    }
    const queues = this.readCounts();
    const nextDueAt = this.st.nextDue.get()?.t ?? null;
    return { queues, releasedLeases, nextDueAt, requeuedJobs };
  }

  private migrate(db: Database.Database): void {
    db.exec(`CREATE TABLE IF NOT EXISTS migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
    const applied = new Set(
      db
        .prepare<[], { version: number }>('SELECT version FROM migrations')
        .all()
        .map((r) => r.version),
    );
    const latest = SQLITE_MIGRATIONS.at(-1)?.version ?? 0;
    const newest = Math.max(0, ...applied);
    if (newest > latest) {
      throw new FerryError(
        'STORAGE_ERROR',
        `the store was written by a newer Ferry (schema ${newest} > ${latest}); upgrade Ferry`,
      );
    }
    for (const mig of SQLITE_MIGRATIONS) {
      if (applied.has(mig.version)) continue;
      db.transaction(() => {
        db.exec(mig.sql);
        db.prepare('INSERT INTO migrations(version, name, applied_at) VALUES (?, ?, ?)').run(
          mig.version,
          mig.name,
          Date.now(),
        );
      })();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pending.length > 0) this.flush();
    if (this.syncTimer) clearInterval(this.syncTimer);
    // The fd must outlive a sync in flight; then the last commits are pushed out in line.
    await this.walSyncInFlight;
    this.syncWalNow();
    this.forgetWalFd();
    this.db?.close();
    this.db = undefined;
  }

  /** Queue a call for this turn's transaction. */
  private call<T>(run: () => T): Promise<T> {
    if (this.closed || !this.db) {
      return Promise.reject(new FerryError('SHUTTING_DOWN', 'the store is closed'));
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    let calls = this.pending;
    this.pending = [];
    const db = this.db;
    if (calls.length === 0 || !db) return;
    // Usually one pass. If a call makes SQLite abandon the whole transaction (SQLITE_FULL,
    // I/O errors), that call fails alone and the rest of the turn runs again in a new one.
    for (;;) {
      const outcomes: { ok: boolean; value: unknown }[] = new Array(calls.length);
      let culprit = -1;
      const started = performance.now();
      try {
        db.transaction(() => {
          for (let i = 0; i < calls.length; i++) {
            try {
              // A nested transaction is a savepoint: a failing call rolls back alone.
              outcomes[i] = { ok: true, value: db.transaction(calls[i]!.run)() };
            } catch (err) {
              outcomes[i] = { ok: false, value: err };
              // The rollback may have undone a queue this call created.
              this.queueIds.clear();
              if (!db.inTransaction) {
                culprit = i;
                throw err;
              }
            }
          }
        }).immediate();
      } catch (err) {
        this.queueIds.clear();
        if (culprit >= 0) {
          calls[culprit]!.reject(mapSqliteError(outcomes[culprit]!.value));
          calls = calls.filter((_, i) => i !== culprit);
          if (calls.length === 0) return;
          continue;
        }
        const mapped = mapSqliteError(err);
        for (const c of calls) c.reject(mapped);
        return;
      }
      const elapsed = performance.now() - started;
      this.m.commits++;
      this.m.operations += calls.length;
      this.m.commitMsTotal += elapsed;
      if (elapsed > this.m.commitMsMax) this.m.commitMsMax = elapsed;
      this.commitMs.observe(elapsed);
      this.commitBatchOps.observe(calls.length);
      if (this.sync.mode === 'always') this.m.fsyncs++;
      else this.dirtySinceSync = true;
      for (let i = 0; i < calls.length; i++) {
        const o = outcomes[i]!;
        if (o.ok) calls[i]!.resolve(o.value);
        else calls[i]!.reject(mapSqliteError(o.value));
      }
      return;
    }
  }

  /** The WAL's fd for fsync, opened on first use; undefined when there is no WAL file. */
  private walFdForSync(): number | undefined {
    if (this.walFd === undefined) {
      try {
        this.walFd = fs.openSync(`${this.dbPath}-wal`, 'r');
      } catch {
        return undefined; // no WAL yet: nothing to sync
      }
    }
    return this.walFd;
  }

  private forgetWalFd(): void {
    if (this.walFd === undefined) return;
    try {
      fs.closeSync(this.walFd);
    } catch {
      /* already gone */
    }
    this.walFd = undefined;
  }

  /**
   * Under `batch`, on the timer: push the WAL to disk if anything was committed since the last
   * time, on libuv's thread pool, so the event loop (and the commits of the next turns) go on
   * meanwhile — an fdatasync of a second's worth of WAL takes milliseconds. One at a time.
   */
  private startWalSync(): void {
    if (this.sync.mode !== 'batch' || !this.dirtySinceSync || this.walSyncInFlight) return;
    const fd = this.walFdForSync();
    if (fd === undefined) return;
    this.dirtySinceSync = false;
    const started = performance.now();
    this.walSyncInFlight = new Promise<void>((resolve) => {
      fs.fdatasync(fd, (err) => {
        this.walSyncInFlight = undefined;
        if (err) {
          // The WAL was checkpointed away under us: sync again next time, on a new fd.
          this.dirtySinceSync = true;
          this.forgetWalFd();
        } else {
          this.fsyncMs.observe(performance.now() - started);
          this.m.fsyncs++;
        }
        resolve();
      });
    });
  }

  /** Under `batch`, at close: the same fsync, in line. */
  private syncWalNow(): void {
    if (this.sync.mode !== 'batch' || !this.dirtySinceSync) return;
    const fd = this.walFdForSync();
    if (fd === undefined) return;
    this.dirtySinceSync = false;
    try {
      const started = performance.now();
      fs.fdatasyncSync(fd);
      this.fsyncMs.observe(performance.now() - started);
      this.m.fsyncs++;
    } catch {
      this.forgetWalFd();
    }
  }

  private queueId(name: string, create: boolean, now = Date.now()): number | undefined {
    const cached = this.queueIds.get(name);
    if (cached !== undefined) return cached;
    let row = this.st.queueId.get(name);
    if (!row && create) {
      this.st.insertQueue.run(name, now);
      row = this.st.queueId.get(name);
    }
    if (row) this.queueIds.set(name, row.id);
    return row?.id;
  }

  ensureQueue(queue: string): Promise<void> {
    return this.call(() => {
      this.queueId(queue, true);
    });
  }

  enqueue(items: EnqueueItem[], request?: EnqueueRequestKey): Promise<EnqueueOutcome> {
    return this.call(() => {
      const now = items[0]?.enqueuedAt ?? Date.now();
      if (request) {
        const prior = this.st.getIdem.get('request', request.key, now);
        if (prior) {
          const ids = prior.ids === '' ? [] : prior.ids.split(',');
          return { ids, duplicate: ids.map(() => true), replayed: true };
        }
      }
      const ids: string[] = [];
      const duplicate: boolean[] = [];
      for (const item of items) {
        const qid = this.queueId(item.queue, true, item.enqueuedAt)!;
        const scope = `q:${qid}`;
        if (item.dedupKey !== null) {
          const prior = this.st.getIdem.get(scope, item.dedupKey, item.enqueuedAt);
          if (prior) {
            ids.push(prior.ids);
            duplicate.push(true);
            continue;
          }
        }
        let size = 0;
        for (const f of item.frames) size += f.length;
        const scheduled = item.notBefore > item.enqueuedAt;
        const leased = item.leased === true && !scheduled;
        const info = this.st.insertMessage.run(
          qid,
          scheduled ? STATE_SCHEDULED : leased ? STATE_LEASED : STATE_READY,
          item.priority,
          item.notBefore,
          item.expiresAt,
          leased ? 1 : 0,
          item.enqueuedAt,
          size,
          item.frames.length,
          item.headers ? JSON.stringify(item.headers) : null,
          item.dedupKey,
          packFrames(item.frames),
        );
        const id = String(info.lastInsertRowid);
        if (item.dedupKey !== null) this.st.putIdem.run(scope, item.dedupKey, id, item.dedupUntil);
        ids.push(id);
        duplicate.push(false);
      }
      if (request) this.st.putIdem.run('request', request.key, ids.join(','), request.until);
      this.m.messagesWritten += duplicate.filter((d) => !d).length;
      return { ids, duplicate, replayed: false };
    });
  }

  lease(queue: string, max: number, now: number): Promise<LeaseOutcome> {
    return this.call(() => {
      const out: LeaseOutcome = { messages: [], expired: { count: 0, bytes: 0 } };
      const qid = this.queueId(queue, false);
      if (qid === undefined || max <= 0) return out;
      const rows = this.st.selectReady.all(qid, max);
      for (const [
        id,
        priority,
        attempts,
        enqueuedAt,
        size,
        nframes,
        headers,
        body,
        expiresAt,
      ] of rows) {
        if (expiresAt !== null && expiresAt <= now) {
          this.st.deleteById.run(id);
          out.expired.count++;
          out.expired.bytes += size;
          continue;
        }
        this.st.markLeased.run(id);
        out.messages.push({
          id: String(id),
          frames: unpackFrames(body, nframes),
          headers: parseHeaders(headers),
          priority,
          attempts: attempts + 1,
          enqueuedAt,
          size,
        });
      }
      return out;
    });
  }

  ack(refs: LeaseRef[]): Promise<boolean[]> {
    return this.call(() =>
      refs.map((r) => this.st.ack.run(Number(r.id), r.attempts).changes === 1),
    );
  }

  release(items: ReleaseItem[], now: number): Promise<boolean[]> {
    return this.call(() =>
      items.map((it) => {
        const uncount = it.uncount ? 1 : 0;
        const id = Number(it.id);
        if (it.deadReason !== undefined) {
          return this.st.releaseDead.run(it.deadReason, uncount, id, it.attempts).changes === 1;
        }
        const state = it.notBefore > now ? STATE_SCHEDULED : STATE_READY;
        return this.st.releaseTo.run(state, it.notBefore, uncount, id, it.attempts).changes === 1;
      }),
    );
  }

  promoteDue(now: number): Promise<QueueDelta[]> {
    return this.call(() => {
      const rows = this.st.dueCounts.all(now);
      if (rows.length > 0) this.st.promote.run(now);
      return rows.map((r) => ({ queue: r.name, count: r.n, bytes: r.bytes }));
    });
  }

  nextDueAt(): Promise<number | null> {
    return this.call(() => this.st.nextDue.get()?.t ?? null);
  }

  sweepExpired(now: number, max: number): Promise<ExpiryDelta[]> {
    return this.call(() => {
      const rows = this.st.expiredRows.all(now, max);
      const byQueue = new Map<string, ExpiryDelta>();
      for (const r of rows) {
        this.st.deleteById.run(r.id);
        let d = byQueue.get(r.name);
        if (!d) {
          d = { queue: r.name, ready: 0, scheduled: 0, bytes: 0 };
          byQueue.set(r.name, d);
        }
        if (r.state === STATE_READY) d.ready++;
        else d.scheduled++;
        d.bytes += r.size;
      }
      this.st.sweepIdem.run(now);
      return [...byQueue.values()];
    });
  }

  private readCounts(): Map<string, QueueCounts> {
    const out = new Map<string, QueueCounts>();
    for (const r of this.st.counts.all()) {
      let c = out.get(r.name);
      if (!c) {
        c = { ready: 0, leased: 0, scheduled: 0, dead: 0, bytes: 0 };
        out.set(r.name, c);
      }
      if (r.state === null) continue;
      const name = STATE_NAMES[r.state];
      if (!name) continue;
      c[name] += r.n;
      if (r.state !== STATE_DEAD) c.bytes += r.bytes ?? 0;
    }
    return out;
  }

  counts(): Promise<Map<string, QueueCounts>> {
    return this.call(() => this.readCounts());
  }

  browse(queue: string, options: BrowseOptions): Promise<StoredMessage[]> {
    return this.call(() => {
      const qid = this.queueId(queue, false);
      if (qid === undefined) return [];
      const after = options.afterId === undefined ? 0 : Number(options.afterId);
      const rows =
        options.state === undefined
          ? this.db!.prepare<[number, number, number], MessageRow>(
              'SELECT * FROM messages WHERE queue_id = ? AND id > ? ORDER BY id LIMIT ?',
            ).all(qid, after, options.limit)
          : this.db!.prepare<[number, number, number, number], MessageRow>(
              'SELECT * FROM messages WHERE queue_id = ? AND state = ? AND id > ? ORDER BY id LIMIT ?',
            ).all(qid, STATE_CODES[options.state], after, options.limit);
      return rows.map((r) => rowToStored(r, queue));
    });
  }

  oldestEnqueuedAt(queue: string): Promise<number | null> {
    return this.call(() => {
      const qid = this.queueId(queue, false);
      if (qid === undefined) return null;
      return this.st.oldest.get(qid)?.t ?? null;
    });
  }

  purge(queue: string, state: 'ready' | 'dead'): Promise<PurgeOutcome> {
    return this.call(() => {
      const out: PurgeOutcome = { ready: 0, scheduled: 0, dead: 0, bytes: 0 };
      const qid = this.queueId(queue, false);
      if (qid === undefined) return out;
      if (state === 'dead') {
        out.dead = this.st.purgeDead.run(qid).changes;
        return out;
      }
      for (const r of this.st.purgeStats.all(qid)) {
        if (r.state === STATE_READY) out.ready = r.n;
        else out.scheduled = r.n;
        out.bytes += r.bytes;
      }
      this.st.purgeLive.run(qid);
      return out;
    });
  }

  redrive(queue: string, options: RedriveOptions): Promise<{ count: number; bytes: number }> {
    return this.call(() => {
      const out = { count: 0, bytes: 0 };
      const qid = this.queueId(queue, false);
      if (qid === undefined) return out;
      const ids =
        options.ids?.map(Number) ??
        this.st.deadIds.all(qid, options.limit ?? Number.MAX_SAFE_INTEGER).map((r) => r.id);
      for (const id of ids) {
        if (!Number.isSafeInteger(id)) continue;
        const row = this.st.redriveOne.get(id, qid);
        if (row) {
          out.count++;
          out.bytes += row.size;
        }
      }
      return out;
    });
  }

  metrics(): StorageMetrics {
    let sizeBytes = 0;
    for (const suffix of ['', '-wal', '-shm']) {
      try {
        sizeBytes += fs.statSync(this.dbPath + suffix).size;
      } catch {
        /* not there */
      }
    }
    const sync = this.sync.mode === 'batch' ? `batch:${this.sync.intervalMs}` : this.sync.mode;
    return {
      backend: 'sqlite',
      path: this.dbPath,
      sync,
      sizeBytes,
      ...this.m,
      commitMs: this.commitMs.snapshot(),
      commitBatchOps: this.commitBatchOps.snapshot(),
      fsyncMs: this.fsyncMs.snapshot(),
    };
  }
}

function parseHeaders(text: string | null): Headers | undefined {
  if (text === null) return undefined;
  return JSON.parse(text) as Headers;
}

function rowToStored(r: MessageRow, queue: string): StoredMessage {
  return {
    id: String(r.id),
    queue,
    frames: unpackFrames(r.body, r.nframes),
    headers: parseHeaders(r.headers),
    priority: r.priority,
    attempts: r.attempts,
    enqueuedAt: r.enqueued_at,
    notBefore: r.not_before,
    expiresAt: r.expires_at,
    dedupKey: r.dedup_key,
    size: r.size,
    state: STATE_NAMES[r.state] ?? 'ready',
    deadReason: r.dead_reason,
  };
}
