/**
 * The job server's timers: the scan for runs past their deadline (taken back from the worker,
 * retried or failed), and the periodic sweep: transient jobs past their TTL, durable ones past
 * their TTL or retention, and a probe of the store where workers are idle.
 */
import type { JobRow } from '../storage/types.js';
import type { JobDispatch } from './job-dispatch.js';
import { rowInfo } from './job-records.js';
import type { JobRuns } from './job-runs.js';
import type { JobServerState } from './job-server-state.js';
import { markDue, type Job } from './job-state.js';
import type { JobWatchers } from './job-watchers.js';

/** How often running jobs are checked against their deadline. */
const JOB_DEADLINE_SCAN_INTERVAL_MS = 250;
/** How often TTLs and retention are swept, and idle workers probe the store for due jobs. */
const JOB_MAINTENANCE_INTERVAL_MS = 1_000;
const JOB_SWEEP_BATCH_MAX = 10_000;

export class JobMaintenance {
  constructor(
    private readonly state: JobServerState,
    private readonly dispatch: JobDispatch,
    private readonly runs: JobRuns,
    private readonly watchers: JobWatchers,
    /** A multicast child ended (its parent may end now). */
    private readonly childFinished: (parentId: string) => void,
  ) {}

  /** Arms the periodic timers: the deadline scan, then the sweep. */
  start(): void {
    const scheduler = this.state.scheduler;
    scheduler.every(JOB_DEADLINE_SCAN_INTERVAL_MS, () => this.scanDeadlines());
    scheduler.every(JOB_MAINTENANCE_INTERVAL_MS, () => this.maintain());
  }

  private scanDeadlines(): void {
    const now = this.state.clock.now();
    for (const r of this.state.runs.expired(now)) {
      if (r.deadline > now) continue; // extended meanwhile
      const w = r.holder;
      const taken = this.dispatch.takeRun(w, r.job.id);
      if (typeof taken === 'string') continue;
      // The slot stays taken until the worker reports the job (or goes away).
      w.overdue.add(r.job.id);
      if (r.cancelled) continue;
      try {
        w.sink.cancel(r.job.id);
      } catch {
        /* the worker is told; nothing else to do */
      }
      void this.runs.retryOrFailNow(r, {
        code: 'TIMEOUT',
        message: 'the worker did not finish or extend the job in time',
      });
    }
  }

  private maintain(): void {
    const now = this.state.clock.now();
    // Transient jobs past their TTL.
    for (const s of this.state.services.values()) {
      if (s.transient.length === 0) continue;
      const keep: Job[] = [];
      for (const job of s.transient) {
        if (job.expiresAt !== null && job.expiresAt <= now) {
          this.runs.finalize(job, 'expired', now, undefined, {
            code: 'JOB_EXPIRED',
            message: 'no worker started the job within its ttl',
          });
        } else keep.push(job);
      }
      s.transient = keep;
    }
    // Durable jobs: TTL and retention, then probe for due jobs where workers are idle.
    this.state.calls.track(this.state.storage.sweep(now, JOB_SWEEP_BATCH_MAX)).then(
      (out) => {
        for (const f of out.forgotten) this.state.durable.move(f.service, f.status, null, f.count);
        for (const row of out.pastTtl) void this.expireDurable(row, now);
      },
      (err: unknown) => this.state.log.error('job sweep failed', { err: String(err) }),
    );
    for (const s of this.state.services.values()) {
      if (this.state.queuedDurable(s) > 0 && this.dispatch.freeSlots(s) > 0) {
        markDue(s);
        this.dispatch.pump(s);
      }
    }
  }

  private async expireDurable(row: JobRow, now: number): Promise<void> {
    const settled = await this.state.calls
      .track(
        this.state.storage.settle(row.id, {
          status: 'expired',
          finishedAt: now,
          retainUntil: now + this.state.policyOf(row.service).retentionMs,
          error: { code: 'JOB_EXPIRED', message: 'no worker started the job within its ttl' },
        }),
      )
      .catch(() => null);
    if (!settled) return;
    this.state.durable.move(row.service, settled.previous, 'expired');
    this.watchers.emit(row.id, { type: 'final', job: rowInfo(settled.row) });
    if (settled.row.parentId) this.childFinished(settled.row.parentId);
  }
}
