/**
 * Group commit for the SQLite store: every call queued in one event-loop turn runs in one
 * transaction (each in a savepoint of its own, so a failing call fails alone), then every
 * promise of the turn settles. Also the WAL fsyncs, and the commit and fsync metrics. Used by
 * {@link SqliteStorage} (sqlite-storage.ts).
 *
 * Commits never fsync on the event loop: SQLite runs with `synchronous=NORMAL` (in WAL mode a
 * commit only writes to the OS; checkpoints sync the WAL before copying it and the database
 * before the WAL is reused). Under `always`, a call that must be durable resolves after an
 * `fdatasync` of the WAL run on libuv's thread pool, one at a time: every commit made while one
 * runs waits for the next, so one fsync covers every commit since the last (group fsync).
 * Calls that need no durability (leases, acks, reads) resolve at their commit.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type Database from 'better-sqlite3';
import {
  BATCH_SIZE_BOUNDS,
  DURATION_MS_BOUNDS,
  FerryError,
  Histogram,
  type StorageMetrics,
} from 'ferrymq/model';
import type { SyncPolicy } from '../types.js';
import { COMMIT_OVERHEAD_BYTES, type DiskFloor } from './disk-floor.js';

/** Statement methods that execute it (counted). */
const COUNTED_STATEMENT_METHODS = ['run', 'get', 'all', 'iterate'] as const;

/** Under `always`: how often commits that nobody waits on (acks, leases) are fsync'd. */
const ALWAYS_BACKGROUND_SYNC_MS = 1000;

export interface SqliteWriterOptions {
  /** The database file (its WAL is `<dbPath>-wal`). */
  dbPath: string;
  sync: SyncPolicy;
  /** A call's savepoint or the turn's transaction rolled back (cached ids may be stale). */
  onRollback: () => void;
  /** The free-disk floor, checked before each commit that could cross it. */
  floor?: DiskFloor;
}

/** What a call adds to the disk (estimated), and whether the floor may refuse it. */
export interface WriteCost {
  diskBytes: number;
  /** New data (a send, a job submit): refused with STORAGE_FULL below the floor. */
  refusable: boolean;
}

/** The writer's part of StorageMetrics: commits, fsyncs and their timings. */
export type SqliteWriterMetrics = Omit<StorageMetrics, 'backend' | 'path' | 'sync' | 'sizeBytes'>;

/**
 * When a call's promise resolves: `durable` after its commit is on disk under the sync policy
 * (an fsync under `always`); `committed` at its commit (written to the OS: a crash of the
 * process loses nothing, a power loss may).
 */
export type WriteLevel = 'durable' | 'committed';

interface PendingCall {
  run: () => unknown;
  cost: WriteCost | undefined;
  level: WriteLevel;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Resolves when the fsync covering commit `seq` is done. */
interface SyncWaiter {
  seq: number;
  resolve: () => void;
  reject: (err: unknown) => void;
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

export class SqliteWriter {
  private readonly dbPath: string;
  private readonly sync: SyncPolicy;
  private readonly onRollback: () => void;
  private readonly floor: DiskFloor | undefined;
  private db: Database.Database | undefined;
  private pending: PendingCall[] = [];
  private flushScheduled = false;
  private closed = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private walFd: number | undefined;
  private dirtySinceSync = false;
  /** The WAL fsync running on libuv's thread pool, if one is. */
  private walSyncInFlight: Promise<void> | undefined;
  /** Commits so far; the highest commit a finished fsync covers. */
  private commitSeq = 0;
  private syncedSeq = 0;
  /** Under `always`: callers waiting for an fsync covering their commit. */
  private syncWaiters: SyncWaiter[] = [];
  private readonly m = {
    commits: 0,
    operations: 0,
    messagesWritten: 0,
    fsyncs: 0,
    sqlStatements: 0,
    sqlControlStatements: 0,
    commitMsTotal: 0,
    commitMsMax: 0,
  };
  private readonly commitMs = new Histogram(DURATION_MS_BOUNDS);
  private readonly commitBatchOps = new Histogram(BATCH_SIZE_BOUNDS);
  private readonly fsyncMs = new Histogram(DURATION_MS_BOUNDS);

  constructor(options: SqliteWriterOptions) {
    this.dbPath = options.dbPath;
    this.sync = options.sync;
    this.onRollback = options.onRollback;
    this.floor = options.floor;
  }

  /**
   * The database is open: calls are taken from now on. Every statement prepared on it from
   * here counts its executions (the sqlStatements metric).
   */
  attach(db: Database.Database): void {
    this.db = db;
    const prepare = db.prepare.bind(db);
    const m = this.m;
    db.prepare = ((sql: string) => {
      const st = prepare(sql) as unknown as Record<string, (...a: unknown[]) => unknown>;
      for (const method of COUNTED_STATEMENT_METHODS) {
        const run = st[method]!;
        st[method] = function (this: unknown, ...args: unknown[]) {
          m.sqlStatements++;
          return run.apply(this, args);
        };
      }
      return st;
    }) as unknown as typeof db.prepare;
  }

  /**
   * Starts the periodic WAL fsync: under `batch` its interval; under `always` every
   * {@link ALWAYS_BACKGROUND_SYNC_MS}, for commits no durable call waited for (acks, leases),
   * so a power loss cannot undo them for longer than that.
   */
  startSyncTimer(): void {
    if (this.sync.mode === 'off') return;
    const interval = this.sync.mode === 'batch' ? this.sync.intervalMs : ALWAYS_BACKGROUND_SYNC_MS;
    this.syncTimer = setInterval(() => this.startWalSync(), interval);
    this.syncTimer.unref();
  }

  /** Counts messages stored (for the metrics). */
  noteMessagesWritten(n: number): void {
    this.m.messagesWritten += n;
  }

  /**
   * Queue a call for this turn's transaction; `cost` for calls that add data; `level` says
   * whether its promise waits for the fsync (default) or only for the commit.
   */
  call<T>(run: () => T, cost?: WriteCost, level: WriteLevel = 'durable'): Promise<T> {
    if (this.closed || !this.db) {
      return Promise.reject(new FerryError('SHUTTING_DOWN', 'the store is closed'));
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, cost, level, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Resolves when every commit made so far is on disk under the sync policy: under `always`
   * after an fsync that started after the last commit (at once when there is none to wait
   * for); under `batch` and `off` at once (they confirm at the commit).
   */
  durable(): Promise<void> {
    if (this.sync.mode !== 'always' || this.syncedSeq >= this.commitSeq) return Promise.resolve();
    const seq = this.commitSeq;
    return new Promise<void>((resolve, reject) => {
      this.syncWaiters.push({ seq, resolve, reject });
      this.startWalSync();
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    let calls = this.pending;
    this.pending = [];
    const db = this.db;
    if (calls.length === 0 || !db) return;
    let written = 0;
    if (this.floor) {
      [calls, written] = this.admitUnderFloor(calls, this.floor);
      if (calls.length === 0) return;
    }
    // Usually one pass. If a call makes SQLite abandon the whole transaction (SQLITE_FULL,
    // I/O errors), that call fails alone and the rest of the turn runs again in a new one.
    for (;;) {
      const outcomes = new Array<{ ok: boolean; value: unknown }>(calls.length);
      let culprit = -1;
      const started = performance.now();
      const single = calls.length === 1;
      // BEGIN and COMMIT, and a SAVEPOINT and RELEASE per call when there are several.
      this.m.sqlControlStatements += 2 + (single ? 0 : 2 * calls.length);
      try {
        if (single) {
          // Alone in its transaction: no savepoint needed, a failure rolls back the whole.
          try {
            outcomes[0] = { ok: true, value: db.transaction(calls[0]!.run).immediate() };
          } catch (err) {
            this.onRollback();
            calls[0]!.reject(mapSqliteError(err));
            return;
          }
        } else
          db.transaction(() => {
            for (let i = 0; i < calls.length; i++) {
              try {
                // A nested transaction is a savepoint: a failing call rolls back alone.
                outcomes[i] = { ok: true, value: db.transaction(calls[i]!.run)() };
              } catch (err) {
                outcomes[i] = { ok: false, value: err };
                // The rollback may have undone a queue this call created.
                this.onRollback();
                if (!db.inTransaction) {
                  culprit = i;
                  throw err;
                }
              }
            }
          }).immediate();
      } catch (err) {
        this.onRollback();
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
      this.floor?.noteWritten(written);
      this.m.commits++;
      this.m.operations += calls.length;
      this.m.commitMsTotal += elapsed;
      if (elapsed > this.m.commitMsMax) this.m.commitMsMax = elapsed;
      this.commitMs.observe(elapsed);
      this.commitBatchOps.observe(calls.length);
      this.commitSeq++;
      this.dirtySinceSync = true;
      const seq = this.commitSeq;
      const always = this.sync.mode === 'always';
      for (let i = 0; i < calls.length; i++) {
        const o = outcomes[i]!;
        const c = calls[i]!;
        if (!o.ok) c.reject(mapSqliteError(o.value));
        else if (always && c.level === 'durable') {
          const value = o.value;
          this.syncWaiters.push({ seq, resolve: () => c.resolve(value), reject: c.reject });
        } else c.resolve(o.value);
      }
      if (this.syncWaiters.length > 0) this.startWalSync();
      return;
    }
  }

  /**
   * Before a commit: the calls that stay above the free-disk floor, and the bytes they write
   * (estimated). When the account says the turn could cross the floor, free space is read
   * again; growing calls that would go below it are refused with STORAGE_FULL, in order
   * (the others — acks, completions, releases — always run: they free space or hold little).
   */
  private admitUnderFloor(calls: PendingCall[], floor: DiskFloor): [PendingCall[], number] {
    let total = COMMIT_OVERHEAD_BYTES;
    for (const c of calls) total += c.cost?.diskBytes ?? 0;
    const room = floor.headroom(total);
    if (room >= total) return [calls, total];
    const kept: PendingCall[] = [];
    let used = COMMIT_OVERHEAD_BYTES;
    for (const c of calls) {
      const bytes = c.cost?.diskBytes ?? 0;
      if (c.cost?.refusable === true && used + bytes > room) {
        c.reject(
          new FerryError(
            'STORAGE_FULL',
            'free disk space is below the floor; the write was refused',
          ),
        );
        continue;
      }
      used += bytes;
      kept.push(c);
    }
    return [kept, used];
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
   * Pushes the WAL to disk on libuv's thread pool, so the event loop (and the commits of the
   * next turns) go on meanwhile; one at a time. When it is done, the waiters whose commits it
   * covers resolve, and if others wait (their commit came after it started) the next starts.
   * Started by durable calls under `always`, and by the timer under `batch`.
   */
  private startWalSync(): void {
    if (!this.dirtySinceSync || this.walSyncInFlight) return;
    const fd = this.walFdForSync();
    if (fd === undefined) {
      // No WAL file (an in-memory store): nothing to push.
      this.syncedSeq = this.commitSeq;
      this.dirtySinceSync = false;
      this.settleSyncWaiters(undefined);
      return;
    }
    this.dirtySinceSync = false;
    const covers = this.commitSeq;
    const started = performance.now();
    this.walSyncInFlight = new Promise<void>((resolve) => {
      fs.fdatasync(fd, (err) => {
        this.walSyncInFlight = undefined;
        if (err) {
          // The WAL's fd went bad: reopen and sync again; the waiters fail (their data may not
          // be on disk), as after any failed fsync.
          this.dirtySinceSync = true;
          this.forgetWalFd();
          this.settleSyncWaiters(
            new FerryError('STORAGE_ERROR', `fsync of the WAL failed: ${err.message}`, {
              cause: err,
            }),
          );
        } else {
          this.fsyncMs.observe(performance.now() - started);
          this.m.fsyncs++;
          this.syncedSeq = covers;
          this.settleSyncWaiters(undefined);
        }
        resolve();
        if (this.syncWaiters.length > 0) this.startWalSync();
      });
    });
  }

  /** Resolves (or, after a failed fsync, rejects) the waiters the last fsync covered. */
  private settleSyncWaiters(err: FerryError | undefined): void {
    if (this.syncWaiters.length === 0) return;
    const waiting: SyncWaiter[] = [];
    for (const w of this.syncWaiters) {
      if (err) w.reject(err);
      else if (w.seq <= this.syncedSeq) w.resolve();
      else waiting.push(w);
    }
    this.syncWaiters = err ? [] : waiting;
  }

  /** At close: the same fsync, in line. */
  private syncWalNow(): void {
    if (this.sync.mode === 'off' || !this.dirtySinceSync) return;
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

  /**
   * Takes no more calls: commits what is queued, stops the timer, and pushes the last commits
   * to disk (after any fsync in flight: the fd must outlive it). The caller closes the db.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pending.length > 0) this.flush();
    if (this.syncTimer) clearInterval(this.syncTimer);
    await this.walSyncInFlight;
    this.syncWalNow();
    this.syncedSeq = this.commitSeq;
    this.settleSyncWaiters(undefined);
    this.forgetWalFd();
    this.db = undefined;
  }

  metrics(): SqliteWriterMetrics {
    return {
      ...this.m,
      commitMs: this.commitMs.snapshot(),
      commitBatchOps: this.commitBatchOps.snapshot(),
      fsyncMs: this.fsyncMs.snapshot(),
    };
  }
}
