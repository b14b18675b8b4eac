/**
 * A job's row as both stores keep it (the same columns in SQLite and PostgreSQL), and how it
 * reads as a {@link JobRow}: bodies unpacked, JSON columns parsed.
 */
import type { Headers, JobError, JobStatus } from 'ferrymq/model';
import { unpackFrames } from './frames-codec.js';
import type { JobRow } from './types.js';

export interface JobDbRow {
  id: string;
  service: string;
  status: string;
  priority: number;
  attempts: number;
  max_attempts: number;
  created_at: number;
  not_before: number;
  expires_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  retain_until: number | null;
  nframes: number;
  params: Buffer;
  headers: string | null;
  progress: string | null;
  partials: number;
  result_nframes: number | null;
  result: Buffer | null;
  error: string | null;
  dedup_key: string | null;
  parent_id: string | null;
  children: string | null;
}

export function toJobRow(r: JobDbRow): JobRow {
  return {
    id: r.id,
    service: r.service,
    status: r.status as JobStatus,
    priority: r.priority,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    params: unpackFrames(r.params, r.nframes),
    headers: r.headers === null ? undefined : (JSON.parse(r.headers) as Headers),
    createdAt: r.created_at,
    notBefore: r.not_before,
    expiresAt: r.expires_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    retainUntil: r.retain_until,
    progress: r.progress,
    partials: r.partials,
    result:
      r.result === null || r.result_nframes === null
        ? null
        : unpackFrames(r.result, r.result_nframes),
    error: r.error === null ? null : (JSON.parse(r.error) as JobError),
    dedupKey: r.dedup_key,
    parentId: r.parent_id,
    children: r.children === null ? null : (JSON.parse(r.children) as string[]),
  };
}
