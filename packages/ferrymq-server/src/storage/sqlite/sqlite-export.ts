/**
 * Reading a whole SQLite data folder out, for `ferry migrate`: the database opened read-only
 * (never written, never migrated), one read transaction for the whole export so every table is
 * read at one moment, and every row handed out as a store record (store-records.ts). Large
 * bodies kept in chunks are read back through the store's own code (sqlite-bodies.ts).
 *
 * Rows are read one at a time by key (`WHERE key > ? ORDER BY key LIMIT 1`), never with an
 * open iterator: the caller writes elsewhere between rows, and reading a chunked body needs
 * other statements on this connection meanwhile.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FerryError, type JobStatus, type MessageState } from 'ferrymq/model';
import type {
  ConfirmationRecord,
  IdHighWater,
  JobRecord,
  KeyOwner,
  KeyRecord,
  MessageRecord,
  PartialRecord,
  PubSubMetaRecord,
  QueueRecord,
  QueueSettingsRecord,
  RetainedRecord,
  SubscriptionRecord,
} from '../store-records.js';
import { SQLITE_MIGRATIONS } from './migrations/index.js';
import { prepareBodyStatements, readChunks, type BodyStatements } from './sqlite-bodies.js';
import { STATE_NAMES, type MessageRow } from './sqlite-queue-statements.js';
import { SQLITE_DB_FILE } from './sqlite-storage.js';
import type { JobDbRow } from '../job-rows.js';

/** How long a read waits for a lock another connection holds (a checkpoint), ms. */
const BUSY_TIMEOUT_MS = 5_000;

/** A job's row with its insertion order. */
interface ExportJobRow extends JobDbRow {
  seq: number;
}

function notAStore(dataDir: string, why: string, cause?: unknown): FerryError {
  return new FerryError('DATA_DIR_NOT_FOUND', `${dataDir}: ${why}`, { cause });
}

/** The database file of a data folder; DATA_DIR_NOT_FOUND when the folder or file is missing. */
function dbFileOf(dataDir: string): string {
  let dir: fs.Stats;
  try {
    dir = fs.statSync(dataDir);
  } catch (err) {
    throw notAStore(dataDir, 'no such data folder', err);
  }
  if (!dir.isDirectory()) throw notAStore(dataDir, 'not a folder');
  const file = path.join(dataDir, SQLITE_DB_FILE);
  if (!fs.existsSync(file)) {
    throw notAStore(dataDir, `holds no Ferry store (no ${SQLITE_DB_FILE})`);
  }
  return file;
}

/** A data folder's store, open read-only inside one read transaction until {@link close}. */
export class SqliteExport {
  private readonly bodies: BodyStatements;
  private readonly queueNames = new Map<number, string>();
  private closed = false;

  private constructor(
    private readonly db: Database.Database,
    readonly dataDir: string,
  ) {
    this.bodies = prepareBodyStatements(db);
  }

  /**
   * Opens `dataDir`'s store read-only and starts the read transaction. DATA_DIR_NOT_FOUND for
   * a missing folder or a file that is not a Ferry store; STORAGE_ERROR for a store of another
   * schema version than this Ferry's (a newer Ferry, or an older one not yet upgraded).
   */
  static open(dataDir: string): SqliteExport {
    const file = dbFileOf(dataDir);
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw notAStore(dataDir, `${SQLITE_DB_FILE} cannot be opened: ${String(err)}`, err);
    }
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.exec('BEGIN');
      const versions = SqliteExport.schemaVersions(db, dataDir);
      const latest = SQLITE_MIGRATIONS.at(-1)?.version ?? 0;
      const newest = Math.max(0, ...versions);
      if (newest > latest) {
        throw new FerryError(
          'STORAGE_ERROR',
          `${dataDir} was written by a newer Ferry (schema ${newest} > ${latest}); upgrade Ferry`,
        );
      }
      if (versions.length < SQLITE_MIGRATIONS.length) {
        throw new FerryError(
          'STORAGE_ERROR',
          `${dataDir} was written by an older Ferry (schema ${newest} < ${latest}); ` +
            `start a broker on it once (ferry start --data ${dataDir}) to upgrade it, then migrate`,
        );
      }
      const out = new SqliteExport(db, dataDir);
      for (const q of out.queues()) out.queueNames.set(q.id, q.name);
      return out;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private static schemaVersions(db: Database.Database, dataDir: string): number[] {
    try {
      return db
        .prepare<[], { version: number }>('SELECT version FROM migrations')
        .all()
        .map((r) => r.version);
    } catch (err) {
      throw notAStore(dataDir, `${SQLITE_DB_FILE} is not a Ferry store: ${String(err)}`, err);
    }
  }

  queues(): QueueRecord[] {
    return this.db
      .prepare<[], { id: number; name: string; created_at: number }>(
        'SELECT id, name, created_at FROM queues ORDER BY id',
      )
      .all()
      .map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at }));
  }

  settings(): QueueSettingsRecord[] {
    return this.db
      .prepare<[], { queue_id: number; paused: number; policy: string; updated_at: number }>(
        'SELECT queue_id, paused, policy, updated_at FROM queue_settings ORDER BY queue_id',
      )
      .all()
      .map((r) => ({
        queueId: r.queue_id,
        paused: r.paused !== 0,
        policy: r.policy,
        updatedAt: r.updated_at,
      }));
  }

  /** Every message in id order, in the state it is stored in (leased ones too). */
  *messages(): Generator<MessageRecord> {
    const next = this.db.prepare<[number], MessageRow>(
      'SELECT * FROM messages WHERE id > ? ORDER BY id LIMIT 1',
    );
    for (let r = next.get(0); r; r = next.get(r.id)) {
      const chunked = r.chunks > 0;
      yield {
        id: r.id,
        queueId: r.queue_id,
        state: (STATE_NAMES[r.state] ?? 'ready') satisfies MessageState,
        priority: r.priority,
        notBefore: r.not_before,
        expiresAt: r.expires_at,
        attempts: r.attempts,
        enqueuedAt: r.enqueued_at,
        size: r.size,
        nframes: r.nframes,
        headers: r.headers,
        dedupKey: r.dedup_key,
        deadReason: r.dead_reason,
        body: chunked ? readChunks(this.bodies, r.id) : r.body,
        chunked,
      };
    }
  }

  /**
   * The idempotency keys still in force at `now`. Keys of a queue that no longer exists, or
   * of a scope this Ferry does not know, are counted in `skipped` and left out.
   */
  *keys(now: number, skipped: { count: number }): Generator<KeyRecord> {
    const next = this.db.prepare<
      [string, string, string, number],
      { scope: string; key: string; ids: string; expires_at: number }
    >(
      `SELECT scope, key, ids, expires_at FROM idempotency
       WHERE (scope > ? OR (scope = ? AND key > ?)) AND expires_at > ?
       ORDER BY scope, key LIMIT 1`,
    );
    for (let r = next.get('', '', '', now); r; r = next.get(r.scope, r.scope, r.key, now)) {
      const owner = this.ownerOf(r.scope);
      if (owner === null) {
        skipped.count++;
        continue;
      }
      yield { owner, key: r.key, ids: r.ids, expiresAt: r.expires_at };
    }
  }

  /** The SQLite store's scopes: `q:<queue id>`, `j:<service>`, `request`. */
  private ownerOf(scope: string): KeyOwner | null {
    if (scope === 'request') return { kind: 'request' };
    if (scope.startsWith('j:')) return { kind: 'service', service: scope.slice(2) };
    if (scope.startsWith('q:')) {
      const queue = this.queueNames.get(Number(scope.slice(2)));
      return queue === undefined ? null : { kind: 'queue', queue };
    }
    return null;
  }

  /** Every job in submit order, in its stored status (running ones too). */
  *jobs(): Generator<JobRecord> {
    const next = this.db.prepare<[number], ExportJobRow>(
      'SELECT * FROM jobs WHERE seq > ? ORDER BY seq LIMIT 1',
    );
    for (let r = next.get(0); r; r = next.get(r.seq)) {
      yield {
        seq: r.seq,
        id: r.id,
        service: r.service,
        status: r.status as JobStatus,
        priority: r.priority,
        attempts: r.attempts,
        maxAttempts: r.max_attempts,
        createdAt: r.created_at,
        notBefore: r.not_before,
        expiresAt: r.expires_at,
        startedAt: r.started_at,
        finishedAt: r.finished_at,
        retainUntil: r.retain_until,
        nframes: r.nframes,
        params: r.params,
        headers: r.headers,
        progress: r.progress,
        partials: r.partials,
        resultNframes: r.result_nframes,
        result: r.result,
        error: r.error,
        dedupKey: r.dedup_key,
        parentId: r.parent_id,
        children: r.children,
      };
    }
  }

  *partials(): Generator<PartialRecord> {
    const next = this.db.prepare<
      [string, string, number],
      { job_id: string; seq: number; nframes: number; body: Buffer }
    >(
      `SELECT job_id, seq, nframes, body FROM job_partials
       WHERE job_id > ? OR (job_id = ? AND seq > ?) ORDER BY job_id, seq LIMIT 1`,
    );
    for (let r = next.get('', '', -1); r; r = next.get(r.job_id, r.job_id, r.seq)) {
      yield { jobId: r.job_id, seq: r.seq, nframes: r.nframes, body: r.body };
    }
  }

  pubsubMeta(): PubSubMetaRecord[] {
    return this.db
      .prepare<[], PubSubMetaRecord>('SELECT key, value FROM pubsub_meta ORDER BY key')
      .all();
  }

  *retained(): Generator<RetainedRecord> {
    const next = this.db.prepare<
      [string],
      {
        topic: string;
        seq: number;
        published_at: number;
        expires_at: number | null;
        nframes: number;
        body: Buffer;
        headers: string | null;
      }
    >('SELECT * FROM retained WHERE topic > ? ORDER BY topic LIMIT 1');
    for (let r = next.get(''); r; r = next.get(r.topic)) {
      yield {
        topic: r.topic,
        seq: r.seq,
        publishedAt: r.published_at,
        expiresAt: r.expires_at,
        nframes: r.nframes,
        body: r.body,
        headers: r.headers,
      };
    }
  }

  subscriptions(): SubscriptionRecord[] {
    return this.db
      .prepare<[], { name: string; pattern: string; created_at: number }>(
        'SELECT name, pattern, created_at FROM subscriptions ORDER BY name',
      )
      .all()
      .map((r) => ({ name: r.name, pattern: r.pattern, createdAt: r.created_at }));
  }

  confirmations(): ConfirmationRecord[] {
    return this.db
      .prepare<[], ConfirmationRecord>(
        'SELECT topic, node, seq, at FROM confirmations ORDER BY topic, node',
      )
      .all();
  }

  /**
   * The highest ids handed out: the larger of the highest stored and, for the AUTOINCREMENT
   * tables, the highest ever (sqlite_sequence), so that no id of a deleted row comes back.
   */
  highWater(): IdHighWater {
    const max = (sql: string): number =>
      this.db.prepare<[], { n: number | null }>(sql).get()?.n ?? 0;
    const seq = (table: string): number =>
      this.db
        .prepare<[string], { n: number | null }>(
          'SELECT seq AS n FROM sqlite_sequence WHERE name = ?',
        )
        .get(table)?.n ?? 0;
    return {
      queues: max('SELECT max(id) AS n FROM queues'),
      messages: Math.max(max('SELECT max(id) AS n FROM messages'), seq('messages')),
      jobs: Math.max(max('SELECT max(seq) AS n FROM jobs'), seq('jobs')),
    };
  }

  /** Ends the read transaction and closes the database (nothing was written). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.exec('COMMIT');
    } finally {
      this.db.close();
    }
  }
}
