/**
 * The job server's domain types: services, workers, jobs and their life cycle. Pure data and
 * the interfaces dialects use to reach the job server; the logic is in `jobs.ts`.
 *
 * A service is a named queue of jobs plus the workers registered for it. A job is either
 * durable (stored before the caller hears of it, survives a broker restart, result kept for
 * the retention period) or transient (held in memory only, like a Majordomo request: the fast
 * path of a synchronous call). docs/jobs.md has the state diagram.
 */
import type {
  Assignment,
  JobError,
  JobEvent,
  JobInfo,
  JobProgress,
  JobStatus,
  NewJob,
  ServiceInfo,
  WorkerInfo,
} from 'ferrymq/model';

/** How the job server reaches a worker. Implemented by each dialect. */
export interface WorkerSink {
  /** A job for the worker. Called only while the worker has free capacity. */
  assign(job: Assignment): void;
  /** A client cancelled a job this worker is running: it should stop and may say so. */
  cancel(jobId: string): void;
}

export interface RegisterWorkerOptions {
  /** Services this worker serves (at least one). */
  services: string[];
  /** Most jobs at once. Default 1. */
  concurrency?: number | undefined;
  /** A name for listings (`ferry workers`); a generated one otherwise. */
  name?: string | undefined;
  /** Which dialect it speaks, for listings and metrics. */
  protocol?: string | undefined;
}

/** Per-job outcome of a worker's report: null when taken, or the code of why not. */
export type WorkerReportResult = 'LEASE_LOST' | 'JOB_NOT_FOUND' | null;

/** A registered worker, as a dialect holds it. */
export interface WorkerHandle {
  readonly id: string;
  readonly name: string;
  /** The job succeeded; `result` is stored (durable) or handed to the caller. */
  complete(jobId: string, result: Buffer[]): Promise<WorkerReportResult>;
  /**
   * The attempt failed. Retried with backoff until max attempts unless `retry` is false
   * (then `failed` at once).
   */
  fail(jobId: string, error: JobError, options?: { retry?: boolean }): Promise<WorkerReportResult>;
  /** Progress of a running job; the latest is kept and streamed to watchers. */
  progress(jobId: string, progress: JobProgress): WorkerReportResult;
  /** A partial result, relayed to watchers in order (and kept with durable jobs). */
  partial(jobId: string, frames: Buffer[]): WorkerReportResult;
  /** More time: the job's deadline becomes at least `ms` from now. */
  extend(jobId: string, ms: number): WorkerReportResult;
  /** Stop taking jobs (running ones may still be reported). */
  pause(): void;
  resume(): void;
  /**
   * The worker is gone (disconnected, silent past its liveness, or said goodbye): its running
   * jobs are requeued at once, their attempt counted.
   */
  close(): void;
  readonly closed: boolean;
}

/**
 * What dialects and the gateway call. Implemented by `JobServer` in jobs.ts.
 *
 * - `submit` resolves once the job is stored (durable) or accepted (transient), with its id.
 * - `call` submits and resolves with the final JobInfo (done, failed, cancelled or expired);
 *   it rejects with TIMEOUT after `timeoutMs` (the job itself is then cancelled).
 * - `watch` streams a job's events from the start (status, progress, partials, final), then
 *   live ones; it returns a function that stops the stream.
 */
export interface JobApi {
  submit(job: NewJob): Promise<JobInfo>;
  call(job: NewJob, options?: CallOptions): Promise<JobInfo>;
  get(id: string): Promise<JobInfo | null>;
  watch(id: string, listener: (event: JobEvent) => void): Promise<() => void>;
  cancel(id: string): Promise<JobInfo>;
  multicast(services: string[], job: Omit<NewJob, 'service'>): Promise<JobInfo>;
  registerWorker(sink: WorkerSink, options: RegisterWorkerOptions): WorkerHandle;
  /** True when at least one worker is registered for the service (MMI `mmi.service`). */
  hasWorkers(service: string): boolean;
  services(): Promise<ServiceInfo[]>;
  workers(): WorkerInfo[];
  /** Recent durable jobs, newest first. */
  list(options?: { service?: string; status?: JobStatus; limit?: number }): Promise<JobInfo[]>;
  /** Forgets a job at once (cancelling it first if it is not final): true if there was one. */
  forget(id: string): Promise<boolean>;
  /**
   * A COMPLETE or FAIL, from any session, of a job the previous run was running: within the
   * recovery grace it ends that run (null); otherwise LEASE_LOST (the job runs again).
   */
  reportRecovered(id: string, report: RecoveredReport): Promise<WorkerReportResult>;
}

/** A worker's report of a run that began before a restart. */
export type RecoveredReport =
  { type: 'complete'; result: Buffer[] } | { type: 'fail'; error: JobError; retry: boolean };

export interface CallOptions {
  /** Give up (and cancel the job) after this long; default none. */
  timeoutMs?: number | undefined;
  /** Every event of the job as it happens (progress, partials), before the final result. */
  onEvent?: ((event: JobEvent) => void) | undefined;
  /** Called once the job is accepted, before any event: its id, for the caller's records. */
  onSubmitted?: ((job: JobInfo) => void) | undefined;
  /**
   * Called synchronously the moment the job ends, before the returned promise settles: lets a
   * dialect answer its caller without waiting for the promise chain (the latency of a call).
   */
  onFinal?: ((job: JobInfo) => void) | undefined;
}
