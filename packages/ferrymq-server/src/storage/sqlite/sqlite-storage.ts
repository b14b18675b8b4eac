/**
 * The embedded SQLite store: better-sqlite3, WAL, and group commit (every call of one
 * event-loop turn in one transaction, one fsync, then every promise of the turn resolves).
 * This file opens the store and runs the queue operations; the group commit and WAL fsync
 * are in sqlite-writer.ts, the queue SQL in sqlite-queue-statements.ts, jobs and pub/sub in
 * sqlite-jobs.ts and sqlite-pubsub.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  FerryError,
  messageSize,
  type MessageState,
  type QueueCounts,
  type QueuePolicy,
  type QueueSettings,
  type StorageMetrics,
  type StoredMessage,
} from 'ferrymq/model';
import { packFrames, unpackFrames } from '../frames-codec.js';
import type {
  BrowseOptions,
  DeleteQueueOutcome,
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
  StoreNode,
  SyncPolicy,
} from '../types.js';
import { estimateDiskBytes, type DiskFloor } from './disk-floor.js';
import { SQLITE_MIGRATIONS } from './migrations/index.js';
import {
  BODY_CHUNK_BYTES,
  packedLength,
  prepareBodyStatements,
  readChunks,
  writeChunks,
  type BodyStatements,
} from './sqlite-bodies.js';
import { SqliteJobStorage } from './sqlite-jobs.js';
import { SqlitePubSubStorage } from './sqlite-pubsub.js';
import {
  STATE_CODES,
  STATE_DEAD,
  STATE_LEASED,
  STATE_NAMES,
  STATE_READY,
  STATE_SCHEDULED,
  parseHeaders,
  prepareQueueStatements,
  rowToStored,
  type MessageRow,
  type QueueStatements,
} from './sqlite-queue-statements.js';
import { SqliteWriter, type WriteCost, type WriteLevel } from './sqlite-writer.js';

export const SQLITE_DB_FILE = 'ferry.db';
/** Page cache per connection (negative = KiB in SQLite's terms). */
const CACHE_SIZE_KIB = 8 * 1024;
/** The body column of a message whose body is in chunks. */
const EMPTY_BODY = Buffer.alloc(0);
/** Keep the WAL file from growing past this after a checkpoint. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/** Pass as dataDir for a store that lives in memory only (unit tests of the core). */
export const IN_MEMORY = ':memory:';

export interface SqliteStorageOptions {
  /** Folder holding ferry.db and its WAL, or IN_MEMORY. */
  dataDir: string;
  sync: SyncPolicy;
  /** Cap on the database size in bytes (0 = none): past it, writes fail with STORAGE_FULL. */
  maxStoreBytes?: number;
  /**
   * The free-disk floor of dataDir: checked before each group commit that could cross it;
   * sends and job submits that would go below it are refused with STORAGE_FULL.
   */
  floor?: DiskFloor;
  /**
   * At open, leases of the previous run are held back (scheduled) this long instead of being
   * ready at once, so acks their consumers re-send after reconnecting can settle them
   * (ackRecovered). 0 (default): ready at once.
   */
  recoveryGraceMs?: number;
}

export class SqliteStorage implements Storage {
  readonly dbPath: string;
  private readonly sync: SyncPolicy;
  private readonly maxStoreBytes: number;
  private readonly recoveryGraceMs: number;
  private db: Database.Database | undefined;
  private st!: QueueStatements;
  private bodies!: BodyStatements;
  private readonly queueIds = new Map<string, number>();
  /** Runs every call of a turn in one transaction. */
  private readonly writer: SqliteWriter;
  readonly jobs: SqliteJobStorage;
  readonly pubsub: SqlitePubSubStorage;
  private closed = false;
  private openedAt = 0;

  constructor(options: SqliteStorageOptions) {
    this.dbPath =
      options.dataDir === IN_MEMORY ? IN_MEMORY : path.join(options.dataDir, SQLITE_DB_FILE);
    this.sync = options.sync;
    this.maxStoreBytes = options.maxStoreBytes ?? 0;
    this.recoveryGraceMs = Math.max(0, options.recoveryGraceMs ?? 0);
    this.writer = new SqliteWriter({
      dbPath: this.dbPath,
      sync: this.sync,
      onRollback: () => this.queueIds.clear(),
      floor: options.floor,
    });
    const run = <T>(fn: () => T, cost?: WriteCost, level?: WriteLevel): Promise<T> =>
      this.writer.call(fn, cost, level);
    this.jobs = new SqliteJobStorage(run, () => this.writer.durable());
    this.pubsub = new SqlitePubSubStorage(run);
  }

  async open(): Promise<StorageRecovery> {
    const db = new Database(this.dbPath);
    this.db = db;
    this.openedAt = Date.now();
    this.writer.attach(db);
    db.pragma('journal_mode = WAL');
    // NORMAL under `always` too: commits write to the OS without an fsync on the event loop;
    // the writer fsyncs the WAL off the loop before durable calls resolve (sqlite-writer.ts).
    db.pragma(`synchronous = ${this.sync.mode === 'off' ? 'OFF' : 'NORMAL'}`);
    db.pragma(`cache_size = -${CACHE_SIZE_KIB}`);
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    db.pragma('foreign_keys = OFF');
    db.pragma('busy_timeout = 5000');
    this.migrate(db);
    if (this.maxStoreBytes > 0) {
      const pageSize = Number(db.pragma('page_size', { simple: true }));
      db.pragma(`max_page_count = ${Math.max(1, Math.floor(this.maxStoreBytes / pageSize))}`);
    }
    this.st = prepareQueueStatements(db);
    this.bodies = prepareBodyStatements(db);
    const hold = this.recoveryGraceMs > 0;
    const recoveryUntil = Date.now() + this.recoveryGraceMs;
    const { releasedLeases, recoveredLeases } = this.recoverLeases(recoveryUntil);
    const jobs = this.jobs.open(db, hold);
    this.pubsub.open(db);
    this.writer.startSyncTimer();
    const queues = this.readCounts();
    const nextDueAt = this.st.nextDue.get()?.t ?? null;
    return {
      queues,
      releasedLeases,
      recoveredLeases,
      recoveryUntil: recoveredLeases.length + jobs.held.length > 0 ? recoveryUntil : null,
      recoveredJobs: jobs.held,
      nextDueAt,
      requeuedJobs: jobs.requeued,
      settings: this.readSettings(),
    };
  }

  /** The previous run's leases: ready at once, or held back for the recovery grace. */
  private recoverLeases(
    recoveryUntil: number,
  ): Pick<StorageRecovery, 'releasedLeases' | 'recoveredLeases'> {
    if (this.recoveryGraceMs <= 0) {
      const releasedLeases = this.st.releaseAllLeases.run().changes;
      return { releasedLeases, recoveredLeases: [] };
    }
    const recoveredLeases = this.st.leasedRows
      .all()
      .map((r) => ({ id: String(r.id), queue: r.queue, attempts: r.attempts, size: r.size }));
    if (recoveredLeases.length > 0) this.st.holdLeases.run(recoveryUntil);
    return { releasedLeases: recoveredLeases.length, recoveredLeases };
  }

  private readSettings(): Map<string, QueueSettings> {
    const out = new Map<string, QueueSettings>();
    for (const r of this.st.allSettings.all()) {
      let overrides: Partial<QueuePolicy> = {};
      try {
        const parsed: unknown = JSON.parse(r.policy);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
          overrides = parsed;
        }
      } catch {
        // A row this store did not write: the core checks every key anyway; keep none.
      }
      out.set(r.name, { paused: r.paused !== 0, overrides });
    }
    return out;
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
    await this.writer.close();
    this.db?.close();
    this.db = undefined;
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

  /** A row read with `SELECT *`, its body read back from its chunks if it has any. */
  private withBody(r: MessageRow): MessageRow {
    if (r.chunks > 0) r.body = readChunks(this.bodies, r.id);
    return r;
  }

  ensureQueue(queue: string): Promise<void> {
    return this.writer.call(() => {
      this.queueId(queue, true);
    });
  }

  enqueue(items: EnqueueItem[], request?: EnqueueRequestKey): Promise<EnqueueOutcome> {
    let payload = 0;
    for (const item of items) payload += messageSize(item.frames);
    const cost = { diskBytes: estimateDiskBytes(payload, items.length), refusable: true };
    return this.writer.call(
      () => {
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
          const packed = packedLength(item.frames);
          const chunks = packed > BODY_CHUNK_BYTES ? Math.ceil(packed / BODY_CHUNK_BYTES) : 0;
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
            chunks > 0 ? EMPTY_BODY : packFrames(item.frames),
            chunks,
          );
          if (chunks > 0) writeChunks(this.bodies, Number(info.lastInsertRowid), item.frames);
          const id = String(info.lastInsertRowid);
          if (item.dedupKey !== null)
            this.st.putIdem.run(scope, item.dedupKey, id, item.dedupUntil);
          ids.push(id);
          duplicate.push(false);
        }
        if (request) this.st.putIdem.run('request', request.key, ids.join(','), request.until);
        this.writer.noteMessagesWritten(duplicate.filter((d) => !d).length);
        return { ids, duplicate, replayed: false };
      },
      cost,
      'committed',
    );
  }

  lease(queue: string, max: number, now: number): Promise<LeaseOutcome> {
    return this.writer.call(
      () => {
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
          chunks,
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
            frames: unpackFrames(chunks > 0 ? readChunks(this.bodies, id) : body, nframes),
            headers: parseHeaders(headers),
            priority,
            attempts: attempts + 1,
            enqueuedAt,
            size,
          });
        }
        return out;
      },
      undefined,
      'committed',
    );
  }

  ack(refs: LeaseRef[]): Promise<boolean[]> {
    return this.writer.call(
      () => refs.map((r) => this.st.ack.run(Number(r.id), r.attempts).changes === 1),
      undefined,
      'committed',
    );
  }

  ackRecovered(refs: LeaseRef[]): Promise<boolean[]> {
    return this.writer.call(
      () => refs.map((r) => this.st.ackRecovered.run(Number(r.id), r.attempts).changes === 1),
      undefined,
      'committed',
    );
  }

  release(items: ReleaseItem[], now: number): Promise<boolean[]> {
    return this.writer.call(
      () =>
        items.map((it) => {
          const uncount = it.uncount ? 1 : 0;
          const id = Number(it.id);
          if (it.deadReason !== undefined) {
            return this.st.releaseDead.run(it.deadReason, uncount, id, it.attempts).changes === 1;
          }
          const state = it.notBefore > now ? STATE_SCHEDULED : STATE_READY;
          return this.st.releaseTo.run(state, it.notBefore, uncount, id, it.attempts).changes === 1;
        }),
      undefined,
      'committed',
    );
  }

  promoteDue(now: number): Promise<QueueDelta[]> {
    return this.writer.call(
      () => {
        const rows = this.st.dueCounts.all(now);
        if (rows.length > 0) this.st.promote.run(now);
        return rows.map((r) => ({ queue: r.name, count: r.n, bytes: r.bytes }));
      },
      undefined,
      'committed',
    );
  }

  nextDueAt(): Promise<number | null> {
    return this.writer.call(() => this.st.nextDue.get()?.t ?? null, undefined, 'committed');
  }

  sweepExpired(now: number, max: number): Promise<ExpiryDelta[]> {
    return this.writer.call(
      () => {
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
      },
      undefined,
      'committed',
    );
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
    return this.writer.call(() => this.readCounts(), undefined, 'committed');
  }

  browse(queue: string, options: BrowseOptions): Promise<StoredMessage[]> {
    return this.writer.call(
      () => {
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
        return rows.map((r) => rowToStored(this.withBody(r), queue));
      },
      undefined,
      'committed',
    );
  }

  message(queue: string, id: string): Promise<StoredMessage | null> {
    return this.writer.call(
      () => {
        const qid = this.queueId(queue, false);
        const n = Number(id);
        if (qid === undefined || !Number.isSafeInteger(n)) return null;
        const r = this.db!.prepare<[number, number], MessageRow>(
          'SELECT * FROM messages WHERE id = ? AND queue_id = ?',
        ).get(n, qid);
        return r ? rowToStored(this.withBody(r), queue) : null;
      },
      undefined,
      'committed',
    );
  }

  deleteMessage(queue: string, id: string): Promise<{ state: MessageState; size: number } | null> {
    return this.writer.call(() => {
      const qid = this.queueId(queue, false);
      const n = Number(id);
      if (qid === undefined || !Number.isSafeInteger(n)) return null;
      const r = this.db!.prepare<[number, number, number], { state: number; size: number }>(
        'DELETE FROM messages WHERE id = ? AND queue_id = ? AND state != ? RETURNING state, size',
      ).get(n, qid, STATE_LEASED);
      const state = r ? STATE_NAMES[r.state] : undefined;
      return r && state ? { state, size: r.size } : null;
    });
  }

  oldestEnqueuedAt(queue: string): Promise<number | null> {
    return this.writer.call(
      () => {
        const qid = this.queueId(queue, false);
        if (qid === undefined) return null;
        return this.st.oldest.get(qid)?.t ?? null;
      },
      undefined,
      'committed',
    );
  }

  purge(queue: string, state: 'ready' | 'dead'): Promise<PurgeOutcome> {
    return this.writer.call(() => {
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
    return this.writer.call(() => {
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

  deleteQueue(queue: string): Promise<DeleteQueueOutcome> {
    return this.writer.call(() => {
      const qid = this.queueId(queue, false);
      if (qid === undefined) return { existed: false, messages: 0 };
      const messages = this.st.deleteQueueMessages.run(qid).changes;
      this.st.deleteQueueIdem.run(`q:${qid}`);
      this.st.deleteQueueSettings.run(qid);
      this.st.deleteQueueRow.run(qid);
      this.queueIds.delete(queue);
      return { existed: true, messages };
    });
  }

  saveQueueSettings(queue: string, settings: QueueSettings): Promise<void> {
    return this.writer.call(() => {
      const empty = !settings.paused && Object.keys(settings.overrides).length === 0;
      const qid = this.queueId(queue, !empty);
      if (qid === undefined) return;
      if (empty) this.st.deleteQueueSettings.run(qid);
      else {
        this.st.putSettings.run(
          qid,
          settings.paused ? 1 : 0,
          JSON.stringify(settings.overrides),
          Date.now(),
        );
      }
    });
  }

  durable(): Promise<void> {
    return this.writer.durable();
  }

  /** One broker per data folder: nobody else changes this store. */
  readonly shared = false;

  watch(): void {
    // Nothing to watch: only this broker writes here.
  }

  nodes(): Promise<StoreNode[]> {
    return Promise.resolve([
      { id: 'local', startedAt: this.openedAt, heartbeatAt: Date.now(), self: true },
    ]);
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
      ...this.writer.metrics(),
    };
  }
}
