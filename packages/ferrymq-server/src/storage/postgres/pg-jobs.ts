/**
 * The job server's tables in the PostgreSQL store. Every call runs inside the store's group
 * commit (the `run` function it is given) and mirrors the SQLite store (sqlite-jobs.ts), with
 * several brokers sharing the tables in mind:
 *
 * - one statement per call wherever it can be (insert, lease, finish, requeue, settle, retry,
 *   progress, partials, remove), and inserts and finishes made before the writer gets to them
 *   joined into one statement (pg-coalesce.ts); expected outcomes (not running at that attempt, already final,
 *   a duplicate key) come back as rows, never as errors, so a batch needs no savepoints;
 * - lease takes rows with `FOR UPDATE SKIP LOCKED`: two brokers never start one job twice;
 * - a running job carries the node running it (`leased_by`), so a broker reopening releases
 *   only its own;
 * - a dedup key is an idempotency row claimed with `INSERT … ON CONFLICT DO UPDATE`, which
 *   waits for a concurrent claim of the same key and then sees it: one job per key.
 */
import { JOB_STATUSES, type JobStatus } from 'ferrymq/model';
import { packFrames, unpackFrames } from '../frames-codec.js';
import { toJobRow, type JobDbRow } from '../job-rows.js';
import type {
  InsertJobsOutcome,
  JobCounts,
  JobFinish,
  JobListOptions,
  JobRow,
  JobSettled,
  JobStorage,
  JobSweepOutcome,
  NewJobRow,
  RecoveredJob,
} from '../types.js';
import { Coalesced } from './pg-coalesce.js';
import type { PgSession, PgWriteLevel } from './pg-writer.js';

/** One finish call, as joined by {@link Coalesced}. */
interface FinishCall {
  id: string;
  attempt: number;
  finish: JobFinish;
}

type Run = <T>(fn: (db: PgSession) => Promise<T>, level?: PgWriteLevel) => Promise<T>;

/** A job's row with its insertion order (PostgreSQL's statements return it). */
interface PgJobDbRow extends JobDbRow {
  seq: number;
}

/** Columns of a JobRow, qualified by `t` (the jobs table's alias in every statement). */
const JOB_COLUMNS = [
  'seq',
  'id',
  'service',
  'status',
  'priority',
  'attempts',
  'max_attempts',
  'created_at',
  'not_before',
  'expires_at',
  'started_at',
  'finished_at',
  'retain_until',
  'nframes',
  'params',
  'headers',
  'progress',
  'partials',
  'result_nframes',
  'result',
  'error',
  'dedup_key',
  'parent_id',
  'children',
]
  .map((c) => `t.${c}`)
  .join(', ');

/** A new job's columns, as arrays (one element per job), unnested in call order. */
const INPUT = `unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[],
    $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::int[], $12::bytea[],
    $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::bigint[])
  WITH ORDINALITY AS n(id, service, status, priority, max_attempts, attempts, created_at,
    not_before, expires_at, started_at, nframes, params, headers, dedup_key, parent_id, children,
    leased_by, dedup_until, ord)`;

const INSERT_COLUMNS = `id, service, status, priority, max_attempts, attempts, created_at,
  not_before, expires_at, started_at, nframes, params, headers, dedup_key, parent_id, children,
  leased_by`;

const SQL = {
  /** Jobs without dedup keys: one multi-row insert. */
  insert: `INSERT INTO jobs(${INSERT_COLUMNS})
    SELECT ${INSERT_COLUMNS} FROM ${INPUT} ORDER BY ord`,
  /**
   * Jobs, some with dedup keys (each key at most once per statement). A key's idempotency row
   * is claimed when absent or expired at the job's creation (its ids become the job's id), and
   * otherwise left as it is; either way it comes back, so a job is stored only when its claim
   * returned its own id. A concurrent claim of the key by another broker is waited for.
   */
  insertDedup: `WITH n AS (SELECT * FROM ${INPUT}),
    claim AS (
      INSERT INTO idempotency AS i(scope, key, ids, expires_at)
      SELECT 'j:' || service, dedup_key, id, dedup_until FROM n
      WHERE dedup_key IS NOT NULL ORDER BY 1, 2
      ON CONFLICT (scope, key) DO UPDATE SET
        ids = CASE WHEN i.expires_at > (SELECT created_at FROM n WHERE n.id = excluded.ids)
          THEN i.ids ELSE excluded.ids END,
        expires_at = CASE WHEN i.expires_at > (SELECT created_at FROM n WHERE n.id = excluded.ids)
          THEN i.expires_at ELSE excluded.expires_at END
      RETURNING i.scope, i.key, i.ids),
    ins AS (
      INSERT INTO jobs(${INSERT_COLUMNS})
      SELECT ${INSERT_COLUMNS} FROM n
      WHERE n.dedup_key IS NULL OR EXISTS (SELECT 1 FROM claim c WHERE c.ids = n.id)
      ORDER BY ord)
    SELECT c.ids AS prior FROM n
    LEFT JOIN claim c ON c.scope = 'j:' || n.service AND c.key = n.dedup_key
    ORDER BY n.ord`,
  lease: `WITH c AS (
      SELECT seq FROM jobs WHERE service = $1 AND status = 'queued' AND not_before <= $2
      ORDER BY priority DESC, seq LIMIT $3 FOR UPDATE SKIP LOCKED)
    UPDATE jobs t SET status = 'running', attempts = t.attempts + 1, started_at = $2,
      leased_by = $4
    FROM c WHERE t.seq = c.seq RETURNING ${JOB_COLUMNS}`,
  finish: `UPDATE jobs SET status = $1, finished_at = $2, retain_until = $3,
      result_nframes = $4, result = $5, error = $6, leased_by = NULL
    WHERE id = $7 AND status = 'running' AND attempts = $8`,
  finishMany: `UPDATE jobs j SET status = u.status, finished_at = u.finished_at,
      retain_until = u.retain_until, result_nframes = u.result_nframes, result = u.result,
      error = u.error, leased_by = NULL
    FROM unnest($1::text[], $2::int4[], $3::text[], $4::int8[], $5::int8[], $6::int4[],
      $7::bytea[], $8::text[])
      AS u(id, attempt, status, finished_at, retain_until, result_nframes, result, error)
    WHERE j.id = u.id AND j.status = 'running' AND j.attempts = u.attempt
    RETURNING j.id`,
  requeue: `UPDATE jobs SET status = 'queued', not_before = $1, attempts = attempts - $2,
      leased_by = NULL
    WHERE id = $3 AND status = 'running' AND attempts = $4`,
  /** The row after, and its status before (read under the row lock). */
  settle: `UPDATE jobs t SET status = $1, finished_at = $2, retain_until = $3,
      result_nframes = $4, result = $5, error = $6, leased_by = NULL
    FROM (SELECT seq, status FROM jobs WHERE id = $7 FOR UPDATE) AS b
    WHERE t.seq = b.seq AND t.status IN ('queued', 'running')
    RETURNING b.status AS previous, ${JOB_COLUMNS}`,
  setProgress: 'UPDATE jobs SET progress = $1 WHERE id = $2',
  addPartial: `WITH p AS (
      INSERT INTO job_partials(job_id, seq, nframes, body) VALUES ($1, $2, $3, $4)
      ON CONFLICT (job_id, seq) DO UPDATE SET nframes = excluded.nframes, body = excluded.body)
    UPDATE jobs SET partials = GREATEST(partials, $2) WHERE id = $1`,
  partials: 'SELECT seq, nframes, body FROM job_partials WHERE job_id = $1 ORDER BY seq',
  get: `SELECT ${JOB_COLUMNS} FROM jobs t WHERE t.id = $1`,
  remove: `WITH p AS (DELETE FROM job_partials WHERE job_id = $1)
    DELETE FROM jobs WHERE id = $1 RETURNING service, status`,
  counts: 'SELECT service, status, count(*) AS n FROM jobs GROUP BY service, status',
  expiredQueued: `SELECT ${JOB_COLUMNS} FROM jobs t
    WHERE t.status = 'queued' AND t.expires_at IS NOT NULL AND t.expires_at <= $1
    ORDER BY t.expires_at, t.seq LIMIT $2`,
  /**
   * Final jobs past retention, deleted with their partials. SKIP LOCKED: brokers sweeping at
   * once delete disjoint rows, each counted once.
   */
  forget: `WITH c AS (
      SELECT seq FROM jobs WHERE retain_until IS NOT NULL AND retain_until <= $1
      ORDER BY retain_until LIMIT $2 FOR UPDATE SKIP LOCKED),
    gone AS (DELETE FROM jobs t USING c WHERE t.seq = c.seq RETURNING t.id, t.service, t.status),
    p AS (DELETE FROM job_partials WHERE job_id IN (SELECT id FROM gone))
    SELECT service, status, count(*) AS n FROM gone GROUP BY service, status
    ORDER BY service, status`,
  list: `SELECT ${JOB_COLUMNS} FROM jobs t
    WHERE ($1::text IS NULL OR t.service = $1) AND ($2::text IS NULL OR t.status = $2)
      AND ($5::text IS NULL OR t.id ILIKE $5 ESCAPE '\\' OR t.service ILIKE $6 ESCAPE '\\')
    ORDER BY t.seq DESC LIMIT $3 OFFSET $4`,
  /** Back to queued with a fresh slate; its partials go too. The status before comes back. */
  retry: `WITH b AS (SELECT seq, status FROM jobs WHERE id = $2 FOR UPDATE),
    u AS (
      UPDATE jobs t SET status = 'queued', not_before = $1, attempts = 0, expires_at = NULL,
        started_at = NULL, finished_at = NULL, retain_until = NULL, progress = NULL,
        partials = 0, result_nframes = NULL, result = NULL, error = NULL, leased_by = NULL
      FROM b WHERE t.seq = b.seq AND t.status IN ('failed', 'cancelled', 'expired')
      RETURNING b.status AS previous, ${JOB_COLUMNS}),
    p AS (DELETE FROM job_partials WHERE job_id = $2 AND EXISTS (SELECT 1 FROM u))
    SELECT * FROM u`,
  /** This node's running jobs back to queued (its workers are gone). */
  releaseRunning: `UPDATE jobs SET status = 'queued', leased_by = NULL
    WHERE status = 'running' AND leased_by = $1`,
  /** This node's running jobs, left running for the recovery grace. */
  runningRows: `SELECT id, service, attempts FROM jobs
    WHERE status = 'running' AND leased_by = $1 ORDER BY seq`,
} as const;

function finishValues(f: JobFinish): unknown[] {
  return [
    f.status,
    f.finishedAt,
    f.retainUntil,
    f.result ? f.result.length : null,
    f.result ? packFrames(f.result) : null,
    f.error ? JSON.stringify(f.error) : null,
  ];
}

/**
 * Splits jobs into runs in call order where no dedup key (per service) repeats, so that each
 * run is one statement (ON CONFLICT cannot touch one row twice) and a later job with the key
 * sees the earlier one's claim, as it would one by one.
 */
function dedupRuns(jobs: NewJobRow[]): NewJobRow[][] {
  const runs: NewJobRow[][] = [];
  let current: NewJobRow[] = [];
  let keys = new Set<string>();
  for (const j of jobs) {
    if (j.dedupKey !== null) {
      const k = `${j.service}\u0000${j.dedupKey}`;
      if (keys.has(k)) {
        runs.push(current);
        current = [];
        keys = new Set();
      }
      keys.add(k);
    }
    current.push(j);
  }
  if (current.length > 0) runs.push(current);
  return runs;
}

export class PgJobStorage implements JobStorage {
  /**
   * @param run queues a function for the store's current group-commit transaction
   * @param durable the store's durable()
   * @param nodeId this broker: the running jobs it starts carry it
   */
  /** Inserts and finishes made before the writer takes them go as one statement each. */
  private readonly inserts: Coalesced<NewJobRow[], InsertJobsOutcome>;
  private readonly finishes: Coalesced<FinishCall, boolean>;

  constructor(
    private readonly run: Run,
    readonly durable: () => Promise<void>,
    private readonly nodeId: string,
  ) {
    this.inserts = new Coalesced(run, (db, calls) => this.insertMany(db, calls));
    this.finishes = new Coalesced(run, (db, calls) => this.finishMany(db, calls));
  }

  /**
   * This node's running jobs from an earlier run: back to queued — or, with `hold` (a
   * recovery grace), left running and listed, so that reports their workers re-send end them.
   * Other nodes' running jobs are theirs (or, once a node is dead, the cluster's).
   */
  async open(db: PgSession, hold: boolean): Promise<{ requeued: number; held: RecoveredJob[] }> {
    if (!hold) return { requeued: await db.run(SQL.releaseRunning, [this.nodeId]), held: [] };
    const held = await db.rows<RecoveredJob>(SQL.runningRows, [this.nodeId]);
    return { requeued: 0, held };
  }

  /** The insert's arrays, one per column of INPUT. */
  private columns(jobs: NewJobRow[]): unknown[] {
    const cols: unknown[][] = Array.from({ length: 18 }, () => new Array<unknown>(jobs.length));
    jobs.forEach((j, i) => {
      const running = j.status === 'running';
      const values = [
        j.id,
        j.service,
        j.status,
        j.priority,
        j.maxAttempts,
        j.started ? 1 : 0,
        j.createdAt,
        j.notBefore,
        j.expiresAt,
        running ? j.createdAt : null,
        j.params.length,
        packFrames(j.params),
        j.headers ? JSON.stringify(j.headers) : null,
        j.dedupKey,
        j.parentId,
        j.children ? JSON.stringify(j.children) : null,
        running ? this.nodeId : null,
        j.dedupUntil,
      ];
      for (let c = 0; c < values.length; c++) cols[c]![i] = values[c];
    });
    return cols;
  }

  insert(jobs: NewJobRow[]): Promise<InsertJobsOutcome> {
    return this.inserts.call(jobs);
  }

  /** The inserts joined in one writer call: one statement for all (per run of dedup keys). */
  private async insertMany(db: PgSession, calls: NewJobRow[][]): Promise<InsertJobsOutcome[]> {
    const all = await this.insertRows(db, calls.flat());
    let at = 0;
    return calls.map((jobs) => {
      const out = {
        ids: all.ids.slice(at, at + jobs.length),
        duplicate: all.duplicate.slice(at, at + jobs.length),
      };
      at += jobs.length;
      return out;
    });
  }

  private async insertRows(db: PgSession, jobs: NewJobRow[]): Promise<InsertJobsOutcome> {
    const ids: string[] = [];
    const duplicate: boolean[] = [];
    if (jobs.length === 0) return { ids, duplicate };
    if (jobs.every((j) => j.dedupKey === null)) {
      await db.run(SQL.insert, this.columns(jobs));
      return { ids: jobs.map((j) => j.id), duplicate: jobs.map(() => false) };
    }
    for (const part of dedupRuns(jobs)) {
      const rows = await db.rows<{ prior: string | null }>(SQL.insertDedup, this.columns(part));
      part.forEach((j, i) => {
        const prior = rows[i]?.prior ?? null;
        const dup = j.dedupKey !== null && prior !== null && prior !== j.id;
        ids.push(dup ? prior : j.id);
        duplicate.push(dup);
      });
    }
    return { ids, duplicate };
  }

  lease(service: string, max: number, now: number): Promise<JobRow[]> {
    return this.run(async (db) => {
      const rows = await db.rows<PgJobDbRow>(SQL.lease, [service, now, max, this.nodeId]);
      rows.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
      return rows.map(toJobRow);
    }, 'committed');
  }

  finish(id: string, attempt: number, finish: JobFinish): Promise<boolean> {
    return this.finishes.call({ id, attempt, finish });
  }

  /**
   * The finishes joined in one writer call: one statement over arrays. A job finished twice
   * in one batch goes one statement at a time instead, so the first report wins as in order.
   */
  private async finishMany(db: PgSession, calls: FinishCall[]): Promise<boolean[]> {
    if (new Set(calls.map((c) => c.id)).size < calls.length) {
      const out: boolean[] = [];
      for (const c of calls) {
        out.push((await db.run(SQL.finish, [...finishValues(c.finish), c.id, c.attempt])) > 0);
      }
      return out;
    }
    if (calls.length === 1) {
      const c = calls[0]!;
      return [(await db.run(SQL.finish, [...finishValues(c.finish), c.id, c.attempt])) > 0];
    }
    const cols = calls.map((c) => finishValues(c.finish));
    const done = await db.rows<{ id: string }>(SQL.finishMany, [
      calls.map((c) => c.id),
      calls.map((c) => c.attempt),
      ...[0, 1, 2, 3, 4, 5].map((k) => cols.map((v) => v[k])),
    ]);
    const ok = new Set(done.map((r) => r.id));
    return calls.map((c) => ok.has(c.id));
  }

  requeue(id: string, attempt: number, notBefore: number, uncount = false): Promise<boolean> {
    return this.run(
      async (db) => (await db.run(SQL.requeue, [notBefore, uncount ? 1 : 0, id, attempt])) > 0,
      'committed',
    );
  }

  settle(id: string, finish: JobFinish): Promise<JobSettled | null> {
    return this.run(async (db) => {
      const rows = await db.rows<JobDbRow & { previous: string }>(SQL.settle, [
        ...finishValues(finish),
        id,
      ]);
      const r = rows[0];
      return r ? { row: toJobRow(r), previous: r.previous as JobStatus } : null;
    });
  }

  setProgress(id: string, progress: string): Promise<void> {
    return this.run(async (db) => {
      await db.run(SQL.setProgress, [progress, id]);
    }, 'committed');
  }

  addPartial(id: string, seq: number, frames: Buffer[]): Promise<void> {
    return this.run(async (db) => {
      await db.run(SQL.addPartial, [id, seq, frames.length, packFrames(frames)]);
    }, 'committed');
  }

  partials(id: string): Promise<{ seq: number; frames: Buffer[] }[]> {
    return this.run(async (db) => {
      const rows = await db.rows<{ seq: number; nframes: number; body: Buffer }>(SQL.partials, [
        id,
      ]);
      return rows.map((p) => ({ seq: p.seq, frames: unpackFrames(p.body, p.nframes) }));
    }, 'committed');
  }

  get(id: string): Promise<JobRow | null> {
    return this.run(async (db) => {
      const r = (await db.rows<JobDbRow>(SQL.get, [id]))[0];
      return r ? toJobRow(r) : null;
    }, 'committed');
  }

  remove(id: string): Promise<{ service: string; status: JobStatus } | null> {
    return this.run(async (db) => {
      const r = (await db.rows<{ service: string; status: string }>(SQL.remove, [id]))[0];
      return r ? { service: r.service, status: r.status as JobStatus } : null;
    });
  }

  counts(): Promise<Map<string, JobCounts>> {
    return this.run(async (db) => {
      const out = new Map<string, JobCounts>();
      const rows = await db.rows<{ service: string; status: string; n: number }>(SQL.counts);
      for (const r of rows) {
        let c = out.get(r.service);
        if (!c) out.set(r.service, (c = emptyJobCounts()));
        if ((JOB_STATUSES as readonly string[]).includes(r.status)) c[r.status as JobStatus] = r.n;
      }
      return out;
    }, 'committed');
  }

  sweep(now: number, max: number): Promise<JobSweepOutcome> {
    return this.run(async (db) => {
      const pastTtl = (await db.rows<JobDbRow>(SQL.expiredQueued, [now, max])).map(toJobRow);
      const gone = await db.rows<{ service: string; status: string; n: number }>(SQL.forget, [
        now,
        max,
      ]);
      const forgotten = gone.map((g) => ({
        service: g.service,
        status: g.status as JobStatus,
        count: g.n,
      }));
      return { pastTtl, forgotten };
    }, 'committed');
  }

  list(options: JobListOptions): Promise<JobRow[]> {
    const like = options.search?.replace(/[\\%_]/g, (c) => `\\${c}`);
    return this.run(async (db) => {
      const rows = await db.rows<JobDbRow>(SQL.list, [
        options.service ?? null,
        options.status ?? null,
        options.limit,
        options.offset ?? 0,
        like === undefined ? null : `${like}%`,
        like === undefined ? null : `%${like}%`,
      ]);
      return rows.map(toJobRow);
    }, 'committed');
  }

  retry(id: string, notBefore: number): Promise<JobSettled | null> {
    return this.run(async (db) => {
      const r = (await db.rows<JobDbRow & { previous: string }>(SQL.retry, [notBefore, id]))[0];
      return r ? { row: toJobRow(r), previous: r.previous as JobStatus } : null;
    });
  }
}

function emptyJobCounts(): JobCounts {
  return { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0, expired: 0 };
}
