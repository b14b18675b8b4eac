/**
 * Group commit for the SQLite store: every call queued in one event-loop turn runs in one
 * transaction (each in a savepoint of its own, so a failing call fails alone), then every
 * promise of the turn settles. Also the WAL fsync of the `batch` sync policy, and the commit
 * and fsync metrics. Used by {@link SqliteStorage} (sqlite-storage.ts).
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

interface PendingCall {
  run: () => unknown;
  cost: WriteCost | undefined;
  resolve: (value: unknown) => void;
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

  constructor(options: SqliteWriterOptions) {
    this.dbPath = options.dbPath;
    this.sync = options.sync;
    this.onRollback = options.onRollback;
    this.floor = options.floor;
  }

  /** The database is open: calls are taken from now on. */
  attach(db: Database.Database): void {
    this.db = db;
  }

  /** Under `batch`: starts the periodic WAL fsync. */
  startSyncTimer(): void {
    if (this.sync.mode === 'batch') {
      const interval = this.sync.intervalMs;
      this.syncTimer = setInterval(() => this.startWalSync(), interval);
      this.syncTimer.unref();
    }
  }

  /** Counts messages stored (for the metrics). */
  noteMessagesWritten(n: number): void {
    this.m.messagesWritten += n;
  }

  /** Queue a call for this turn's transaction; `cost` for calls that add data. */
  call<T>(run: () => T, cost?: WriteCost): Promise<T> {
    if (this.closed || !this.db) {
      return Promise.reject(new FerryError('SHUTTING_DOWN', 'the store is closed'));
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, cost, resolve: resolve as (v: unknown) => void, reject });
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
      try {
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
