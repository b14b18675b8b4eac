/**
 * The PostgreSQL store: the whole storage contract on a PostgreSQL database, in its own schema,
 * shared by every broker pointed at it. This file opens the store and runs the queue calls;
 * the group commit is in pg-writer.ts, connections and migrations in pg-schema.ts, jobs and
 * pub/sub in pg-jobs.ts and pg-pubsub.ts.
 *
 * Each broker is a node with an id (`nodeId`): the leases and running jobs it holds carry it
 * (`leased_by`), and at open it releases only its own.
 */
import {
  FerryError,
  type MessageState,
  type QueueCounts,
  type QueuePolicy,
  type QueueSettings,
  type StorageMetrics,
  type StoredMessage,
} from 'ferrymq/model';
import { unpackFrames } from '../frames-codec.js';
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
  RemoteChanges,
  Storage,
  StorageRecovery,
  StoreNode,
  SyncPolicy,
} from '../types.js';
import { PgCluster } from './pg-cluster.js';
import { enqueueInto } from './pg-enqueue.js';
import { PgJobStorage } from './pg-jobs.js';
import { PgPubSubStorage } from './pg-pubsub.js';
import { checkSchemaName, connectPg, migratePg, redactUrl, type PgTarget } from './pg-schema.js';
import {
  SQL_ACK,
  SQL_ACK_RECOVERED,
  SQL_BROWSE,
  SQL_BROWSE_STATE,
  SQL_COUNTS,
  SQL_DELETE_MESSAGE,
  SQL_DELETE_QUEUE_DATA,
  SQL_DELETE_QUEUE_ROW,
  SQL_DELETE_SETTINGS,
  SQL_ENSURE_QUEUE,
  SQL_HOLD_OWN_LEASES,
  SQL_LEASE,
  SQL_MESSAGE,
  SQL_NEXT_DUE,
  SQL_OLDEST,
  SQL_PROMOTE,
  SQL_PURGE_DEAD,
  SQL_PURGE_LIVE,
  SQL_PUT_SETTINGS,
  SQL_QUEUE_ID,
  SQL_REDRIVE,
  SQL_RELEASE,
  SQL_RELEASE_OWN_LEASES,
  SQL_SETTINGS,
  SQL_SIZE,
  SQL_SWEEP,
  STATE_CODES,
  STATE_DEAD,
  STATE_NAMES,
  STATE_READY,
  STATE_SCHEDULED,
  parseHeaders,
  parseId,
  queueScope,
  rowToStored,
  settleRefs,
  type PgLeaseRow,
  type PgMessageRow,
} from './pg-queue-sql.js';
import { PgWriter, type PgSession, type PgWriteLevel } from './pg-writer.js';

export interface PostgresStorageOptions {
  /** postgres://user[:password]@host[:port]/database */
  url: string;
  /** Schema holding the store's tables (created at open). */
  schema: string;
  sync: SyncPolicy;
  /** This broker's id among the brokers sharing the database: its leases carry it. */
  nodeId: string;
  /** A node silent this long is dead: its leases and running jobs go back to the others. */
  nodeTimeoutMs: number;
  /** As in the SQLite store: the previous run's leases are held back this long at open. */
  recoveryGraceMs?: number;
}

export class PostgresStorage implements Storage {
  private readonly target: PgTarget;
  private readonly sync: SyncPolicy;
  readonly nodeId: string;
  private readonly recoveryGraceMs: number;
  private readonly nodeTimeoutMs: number;
  private readonly writer: PgWriter;
  readonly jobs: PgJobStorage;
  readonly pubsub: PgPubSubStorage;
  private closed = false;
  /** Bytes of the store's tables, as last read (at open and with every counts()). */
  private sizeBytes = 0;
  /** Heartbeat, node lock, wake-ups and dead brokers' leases (pg-cluster.ts). */
  readonly cluster: PgCluster;
  /** Shared by every broker pointed at the same database and schema. */
  readonly shared = true;

  constructor(options: PostgresStorageOptions) {
    this.target = { url: options.url, schema: checkSchemaName(options.schema) };
    this.sync = options.sync;
    this.nodeId = options.nodeId;
    this.recoveryGraceMs = Math.max(0, options.recoveryGraceMs ?? 0);
    this.nodeTimeoutMs = options.nodeTimeoutMs;
    this.writer = new PgWriter({
      connect: () => connectPg(this.target),
      sync: this.sync,
      onRollback: () => undefined,
    });
    const run = <T>(fn: (db: PgSession) => Promise<T>, level?: PgWriteLevel): Promise<T> =>
      this.writer.call(fn, level);
    this.jobs = new PgJobStorage(run, () => this.writer.durable(), this.nodeId);
    this.pubsub = new PgPubSubStorage(
      run,
      (db, items) => enqueueInto(db, this.nodeId, items, undefined),
      (n) => this.writer.noteMessagesWritten(n),
    );
    this.cluster = new PgCluster({
      target: this.target,
      nodeId: this.nodeId,
      nodeTimeoutMs: this.nodeTimeoutMs,
      onPeers: (alive) => {
        this.writer.setNotify(alive).catch(() => undefined);
      },
      ownPids: () => [this.writer.pid],
      onError: (err) => this.onBackgroundError?.(err),
    });
  }

  /** Background failures (heartbeat, cluster connection), for the broker's log. */
  onBackgroundError: ((err: Error) => void) | undefined;

  watch(listener: (changes: RemoteChanges) => void): void {
    this.cluster.watch(listener);
  }

  nodes(): Promise<StoreNode[]> {
    return this.cluster.nodes();
  }

  async open(): Promise<StorageRecovery> {
    await migratePg(this.target);
    // The node lock first: a second live broker with this node id must not touch its leases.
    await this.cluster.start();
    await this.writer.open();
    const recovery = await this.writer.exclusive(async (db) => {
      const leases = await this.recoverLeases(db);
      const jobs = await this.jobs.open(db, this.recoveryGraceMs > 0);
      await this.pubsub.open(db);
      const queues = await this.readCounts(db);
      const nextDueAt = (await db.rows<{ t: number | null }>(SQL_NEXT_DUE))[0]?.t ?? null;
      const settings = await this.readSettings(db);
      // Held back for the grace: leases and running jobs of this node's previous run.
      const until = leases.recoveryUntil ?? Date.now() + this.recoveryGraceMs;
      const held = leases.recoveredLeases.length + jobs.held.length > 0;
      return {
        ...leases,
        recoveryUntil: held ? until : null,
        recoveredJobs: jobs.held,
        requeuedJobs: jobs.requeued,
        queues,
        nextDueAt,
        settings,
      };
    });
    return recovery;
  }

  /**
   * This node's leases of its previous run: ready at once, or held back for the recovery
   * grace. Leases of other nodes are theirs (or, once a node is dead, the cluster's).
   */
  private async recoverLeases(
    db: PgSession,
  ): Promise<Pick<StorageRecovery, 'releasedLeases' | 'recoveredLeases' | 'recoveryUntil'>> {
    if (this.recoveryGraceMs <= 0) {
      const releasedLeases = await db.run(SQL_RELEASE_OWN_LEASES, [this.nodeId]);
      return { releasedLeases, recoveredLeases: [], recoveryUntil: null };
    }
    const until = Date.now() + this.recoveryGraceMs;
    const rows = await db.rows<{ id: number; queue: string; attempts: number; size: number }>(
      SQL_HOLD_OWN_LEASES,
      [this.nodeId, until],
    );
    const recoveredLeases = rows.map((r) => ({
      id: String(r.id),
      queue: r.queue,
      attempts: r.attempts,
      size: r.size,
    }));
    return {
      releasedLeases: recoveredLeases.length,
      recoveredLeases,
      recoveryUntil: recoveredLeases.length > 0 ? until : null,
    };
  }

  private async readSettings(db: PgSession): Promise<Map<string, QueueSettings>> {
    const out = new Map<string, QueueSettings>();
    const rows = await db.rows<{ name: string; paused: boolean; policy: string }>(SQL_SETTINGS);
    for (const r of rows) {
      let overrides: Partial<QueuePolicy> = {};
      try {
        const parsed: unknown = JSON.parse(r.policy);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
          overrides = parsed;
        }
      } catch {
        // A row this store did not write: the core checks every key anyway; keep none.
      }
      out.set(r.name, { paused: r.paused, overrides });
    }
    return out;
  }

  private async readCounts(db: PgSession): Promise<Map<string, QueueCounts>> {
    const out = new Map<string, QueueCounts>();
    const rows = await db.rows<{
      name: string;
      state: number | null;
      n: number;
      bytes: number | null;
    }>(SQL_COUNTS);
    for (const r of rows) {
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
    // The size of the store's tables, refreshed with the counts (metrics() cannot wait).
    this.sizeBytes = (await db.rows<{ bytes: number }>(SQL_SIZE))[0]?.bytes ?? 0;
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.cluster.close();
    await this.writer.close();
  }

  /** A queue's id, created first when asked (administrative calls). */
  private async queueId(db: PgSession, queue: string, create: boolean): Promise<number | null> {
    if (create) await db.run(SQL_ENSURE_QUEUE, [queue, Date.now()]);
    return (await db.rows<{ id: number }>(SQL_QUEUE_ID, [queue]))[0]?.id ?? null;
  }

  ensureQueue(queue: string): Promise<void> {
    return this.writer.call(async (db) => {
      await db.run(SQL_ENSURE_QUEUE, [queue, Date.now()]);
    });
  }

  async enqueue(items: EnqueueItem[], request?: EnqueueRequestKey): Promise<EnqueueOutcome> {
    const { outcome, stored } = await this.writer.call(
      (db) => enqueueInto(db, this.nodeId, items, request),
      'committed',
    );
    // Counted once committed (a batch re-run after another call failed runs this call twice).
    this.writer.noteMessagesWritten(stored);
    return outcome;
  }

  lease(queue: string, max: number, now: number): Promise<LeaseOutcome> {
    return this.writer.call(async (db) => {
      const out: LeaseOutcome = { messages: [], expired: { count: 0, bytes: 0 } };
      if (max <= 0) return out;
      const rows = await db.rows<PgLeaseRow>(SQL_LEASE, [queue, max, now, this.nodeId]);
      for (const r of rows) {
        if (r.expired) {
          out.expired.count++;
          out.expired.bytes += r.size;
          continue;
        }
        out.messages.push({
          id: String(r.id),
          frames: unpackFrames(r.body!, r.nframes),
          headers: parseHeaders(r.headers),
          priority: r.priority,
          attempts: r.attempts,
          enqueuedAt: r.enqueued_at,
          size: r.size,
        });
      }
      // UPDATE … RETURNING has no order: highest priority, then oldest, as the contract says.
      out.messages.sort((a, b) => b.priority - a.priority || Number(a.id) - Number(b.id));
      return out;
    }, 'committed');
  }

  ack(refs: LeaseRef[]): Promise<boolean[]> {
    return this.writer.call(
      (db) => settleRefs(refs, (ids, attempts) => db.rows(SQL_ACK, [ids, attempts])),
      'committed',
    );
  }

  ackRecovered(refs: LeaseRef[]): Promise<boolean[]> {
    return this.writer.call(
      (db) =>
        settleRefs(refs, (ids, attempts) =>
          db.rows(SQL_ACK_RECOVERED, [ids, attempts, this.nodeId]),
        ),
      'committed',
    );
  }

  release(items: ReleaseItem[], now: number): Promise<boolean[]> {
    return this.writer.call(
      (db) =>
        settleRefs(items, (ids, attempts, which) => {
          const picked = which.map((i) => items[i]!);
          return db.rows(SQL_RELEASE, [
            ids,
            attempts,
            picked.map((it) =>
              it.deadReason !== undefined
                ? STATE_DEAD
                : it.notBefore > now
                  ? STATE_SCHEDULED
                  : STATE_READY,
            ),
            picked.map((it) => (it.deadReason !== undefined ? null : it.notBefore)),
            picked.map((it) => it.deadReason ?? null),
            picked.map((it) => (it.uncount ? 1 : 0)),
          ]);
        }),
      'committed',
    );
  }

  promoteDue(now: number): Promise<QueueDelta[]> {
    return this.writer.call(async (db) => {
      const rows = await db.rows<{ name: string; n: number; bytes: number }>(SQL_PROMOTE, [now]);
      return rows.map((r) => ({ queue: r.name, count: r.n, bytes: r.bytes }));
    }, 'committed');
  }

  nextDueAt(): Promise<number | null> {
    return this.writer.call(
      async (db) => (await db.rows<{ t: number | null }>(SQL_NEXT_DUE))[0]?.t ?? null,
      'committed',
    );
  }

  sweepExpired(now: number, max: number): Promise<ExpiryDelta[]> {
    return this.writer.call(async (db) => {
      const rows = await db.rows<{ name: string; state: number; n: number; bytes: number }>(
        SQL_SWEEP,
        [now, Math.max(0, max)],
      );
      const byQueue = new Map<string, ExpiryDelta>();
      for (const r of rows) {
        let d = byQueue.get(r.name);
        if (!d) {
          d = { queue: r.name, ready: 0, scheduled: 0, bytes: 0 };
          byQueue.set(r.name, d);
        }
        if (r.state === STATE_READY) d.ready += r.n;
        else d.scheduled += r.n;
        d.bytes += r.bytes;
      }
      return [...byQueue.values()];
    }, 'committed');
  }

  counts(): Promise<Map<string, QueueCounts>> {
    return this.writer.call((db) => this.readCounts(db), 'committed');
  }

  browse(queue: string, options: BrowseOptions): Promise<StoredMessage[]> {
    return this.writer.call(async (db) => {
      const after = options.afterId === undefined ? 0 : (parseId(options.afterId) ?? 0);
      const rows =
        options.state === undefined
          ? await db.rows<PgMessageRow>(SQL_BROWSE, [queue, after, options.limit])
          : await db.rows<PgMessageRow>(SQL_BROWSE_STATE, [
              queue,
              after,
              options.limit,
              STATE_CODES[options.state],
            ]);
      return rows.map((r) => rowToStored(r, queue));
    }, 'committed');
  }

  oldestEnqueuedAt(queue: string): Promise<number | null> {
    return this.writer.call(
      async (db) => (await db.rows<{ t: number }>(SQL_OLDEST, [queue]))[0]?.t ?? null,
      'committed',
    );
  }

  message(queue: string, id: string): Promise<StoredMessage | null> {
    return this.writer.call(async (db) => {
      const n = parseId(id);
      if (n === null) return null;
      const r = (await db.rows<PgMessageRow>(SQL_MESSAGE, [queue, n]))[0];
      return r ? rowToStored(r, queue) : null;
    }, 'committed');
  }

  deleteMessage(queue: string, id: string): Promise<{ state: MessageState; size: number } | null> {
    return this.writer.call(async (db) => {
      const n = parseId(id);
      if (n === null) return null;
      const r = (await db.rows<{ state: number; size: number }>(SQL_DELETE_MESSAGE, [queue, n]))[0];
      const state = r ? STATE_NAMES[r.state] : undefined;
      return r && state ? { state, size: r.size } : null;
    });
  }

  purge(queue: string, state: 'ready' | 'dead'): Promise<PurgeOutcome> {
    return this.writer.call(async (db) => {
      const out: PurgeOutcome = { ready: 0, scheduled: 0, dead: 0, bytes: 0 };
      if (state === 'dead') {
        out.dead = await db.run(SQL_PURGE_DEAD, [queue]);
        return out;
      }
      const rows = await db.rows<{ state: number; n: number; bytes: number }>(SQL_PURGE_LIVE, [
        queue,
      ]);
      for (const r of rows) {
        if (r.state === STATE_READY) out.ready = r.n;
        else out.scheduled = r.n;
        out.bytes += r.bytes;
      }
      return out;
    });
  }

  redrive(queue: string, options: RedriveOptions): Promise<{ count: number; bytes: number }> {
    return this.writer.call(async (db) => {
      const ids = options.ids?.map(parseId).filter((n): n is number => n !== null) ?? null;
      if (ids !== null && ids.length === 0) return { count: 0, bytes: 0 };
      const limit = ids === null ? (options.limit ?? null) : null;
      const r = (await db.rows<{ n: number; bytes: number }>(SQL_REDRIVE, [queue, ids, limit]))[0];
      return { count: r?.n ?? 0, bytes: r?.bytes ?? 0 };
    });
  }

  deleteQueue(queue: string): Promise<DeleteQueueOutcome> {
    return this.writer.call(async (db) => {
      const row = (await db.rows<{ id: number }>(SQL_DELETE_QUEUE_ROW, [queue]))[0];
      if (!row) return { existed: false, messages: 0 };
      const r = await db.rows<{ n: number }>(SQL_DELETE_QUEUE_DATA, [row.id, queueScope(queue)]);
      return { existed: true, messages: r[0]?.n ?? 0 };
    });
  }

  saveQueueSettings(queue: string, settings: QueueSettings): Promise<void> {
    return this.writer.call(async (db) => {
      const empty = !settings.paused && Object.keys(settings.overrides).length === 0;
      if (empty) {
        await db.run(SQL_DELETE_SETTINGS, [queue]);
        return;
      }
      const qid = await this.queueId(db, queue, true);
      if (qid === null) {
        throw new FerryError('STORAGE_ERROR', `queue "${queue}" vanished while saving settings`);
      }
      await db.run(SQL_PUT_SETTINGS, [
        qid,
        settings.paused,
        JSON.stringify(settings.overrides),
        Date.now(),
      ]);
    });
  }

  durable(): Promise<void> {
    return this.writer.durable();
  }

  metrics(): StorageMetrics {
    const sync = this.sync.mode === 'batch' ? `batch:${this.sync.intervalMs}` : this.sync.mode;
    return {
      backend: 'postgres',
      path: `${redactUrl(this.target.url)}#${this.target.schema}`,
      sync,
      sizeBytes: this.sizeBytes,
      ...this.writer.metrics(),
    };
  }
}
