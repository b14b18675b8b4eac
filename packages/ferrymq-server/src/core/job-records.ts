/**
 * Jobs between their three shapes: the in-memory {@link Job}, the store's rows, and the
 * {@link JobInfo} clients see; new job ids and workers' error reports made safe to keep.
 */
import { randomUUID } from 'node:crypto';
import type { JobError, JobInfo, JobProgress } from 'ferrymq/model';
import type { JobRow, NewJobRow } from '../storage/types.js';
import type { Job } from './job-state.js';

export function newJobId(): string {
  return randomUUID().replace(/-/g, '');
}

export function normaliseError(error: JobError | undefined): JobError {
  const code = typeof error?.code === 'string' && error.code.length > 0 ? error.code : 'JOB_FAILED';
  const message = typeof error?.message === 'string' ? error.message : 'the job failed';
  return { code: code.slice(0, 100), message: message.slice(0, 10_000) };
}

/** What clients see of a job held in memory. */
export function jobInfo(job: Job): JobInfo {
  return {
    id: job.id,
    service: job.service,
    status: job.status,
    durable: job.durable,
    attempts: job.attempts,
    priority: job.priority,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    retainUntil: job.retainUntil,
    progress: job.progress,
    partials: job.partialCount,
    result: job.result,
    error: job.error,
    ...(job.children ? { children: job.children } : {}),
  };
}

/** The row a new job is stored as. */
export function toRow(job: Job, dedupKey: string | null, dedupWindowMs: number): NewJobRow {
  return {
    id: job.id,
    service: job.service,
    status: job.status === 'running' ? 'running' : 'queued',
    priority: job.priority,
    maxAttempts: job.maxAttempts,
    params: job.params,
    headers: job.headers,
    createdAt: job.createdAt,
    notBefore: job.notBefore,
    expiresAt: job.expiresAt,
    dedupKey,
    dedupUntil: job.createdAt + dedupWindowMs,
    parentId: job.parentId,
    children: job.children,
  };
}

/** A leased row as a job held in memory. */
export function rowJob(row: JobRow): Job {
  return {
    id: row.id,
    service: row.service,
    durable: true,
    status: row.status,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    params: row.params,
    headers: row.headers,
    createdAt: row.createdAt,
    notBefore: row.notBefore,
    expiresAt: row.expiresAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    retainUntil: row.retainUntil,
    progress: row.progress === null ? undefined : (JSON.parse(row.progress) as JobProgress),
    partialCount: row.partials,
    partials: [],
    result: row.result ?? undefined,
    error: row.error ?? undefined,
    parentId: row.parentId,
    children: row.children,
  };
}

/** What clients see of a stored job. */
export function rowInfo(row: JobRow): JobInfo {
  return {
    id: row.id,
    service: row.service,
    status: row.status,
    durable: true,
    attempts: row.attempts,
    priority: row.priority,
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    retainUntil: row.retainUntil,
    progress: row.progress === null ? undefined : (JSON.parse(row.progress) as JobProgress),
    partials: row.partials,
    result: row.result ?? undefined,
    error: row.error ?? undefined,
    ...(row.children ? { children: row.children } : {}),
  };
}
