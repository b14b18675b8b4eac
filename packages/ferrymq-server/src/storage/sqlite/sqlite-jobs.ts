/**
 * The job server's tables in the SQLite store. Every call runs inside the store's group commit
 * (the `run` function it is given), so job writes share the turn's one transaction and fsync
 * with queue writes.
 */
import type Database from 'better-sqlite3';
import { JOB_STATUSES, type JobStatus, messageSize } from 'ferrymq/model';
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
import { estimateDiskBytes } from './disk-floor.js';
import type { WriteCost, WriteLevel } from './sqlite-writer.js';

const JOB_COLUMNS = `id, service, status, priority, attempts, max_attempts, created_at, not_before,
  expires_at, started_at, finished_at, retain_until, nframes, params, headers, progress, partials,
  result_nframes, result, error, dedup_key, parent_id, children`;

function prepareJobStatements(db: Database.Database) {
  return {
    insert: db.prepare(
      `INSERT INTO jobs(id, service, status, priority, max_attempts, attempts, created_at,
         not_before, expires_at, started_at, nframes, params, headers, dedup_key, parent_id,
         children)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    getIdem: db.prepare<[string, string, number], { ids: string }>(
      'SELECT ids FROM idempotency WHERE scope = ? AND key = ? AND expires_at > ?',
    ),
    putIdem: db.prepare<[string, string, string, number]>(
      'INSERT OR REPLACE INTO idempotency(scope, key, ids, expires_at) VALUES (?, ?, ?, ?)',
    ),
    selectDue: db.prepare<[string, number, number], JobDbRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE service = ? AND status = 'queued' AND not_before <= ?
       ORDER BY priority DESC, seq LIMIT ?`,
    ),
    markRunning: db.prepare<[number, string]>(
      `UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ? WHERE id = ?`,
    ),
    finish: db.prepare<
      [string, number, number, number | null, Buffer | null, string | null, string, number]
    >(
      `UPDATE jobs SET status = ?, finished_at = ?, retain_until = ?, result_nframes = ?,
         result = ?, error = ?
       WHERE id = ? AND status = 'running' AND attempts = ?`,
    ),
    requeue: db.prepare<[number, number, string, number]>(
      `UPDATE jobs SET status = 'queued', not_before = ?, attempts = attempts - ?
       WHERE id = ? AND status = 'running' AND attempts = ?`,
    ),
    settle: db.prepare<
      [string, number, number, number | null, Buffer | null, string | null, string]
    >(
      `UPDATE jobs SET status = ?, finished_at = ?, retain_until = ?, result_nframes = ?,
         result = ?, error = ?
       WHERE id = ? AND status IN ('queued', 'running')`,
    ),
    setProgress: db.prepare<[string, string]>('UPDATE jobs SET progress = ? WHERE id = ?'),
    addPartial: db.prepare<[string, number, number, Buffer]>(
      'INSERT OR REPLACE INTO job_partials(job_id, seq, nframes, body) VALUES (?, ?, ?, ?)',
    ),
    bumpPartials: db.prepare<[number, string]>(
      'UPDATE jobs SET partials = max(partials, ?) WHERE id = ?',
    ),
    partials: db.prepare<[string], { seq: number; nframes: number; body: Buffer }>(
      'SELECT seq, nframes, body FROM job_partials WHERE job_id = ? ORDER BY seq',
    ),
    get: db.prepare<[string], JobDbRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`),
    remove: db.prepare<[string]>('DELETE FROM jobs WHERE id = ?'),
    removePartials: db.prepare<[string]>('DELETE FROM job_partials WHERE job_id = ?'),
    counts: db.prepare<[], { service: string; status: string; n: number }>(
      'SELECT service, status, count(*) AS n FROM jobs GROUP BY service, status',
    ),
    expiredQueued: db.prepare<[number, number], JobDbRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs
       WHERE status = 'queued' AND expires_at IS NOT NULL AND expires_at <= ? LIMIT ?`,
    ),
    pastRetention: db.prepare<[number, number], { id: string; service: string; status: string }>(
      `SELECT id, service, status FROM jobs
       WHERE retain_until IS NOT NULL AND retain_until <= ? LIMIT ?`,
    ),
    statusOf: db.prepare<[string], { service: string; status: string }>(
      'SELECT service, status FROM jobs WHERE id = ?',
    ),
    list: db.prepare<
      [
        {
          service: string | null;
          status: string | null;
          limit: number;
          offset: number;
          idPrefix: string | null;
          serviceLike: string | null;
        },
      ],
      JobDbRow
    >(
      `SELECT ${JOB_COLUMNS} FROM jobs
       WHERE (@service IS NULL OR service = @service) AND (@status IS NULL OR status = @status)
         AND (@idPrefix IS NULL OR id LIKE @idPrefix ESCAPE '\\'
              OR service LIKE @serviceLike ESCAPE '\\')
       ORDER BY seq DESC LIMIT @limit OFFSET @offset`,
    ),
    retry: db.prepare<[number, string]>(
      `UPDATE jobs SET status = 'queued', not_before = ?, attempts = 0, expires_at = NULL,
         started_at = NULL, finished_at = NULL, retain_until = NULL, progress = NULL,
         partials = 0, result_nframes = NULL, result = NULL, error = NULL
       WHERE id = ? AND status IN ('failed', 'cancelled', 'expired')`,
    ),
    releaseRunning: db.prepare(`UPDATE jobs SET status = 'queued' WHERE status = 'running'`),
    runningRows: db.prepare<[], { id: string; service: string; attempts: number }>(
      `SELECT id, service, attempts FROM jobs WHERE status = 'running' ORDER BY seq`,
    ),
  };
}

type JobStatements = ReturnType<typeof prepareJobStatements>;

function finishColumns(f: JobFinish) {
  return [
    f.status,
    f.finishedAt,
    f.retainUntil,
    f.result ? f.result.length : null,
    f.result ? packFrames(f.result) : null,
    f.error ? JSON.stringify(f.error) : null,
  ] as const;
}

/** A final state's result or error, on disk (estimated; accounted, never refused). */
function resultDiskBytes(f: JobFinish): number {
  const payload = (f.result ? messageSize(f.result) : 0) + (f.error ? f.error.message.length : 0);
  return estimateDiskBytes(payload, 1);
}

export class SqliteJobStorage implements JobStorage {
  private st: JobStatements | undefined;

  /**
   * @param run queues a function for the store's current group-commit transaction
   */
  constructor(
    private readonly run: <T>(fn: () => T, cost?: WriteCost, level?: WriteLevel) => Promise<T>,
    /** The store's durable(): every commit so far on disk under the sync policy. */
    readonly durable: () => Promise<void>,
  ) {}

  /**
   * Prepares statements and puts the previous run's running jobs back to queued — or, with
   * `hold` (a recovery grace), leaves them running and lists them.
   */
  open(db: Database.Database, hold: boolean): { requeued: number; held: RecoveredJob[] } {
    this.st = prepareJobStatements(db);
    if (!hold) return { requeued: this.st.releaseRunning.run().changes, held: [] };
    return { requeued: 0, held: this.st.runningRows.all() };
  }

  private get s(): JobStatements {
    if (!this.st) throw new Error('job storage used before open');
    return this.st;
  }

  insert(jobs: NewJobRow[]): Promise<InsertJobsOutcome> {
    let payload = 0;
    for (const j of jobs) payload += messageSize(j.params);
    const cost = { diskBytes: estimateDiskBytes(payload, jobs.length), refusable: true };
    return this.run(
      () => {
        const ids: string[] = [];
        const duplicate: boolean[] = [];
        for (const j of jobs) {
          const scope = `j:${j.service}`;
          if (j.dedupKey !== null) {
            const prior = this.s.getIdem.get(scope, j.dedupKey, j.createdAt);
            if (prior) {
              ids.push(prior.ids);
              duplicate.push(true);
              continue;
            }
            this.s.putIdem.run(scope, j.dedupKey, j.id, j.dedupUntil);
          }
          this.s.insert.run(
            j.id,
            j.service,
            j.status,
            j.priority,
            j.maxAttempts,
            j.started ? 1 : 0,
            j.createdAt,
            j.notBefore,
            j.expiresAt,
            j.status === 'running' ? j.createdAt : null,
            j.params.length,
            packFrames(j.params),
            j.headers ? JSON.stringify(j.headers) : null,
            j.dedupKey,
            j.parentId,
            j.children ? JSON.stringify(j.children) : null,
          );
          ids.push(j.id);
          duplicate.push(false);
        }
        return { ids, duplicate };
      },
      cost,
      'committed',
    );
  }

  lease(service: string, max: number, now: number): Promise<JobRow[]> {
    return this.run(
      () => {
        const rows = this.s.selectDue.all(service, now, max);
        const out: JobRow[] = [];
        for (const r of rows) {
          this.s.markRunning.run(now, r.id);
          const row = toJobRow(r);
          row.status = 'running';
          row.attempts += 1;
          row.startedAt = now;
          out.push(row);
        }
        return out;
      },
      undefined,
      'committed',
    );
  }

  finish(id: string, attempt: number, finish: JobFinish): Promise<boolean> {
    const cost = { diskBytes: resultDiskBytes(finish), refusable: false };
    return this.run(
      () => this.s.finish.run(...finishColumns(finish), id, attempt).changes > 0,
      cost,
      'committed',
    );
  }

  requeue(id: string, attempt: number, notBefore: number, uncount = false): Promise<boolean> {
    return this.run(
      () => this.s.requeue.run(notBefore, uncount ? 1 : 0, id, attempt).changes > 0,
      undefined,
      'committed',
    );
  }

  settle(id: string, finish: JobFinish): Promise<JobSettled | null> {
    return this.run(() => {
      const before = this.s.statusOf.get(id);
      if (!before || this.s.settle.run(...finishColumns(finish), id).changes === 0) return null;
      const r = this.s.get.get(id);
      return r ? { row: toJobRow(r), previous: before.status as JobStatus } : null;
    });
  }

  setProgress(id: string, progress: string): Promise<void> {
    return this.run(
      () => {
        this.s.setProgress.run(progress, id);
      },
      undefined,
      'committed',
    );
  }

  addPartial(id: string, seq: number, frames: Buffer[]): Promise<void> {
    const cost = { diskBytes: estimateDiskBytes(messageSize(frames), 1), refusable: false };
    return this.run(
      () => {
        this.s.addPartial.run(id, seq, frames.length, packFrames(frames));
        this.s.bumpPartials.run(seq, id);
      },
      cost,
      'committed',
    );
  }

  partials(id: string): Promise<{ seq: number; frames: Buffer[] }[]> {
    return this.run(
      () =>
        this.s.partials
          .all(id)
          .map((p) => ({ seq: p.seq, frames: unpackFrames(p.body, p.nframes) })),
      undefined,
      'committed',
    );
  }

  get(id: string): Promise<JobRow | null> {
    return this.run(
      () => {
        const r = this.s.get.get(id);
        return r ? toJobRow(r) : null;
      },
      undefined,
      'committed',
    );
  }

  remove(id: string): Promise<{ service: string; status: JobStatus } | null> {
    return this.run(() => {
      const before = this.s.statusOf.get(id);
      this.s.removePartials.run(id);
      if (this.s.remove.run(id).changes === 0 || !before) return null;
      return { service: before.service, status: before.status as JobStatus };
    });
  }

  counts(): Promise<Map<string, JobCounts>> {
    return this.run(() => this.readCounts(), undefined, 'committed');
  }

  /** Synchronous read for open(); also the body of counts(). */
  readCounts(): Map<string, JobCounts> {
    const out = new Map<string, JobCounts>();
    for (const r of this.s.counts.all()) {
      let c = out.get(r.service);
      if (!c) out.set(r.service, (c = emptyJobCounts()));
      if ((JOB_STATUSES as readonly string[]).includes(r.status)) c[r.status as JobStatus] = r.n;
    }
    return out;
  }

  sweep(now: number, max: number): Promise<JobSweepOutcome> {
    return this.run(
      () => {
        const pastTtl = this.s.expiredQueued.all(now, max).map(toJobRow);
        const tally = new Map<string, { service: string; status: JobStatus; count: number }>();
        for (const r of this.s.pastRetention.all(now, max)) {
          this.s.removePartials.run(r.id);
          if (this.s.remove.run(r.id).changes === 0) continue;
          const key = `${r.service}\u0000${r.status}`;
          const t = tally.get(key);
          if (t) t.count++;
          else tally.set(key, { service: r.service, status: r.status as JobStatus, count: 1 });
        }
        const forgotten = [...tally.values()];
        return { pastTtl, forgotten };
      },
      undefined,
      'committed',
    );
  }

  list(options: JobListOptions): Promise<JobRow[]> {
    const like = options.search?.replace(/[\\%_]/g, (c) => `\\${c}`);
    return this.run(
      () =>
        this.s.list
          .all({
            service: options.service ?? null,
            status: options.status ?? null,
            limit: options.limit,
            offset: options.offset ?? 0,
            idPrefix: like === undefined ? null : `${like}%`,
            serviceLike: like === undefined ? null : `%${like}%`,
          })
          .map(toJobRow),
      undefined,
      'committed',
    );
  }

  retry(id: string, notBefore: number): Promise<JobSettled | null> {
    return this.run(() => {
      const before = this.s.statusOf.get(id);
      if (!before || this.s.retry.run(notBefore, id).changes === 0) return null;
      this.s.removePartials.run(id);
      const r = this.s.get.get(id);
      return r ? { row: toJobRow(r), previous: before.status as JobStatus } : null;
    });
  }
}

function emptyJobCounts(): JobCounts {
  return { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0, expired: 0 };
}
