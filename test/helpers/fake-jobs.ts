/**
 * A small in-memory JobApi for dialect unit tests: FIFO per service, workers with capacity,
 * calls that resolve when a worker completes. Not the real job server (no retries, no
 * storage, no TTLs): just enough to drive a dialect without sockets.
 */
import type {
  CallOptions,
  JobApi,
  RegisterWorkerOptions,
  WorkerHandle,
  WorkerReportResult,
  WorkerSink,
} from 'ferrymq-server/internal/core/job-types.js';
import {
  type Assignment,
  isFinalStatus,
  type JobEvent,
  type JobInfo,
  type NewJob,
  type ServiceInfo,
  type WorkerInfo,
} from 'ferrymq/model';
import { prng } from './seed.js';

interface FakeJob {
  info: JobInfo;
  params: Buffer[];
  worker: FakeWorker | undefined;
  listeners: ((e: JobEvent) => void)[];
  waiters: ((info: JobInfo) => void)[];
}

interface FakeWorker {
  id: string;
  sink: WorkerSink;
  services: string[];
  concurrency: number;
  running: Set<string>;
  closed: boolean;
  paused: boolean;
}

export class FakeJobs implements JobApi {
  readonly jobs = new Map<string, FakeJob>();
  private readonly queue: string[] = [];
  private readonly workerList: FakeWorker[] = [];
  private nextWorker = 1;
  /** Job ids: random bytes from the test seed (FERRY_TEST_SEED replays them). */
  private readonly ids = prng('fake job ids');

  private create(job: NewJob): FakeJob {
    if (!/^[A-Za-z0-9._:-]{1,255}$/.test(job.service)) {
      throw Object.assign(new Error(`invalid service name ${job.service}`), {
        code: 'INVALID_SERVICE_NAME',
      });
    }
    const info: JobInfo = {
      id: this.ids.bytes(16).toString('hex'),
      service: job.service,
      status: 'queued',
      durable: job.durable ?? false,
      attempts: 0,
      priority: job.priority ?? 0,
      createdAt: Date.now(),
      startedAt: null,
      finishedAt: null,
      retainUntil: null,
      progress: undefined,
      partials: 0,
      result: undefined,
      error: undefined,
    };
    const j: FakeJob = { info, params: job.params, worker: undefined, listeners: [], waiters: [] };
    this.jobs.set(info.id, j);
    this.queue.push(info.id);
    return j;
  }

  private emit(j: FakeJob, e: JobEvent): void {
    for (const l of j.listeners) l(e);
  }

  private finish(j: FakeJob, status: JobInfo['status'], result?: Buffer[]): void {
    j.info.status = status;
    j.info.result = result;
    j.info.finishedAt = Date.now();
    if (j.worker) j.worker.running.delete(j.info.id);
    j.worker = undefined;
    const info = { ...j.info };
    this.emit(j, { type: 'final', job: info });
    for (const w of j.waiters) w(info);
    j.waiters = [];
    this.dispatch();
  }

  private dispatch(): void {
    for (let i = 0; i < this.queue.length;) {
      const id = this.queue[i]!;
      const j = this.jobs.get(id)!;
      const w = this.workerList.find(
        (x) =>
          !x.closed &&
          !x.paused &&
          x.running.size < x.concurrency &&
          x.services.includes(j.info.service),
      );
      if (!w) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      j.worker = w;
      j.info.status = 'running';
      j.info.attempts++;
      w.running.add(id);
      const a: Assignment = {
        id,
        service: j.info.service,
        params: j.params,
        headers: undefined,
        attempt: j.info.attempts,
        deadline: Date.now() + 60_000,
      };
      w.sink.assign(a);
    }
  }

  submit(job: NewJob): Promise<JobInfo> {
    try {
      const j = this.create({ durable: true, ...job });
      const info = { ...j.info };
      this.dispatch();
      return Promise.resolve(info);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  call(job: NewJob, options: CallOptions = {}): Promise<JobInfo> {
    let j: FakeJob;
    try {
      j = this.create(job);
    } catch (err) {
      return Promise.reject(err);
    }
    if (options.onEvent) j.listeners.push(options.onEvent);
    const p = new Promise<JobInfo>((resolve) => j.waiters.push(resolve));
    this.dispatch();
    return p;
  }

  get(id: string): Promise<JobInfo | null> {
    const j = this.jobs.get(id);
    return Promise.resolve(j ? { ...j.info } : null);
  }

  watch(id: string, listener: (event: JobEvent) => void): Promise<() => void> {
    const j = this.jobs.get(id);
    if (!j) return Promise.reject(new Error('JOB_NOT_FOUND'));
    j.listeners.push(listener);
    return Promise.resolve(() => {
      j.listeners = j.listeners.filter((l) => l !== listener);
    });
  }

  cancel(id: string): Promise<JobInfo> {
    const j = this.jobs.get(id);
    if (!j) return Promise.reject(new Error('JOB_NOT_FOUND'));
    if (!isFinalStatus(j.info.status)) {
      const at = this.queue.indexOf(id);
      if (at >= 0) this.queue.splice(at, 1);
      if (j.worker) j.worker.sink.cancel(id);
      this.finish(j, 'cancelled');
    }
    return Promise.resolve({ ...j.info });
  }

  list(): Promise<JobInfo[]> {
    return Promise.resolve([...this.jobs.values()].map((j) => ({ ...j.info })));
  }

  async forget(id: string): Promise<boolean> {
    const j = this.jobs.get(id);
    if (!j) return false;
    if (!isFinalStatus(j.info.status)) await this.cancel(id);
    this.jobs.delete(id);
    return true;
  }

  /** No previous run here: nothing is held. */
  reportRecovered(): Promise<WorkerReportResult> {
    return Promise.resolve('LEASE_LOST');
  }

  multicast(): Promise<JobInfo> {
    return Promise.reject(new Error('not in the fake'));
  }

  /** Marks a job failed for good (as the real server does after its last attempt). */
  failJob(id: string): void {
    const j = this.jobs.get(id);
    if (!j) throw new Error(`no job ${id}`);
    const at = this.queue.indexOf(id);
    if (at >= 0) this.queue.splice(at, 1);
    j.info.error = { code: 'JOB_FAILED', message: 'failed in a test' };
    this.finish(j, 'failed');
  }

  registerWorker(sink: WorkerSink, options: RegisterWorkerOptions): WorkerHandle {
    const w: FakeWorker = {
      id: `w${this.nextWorker++}`,
      sink,
      services: options.services,
      concurrency: options.concurrency ?? 1,
      running: new Set(),
      closed: false,
      paused: false,
    };
    const owned = (jobId: string): FakeJob | undefined => {
      const j = this.jobs.get(jobId);
      return j && j.worker === w ? j : undefined;
    };
    const notOwned = (jobId: string): WorkerReportResult =>
      this.jobs.has(jobId) ? 'LEASE_LOST' : 'JOB_NOT_FOUND';
    const handle: WorkerHandle = {
      id: w.id,
      name: options.name ?? w.id,
      complete: (jobId, result) => {
        const j = owned(jobId);
        if (!j) return Promise.resolve(notOwned(jobId));
        this.finish(j, 'done', result);
        return Promise.resolve(null);
      },
      fail: (jobId, error) => {
        const j = owned(jobId);
        if (!j) return Promise.resolve(notOwned(jobId));
        j.info.error = error;
        this.finish(j, 'failed');
        return Promise.resolve(null);
      },
      progress: () => null,
      partial: (jobId, frames) => {
        const j = owned(jobId);
        if (!j) return notOwned(jobId);
        this.emit(j, { type: 'partial', seq: j.info.partials++, frames });
        return null;
      },
      extend: () => null,
      pause: () => {
        w.paused = true;
      },
      resume: () => {
        w.paused = false;
        this.dispatch();
      },
      close: () => {
        if (w.closed) return;
        w.closed = true;
        for (const id of w.running) {
          const j = this.jobs.get(id)!;
          j.worker = undefined;
          j.info.status = 'queued';
          this.queue.unshift(id);
        }
        w.running.clear();
        this.dispatch();
      },
      get closed() {
        return w.closed;
      },
    };
    this.workerList.push(w);
    this.dispatch();
    return handle;
  }

  hasWorkers(service: string): boolean {
    return this.workerList.some((w) => !w.closed && w.services.includes(service));
  }

  services(): Promise<ServiceInfo[]> {
    return Promise.resolve([]);
  }

  workers(): WorkerInfo[] {
    return [];
  }
}
