/** Jobs as JSON for HTTP replies, and HTTP job requests as the job server takes them. */
import type { Headers, JobEvent, JobInfo, NewJob } from 'ferrymq/model';
import { encodeFrames } from './body-encoding.js';

export interface HttpNewJob {
  params?: unknown;
  headers?: Headers;
  priority?: number;
  delayMs?: number;
  ttlMs?: number;
  maxAttempts?: number;
  dedupKey?: string;
}

/** The job parameters are the JSON text of `params` (null when absent), in one frame. */
export function toNewJob(service: string, body: HttpNewJob | undefined, durable: boolean): NewJob {
  const b = body ?? {};
  return {
    service,
    params: [Buffer.from(JSON.stringify(b.params ?? null))],
    headers: b.headers,
    priority: b.priority,
    delayMs: b.delayMs,
    ttlMs: b.ttlMs,
    maxAttempts: b.maxAttempts,
    dedupKey: b.dedupKey,
    durable,
  };
}

/** Result frames as JSON: the parsed value of a single JSON frame, else strings. */
function resultToJson(frames: readonly Buffer[]): { result: unknown; encoding?: string } {
  if (frames.length === 1) {
    try {
      return { result: JSON.parse(frames[0]!.toString('utf8')) as unknown };
    } catch {
      /* not JSON: as text or base64 below */
    }
  }
  const e = encodeFrames(frames);
  return { result: e.frames ?? e.body, encoding: e.encoding };
}

export function jobToJson(job: JobInfo): Record<string, unknown> {
  const { result, ...rest } = job;
  return {
    ...rest,
    ...(result !== undefined ? resultToJson(result) : {}),
  };
}

export function jobEventToJson(event: JobEvent): Record<string, unknown> {
  switch (event.type) {
    case 'status':
    case 'progress':
      return { ...event };
    case 'partial':
      return { type: 'partial', seq: event.seq, ...resultToJson(event.frames) };
    case 'final':
      return { type: 'final', job: jobToJson(event.job) };
  }
}
