/**
 * Group commit for the PostgreSQL store: every call queued while the previous transaction ran
 * (at least one event-loop turn) runs in one transaction on one pinned connection, in call
 * order; then every promise of the batch settles. Also the statement and commit metrics.
 *
 * A failing call fails alone, as the storage contract says, without a savepoint per call on
 * the usual path (each would cost a round trip): calls are written so that expected outcomes
 * come back as rows, not errors. When a call does throw, PostgreSQL has aborted the whole
 * transaction; it is rolled back and the batch runs again with a savepoint around each call,
 * so the failing call rejects and the others commit. A deadlock or serialization failure
 * between brokers sharing the database retries the batch a few times.
 *
 * Under `--sync always`, a batch of calls that all resolve at their commit ('committed': the
 * hot path, whose confirms wait for durable()) commits without waiting for the WAL flush;
 * durable() then waits for a flush barrier on a second connection (pg-flush.ts), shared by
 * every confirm that asks meanwhile. A batch holding any 'durable' call commits with the
 * flush, as before.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import {
  BATCH_SIZE_BOUNDS,
  DURATION_MS_BOUNDS,
  FerryError,
  Histogram,
  type StorageMetrics,
} from 'ferrymq/model';
import type { SyncPolicy } from '../types.js';
import { PgFlushBarrier } from './pg-flush.js';

/** PostgreSQL's int8 (BIGINT, BIGSERIAL, count(*)): read as numbers, not strings. */
const PG_INT8_OID = 20;
/** numeric (sum() of integers): read as numbers. */
const PG_NUMERIC_OID = 1700;
/** How often a batch is retried after a deadlock or serialization failure. */
const CONFLICT_RETRIES = 5;
/** SQLSTATEs worth retrying the whole batch for. */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);
/** SQLSTATEs meaning the disk or the database is full. */
const FULL_SQLSTATES = new Set(['53100', '53200', '54000']);

/** The pg type parsers of the store: int8 and numeric as numbers (ids stay below 2^53). */
export const PG_TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (oid === PG_INT8_OID || oid === PG_NUMERIC_OID) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format) as (value: string) => unknown;
  },
};

/** Runs statements inside the current transaction; counts each (the sqlStatements metric). */
export interface PgSession {
  /** Rows of one statement, prepared once per connection (named by its text). */
  rows<R>(text: string, values?: readonly unknown[]): Promise<R[]>;
  /** Rows changed (or returned) by one statement. */
  run(text: string, values?: readonly unknown[]): Promise<number>;
}

/** When a call's promise resolves: see WriteLevel in the SQLite store (sqlite-writer.ts). */
export type PgWriteLevel = 'durable' | 'committed';

interface PendingCall {
  run: (db: PgSession) => Promise<unknown>;
  level: PgWriteLevel;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export interface PgWriterOptions {
  /** Opens a new connection (search_path set) for the writer. */
  connect: () => Promise<pg.Client>;
  sync: SyncPolicy;
  /** A batch rolled back (cached ids may be stale). */
  onRollback: () => void;
}

/** The writer's part of StorageMetrics. */
export type PgWriterMetrics = Omit<StorageMetrics, 'backend' | 'path' | 'sync' | 'sizeBytes'>;

/** Maps a driver error to a Ferry error (STORAGE_FULL, or STORAGE_ERROR with the cause). */
function mapPgError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && FULL_SQLSTATES.has(code)) {
    return new FerryError('STORAGE_FULL', 'the database is full; the write was not stored', {
      cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new FerryError('STORAGE_ERROR', `storage call failed: ${message}`, { cause: err });
}

function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && RETRYABLE_SQLSTATES.has(code);
}

export class PgWriter {
  private readonly connect: () => Promise<pg.Client>;
  private readonly sync: SyncPolicy;
  private readonly onRollback: () => void;
  private client: pg.Client | undefined;
  /** A connection being opened: callers meanwhile wait for it rather than open another. */
  private connecting: Promise<pg.Client> | undefined;
  /** The client broke (connection lost): a new one is opened for the next batch. */
  private broken = false;
  private pending: PendingCall[] = [];
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly names = new Map<string, string>();
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
  private readonly session: PgSession;
  /** Commits notify other brokers (the wake-up triggers fire): set while peers are alive. */
  private notify = false;
  /** Under `always`: the flush that confirms of batches committed without one wait for. */
  private readonly flush: PgFlushBarrier;

  constructor(options: PgWriterOptions) {
    this.connect = options.connect;
    this.sync = options.sync;
    this.onRollback = options.onRollback;
    this.flush = new PgFlushBarrier({
      connect: options.connect,
      onFlush: (elapsedMs) => {
        this.m.fsyncs++;
        this.fsyncMs.observe(elapsedMs);
      },
    });
    this.session = {
      rows: async <R>(text: string, values?: readonly unknown[]): Promise<R[]> =>
        (await this.exec(text, values)).rows as R[],
      run: async (text: string, values?: readonly unknown[]): Promise<number> =>
        (await this.exec(text, values)).rowCount ?? 0,
    };
  }

  /** Opens the writer's connection. */
  async open(): Promise<void> {
    await this.ensureClient();
  }

  /** The connection, opened (or reopened after it broke) by one caller at a time. */
  private ensureClient(): Promise<pg.Client> {
    if (this.client && !this.broken) return Promise.resolve(this.client);
    this.connecting ??= this.openClient().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async openClient(): Promise<pg.Client> {
    if (this.client) {
      const old = this.client;
      this.client = undefined;
      await old.end().catch(() => undefined);
    }
    const client = await this.connect();
    const lost = (): void => {
      // A lost connection (a PostgreSQL restart): the batch in flight fails with the query's
      // own error; the next batch reconnects.
      if (this.client === client || this.client === undefined) this.broken = true;
    };
    client.on('error', lost);
    client.on('end', lost);
    // A commit does not wait for the WAL flush (PostgreSQL's wal_writer flushes within a few
    // hundred ms) unless it must: under `always`, a batch with a 'durable' call turns the wait
    // on for its transaction (begin()); the others are confirmed after a barrier (pg-flush.ts).
    await client.query('SET synchronous_commit = off');
    await client.query(`SET ferry.notify = ${this.notify ? 'on' : 'off'}`);
    this.m.sqlControlStatements += 2;
    this.client = client;
    this.broken = false;
    return client;
  }

  private async exec(text: string, values?: readonly unknown[]): Promise<pg.QueryResult> {
    const client = this.client;
    if (!client) throw new FerryError('STORAGE_ERROR', 'no connection to PostgreSQL');
    let name = this.names.get(text);
    if (name === undefined) {
      name = `f${this.names.size}`;
      this.names.set(text, name);
    }
    this.m.sqlStatements++;
    return client.query({ name, text, values: values as unknown[] | undefined });
  }

  private async control(sql: string): Promise<void> {
    this.m.sqlControlStatements++;
    await this.client!.query(sql);
  }

  /** The backend pid of the writer's connection (0 before it opens). */
  get pid(): number {
    return (this.client as unknown as { processID?: number } | undefined)?.processID ?? 0;
  }

  /**
   * Whether this broker's commits wake other brokers (the triggers of migration 0002 fire
   * only in sessions with `ferry.notify` on). Applied before the next batch.
   */
  setNotify(on: boolean): Promise<void> {
    this.notify = on;
    return this.call(async (db) => {
      await db.rows("SELECT set_config('ferry.notify', $1, false)", [on ? 'on' : 'off']);
    });
  }

  /** Counts messages stored (for the metrics). */
  noteMessagesWritten(n: number): void {
    this.m.messagesWritten += n;
  }

  /**
   * Queue a call for the next transaction. Both levels resolve at the commit; under `always`
   * a 'durable' call's commit waits for the WAL flush, and a batch of only 'committed' calls
   * commits without it (their confirms wait for durable()).
   */
  call<T>(run: (db: PgSession) => Promise<T>, level: PgWriteLevel = 'durable'): Promise<T> {
    if (this.closed) return Promise.reject(new FerryError('SHUTTING_DOWN', 'the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({
        run: run,
        level,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      if (!this.running) {
        this.running = new Promise<void>((done) => setImmediate(() => void this.drain(done)));
      }
    });
  }

  /**
   * Resolves once every commit so far is durable: under `always`, after a flush barrier that
   * covers the commits made without one; under the other policies at once (they confirm at
   * the commit).
   */
  durable(): Promise<void> {
    if (this.sync.mode !== 'always') return Promise.resolve();
    return this.flush.flushed();
  }

  /** Runs batches until nothing is pending. */
  private async drain(done: () => void): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const calls = this.pending;
        this.pending = [];
        await this.runBatch(calls);
      }
    } finally {
      this.running = undefined;
      done();
    }
  }

  private async runBatch(calls: PendingCall[]): Promise<void> {
    try {
      await this.ensureClient();
    } catch (err) {
      const mapped = mapPgError(err);
      for (const c of calls) c.reject(mapped);
      return;
    }
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      // Under `always`, a batch nobody waits on the flush for commits without it.
      const relaxed = this.sync.mode === 'always' && calls.every((c) => c.level === 'committed');
      try {
        const outcome = await this.fastPath(calls, relaxed);
        if (outcome === 'failed') await this.slowPath(calls, relaxed);
        else this.settle(calls, outcome);
        this.noteCommit(started, calls.length, relaxed);
        return;
      } catch (err) {
        await this.rollbackQuietly();
        if (isRetryable(err) && attempt < CONFLICT_RETRIES) continue;
        if (!this.broken && (err as { code?: unknown }).code === undefined) this.broken = true;
        const mapped = mapPgError(err);
        for (const c of calls) c.reject(mapped);
        return;
      }
    }
  }

  /**
   * Every call in one transaction. Returns each call's value, or 'failed' when a call threw
   * (rolled back: the batch must run again with savepoints). Throws when BEGIN or COMMIT fails.
   */
  private async fastPath(calls: PendingCall[], relaxed: boolean): Promise<unknown[] | 'failed'> {
    await this.begin(relaxed);
    const values = new Array<unknown>(calls.length);
    for (let i = 0; i < calls.length; i++) {
      try {
        values[i] = await calls[i]!.run(this.session);
      } catch (err) {
        if (isRetryable(err) || this.broken) throw err;
        await this.control('ROLLBACK');
        this.onRollback();
        return 'failed';
      }
    }
    await this.control('COMMIT');
    return values;
  }

  /** The batch again, each call in a savepoint: a failing call rejects alone. */
  private async slowPath(calls: PendingCall[], relaxed: boolean): Promise<void> {
    await this.begin(relaxed);
    const outcomes: { ok: boolean; value: unknown }[] = [];
    for (const c of calls) {
      await this.control('SAVEPOINT call');
      try {
        outcomes.push({ ok: true, value: await c.run(this.session) });
        await this.control('RELEASE SAVEPOINT call');
      } catch (err) {
        if (isRetryable(err) || this.broken) throw err;
        outcomes.push({ ok: false, value: err });
        await this.control('ROLLBACK TO SAVEPOINT call');
        this.onRollback();
      }
    }
    await this.control('COMMIT');
    for (let i = 0; i < calls.length; i++) {
      const o = outcomes[i]!;
      if (o.ok) calls[i]!.resolve(o.value);
      else calls[i]!.reject(mapPgError(o.value));
    }
  }

  /**
   * BEGIN; under `always` a batch that is not relaxed also turns the flush wait on for its
   * transaction, in the same round trip.
   */
  private async begin(relaxed: boolean): Promise<void> {
    if (relaxed || this.sync.mode !== 'always') return this.control('BEGIN');
    this.m.sqlControlStatements++;
    await this.control('BEGIN; SET LOCAL synchronous_commit = on');
  }

  private settle(calls: PendingCall[], values: unknown[]): void {
    for (let i = 0; i < calls.length; i++) calls[i]!.resolve(values[i]);
  }

  private noteCommit(started: number, ops: number, relaxed: boolean): void {
    const elapsed = performance.now() - started;
    this.m.commits++;
    if (relaxed) {
      this.flush.noteUnflushedCommit();
    } else if (this.sync.mode === 'always') {
      this.m.fsyncs++;
      this.flush.noteFlushedCommit();
    }
    this.m.operations += ops;
    this.m.commitMsTotal += elapsed;
    if (elapsed > this.m.commitMsMax) this.m.commitMsMax = elapsed;
    this.commitMs.observe(elapsed);
    this.commitBatchOps.observe(ops);
  }

  private async rollbackQuietly(): Promise<void> {
    this.onRollback();
    if (!this.client || this.broken) return;
    try {
      await this.control('ROLLBACK');
    } catch {
      this.broken = true;
    }
  }

  /**
   * Runs `fn` in a transaction of its own, outside the group commit (open and recovery),
   * after any batch in flight.
   */
  async exclusive<T>(fn: (db: PgSession) => Promise<T>): Promise<T> {
    await this.running;
    await this.ensureClient();
    await this.begin(false);
    try {
      const value = await fn(this.session);
      await this.control('COMMIT');
      if (this.sync.mode === 'always') this.flush.noteFlushedCommit();
      return value;
    } catch (err) {
      await this.rollbackQuietly();
      throw mapPgError(err);
    }
  }

  /** Takes no more calls, commits what is queued, and closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
    // Confirms still waiting get their flush before the connections close.
    if (this.sync.mode === 'always') await this.flush.flushed().catch(() => undefined);
    await this.flush.close();
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  metrics(): PgWriterMetrics {
    return {
      ...this.m,
      commitMs: this.commitMs.snapshot(),
      commitBatchOps: this.commitBatchOps.snapshot(),
      fsyncMs: this.fsyncMs.snapshot(),
    };
  }
}
