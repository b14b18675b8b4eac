/**
 * Registered workers: the {@link WorkerHandle} a dialect holds per worker (each report goes
 * straight to the part of the job server that handles it), and registering one.
 */
import { FerryError, isValidQueueName, type JobError, type JobProgress } from 'ferrymq/model';
import type { JobDispatch } from './job-dispatch.js';
import type { JobRuns } from './job-runs.js';
import type { JobServerState } from './job-server-state.js';
import { JobWorker, type ServiceState } from './job-state.js';
import type {
  RegisterWorkerOptions,
  WorkerHandle,
  WorkerReportResult,
  WorkerSink,
} from './job-types.js';

const MAX_WORKER_CONCURRENCY = 10_000;

let workerSeq = 0;

class WorkerImpl extends JobWorker implements WorkerHandle {
  constructor(
    private readonly dispatch: JobDispatch,
    private readonly runs: JobRuns,
    sink: WorkerSink,
    services: ServiceState[],
    concurrency: number,
    name: string | undefined,
    protocol: string | undefined,
    now: number,
  ) {
    super(`w${++workerSeq}`, sink, services, concurrency, name, protocol, now);
  }

  complete(jobId: string, result: Buffer[]): Promise<WorkerReportResult> {
    return this.runs.workerComplete(this, jobId, result);
  }
  fail(jobId: string, error: JobError, options?: { retry?: boolean }): Promise<WorkerReportResult> {
    return this.runs.workerFail(this, jobId, error, options?.retry ?? true);
  }
  progress(jobId: string, progress: JobProgress): WorkerReportResult {
    return this.runs.workerProgress(this, jobId, progress);
  }
  partial(jobId: string, frames: Buffer[]): WorkerReportResult {
    return this.runs.workerPartial(this, jobId, frames);
  }
  extend(jobId: string, ms: number): WorkerReportResult {
    return this.runs.workerExtend(this, jobId, ms);
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.dispatch.pumpWorker(this);
  }
  close(): void {
    this.runs.closeWorker(this);
  }
}

/** Checks the options, adds the worker to its services and offers it their queued jobs. */
export function registerWorker(
  state: JobServerState,
  dispatch: JobDispatch,
  runs: JobRuns,
  sink: WorkerSink,
  options: RegisterWorkerOptions,
): WorkerHandle {
  if (state.closing) throw new FerryError('SHUTTING_DOWN');
  const names = options.services;
  if (!Array.isArray(names) || names.length === 0 || names.length > 100) {
    throw new FerryError('BAD_ARGUMENTS', 'a worker serves 1–100 services');
  }
  for (const n of names) {
    if (!isValidQueueName(n)) {
      throw new FerryError(
        'INVALID_SERVICE_NAME',
        `invalid service name: ${JSON.stringify(String(n).slice(0, 60))}`,
      );
    }
  }
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_WORKER_CONCURRENCY) {
    throw new FerryError(
      'BAD_ARGUMENTS',
      `concurrency must be an integer 1–${MAX_WORKER_CONCURRENCY}`,
    );
  }
  const states = [...new Set(names)].map((n) => state.service(n));
  const w = new WorkerImpl(
    dispatch,
    runs,
    sink,
    states,
    concurrency,
    options.name,
    options.protocol,
    state.clock.now(),
  );
  state.workers.add(w);
  for (const s of states) {
    s.workers.push(w);
    s.maybeDue = s.maybeDue || state.queuedDurable(s) > 0;
  }
  dispatch.pumpWorker(w);
  return w;
}
