/**
 * The job server's domain types: services, workers, jobs and their life cycle. Pure data and
 * the interfaces dialects use to reach the job server; the logic is in `jobs.ts`.
 *
 * A service is a named queue of jobs plus the workers registered for it. A job is either
 * durable (stored before the caller hears of it, survives a broker restart, result kept for
 * the retention period) or transient (held in memory only, like a Majordomo request: the fast
 * path of a synchronous call). docs/jobs.md has the state diagram.
 */
import type { Headers } from './types.js';

/** Where a job is in its life. `done`, `failed`, `cancelled` and `expired` are final. */
export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'expired';

export const JOB_STATUSES: readonly JobStatus[] = [
  'queued',
  'running',
  'done',
  'failed',
  'cancelled',
  'expired',
];

export const FINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set([
  'done',
  'failed',
  'cancelled',
  'expired',
]);

export function isFinalStatus(status: JobStatus): boolean {
  return FINAL_JOB_STATUSES.has(status);
}

/** JSON value a worker reports as progress (a number 0–1, or any JSON object). */
export type JobProgress = number | string | boolean | null | Record<string, unknown> | unknown[];

/** Why a job failed: a stable code and a human message. */
export interface JobError {
  code: string;
  message: string;
}

/** What a caller hands the job server for one job. */
export interface NewJob {
  service: string;
  /** One or more frames of any bytes (JSON by convention in the first). */
  params: Buffer[];
  headers?: Headers | undefined;
  /** 0–255, higher first. Default 0. */
  priority?: number | undefined;
  /** Do not start before this many ms from now (durable jobs only). */
  delayMs?: number | undefined;
  /** Expire (status `expired`) if no worker has started it within this many ms from now. */
  ttlMs?: number | undefined;
  /** Attempts before the job is `failed`; default the service's policy. */
  maxAttempts?: number | undefined;
  /** A second submit with the same key within the dedup window returns the first job. */
  dedupKey?: string | undefined;
  /** Store before acknowledging (default true for submit, false for call). */
  durable?: boolean | undefined;
}

/** A job as callers see it. */
export interface JobInfo {
  /** 32 lower-case hex digits. */
  id: string;
  service: string;
  status: JobStatus;
  durable: boolean;
  attempts: number;
  priority: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** When a final job is forgotten (retention), or null while it is not final. */
  retainUntil: number | null;
  progress: JobProgress | undefined;
  /** Partial results reported so far. */
  partials: number;
  /** Result frames, once `done`. */
  result: Buffer[] | undefined;
  /** Why it failed, was cancelled or expired. */
  error: JobError | undefined;
  /** For a multicast parent: its child job ids, one per service. */
  children?: string[] | undefined;
}

/** What a watcher of a job receives, in order. */
export type JobEvent =
  | { type: 'status'; status: JobStatus; attempt: number }
  | { type: 'progress'; progress: JobProgress }
  | { type: 'partial'; seq: number; frames: Buffer[] }
  | { type: 'final'; job: JobInfo };

/** A job handed to a worker. */
export interface Assignment {
  id: string;
  service: string;
  params: Buffer[];
  headers: Headers | undefined;
  /** 1 on the first run. */
  attempt: number;
  /** The worker must finish, or extend, before this time (ms since epoch). */
  deadline: number;
}

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

export interface ServiceInfo {
  name: string;
  workers: number;
  /** Free job slots among its workers. */
  idleSlots: number;
  queued: number;
  running: number;
  done: number;
  failed: number;
  cancelled: number;
  expired: number;
}

export interface WorkerInfo {
  id: string;
  name: string;
  protocol: string;
  services: string[];
  concurrency: number;
  running: number;
  completed: number;
  failed: number;
  connectedAt: number;
  lastJobAt: number | null;
}

/** Per-service settings; defaults in DEFAULT_JOB_POLICY, overridable per service in config. */
export interface JobPolicy {
  /** A running job not finished or extended within this is requeued. */
  runTimeoutMs: number;
  maxAttempts: number;
  /** How long final jobs (results, failures) are kept. */
  retentionMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Most jobs queued (durable + transient) before new ones are refused with QUEUE_FULL. */
  maxQueued: number;
  dedupWindowMs: number;
}

export const DEFAULT_JOB_RUN_TIMEOUT_MS = 60_000;
export const DEFAULT_JOB_MAX_ATTEMPTS = 5;
export const DEFAULT_JOB_RETENTION_MS = 24 * 60 * 60_000;
export const DEFAULT_JOB_RETRY_BASE_MS = 1_000;
export const DEFAULT_JOB_RETRY_MAX_MS = 5 * 60_000;
export const DEFAULT_JOB_MAX_QUEUED = 1_000_000;
export const DEFAULT_JOB_DEDUP_WINDOW_MS = 10 * 60_000;

export const DEFAULT_JOB_POLICY: Readonly<JobPolicy> = Object.freeze({
  runTimeoutMs: DEFAULT_JOB_RUN_TIMEOUT_MS,
  maxAttempts: DEFAULT_JOB_MAX_ATTEMPTS,
  retentionMs: DEFAULT_JOB_RETENTION_MS,
  retryBaseMs: DEFAULT_JOB_RETRY_BASE_MS,
  retryMaxMs: DEFAULT_JOB_RETRY_MAX_MS,
  maxQueued: DEFAULT_JOB_MAX_QUEUED,
  dedupWindowMs: DEFAULT_JOB_DEDUP_WINDOW_MS,
});

const JOB_ID_PATTERN = /^[0-9a-f]{32}$/;

export function isJobId(value: unknown): value is string {
  return typeof value === 'string' && JOB_ID_PATTERN.test(value);
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
}

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
