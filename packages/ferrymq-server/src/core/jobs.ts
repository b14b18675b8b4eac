/**
 * The job server: services, workers, durable and transient jobs, dispatch, liveness, retries,
 * cancellation, progress and partial results, multicast, retention.
 *
 * Pure logic over the {@link JobStorage} contract and an injected {@link Clock}: no sockets,
 * no SQL. Dialects register workers ({@link WorkerSink}) and call the {@link JobApi}.
 *
 * Dispatch: a worker with a free slot gets the next job of any service it serves; among the
 * workers with free slots of a service, the one whose last job was handed out longest ago
 * (least recently used), which is round robin under equal load. Transient jobs (a caller is
 * waiting) go before durable ones; within each, higher priority first, then oldest.
 *
 * Memory: transient jobs live in memory (bounded by maxQueued per service); durable ones stay
 * in the store while queued and are leased in batches as worker slots free up.
 *
 * {@link JobServer} is the facade: it builds the shared {@link JobServerState} and the parts
 * that work on it (job-submit, job-dispatch, job-runs, job-watchers, job-multicast,
 * job-maintenance, job-workers); reading, cancelling and listings are here.
 */
import {
  FerryError,
  isFinalStatus,
  isJobId,
  type JobError,
  type JobInfo,
  type JobPolicy,
  type JobProgress,
  type JobStatus,
  type NewJob,
  type ServiceInfo,
  type WorkerInfo,
} from 'ferrymq/model';
import type { JobStorage, RemoteChanges } from '../storage/types.js';
import type { Clock } from './clock.js';
import { JobAdminOps, type JobAdmin, type JobDetail, type JobSearchOptions } from './job-admin.js';
import { JobDispatch } from './job-dispatch.js';
import { JobMaintenance } from './job-maintenance.js';
import { JobMulticast } from './job-multicast.js';
import { jobInfo, rowInfo } from './job-records.js';
import { JobRecovery } from './job-recovery.js';
import { JobRuns } from './job-runs.js';
import { JobServerState, type JobServerOptions } from './job-server-state.js';
import { MULTICAST_SERVICE, type JobWorker } from './job-state.js';
import { JobSubmit } from './job-submit.js';
import type {
  CallOptions,
  JobApi,
  RecoveredReport,
  RegisterWorkerOptions,
  WorkerHandle,
  WorkerReportResult,
  WorkerSink,
} from './job-types.js';
import { JobRemote } from './job-remote.js';
import { JobWatchers, type Watcher } from './job-watchers.js';
import { registerWorker } from './job-workers.js';

/**
 * A shared store: how often the job counters are read from it and services with free worker
 * slots here probe it (the floor under the wake-ups other brokers send).
 */
const JOB_SHARED_REFRESH_MS = 1_000;

export { type JobServerOptions } from './job-server-state.js';
export class JobServer implements JobApi, JobAdmin {
  private readonly state: JobServerState;
  private readonly storage: JobStorage;
  private readonly clock: Clock;
  private readonly watchers: JobWatchers;
  private readonly dispatch: JobDispatch;
  private readonly runs: JobRuns;
  private readonly submitter: JobSubmit;
  private readonly multicaster: JobMulticast;
  private readonly maintenance: JobMaintenance;
  private readonly admin: JobAdminOps;
  private readonly recovery: JobRecovery;
  private readonly remote: JobRemote;

  private constructor(options: JobServerOptions) {
    const state = new JobServerState(options);
    this.state = state;
    this.storage = state.storage;
    this.clock = state.clock;
    const get = (id: string): Promise<JobInfo | null> => this.get(id);
    const childFinished = (parentId: string): void => this.multicaster.childFinished(parentId);
    this.watchers = new JobWatchers(
      state.log,
      state.clock,
      state.transient,
      get,
      (id) => state.calls.track(state.storage.partials(id)),
      (id) => this.cancel(id),
    );
    this.dispatch = new JobDispatch(state, this.watchers);
    this.runs = new JobRuns(state, this.dispatch, this.watchers, childFinished);
    this.submitter = new JobSubmit(state, this.dispatch, get);
    this.multicaster = new JobMulticast(
      state,
      this.dispatch,
      this.submitter,
      this.runs,
      this.watchers,
      get,
    );
    this.maintenance = new JobMaintenance(
      state,
      this.dispatch,
      this.runs,
      this.watchers,
      childFinished,
    );
    this.admin = new JobAdminOps(state, this.dispatch, this.watchers);
    this.recovery = new JobRecovery(state, this.dispatch, this.watchers, childFinished);
    this.remote = new JobRemote(state, this.dispatch, this.runs, this.watchers);
  }

  /** Other brokers sharing the store changed jobs (see JobRemote). */
  onRemote(changes: RemoteChanges): void {
    this.remote.onRemote(changes);
  }

  /** Reads the durable jobs' counters from the (already opened) store and starts the timers. */
  static async open(options: JobServerOptions): Promise<JobServer> {
    const server = new JobServer(options);
    const state = server.state;
    const counts = await server.storage.counts();
    for (const [name, c] of counts) {
      state.durable.set(name, c);
      if (name === MULTICAST_SERVICE) continue;
      const s = state.service(name);
      s.maybeDue = c.queued > 0;
    }
    if (options.recovered) server.recovery.hold(options.recovered.jobs, options.recovered.until);
    server.maintenance.start();
    if (state.shared) {
      state.scheduler.every(JOB_SHARED_REFRESH_MS, () => server.remote.refreshShared());
    }
    return server;
  }

  reportRecovered(id: string, report: RecoveredReport): Promise<WorkerReportResult> {
    return this.recovery.report(id, report);
  }

  policyOf(service: string): JobPolicy {
    return this.state.policyOf(service);
  }

  // ------------------------------------------------------------------ submitting

  submit(spec: NewJob): Promise<JobInfo> {
    return this.submitter.submit(spec);
  }

  call(spec: NewJob, options: CallOptions = {}): Promise<JobInfo> {
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0)) {
      return Promise.reject(new FerryError('BAD_ARGUMENTS', 'timeoutMs must be a number > 0'));
    }
    // At the commit: the answer waits for the final commit to be durable, which covers it.
    return this.submitter
      .submitCommitted({
        ...spec,
        // A shared store and no worker here: stored whatever `durable` says (storing is the
        // stronger promise), so that a worker on another broker runs it.
        durable:
          (this.state.shared && !this.dispatch.hasWorkers(spec.service)) || (spec.durable ?? false),
      })
      .then((info) => {
        options.onSubmitted?.(info);
        return this.watchers.awaitFinal(info.id, options, info);
      });
  }

  multicast(services: string[], spec: Omit<NewJob, 'service'>): Promise<JobInfo> {
    return this.multicaster.multicast(services, spec);
  }

  // ------------------------------------------------------------------ reading

  async get(id: string): Promise<JobInfo | null> {
    if (!isJobId(id)) throw new FerryError('BAD_ARGUMENTS', 'a job id is 32 lower-case hex digits');
    const t = this.state.transient.get(id);
    if (t) return jobInfo(t);
    const row = await this.state.calls.track(this.storage.get(id));
    if (!row) return null;
    const r = this.state.runs.get(id);
    const info = rowInfo(row);
    if (r) info.progress = r.job.progress ?? info.progress;
    return info;
  }

  watch(id: string, listener: Watcher): Promise<() => void> {
    return this.watchers.watch(id, listener);
  }

  async cancel(id: string): Promise<JobInfo> {
    if (!isJobId(id)) throw new FerryError('BAD_ARGUMENTS', 'a job id is 32 lower-case hex digits');
    const state = this.state;
    const now = this.clock.now();
    const error: JobError = { code: 'JOB_CANCELLED', message: 'cancelled by a client' };
    const t = state.transient.getLive(id);
    if (t) {
      if (t.status === 'queued') {
        const s = state.service(t.service);
        const i = s.transient.indexOf(t);
        if (i >= 0) s.transient.splice(i, 1);
      }
      const r = state.runs.get(id);
      if (r) this.runs.cancelRunning(r);
      if (t.children) for (const c of t.children) await this.cancel(c).catch(() => {});
      this.runs.finalize(t, 'cancelled', now, undefined, error);
      return jobInfo(t);
    }
    const recent = state.transient.getRecent(id);
    if (recent) return jobInfo(recent);
    const before = await state.calls.track(this.storage.get(id));
    if (!before) throw new FerryError('JOB_NOT_FOUND', `no job ${id}`);
    if (isFinalStatus(before.status)) return rowInfo(before);
    const settled = await state.calls.track(
      this.storage.settle(id, {
        status: 'cancelled',
        finishedAt: now,
        retainUntil: now + this.policyOf(before.service).retentionMs,
        error,
      }),
    );
    // Finished meanwhile: it stays as it ended.
    if (!settled) return (await this.get(id)) ?? rowInfo(before);
    const row = settled.row;
    state.durable.move(row.service, settled.previous, 'cancelled');
    const r = state.runs.get(id);
    if (r) this.runs.cancelRunning(r);
    if (row.children) for (const c of row.children) await this.cancel(c).catch(() => {});
    const info = rowInfo(row);
    this.watchers.emit(id, { type: 'final', job: info });
    if (row.parentId) this.multicaster.childFinished(row.parentId);
    return info;
  }

  /** Forgets a job at once (Titanic `close`): true if there was one. */
  async forget(id: string): Promise<boolean> {
    if (!isJobId(id)) throw new FerryError('BAD_ARGUMENTS', 'a job id is 32 lower-case hex digits');
    const state = this.state;
    if (state.transient.forgetRecent(id)) return true;
    if (state.transient.isLive(id)) {
      await this.cancel(id);
      state.transient.forgetRecent(id);
      return true;
    }
    if (state.runs.has(id)) await this.cancel(id);
    const row = await state.calls.track(this.storage.get(id));
    if (row && !isFinalStatus(row.status)) await this.cancel(id).catch(() => {});
    const removed = await state.calls.track(this.storage.remove(id));
    if (removed) state.durable.move(removed.service, removed.status, null);
    return removed !== null;
  }

  // ------------------------------------------------------------------ workers

  registerWorker(sink: WorkerSink, options: RegisterWorkerOptions): WorkerHandle {
    return registerWorker(this.state, this.dispatch, this.runs, sink, options);
  }

  hasWorkers(service: string): boolean {
    return this.dispatch.hasWorkers(service);
  }

  /** A worker has free slots: offer them to each of its services. */
  pumpWorker(w: JobWorker): void {
    this.dispatch.pumpWorker(w);
  }

  workerComplete(w: JobWorker, jobId: string, result: Buffer[]): Promise<WorkerReportResult> {
    return this.runs.workerComplete(w, jobId, result);
  }

  workerFail(
    w: JobWorker,
    jobId: string,
    error: JobError,
    retry: boolean,
  ): Promise<WorkerReportResult> {
    return this.runs.workerFail(w, jobId, error, retry);
  }

  workerProgress(w: JobWorker, jobId: string, progress: JobProgress): WorkerReportResult {
    return this.runs.workerProgress(w, jobId, progress);
  }

  workerPartial(w: JobWorker, jobId: string, frames: Buffer[]): WorkerReportResult {
    return this.runs.workerPartial(w, jobId, frames);
  }

  workerExtend(w: JobWorker, jobId: string, ms: number): WorkerReportResult {
    return this.runs.workerExtend(w, jobId, ms);
  }

  /** The worker is gone: its running jobs go back to queued at once (attempt counted). */
  closeWorker(w: JobWorker): void {
    this.runs.closeWorker(w);
  }

  // ------------------------------------------------------------------ listings

  async services(): Promise<ServiceInfo[]> {
    const state = this.state;
    const names = new Set([...state.services.keys(), ...state.durable.services()]);
    names.delete(MULTICAST_SERVICE);
    const out: ServiceInfo[] = [];
    for (const name of [...names].sort()) {
      const s = state.services.get(name);
      const c = state.durable.get(name);
      const tf = s?.transientFinished;
      let transientRunning = 0;
      if (s)
        for (const w of s.workers)
          for (const r of w.held) if (!r.job.durable && r.job.service === name) transientRunning++;
      out.push({
        name,
        workers: s?.workers.length ?? 0,
        idleSlots: s ? this.dispatch.freeSlots(s) : 0,
        queued: (c?.queued ?? 0) + (s?.transient.length ?? 0),
        running: (c?.running ?? 0) + transientRunning,
        done: (c?.done ?? 0) + (tf?.done ?? 0),
        failed: (c?.failed ?? 0) + (tf?.failed ?? 0),
        cancelled: (c?.cancelled ?? 0) + (tf?.cancelled ?? 0),
        expired: (c?.expired ?? 0) + (tf?.expired ?? 0),
      });
    }
    return out;
  }

  workers(): WorkerInfo[] {
    return [...this.state.workers].map((w) => ({
      id: w.id,
      name: w.name,
      protocol: w.protocol,
      services: w.services.map((s) => s.name),
      concurrency: w.concurrency,
      running: w.held.size,
      completed: w.completed,
      failed: w.failed,
      connectedAt: w.connectedAt,
      lastJobAt: w.lastJobAt,
    }));
  }

  /** Recent jobs, newest first: the store's durable ones (transient ones are not listed). */
  async list(
    options: { service?: string; status?: JobStatus; limit?: number } = {},
  ): Promise<JobInfo[]> {
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new FerryError('BAD_ARGUMENTS', 'limit must be an integer 1–1000');
    }
    const rows = await this.state.calls.track(
      this.storage.list({ service: options.service, status: options.status, limit }),
    );
    return rows.map(rowInfo);
  }

  /** A job with its parameters, headers and partial results. */
  inspect(id: string): Promise<JobDetail> {
    return this.admin.inspect(id);
  }

  /** One page of stored jobs, newest first, filtered by service, status and search text. */
  search(options: JobSearchOptions): Promise<{ jobs: JobInfo[]; more: boolean }> {
    return this.admin.search(options);
  }

  /** A failed, cancelled or expired durable job back to queued for a fresh run. */
  retry(id: string): Promise<JobInfo> {
    return this.admin.retry(id);
  }

  /** Jobs running now and jobs queued in memory, for stats. */
  get runningCount(): number {
    return this.state.runs.size;
  }

  // ------------------------------------------------------------------ shutdown

  /** Stops timers and dispatch, fails waiting transient callers, waits for store calls. */
  async close(): Promise<void> {
    const state = this.state;
    if (state.closing) return;
    state.closing = true;
    state.scheduler.stop();
    const now = this.clock.now();
    for (const job of state.transient.liveJobs()) {
      this.runs.finalize(job, 'failed', now, undefined, {
        code: 'SHUTTING_DOWN',
        message: 'the broker shut down before the job finished',
      });
    }
    if (state.calls.pending > 0) await state.calls.idle();
  }
}
