/**
 * Job dispatch: a worker with a free slot gets the next job of any service it serves; among
 * the workers with free slots of a service, the one whose last job was handed out longest ago
 * (least recently used), which is round robin under equal load. Transient jobs go before
 * durable ones, which are leased from the store in batches as slots free up: at most one
 * lease per service in flight, so the slots freed while it runs share the next one.
 */
import type { Assignment } from 'ferrymq/model';
import type { JobStorage } from '../storage/types.js';
import type { Clock } from './clock.js';
import { leastRecentlyUsed, totalCredit } from './credit.js';
import type { InflightTable } from './inflight-table.js';
import { rowJob } from './job-records.js';
import type { JobServerState } from './job-server-state.js';
import { markDue, type Job, type JobWorker, type Running, type ServiceState } from './job-state.js';
import type { JobWatchers } from './job-watchers.js';
import type { PendingCalls } from './pending-calls.js';

/** Most durable jobs leased from the store in one call. */
const JOB_LEASE_BATCH_MAX = 1_000;

export class JobDispatch {
  private readonly storage: JobStorage;
  private readonly clock: Clock;
  private readonly runs: InflightTable<Running, JobWorker>;
  private readonly calls: PendingCalls;

  constructor(
    private readonly state: JobServerState,
    private readonly watchers: JobWatchers,
  ) {
    this.storage = state.storage;
    this.clock = state.clock;
    this.runs = state.runs;
    this.calls = state.calls;
  }

  hasWorkers(service: string): boolean {
    const s = this.state.services.get(service);
    return s !== undefined && s.workers.length > 0;
  }

  /** Free slots of a service's workers. */
  freeSlots(s: ServiceState): number {
    return totalCredit(s.workers);
  }

  /** A worker has free slots: offer them to each of its services. */
  pumpWorker(w: JobWorker): void {
    for (const s of w.services) {
      if (w.credit <= 0) return;
      this.pump(s);
    }
  }

  /** Hands queued jobs to free workers: transient ones first, then durable ones from the store. */
  pump(s: ServiceState): void {
    if (this.state.closing) return;
    while (s.transient.length > 0) {
      const w = leastRecentlyUsed(s.workers);
      if (!w) return;
      const job = s.transient.shift()!;
      job.attempts++;
      this.assign(w, job, job.attempts);
    }
    // One lease in flight per service: slots freed meanwhile are leased together when it
    // returns, in one statement, instead of one statement per freed slot.
    if (!s.maybeDue || s.leasingSlots > 0) return;
    const free = this.freeSlots(s);
    if (free <= 0) return;
    const max = Math.min(free, JOB_LEASE_BATCH_MAX);
    const marks = s.dueMarks;
    s.leasingSlots += max;
    this.calls.track(this.storage.lease(s.name, max, this.clock.now())).then(
      (rows) => {
        s.leasingSlots -= max;
        if (rows.length < max && s.dueMarks === marks) s.maybeDue = false;
        const durable = this.state.durable;
        if (rows.length > 0) durable.move(s.name, 'queued', 'running', rows.length);
        for (const row of rows) {
          const w = leastRecentlyUsed(s.workers);
          const job = rowJob(row);
          if (!w) {
            // Every worker left while the lease was in flight: back to queued, uncounted.
            durable.move(s.name, 'running', 'queued');
            markDue(s);
            this.calls
              .track(this.storage.requeue(row.id, row.attempts, row.notBefore, true))
              .catch((err: unknown) =>
                this.state.log.error('requeue failed', { err: String(err) }),
              );
            continue;
          }
          this.assign(w, job, row.attempts);
        }
        this.pump(s);
      },
      (err: unknown) => {
        s.leasingSlots -= max;
        this.state.log.error('job lease failed', { service: s.name, err: String(err) });
      },
    );
  }

  /**
   * The direct path: a durable job stored already running (attempt 1) for `w`, whose slot was
   * reserved. If the worker left or paused meanwhile, the job goes back to queued, uncounted.
   */
  startDirect(w: JobWorker, job: Job): void {
    const s = this.state.service(job.service);
    if (w.credit > 0 && !this.state.closing) {
      job.attempts = 1;
      this.assign(w, job, 1);
      return;
    }
    this.state.durable.move(s.name, 'running', 'queued');
    this.calls
      .track(this.storage.requeue(job.id, 1, job.notBefore, true))
      .then(() => {
        markDue(s);
        this.pump(s);
      })
      .catch((err: unknown) => this.state.log.error('requeue failed', { err: String(err) }));
  }

  private assign(w: JobWorker, job: Job, attempt: number): void {
    const now = this.clock.now();
    const s = this.state.service(job.service);
    const deadline = now + s.policy.runTimeoutMs;
    const r: Running = { id: job.id, holder: w, job, attempt, deadline, cancelled: false };
    job.status = 'running';
    job.startedAt = now;
    w.lastAssignSeq = ++this.state.assignSeq;
    w.lastJobAt = now;
    this.runs.add(r);
    const params = job.params;
    if (job.durable) job.params = [];
    this.watchers.emit(job.id, { type: 'status', status: 'running', attempt });
    try {
      w.sink.assign({
        id: job.id,
        service: job.service,
        params,
        headers: job.headers,
        attempt,
        deadline,
      } satisfies Assignment);
    } catch (err) {
      this.state.log.error('worker sink threw on assign', { err: String(err) });
    }
  }

  /** Ends a run's hold on its worker slot. Returns the run, or an error code. */
  takeRun(w: JobWorker, jobId: string): Running | 'LEASE_LOST' {
    const r = this.runs.getHeld(w, jobId);
    if (!r) return 'LEASE_LOST';
    this.runs.remove(r);
    return r;
  }

  /** A report for a job the worker no longer holds: an overdue one frees its slot. */
  lateReport(w: JobWorker, jobId: string, code: 'LEASE_LOST'): 'LEASE_LOST' {
    if (w.overdue.delete(jobId)) this.pumpWorker(w);
    return code;
  }

  /** Wakes the service's dispatch when a delayed durable job comes due. */
  wakeAt(s: ServiceState, at: number): void {
    this.state.scheduler.after(Math.max(0, at - this.clock.now()), () => {
      markDue(s);
      this.pump(s);
    });
  }
}
