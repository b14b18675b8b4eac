/**
 * The recovery grace of jobs: those the previous run was running when it went down stay
 * `running` in the store for a moment after a start, so that a COMPLETE or FAIL their worker
 * re-sends after reconnecting (from any session) ends them at that attempt instead of the job
 * running again. When the grace ends, the rest are queued again, their attempt counted — what
 * happened to all of them at once before. The queue side of the grace is in queue-settle.ts.
 */
import type { JobError } from 'ferrymq/model';
import type { RecoveredJob } from '../storage/types.js';
import { retryDelayMs } from './backoff.js';
import type { JobDispatch } from './job-dispatch.js';
import { normaliseError, rowInfo } from './job-records.js';
import type { JobServerState } from './job-server-state.js';
import { MULTICAST_SERVICE, markDue } from './job-state.js';
import type { RecoveredReport, WorkerReportResult } from './job-types.js';
import type { JobWatchers } from './job-watchers.js';

export class JobRecovery {
  /** Held jobs by id, until a report ends them or the grace does. */
  private readonly held = new Map<string, RecoveredJob>();

  constructor(
    private readonly state: JobServerState,
    private readonly dispatch: JobDispatch,
    private readonly watchers: JobWatchers,
    private readonly childFinished: (parentId: string) => void,
  ) {}

  /** Holds the previous run's running jobs until `until`, then queues the rest again. */
  hold(jobs: readonly RecoveredJob[], until: number): void {
    for (const j of jobs) this.held.set(j.id, j);
    if (this.held.size === 0) return;
    this.state.log.info('holding the previous run’s running jobs for the recovery grace', {
      count: this.held.size,
    });
    this.state.scheduler.after(Math.max(0, until - this.state.clock.now()), () => {
      void this.release();
    });
  }

  /**
   * A worker's report of a job it ran before the restart: ends the held job at its attempt
   * (null), or LEASE_LOST when the job is not held (the grace ended, or never held).
   */
  async report(id: string, report: RecoveredReport): Promise<WorkerReportResult> {
    const h = this.held.get(id);
    if (!h) return 'LEASE_LOST';
    this.held.delete(id);
    const { storage, clock } = this.state;
    const now = clock.now();
    const track = <T>(p: Promise<T>): Promise<T> => this.state.calls.track(p);
    if (report.type === 'fail') {
      const row = await track(storage.get(id));
      if (!row || row.status !== 'running') return 'LEASE_LOST';
      const error = normaliseError(report.error);
      if (report.retry && h.attempts < row.maxAttempts) {
        const policy = this.state.policyOf(h.service);
        const at =
          now + retryDelayMs(h.attempts, policy.retryBaseMs, policy.retryMaxMs, this.state.random);
        if (!(await track(storage.requeue(id, h.attempts, at)))) return 'LEASE_LOST';
        this.state.durable.move(h.service, 'running', 'queued');
        this.dispatch.wakeAt(this.state.service(h.service), at);
        return null;
      }
      return this.finish(h, 'failed', undefined, error);
    }
    const result = report.result.length > 0 ? report.result : [Buffer.alloc(0)];
    return this.finish(h, 'done', result, undefined);
  }

  private async finish(
    h: RecoveredJob,
    status: 'done' | 'failed',
    result: Buffer[] | undefined,
    error: JobError | undefined,
  ): Promise<WorkerReportResult> {
    const { storage, clock } = this.state;
    const now = clock.now();
    const retainUntil = now + this.state.policyOf(h.service).retentionMs;
    const ok = await this.state.calls.track(
      storage.finish(h.id, h.attempts, { status, finishedAt: now, retainUntil, result, error }),
    );
    if (!ok) return 'LEASE_LOST';
    this.state.durable.move(h.service, 'running', status);
    // Whoever waits for the result (a durable call sent again) hears of it once it is durable.
    await storage.durable();
    const row = await this.state.calls.track(storage.get(h.id));
    if (row) {
      this.watchers.emit(h.id, { type: 'final', job: rowInfo(row) });
      if (row.parentId) this.childFinished(row.parentId);
    }
    return null;
  }

  /** The grace is over: every job still held is queued again (attempt counted). */
  private async release(): Promise<void> {
    const jobs = [...this.held.values()];
    this.held.clear();
    const now = this.state.clock.now();
    await Promise.all(
      jobs.map(async (h) => {
        const ok = await this.state.calls
          .track(this.state.storage.requeue(h.id, h.attempts, now))
          .catch((err: unknown) => {
            this.state.log.error('job requeue failed', { job: h.id, err: String(err) });
            return false;
          });
        if (!ok) return; // ended meanwhile (cancelled, or reported)
        this.state.durable.move(h.service, 'running', 'queued');
        if (h.service === MULTICAST_SERVICE) return; // a parent: its children end it
        const s = this.state.service(h.service);
        markDue(s);
        this.dispatch.pump(s);
      }),
    );
  }
}
