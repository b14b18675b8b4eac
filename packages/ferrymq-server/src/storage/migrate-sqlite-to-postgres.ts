/**
 * `ferry migrate`: a SQLite data folder copied into an empty PostgreSQL schema, so that brokers
 * started with `--store` on that schema carry on where the SQLite broker stopped.
 *
 * The folder is read read-only in one read transaction (sqlite/sqlite-export.ts); the schema
 * is migrated (migratePg), then written in one transaction (postgres/pg-import.ts) in
 * batches: all or nothing, with no marker to check — a failed or interrupted copy leaves the
 * schema migrated and empty, and running the command again starts over. What no broker holds
 * any more is let go on the way: leased messages become ready (attempts kept), running jobs
 * queued (attempts kept), as a broker reopening the folder would do; idempotency keys past
 * their expiry stay behind. Ids are kept (see pg-import.ts).
 */
import { JOB_STATUSES } from 'ferrymq/model';
import { migratePg, type PgTarget } from './postgres/pg-schema.js';
import { PgImport } from './postgres/pg-import.js';
import { SqliteExport } from './sqlite/sqlite-export.js';
import type { JobCounts } from './types.js';

/** pub/sub's counter of the publish sequence (pubsub_meta). */
const PUBLISH_SEQ_KEY = 'seq';
/** Most rows in one insert statement. */
const BATCH_ROWS = 500;
/** A batch is written once its bodies reach this many bytes (one large body alone may pass it). */
const BATCH_BYTES = 8 * 1024 * 1024;

export interface MigrateSqliteToPostgresOptions {
  /** The SQLite data folder (`ferry start --data`); opened read-only, never changed. */
  dataDir: string;
  /** The PostgreSQL database and schema to fill (created and migrated when missing). */
  target: PgTarget;
  /** Now, for which idempotency keys are still in force (default Date.now()). */
  now?: number;
  /**
   * Called once everything is written, just before the commit: throw to roll it all back
   * (the CLI checks that no broker took the data folder meanwhile).
   */
  beforeCommit?: () => void;
}

/** What was copied, by kind, as the target holds it. */
export interface MigrationSummary {
  queues: number;
  /** Queues with runtime settings (paused, policy overrides). */
  queueSettings: number;
  messages: {
    ready: number;
    scheduled: number;
    dead: number;
    /** Of the ready ones: leased at the source, ready now (attempts kept). */
    releasedLeases: number;
    /** Bodies the source kept in chunks (over 1 MiB). */
    largeBodies: number;
    /** Bytes of the message bodies (frames), every state. */
    bytes: number;
  };
  keys: {
    /** Queue dedup keys. */
    dedup: number;
    request: number;
    /** Job dedup keys. */
    jobDedup: number;
    /** Keys of queues that no longer exist, left behind. */
    skipped: number;
  };
  /** Jobs by status; `running` is always 0 (see requeued). */
  jobs: JobCounts & {
    /** Of the queued ones: running at the source, queued now (attempts kept). */
    requeued: number;
  };
  partials: number;
  pubsub: {
    /** The publish sequence the target continues from. */
    publishSeq: number;
    retained: number;
    subscriptions: number;
    confirmations: number;
  };
}

function emptySummary(): MigrationSummary {
  const jobs = {} as MigrationSummary['jobs'];
  for (const s of JOB_STATUSES) jobs[s] = 0;
  jobs.requeued = 0;
  return {
    queues: 0,
    queueSettings: 0,
    messages: { ready: 0, scheduled: 0, dead: 0, releasedLeases: 0, largeBodies: 0, bytes: 0 },
    keys: { dedup: 0, request: 0, jobDedup: 0, skipped: 0 },
    jobs,
    partials: 0,
    pubsub: { publishSeq: 0, retained: 0, subscriptions: 0, confirmations: 0 },
  };
}

/** Writes `rows` in batches of at most BATCH_ROWS rows or about BATCH_BYTES bytes. */
async function inBatches<T>(
  rows: Iterable<T>,
  bytesOf: (row: T) => number,
  write: (batch: T[]) => Promise<void>,
): Promise<void> {
  let batch: T[] = [];
  let bytes = 0;
  for (const row of rows) {
    batch.push(row);
    bytes += bytesOf(row);
    if (batch.length >= BATCH_ROWS || bytes >= BATCH_BYTES) {
      await write(batch);
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) await write(batch);
}

/**
 * Copies the store in `dataDir` into `target`. Throws DATA_DIR_NOT_FOUND (no folder, or no
 * Ferry store in it), STORAGE_ERROR (PostgreSQL unreachable or failing, a store of another
 * schema version), STORE_NOT_EMPTY (the schema holds data or a live broker); nothing is
 * written to the target unless it all is.
 */
export async function migrateSqliteToPostgres(
  options: MigrateSqliteToPostgresOptions,
): Promise<MigrationSummary> {
  const now = options.now ?? Date.now();
  const source = SqliteExport.open(options.dataDir);
  try {
    await migratePg(options.target);
    const target = await PgImport.open(options.target);
    try {
      const summary = await copy(source, target, now);
      options.beforeCommit?.();
      await target.commit();
      return summary;
    } finally {
      await target.close();
    }
  } finally {
    source.close();
  }
}

async function copy(
  source: SqliteExport,
  target: PgImport,
  now: number,
): Promise<MigrationSummary> {
  const out = emptySummary();
  const bodyBytes = (r: { body: Buffer }): number => r.body.length;
  const fixed = (): number => 0;

  const queues = source.queues();
  await inBatches(queues, fixed, (b) => target.queues(b));
  out.queues = queues.length;
  const settings = source.settings();
  await inBatches(settings, fixed, (b) => target.settings(b));
  out.queueSettings = settings.length;

  const m = out.messages;
  const messages = (function* () {
    for (const r of source.messages()) {
      if (r.state === 'leased') {
        m.releasedLeases++;
        r.state = 'ready';
      }
      m[r.state]++;
      m.bytes += r.size;
      if (r.chunked) m.largeBodies++;
      yield r;
    }
  })();
  await inBatches(messages, bodyBytes, (b) => target.messages(b));

  const skipped = { count: 0 };
  const keys = (function* () {
    for (const k of source.keys(now, skipped)) {
      if (k.owner.kind === 'queue') out.keys.dedup++;
      else if (k.owner.kind === 'service') out.keys.jobDedup++;
      else out.keys.request++;
      yield k;
    }
  })();
  await inBatches(keys, fixed, (b) => target.keys(b));
  out.keys.skipped = skipped.count;

  const jobs = (function* () {
    for (const j of source.jobs()) {
      if (j.status === 'running') {
        out.jobs.requeued++;
        j.status = 'queued';
      }
      out.jobs[j.status]++;
      yield j;
    }
  })();
  await inBatches(
    jobs,
    (j) => j.params.length + (j.result?.length ?? 0),
    (b) => target.jobs(b),
  );
  const partials = (function* () {
    for (const p of source.partials()) {
      out.partials++;
      yield p;
    }
  })();
  await inBatches(partials, bodyBytes, (b) => target.partials(b));

  const meta = source.pubsubMeta();
  await inBatches(meta, fixed, (b) => target.pubsubMeta(b));
  out.pubsub.publishSeq = meta.find((r) => r.key === PUBLISH_SEQ_KEY)?.value ?? 0;
  const retained = (function* () {
    for (const r of source.retained()) {
      out.pubsub.retained++;
      yield r;
    }
  })();
  await inBatches(retained, bodyBytes, (b) => target.retained(b));
  const subscriptions = source.subscriptions();
  await inBatches(subscriptions, fixed, (b) => target.subscriptions(b));
  out.pubsub.subscriptions = subscriptions.length;
  const confirmations = source.confirmations();
  await inBatches(confirmations, fixed, (b) => target.confirmations(b));
  out.pubsub.confirmations = confirmations.length;

  await target.continueIds(source.highWater());
  return out;
}
