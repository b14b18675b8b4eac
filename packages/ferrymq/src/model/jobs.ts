/**
 * Jobs as every layer speaks them: statuses, the job a caller hands over, the job as callers see
 * it, its events, an assignment to a worker, service and worker listings, and per-service policy.
 * Pure data and constants; the job server's logic is in core/jobs.ts, its interfaces for
 * dialects in core/job-types.ts. docs/jobs.md has the state diagram.
 */
import type { Headers } from './queues.js';

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
