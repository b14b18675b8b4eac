/**
 * The PostgreSQL group's job loops, shared by every system (Ferry on PostgreSQL or SQLite,
 * graphile-worker, pg-boss), so all run exactly the same code: enqueue a batch of jobs then
 * process them, and single adds at a paced rate with add → handler-start latency. A system is
 * a PgJobsTarget: how it adds jobs, starts its workers and counts what it has not completed.
 * Payloads are JSON `{ i, t }` (t: performance.now() at the add; handlers run in this
 * process, so the clocks match).
 */
import { performance } from 'node:perf_hooks';
import { summarizeLatency } from '../stats.js';
import type { Scope } from '../workloads.js';

export interface JobPayload {
  /** Sequence number: each job counted once. */
  i: number;
  /** performance.now() just before the add call. */
  t: number;
}

export interface PgJobsTarget {
  /** Adds jobs in one call (or, for Ferry, that many submits in flight together). */
  addBatch(payloads: JobPayload[]): Promise<void>;
  /** Adds one job; resolves once the system confirmed storing it. */
  addOne(payload: JobPayload): Promise<void>;
  /** Starts the workers; `onJob` is called as each handler starts. */
  startWorkers(onJob: (payload: JobPayload) => void): Promise<void>;
  /** Jobs the store does not yet have as completed. */
  pending(): Promise<number>;
}

/** Jobs, enqueue then process (as much as each system fetches at once), or paced latency. */
export type PgJobsMode = 'jobs' | 'latency';

interface PgOpenOptions {
  url: string;
  schema: string;
  mode: PgJobsMode;
  /** `SELECT count(*) …` on the bench's own connection (not the system's pool): the count. */
  count(sql: string): Promise<number>;
}

/** graphile-worker or pg-boss: an adapter in adapters/<id>.ts, loaded once PostgreSQL answers. */
export interface PgPeer {
  /** The row label. */
  label: string;
  /** Its configuration per mode, one line each: pool, batch, polling, notify. */
  settings: Record<PgJobsMode, string>;
  /** Everything lives in `schema` (created by the system itself, dropped by the caller). */
  open(scope: Scope, o: PgOpenOptions): Promise<PgJobsTarget>;
}

/** Once every handler ran, wait at most this long for the store to show every job completed, ms. */
const DRAIN_CHECK_TIMEOUT_MS = 30_000;
const DRAIN_POLL_MS = 50;

/** Counts each job's first handler start, and repeats. */
class Seen {
  private readonly seen: Uint8Array;
  handled = 0;
  duplicates = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(readonly total: number) {
    this.seen = new Uint8Array(total);
  }
  /** Records job `i`; true on its first start. */
  mark(i: number): boolean {
    if (!Number.isInteger(i) || i < 0 || i >= this.total) throw new Error(`job ${i} not added`);
    if (this.seen[i] === 1) {
      this.duplicates++;
      return false;
    }
    this.seen[i] = 1;
    this.handled++;
    if (this.handled === this.total) for (const w of this.waiters.splice(0)) w();
    return true;
  }
  all(timeoutMs: number): Promise<void> {
    if (this.handled === this.total) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${this.handled} of ${this.total} jobs ran in time`)),
        timeoutMs,
      );
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export interface EnqueueProcessOptions {
  count: number;
  batch: number;
  timeoutMs: number;
  onProgress(added: number, handled: number): void;
  /** Around each phase (Ferry takes its broker counters there). */
  hooks?: { start?(): Promise<void>; enqueued?(): Promise<void>; end?(): Promise<void> };
}

/**
 * Adds `count` jobs in batches of `batch` (one batch at a time, nothing running them), then
 * starts the workers: enqueue jobs/s over the adds, process jobs/s from starting the workers
 * until the last job's handler started (no-op handlers). Afterwards, untimed, waits until the
 * store shows every job completed (drainedMs, including up to DRAIN_POLL_MS of polling).
 */
export async function enqueueThenProcess(
  target: PgJobsTarget,
  o: EnqueueProcessOptions,
): Promise<{ metrics: Record<string, number>; details: Record<string, unknown> }> {
  const seen = new Seen(o.count);
  await o.hooks?.start?.();
  const t0 = performance.now();
  for (let from = 0; from < o.count; from += o.batch) {
    const payloads: JobPayload[] = [];
    for (let i = from; i < Math.min(o.count, from + o.batch); i++) payloads.push({ i, t: NaN });
    await target.addBatch(payloads);
    o.onProgress(from + payloads.length, 0);
  }
  const enqueueMs = performance.now() - t0;
  await o.hooks?.enqueued?.();
  const t1 = performance.now();
  await target.startWorkers((p) => {
    seen.mark(p.i);
    if ((seen.handled & 1023) === 0) o.onProgress(o.count, seen.handled);
  });
  await seen.all(o.timeoutMs);
  const processMs = performance.now() - t1;
  let pending = await target.pending();
  const deadline = Date.now() + DRAIN_CHECK_TIMEOUT_MS;
  while (pending > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    pending = await target.pending();
  }
  if (pending > 0)
    throw new Error(
      `${pending} jobs not completed ${DRAIN_CHECK_TIMEOUT_MS} ms after the last ran`,
    );
  const drainedMs = performance.now() - t1;
  await o.hooks?.end?.();
  return {
    metrics: {
      enqueuePerSec: (o.count * 1000) / enqueueMs,
      processPerSec: (o.count * 1000) / processMs,
    },
    details: {
      jobs: o.count,
      batch: o.batch,
      enqueueMs,
      processMs,
      drainedMs,
      duplicates: seen.duplicates,
    },
  };
}

export interface PacedOptions {
  rate: number;
  count: number;
  /** Unmeasured adds first (the first second). */
  warmup: number;
  tickMs: number;
  timeoutMs: number;
  onProgress(added: number, handled: number): void;
}

/**
 * Single adds at `rate` per second, workers running: add → handler-start latency of the
 * measured jobs (p50 / p99 / max), and how long the add calls took.
 */
export async function pacedLatency(
  target: PgJobsTarget,
  o: PacedOptions,
): Promise<{ metrics: Record<string, number>; details: Record<string, unknown> }> {
  const total = o.warmup + o.count;
  const seen = new Seen(total);
  const startMs = new Float64Array(total).fill(NaN);
  const addMs = new Float64Array(total).fill(NaN);
  let next = 0;
  await target.startWorkers((p) => {
    if (seen.mark(p.i)) startMs[p.i] = performance.now() - p.t;
    if ((seen.handled & 63) === 0) o.onProgress(next, seen.handled);
  });
  let failure: Error | undefined;
  let timer: NodeJS.Timeout | undefined;
  const t0 = performance.now();
  const sent = new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * o.rate) / 1000) + 1);
      while (next < due) {
        const i = next++;
        const t = performance.now();
        target.addOne({ i, t }).then(
          () => (addMs[i] = performance.now() - t),
          (err: unknown) => (failure ??= err instanceof Error ? err : new Error(String(err))),
        );
      }
      if (next === total) {
        clearInterval(timer);
        resolve();
      }
    };
    timer = setInterval(tick, o.tickMs);
    tick();
  });
  try {
    await sent;
    await seen.all(o.timeoutMs);
  } finally {
    clearInterval(timer);
  }
  if (failure) throw failure;
  const measured = startMs.subarray(o.warmup);
  const lat = summarizeLatency(measured);
  const add = summarizeLatency(addMs.subarray(o.warmup).filter((x) => !Number.isNaN(x)));
  return {
    metrics: { p50Ms: lat.p50, p99Ms: lat.p99, maxMs: lat.max, addP50Ms: add.p50 },
    details: {
      rate: o.rate,
      jobs: o.count,
      warmupJobs: o.warmup,
      latencyMs: lat,
      addCallMs: add,
      achievedPerSec: (total * 1000) / (performance.now() - t0),
      duplicates: seen.duplicates,
    },
  };
}
