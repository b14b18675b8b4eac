/**
 * What follows a worker's reports on a run: done, failed, retried with backoff, requeued when
 * the worker is lost or late; progress, partial results and extensions while it runs. A
 * durable job's final state is stored before watchers hear of it; a transient one's is kept
 * in memory (finalize).
 */
import {
  FerryError,
  isFinalStatus,
  type JobError,
  type JobProgress,
  messageSize,
} from 'ferrymq/model';
import type { JobStorage } from '../storage/types.js';
import { retryDelayMs } from './backoff.js';
import type { Clock } from './clock.js';
import type { JobDispatch } from './job-dispatch.js';
import { jobInfo, normaliseError } from './job-records.js';
import type { JobServerState } from './job-server-state.js';
import {
  MULTICAST_SERVICE,
  enqueueTransient,
  markDue,
  type Job,
  type JobWorker,
  type Running,
} from './job-state.js';
import type { WorkerReportResult } from './job-types.js';
import type { JobWatchers } from './job-watchers.js';
import type { PendingCalls } from './pending-calls.js';

const PROGRESS_MAX_BYTES = 64 * 1024;

export class JobRuns {
  private readonly storage: JobStorage;
  private readonly clock: Clock;
  private readonly calls: PendingCalls;

  constructor(
    private readonly state: JobServerState,
    private readonly dispatch: JobDispatch,
    private readonly watchers: JobWatchers,
    /** A multicast child ended (its parent may end now). */
    private readonly childFinished: (parentId: string) => void,
  ) {
    this.storage = state.storage;
    this.clock = state.clock;
    this.calls = state.calls;
  }

  async workerComplete(w: JobWorker, jobId: string, result: Buffer[]): Promise<WorkerReportResult> {
    const r = this.dispatch.takeRun(w, jobId);
    if (typeof r === 'string') return this.dispatch.lateReport(w, jobId, r);
    w.completed++;
    this.dispatch.pumpWorker(w);
    if (r.cancelled) return null;
    if (!Array.isArray(result) || result.length === 0) result = [Buffer.alloc(0)];
    await this.settleRun(r, 'done', result, undefined);
    return null;
  }

  async workerFail(
    w: JobWorker,
    jobId: string,
    error: JobError,
    retry: boolean,
  ): Promise<WorkerReportResult> {
    const r = this.dispatch.takeRun(w, jobId);
    if (typeof r === 'string') return this.dispatch.lateReport(w, jobId, r);
    w.failed++;
    this.dispatch.pumpWorker(w);
    if (r.cancelled) return null;
    await this.retryOrFail(r, normaliseError(error), retry);
    return null;
  }

  private async retryOrFail(r: Running, error: JobError, retry: boolean): Promise<void> {
    const job = r.job;
    const s = this.state.service(job.service);
    if (!retry || r.attempt >= job.maxAttempts) {
      await this.settleRun(r, 'failed', undefined, error);
      return;
    }
    const delay = retryDelayMs(
      r.attempt,
      s.policy.retryBaseMs,
      s.policy.retryMaxMs,
      this.state.random,
    );
    await this.requeueRun(r, delay, error);
  }

  /** A run lost its worker (gone or past its deadline): requeue now, or fail at max attempts. */
  retryOrFailNow(r: Running, error: JobError): Promise<void> {
    if (r.attempt >= r.job.maxAttempts) return this.settleRun(r, 'failed', undefined, error);
    return this.requeueRun(r, 0, error);
  }

  /** Back to queued after `delayMs` (attempt counted). */
  private async requeueRun(
    r: Running,
    delayMs: number,
    error: JobError | undefined,
  ): Promise<void> {
    const job = r.job;
    const s = this.state.service(job.service);
    const now = this.clock.now();
    job.status = 'queued';
    job.error = error;
    if (!job.durable) {
      job.notBefore = now + delayMs;
      const back = (): void => {
        if (job.status !== 'queued' || !this.state.transient.isLive(job.id)) return;
        enqueueTransient(s, job);
        this.dispatch.pump(s);
      };
      if (delayMs <= 0) back();
      else this.state.scheduler.after(delayMs, back);
      this.watchers.emit(job.id, { type: 'status', status: 'queued', attempt: r.attempt });
      return;
    }
    const ok = await this.calls
      .track(this.storage.requeue(job.id, r.attempt, now + delayMs))
      .catch((err: unknown) => {
        this.state.log.error('job requeue failed', { job: job.id, err: String(err) });
        return false;
      });
    if (!ok) return;
    this.state.durable.move(s.name, 'running', 'queued');
    if (delayMs > 0) this.dispatch.wakeAt(s, now + delayMs);
    else markDue(s);
    this.watchers.emit(job.id, { type: 'status', status: 'queued', attempt: r.attempt });
    this.dispatch.pump(s);
  }

  /** Final status for a run: stored (durable), then watchers told. */
  private async settleRun(
    r: Running,
    status: 'done' | 'failed',
    result: Buffer[] | undefined,
    error: JobError | undefined,
  ): Promise<void> {
    const job = r.job;
    const now = this.clock.now();
    if (!job.durable) {
      this.finalize(job, status, now, result, error);
      return;
    }
    const retainUntil = now + this.state.policyOf(job.service).retentionMs;
    const ok = await this.calls
      .track(
        this.storage.finish(job.id, r.attempt, {
          status,
          finishedAt: now,
          retainUntil,
          result,
          error,
        }),
      )
      .catch((err: unknown) => {
        this.state.log.error('job finish failed', { job: job.id, err: String(err) });
        return false;
      });
    if (!ok) return;
    this.state.durable.move(job.service, 'running', status);
    job.status = status;
    job.finishedAt = now;
    job.retainUntil = retainUntil;
    job.result = result;
    job.error = error;
    job.attempts = r.attempt;
    // Whoever waits for the result (a durable call's caller) hears of it once it is durable.
    const durable = await this.storage.durable().then(
      () => true,
      (err: unknown) => {
        this.state.log.error('job finish not durable', { job: job.id, err: String(err) });
        return false;
      },
    );
    if (!durable) return;
    this.watchers.emit(job.id, { type: 'final', job: jobInfo(job) });
    if (job.parentId) this.childFinished(job.parentId);
  }

  /** Final status of a transient job, in memory. */
  finalize(
    job: Job,
    status: 'done' | 'failed' | 'cancelled' | 'expired',
    now: number,
    result: Buffer[] | undefined,
    error: JobError | undefined,
  ): void {
    if (isFinalStatus(job.status)) return;
    job.status = status;
    job.finishedAt = now;
    job.result = result;
    job.error = error;
    job.params = [];
    this.state.transient.retire(job);
    if (job.service !== MULTICAST_SERVICE) {
      this.state.service(job.service).transientFinished[status]++;
    }
    this.watchers.emit(job.id, { type: 'final', job: jobInfo(job) });
    if (job.parentId) this.childFinished(job.parentId);
  }

  /** A client cancelled a running job: the worker is told; its slot stays taken. */
  cancelRunning(r: Running): void {
    r.cancelled = true;
    try {
      r.holder.sink.cancel(r.job.id);
    } catch (err) {
      this.state.log.error('worker sink threw on cancel', { err: String(err) });
    }
  }

  workerProgress(w: JobWorker, jobId: string, progress: JobProgress): WorkerReportResult {
    const r = this.state.runs.getHeld(w, jobId);
    if (!r) return 'LEASE_LOST';
    let text: string;
    try {
      text = JSON.stringify(progress ?? null);
    } catch {
      throw new FerryError('BAD_ARGUMENTS', 'progress must be JSON');
    }
    if (text.length > PROGRESS_MAX_BYTES) {
      throw new FerryError('BAD_ARGUMENTS', `progress exceeds ${PROGRESS_MAX_BYTES} bytes`);
    }
    r.job.progress = progress;
    if (r.job.durable) {
      this.calls
        .track(this.storage.setProgress(jobId, text))
        .catch((err: unknown) =>
          this.state.log.error('progress write failed', { err: String(err) }),
        );
    }
    if (!r.cancelled) this.watchers.emit(jobId, { type: 'progress', progress });
    return null;
  }

  workerPartial(w: JobWorker, jobId: string, frames: Buffer[]): WorkerReportResult {
    const r = this.state.runs.getHeld(w, jobId);
    if (!r) return 'LEASE_LOST';
    if (!Array.isArray(frames) || frames.length === 0) {
      throw new FerryError('BAD_ARGUMENTS', 'a partial result needs at least one frame');
    }
    if (messageSize(frames) > this.state.maxParamsBytes) {
      throw new FerryError('MESSAGE_TOO_LARGE', 'partial result too large');
    }
    if (r.cancelled) return null;
    const job = r.job;
    const seq = ++job.partialCount;
    if (job.durable) {
      this.calls
        .track(this.storage.addPartial(jobId, seq, frames))
        .catch((err: unknown) =>
          this.state.log.error('partial write failed', { err: String(err) }),
        );
    } else {
      job.partials.push({ seq, frames });
    }
    this.watchers.emit(jobId, { type: 'partial', seq, frames });
    return null;
  }

  workerExtend(w: JobWorker, jobId: string, ms: number): WorkerReportResult {
    const r = this.state.runs.getHeld(w, jobId);
    if (!r) return 'LEASE_LOST';
    if (!Number.isFinite(ms) || ms < 1) throw new FerryError('BAD_ARGUMENTS', 'ms must be ≥ 1');
    this.state.runs.extend(r, this.clock.now() + ms);
    return null;
  }

  /** The worker is gone: its running jobs go back to queued at once (attempt counted). */
  closeWorker(w: JobWorker): void {
    if (w.closed) return;
    w.closed = true;
    w.overdue.clear();
    this.state.workers.delete(w);
    for (const s of w.services) {
      const i = s.workers.indexOf(w);
      if (i >= 0) s.workers.splice(i, 1);
    }
    for (const held of [...w.held]) {
      const r = this.dispatch.takeRun(w, held.id);
      if (typeof r === 'string' || r.cancelled) continue;
      void this.retryOrFailNow(r, { code: 'WORKER_LOST', message: 'the worker went away' });
    }
  }
}
