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
 */
import { randomUUID } from 'node:crypto';
import { FerryError, toFerryError } from 'ferrymq/model';
import type { JobCounts, JobRow, JobStorage, NewJobRow } from '../storage/types.js';
import { retryDelayMs } from './backoff.js';
import { checkHeaders, checkKey } from './broker.js';
import { systemClock, type Clock } from './clock.js';
import {
  type CallOptions,
  type JobApi,
  type RegisterWorkerOptions,
  type WorkerHandle,
  type WorkerReportResult,
  type WorkerSink,
} from './job-types.js';
import {
  DEFAULT_JOB_POLICY,
  isFinalStatus,
  isJobId,
  type Assignment,
  type JobError,
  type JobEvent,
  type JobInfo,
  type JobPolicy,
  type JobProgress,
  type JobStatus,
  type NewJob,
  type ServiceInfo,
  type WorkerInfo,
} from 'ferrymq/model';
import { silentLogger, type Logger } from './logger.js';
import {
  PRIORITY_MAX,
  PRIORITY_MIN,
  isValidQueueName,
  messageSize,
  type Headers,
} from 'ferrymq/model';

/** Most durable jobs leased from the store in one call. */
export const JOB_LEASE_BATCH_MAX = 1_000;
/** How often running jobs are checked against their deadline. */
export const JOB_DEADLINE_SCAN_INTERVAL_MS = 250;
/** How often TTLs and retention are swept, and idle workers probe the store for due jobs. */
export const JOB_MAINTENANCE_INTERVAL_MS = 1_000;
export const JOB_SWEEP_BATCH_MAX = 10_000;
export const DEFAULT_MAX_PARAMS_BYTES = 8 * 1024 * 1024;
export const MAX_WORKER_CONCURRENCY = 10_000;
export const PROGRESS_MAX_BYTES = 64 * 1024;
/** Finished transient jobs kept in memory so `get` still answers right after a call. */
export const RECENT_TRANSIENT_MAX = 10_000;
/** The service name multicast parents are stored under (not a valid service name). */
export const MULTICAST_SERVICE = '~multicast';

export interface JobServerOptions {
  storage: JobStorage;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
  /** Policy for every service, over the built-in defaults. */
  defaultPolicy?: Partial<JobPolicy>;
  /** Policy per service name, over defaultPolicy. */
  servicePolicies?: Record<string, Partial<JobPolicy>>;
  maxParamsBytes?: number;
  /** True while free disk space is below the floor: durable submits are refused. */
  isStorageLow?: () => boolean;
}

/** A job the server holds in memory: every transient job, and durable ones while running. */
interface Job {
  id: string;
  service: string;
  durable: boolean;
  status: JobStatus;
  priority: number;
  attempts: number;
  maxAttempts: number;
  /** Dropped (empty) once handed to a worker, for durable jobs. */
  params: Buffer[];
  headers: Headers | undefined;
  createdAt: number;
  notBefore: number;
  expiresAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  retainUntil: number | null;
  progress: JobProgress | undefined;
  partialCount: number;
  /** Transient jobs keep their partials here for late watchers. */
  partials: { seq: number; frames: Buffer[] }[];
  result: Buffer[] | undefined;
  error: JobError | undefined;
  parentId: string | null;
  children: string[] | null;
}

interface Running {
  job: Job;
  worker: WorkerImpl;
  attempt: number;
  deadline: number;
  /** Cancelled while running: the slot stays taken until the worker reports or the deadline. */
  cancelled: boolean;
}

interface ServiceState {
  name: string;
  policy: JobPolicy;
  workers: WorkerImpl[];
  /** Queued transient jobs, highest priority then oldest first. */
  transient: Job[];
  /** Durable submits accepted but not yet committed: count toward maxQueued. */
  pendingDurable: number;
  /** The store may hold durable jobs due now. */
  maybeDue: boolean;
  /** Bumped whenever a durable job may have become due (a lease compares before/after). */
  dueMarks: number;
  /** Worker slots that leases in flight will fill (leases overlap, each for its own slots). */
  leasingSlots: number;
  /** Transient jobs finished since start, by final status. */
  transientFinished: { done: number; failed: number; cancelled: number; expired: number };
}

type Watcher = (event: JobEvent) => void;

let workerSeq = 0;

class WorkerImpl implements WorkerHandle {
  readonly id: string;
  readonly name: string;
  readonly protocol: string;
  readonly running = new Map<string, Running>();
  readonly connectedAt: number;
  lastJobAt: number | null = null;
  /** Global order of the last assignment: lower = less recently used. */
  lastAssignSeq = 0;
  completed = 0;
  failed = 0;
  paused = false;
  closed = false;

  constructor(
    private readonly server: JobServer,
    readonly sink: WorkerSink,
    readonly services: ServiceState[],
    readonly concurrency: number,
    name: string | undefined,
    protocol: string | undefined,
    now: number,
  ) {
    this.id = `w${++workerSeq}`;
    this.name = name ?? this.id;
    this.protocol = protocol ?? 'ferry';
    this.connectedAt = now;
  }

  /**
   * Jobs taken back past their deadline that the worker has not reported yet: they keep their
   * slot, so a worker never holds more than `concurrency` jobs, even one it was told to drop.
   */
  readonly overdue = new Set<string>();

  get freeSlots(): number {
    if (this.paused || this.closed) return 0;
    return Math.max(0, this.concurrency - this.running.size - this.overdue.size);
  }

  complete(jobId: string, result: Buffer[]): Promise<WorkerReportResult> {
    return this.server.workerComplete(this, jobId, result);
  }
  fail(jobId: string, error: JobError, options?: { retry?: boolean }): Promise<WorkerReportResult> {
    return this.server.workerFail(this, jobId, error, options?.retry ?? true);
  }
  progress(jobId: string, progress: JobProgress): WorkerReportResult {
    return this.server.workerProgress(this, jobId, progress);
  }
  partial(jobId: string, frames: Buffer[]): WorkerReportResult {
    return this.server.workerPartial(this, jobId, frames);
  }
  extend(jobId: string, ms: number): WorkerReportResult {
    return this.server.workerExtend(this, jobId, ms);
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.server.pumpWorker(this);
  }
  close(): void {
    this.server.closeWorker(this);
  }
}

export class JobServer implements JobApi {
  private readonly storage: JobStorage;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly defaultPolicy: JobPolicy;
  private readonly servicePolicies: Record<string, Partial<JobPolicy>>;
  private readonly maxParamsBytes: number;
  private readonly isStorageLow: () => boolean;
  private readonly svcs = new Map<string, ServiceState>();
  private readonly allWorkers = new Set<WorkerImpl>();
  private readonly running = new Map<string, Running>();
  /** Transient jobs that are not final. */
  private readonly transientJobs = new Map<string, Job>();
  /** Transient jobs recently finished (insertion order = age). */
  private readonly recentTransient = new Map<string, Job>();
  private readonly watchers = new Map<string, Set<Watcher>>();
  /** Durable jobs per service and status, as the store holds them (read once at open). */
  private readonly durableCounts = new Map<string, JobCounts>();
  private assignSeq = 0;
  private closing = false;
  private readonly timers = new Set<() => void>();
  private cancelScan: (() => void) | undefined;
  private cancelMaintenance: (() => void) | undefined;
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];

  private constructor(options: JobServerOptions) {
    this.storage = options.storage;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger ?? silentLogger;
    this.defaultPolicy = { ...DEFAULT_JOB_POLICY, ...options.defaultPolicy };
    this.servicePolicies = options.servicePolicies ?? {};
    this.maxParamsBytes = options.maxParamsBytes ?? DEFAULT_MAX_PARAMS_BYTES;
    this.isStorageLow = options.isStorageLow ?? (() => false);
  }

  /** Reads the durable jobs' counters from the (already opened) store and starts the timers. */
  static async open(options: JobServerOptions): Promise<JobServer> {
    const server = new JobServer(options);
    const counts = await server.storage.counts();
    for (const [name, c] of counts) {
      server.durableCounts.set(name, { ...c });
      if (name === MULTICAST_SERVICE) continue;
      const s = server.service(name);
      s.maybeDue = c.queued > 0;
    }
    server.armScan();
    server.armMaintenance();
    return server;
  }

  /** Moves `n` durable jobs of a service from one status to another (null: none). */
  private count(service: string, from: JobStatus | null, to: JobStatus | null, n = 1): void {
    let c = this.durableCounts.get(service);
    if (!c) {
      c = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0, expired: 0 };
      this.durableCounts.set(service, c);
    }
    if (from) c[from] = Math.max(0, c[from] - n);
    if (to) c[to] += n;
  }

  /** Durable jobs of a service queued in the store (due or not). */
  private queuedDurable(s: ServiceState): number {
    return this.durableCounts.get(s.name)?.queued ?? 0;
  }

  policyOf(service: string): JobPolicy {
    return { ...this.defaultPolicy, ...this.servicePolicies[service] };
  }

  private service(name: string): ServiceState {
    let s = this.svcs.get(name);
    if (!s) {
      s = {
        name,
        policy: this.policyOf(name),
        workers: [],
        transient: [],
        pendingDurable: 0,
        maybeDue: false,
        dueMarks: 0,
        leasingSlots: 0,
        transientFinished: { done: 0, failed: 0, cancelled: 0, expired: 0 },
      };
      this.svcs.set(name, s);
    }
    return s;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight++;
    const done = (): void => {
      this.inflight--;
      if (this.inflight === 0) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const f of w) f();
      }
    };
    p.then(done, done);
    return p;
  }

  private later(fn: () => void, ms: number): void {
    const cancel = this.clock.setTimer(() => {
      this.timers.delete(cancel);
      fn();
    }, ms);
    this.timers.add(cancel);
  }

  // ------------------------------------------------------------------ submitting

  private validate(job: NewJob, now: number): { job: Job; dedupKey: string | null } {
    if (!isValidQueueName(job.service)) {
      throw new FerryError(
        'INVALID_SERVICE_NAME',
        `invalid service name: ${JSON.stringify(String(job.service).slice(0, 60))}`,
      );
    }
    if (!Array.isArray(job.params) || job.params.length === 0) {
      throw new FerryError('BAD_ARGUMENTS', 'a job needs at least one params frame');
    }
    const size = messageSize(job.params);
    if (size > this.maxParamsBytes) {
      throw new FerryError(
        'MESSAGE_TOO_LARGE',
        `params are ${size} bytes; the limit is ${this.maxParamsBytes}`,
      );
    }
    const priority = job.priority ?? 0;
    if (!Number.isInteger(priority) || priority < PRIORITY_MIN || priority > PRIORITY_MAX) {
      throw new FerryError('BAD_ARGUMENTS', 'priority must be an integer 0–255');
    }
    const delayMs = job.delayMs ?? 0;
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new FerryError('BAD_ARGUMENTS', 'delayMs must be a number ≥ 0');
    }
    let expiresAt: number | null = null;
    if (job.ttlMs !== undefined) {
      if (!Number.isFinite(job.ttlMs) || job.ttlMs <= 0) {
        throw new FerryError('BAD_ARGUMENTS', 'ttlMs must be a number > 0');
      }
      expiresAt = now + Math.round(job.ttlMs);
    }
    const policy = this.policyOf(job.service);
    const maxAttempts = job.maxAttempts ?? policy.maxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000) {
      throw new FerryError('BAD_ARGUMENTS', 'maxAttempts must be an integer 1–1000');
    }
    if (job.headers !== undefined) checkHeaders(job.headers, 'job');
    const dedupKey = job.dedupKey ?? null;
    if (dedupKey !== null) checkKey(dedupKey, 'dedupKey');
    const durable = job.durable ?? true;
    return {
      dedupKey,
      job: {
        id: newJobId(),
        service: job.service,
        durable,
        status: 'queued',
        priority,
        attempts: 0,
        maxAttempts,
        params: job.params,
        headers: job.headers && Object.keys(job.headers).length > 0 ? job.headers : undefined,
        createdAt: now,
        notBefore: now + Math.round(delayMs),
        expiresAt,
        startedAt: null,
        finishedAt: null,
        retainUntil: null,
        progress: undefined,
        partialCount: 0,
        partials: [],
        result: undefined,
        error: undefined,
        parentId: null,
        children: null,
      },
    };
  }

  submit(spec: NewJob): Promise<JobInfo> {
    try {
      return this.submitJob(spec, null);
    } catch (err) {
      return Promise.reject(toFerryError(err));
    }
  }

  private submitJob(spec: NewJob, parentId: string | null): Promise<JobInfo> {
    if (this.closing) throw new FerryError('SHUTTING_DOWN');
    const now = this.clock.now();
    const { job, dedupKey } = this.validate(spec, now);
    job.parentId = parentId;
    const s = this.service(job.service);
    const queued = s.transient.length + this.queuedDurable(s) + s.pendingDurable;
    if (queued >= s.policy.maxQueued) {
      throw new FerryError(
        'QUEUE_FULL',
        `service ${s.name} holds ${queued} queued jobs, its limit; the job was refused`,
      );
    }
    if (!job.durable) {
      if (dedupKey !== null) {
        throw new FerryError('BAD_ARGUMENTS', 'dedupKey needs a durable job');
      }
      this.transientJobs.set(job.id, job);
      this.enqueueTransient(s, job);
      this.pump(s);
      return Promise.resolve(this.info(job));
    }
    if (this.isStorageLow()) {
      throw new FerryError('STORAGE_FULL', 'free disk space is below the floor; jobs are refused');
    }
    s.pendingDurable++;
    return this.track(
      this.storage.insert([this.toRow(job, dedupKey, s.policy.dedupWindowMs)]),
    ).then(
      async (out) => {
        s.pendingDurable--;
        if (out.duplicate[0]) {
          const prior = await this.get(out.ids[0]!);
          if (prior) return prior;
        }
        this.count(s.name, null, 'queued');
        if (job.notBefore > now) this.wakeAt(s, job.notBefore);
        else this.markDue(s);
        this.pump(s);
        return this.info(job);
      },
      (err: unknown) => {
        s.pendingDurable--;
        throw toFerryError(err);
      },
    );
  }

  private toRow(job: Job, dedupKey: string | null, dedupWindowMs: number): NewJobRow {
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

  private enqueueTransient(s: ServiceState, job: Job): void {
    // Sorted insert: after every job of the same or higher priority.
    const list = s.transient;
    let i = list.length;
    while (i > 0 && list[i - 1]!.priority < job.priority) i--;
    list.splice(i, 0, job);
  }

  call(spec: NewJob, options: CallOptions = {}): Promise<JobInfo> {
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0)) {
      return Promise.reject(new FerryError('BAD_ARGUMENTS', 'timeoutMs must be a number > 0'));
    }
    return this.submit({ ...spec, durable: spec.durable ?? false }).then((info) => {
      options.onSubmitted?.(info);
      return this.awaitFinal(info.id, options);
    });
  }

  /** Resolves with the job's final state (streaming its events to onEvent meanwhile). */
  private awaitFinal(id: string, options: CallOptions): Promise<JobInfo> {
    return new Promise<JobInfo>((resolve, reject) => {
      let stop: (() => void) | undefined;
      let settled = false;
      let cancelTimer: (() => void) | undefined;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        cancelTimer?.();
        stop?.();
        fn();
      };
      if (options.timeoutMs !== undefined) {
        cancelTimer = this.clock.setTimer(() => {
          finish(() =>
            reject(new FerryError('TIMEOUT', `no result within ${options.timeoutMs} ms`)),
          );
          this.cancel(id).catch(() => {});
        }, options.timeoutMs);
      }
      this.watch(id, (ev) => {
        if (ev.type === 'final') {
          finish(() => {
            options.onFinal?.(ev.job);
            resolve(ev.job);
          });
        } else if (!settled) options.onEvent?.(ev);
      }).then(
        (s) => {
          if (settled) s();
          else stop = s;
        },
        (err: unknown) => finish(() => reject(toFerryError(err))),
      );
    });
  }

  multicast(services: string[], spec: Omit<NewJob, 'service'>): Promise<JobInfo> {
    try {
      if (this.closing) throw new FerryError('SHUTTING_DOWN');
      if (!Array.isArray(services) || services.length === 0 || services.length > 100) {
        throw new FerryError('BAD_ARGUMENTS', 'multicast needs 1–100 services');
      }
      if (new Set(services).size !== services.length) {
        throw new FerryError('BAD_ARGUMENTS', 'multicast services must be distinct');
      }
      const now = this.clock.now();
      // Validate every child up front, so the multicast is all or nothing.
      const children = services.map((service) => this.validate({ ...spec, service }, now));
      const durable = spec.durable ?? true;
      if (spec.dedupKey !== undefined) {
        throw new FerryError('BAD_ARGUMENTS', 'a multicast takes no dedupKey');
      }
      const parent: Job = {
        ...children[0]!.job,
        id: newJobId(),
        service: MULTICAST_SERVICE,
        status: 'running',
        startedAt: now,
        params: [Buffer.from(JSON.stringify({ services }))],
        children: [],
      };
      for (const c of children) {
        c.job.parentId = parent.id;
        parent.children!.push(c.job.id);
      }
      if (!durable) {
        this.transientJobs.set(parent.id, parent);
        for (const c of children) {
          this.transientJobs.set(c.job.id, c.job);
          const s = this.service(c.job.service);
          this.enqueueTransient(s, c.job);
          this.pump(s);
        }
        return Promise.resolve(this.info(parent));
      }
      const rows = [this.toRow(parent, null, 0)];
      for (const c of children) rows.push(this.toRow(c.job, null, 0));
      const states = children.map((c) => this.service(c.job.service));
      for (const s of states) s.pendingDurable++;
      return this.track(this.storage.insert(rows)).then(
        () => {
          this.count(MULTICAST_SERVICE, null, 'running');
          for (const s of states) {
            s.pendingDurable--;
            this.count(s.name, null, 'queued');
            this.markDue(s);
            this.pump(s);
          }
          return this.info(parent);
        },
        (err: unknown) => {
          for (const s of states) s.pendingDurable--;
          throw toFerryError(err);
        },
      );
    } catch (err) {
      return Promise.reject(toFerryError(err));
    }
  }

  // ------------------------------------------------------------------ reading

  async get(id: string): Promise<JobInfo | null> {
    if (!isJobId(id)) throw new FerryError('BAD_ARGUMENTS', 'a job id is 32 lower-case hex digits');
    const t = this.transientJobs.get(id) ?? this.recentTransient.get(id);
    if (t) return this.info(t);
    const row = await this.track(this.storage.get(id));
    if (!row) return null;
    const r = this.running.get(id);
    const info = rowInfo(row);
    if (r) info.progress = r.job.progress ?? info.progress;
    return info;
  }

  async watch(id: string, listener: Watcher): Promise<() => void> {
    if (!isJobId(id)) throw new FerryError('BAD_ARGUMENTS', 'a job id is 32 lower-case hex digits');
    // Live events are buffered while the snapshot loads, then replayed past it.
    const buffered: JobEvent[] = [];
    let live = false;
    let stopped = false;
    const w: Watcher = (ev) => {
      if (stopped) return;
      if (live) listener(ev);
      else buffered.push(ev);
    };
    let set = this.watchers.get(id);
    if (!set) this.watchers.set(id, (set = new Set()));
    set.add(w);
    const stop = (): void => {
      stopped = true;
      const s = this.watchers.get(id);
      s?.delete(w);
      if (s && s.size === 0) this.watchers.delete(id);
    };
    let info: JobInfo | null;
    let partials: { seq: number; frames: Buffer[] }[];
    try {
      const t = this.transientJobs.get(id) ?? this.recentTransient.get(id);
      if (t) {
        info = this.info(t);
        partials = t.partials.slice();
      } else {
        info = await this.get(id);
        partials = info && info.partials > 0 ? await this.track(this.storage.partials(id)) : [];
      }
    } catch (err) {
      stop();
      throw err;
    }
    if (!info) {
      stop();
      throw new FerryError('JOB_NOT_FOUND', `no job ${id}`);
    }
    let lastStatus = `${info.status}/${info.attempts}`;
    listener({ type: 'status', status: info.status, attempt: info.attempts });
    if (info.progress !== undefined) listener({ type: 'progress', progress: info.progress });
    let lastSeq = 0;
    for (const p of partials) {
      listener({ type: 'partial', seq: p.seq, frames: p.frames });
      lastSeq = p.seq;
    }
    let final = isFinalStatus(info.status);
    if (final) listener({ type: 'final', job: info });
    for (const ev of buffered) {
      if (final || stopped) break;
      if (ev.type === 'partial' && ev.seq <= lastSeq) continue;
      if (ev.type === 'status') {
        // The snapshot may already show it.
        const key = `${ev.status}/${ev.attempt}`;
        if (key === lastStatus) continue;
        lastStatus = key;
      }
      if (ev.type === 'partial') lastSeq = ev.seq;
      if (ev.type === 'final') final = true;
      listener(ev);
    }
    buffered.length = 0;
    live = true;
    if (final) stop();
    return stop;
  }

  private emit(id: string, ev: JobEvent): void {
    const set = this.watchers.get(id);
    if (!set) return;
    for (const w of [...set]) {
      try {
        w(ev);
      } catch (err) {
        this.log.error('job watcher threw', { job: id, err: String(err) });
      }
    }
    if (ev.type === 'final') this.watchers.delete(id);
  }

  private info(job: Job): JobInfo {
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

  async cancel(id: string): Promise<JobInfo> {
    if (!isJobId(id)) throw new FerryError('BAD_ARGUMENTS', 'a job id is 32 lower-case hex digits');
    const now = this.clock.now();
    const error: JobError = { code: 'JOB_CANCELLED', message: 'cancelled by a client' };
    const t = this.transientJobs.get(id);
    if (t) {
      if (t.status === 'queued') {
        const s = this.service(t.service);
        const i = s.transient.indexOf(t);
        if (i >= 0) s.transient.splice(i, 1);
      }
      const r = this.running.get(id);
      if (r) this.cancelRunning(r);
      if (t.children) for (const c of t.children) await this.cancel(c).catch(() => {});
      this.finalize(t, 'cancelled', now, undefined, error);
      return this.info(t);
    }
    const recent = this.recentTransient.get(id);
    if (recent) return this.info(recent);
    const before = await this.track(this.storage.get(id));
    if (!before) throw new FerryError('JOB_NOT_FOUND', `no job ${id}`);
    if (isFinalStatus(before.status)) return rowInfo(before);
    const settled = await this.track(
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
    this.count(row.service, settled.previous, 'cancelled');
    const r = this.running.get(id);
    if (r) this.cancelRunning(r);
    if (row.children) for (const c of row.children) await this.cancel(c).catch(() => {});
    const info = rowInfo(row);
    this.emit(id, { type: 'final', job: info });
    if (row.parentId) this.childFinished(row.parentId);
    return info;
  }

  private cancelRunning(r: Running): void {
    r.cancelled = true;
    try {
      r.worker.sink.cancel(r.job.id);
    } catch (err) {
      this.log.error('worker sink threw on cancel', { err: String(err) });
    }
  }

  /** Forgets a job at once (Titanic `close`): true if there was one. */
  async forget(id: string): Promise<boolean> {
    if (!isJobId(id)) throw new FerryError('BAD_ARGUMENTS', 'a job id is 32 lower-case hex digits');
    if (this.recentTransient.delete(id)) return true;
    if (this.transientJobs.has(id)) {
      await this.cancel(id);
      this.recentTransient.delete(id);
      return true;
    }
    if (this.running.has(id)) await this.cancel(id);
    const row = await this.track(this.storage.get(id));
    if (row && !isFinalStatus(row.status)) await this.cancel(id).catch(() => {});
    const removed = await this.track(this.storage.remove(id));
    if (removed) this.count(removed.service, removed.status, null);
    return removed !== null;
  }

  // ------------------------------------------------------------------ workers

  registerWorker(sink: WorkerSink, options: RegisterWorkerOptions): WorkerHandle {
    if (this.closing) throw new FerryError('SHUTTING_DOWN');
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
    const states = [...new Set(names)].map((n) => this.service(n));
    const w = new WorkerImpl(
      this,
      sink,
      states,
      concurrency,
      options.name,
      options.protocol,
      this.clock.now(),
    );
    this.allWorkers.add(w);
    for (const s of states) {
      s.workers.push(w);
      s.maybeDue = s.maybeDue || this.queuedDurable(s) > 0;
    }
    this.pumpWorker(w);
    return w;
  }

  hasWorkers(service: string): boolean {
    const s = this.svcs.get(service);
    return s !== undefined && s.workers.length > 0;
  }

  /** A worker has free slots: offer them to each of its services. */
  pumpWorker(w: WorkerImpl): void {
    for (const s of w.services) {
      if (w.freeSlots <= 0) return;
      this.pump(s);
    }
  }

  /** The free worker of a service used least recently, or none. */
  private pickWorker(s: ServiceState): WorkerImpl | undefined {
    let best: WorkerImpl | undefined;
    for (const w of s.workers) {
      if (w.freeSlots <= 0) continue;
      if (!best || w.lastAssignSeq < best.lastAssignSeq) best = w;
    }
    return best;
  }

  private freeSlots(s: ServiceState): number {
    let n = 0;
    for (const w of s.workers) n += w.freeSlots;
    return n;
  }

  /** Hands queued jobs to free workers: transient ones first, then durable ones from the store. */
  private pump(s: ServiceState): void {
    if (this.closing) return;
    while (s.transient.length > 0) {
      const w = this.pickWorker(s);
      if (!w) return;
      const job = s.transient.shift()!;
      job.attempts++;
      this.assign(w, job, job.attempts);
    }
    if (!s.maybeDue) return;
    const free = this.freeSlots(s) - s.leasingSlots;
    if (free <= 0) return;
    const max = Math.min(free, JOB_LEASE_BATCH_MAX);
    const marks = s.dueMarks;
    s.leasingSlots += max;
    this.track(this.storage.lease(s.name, max, this.clock.now())).then(
      (rows) => {
        s.leasingSlots -= max;
        if (rows.length < max && s.dueMarks === marks) s.maybeDue = false;
        if (rows.length > 0) this.count(s.name, 'queued', 'running', rows.length);
        for (const row of rows) {
          const w = this.pickWorker(s);
          const job = rowJob(row);
          if (!w) {
            // Every worker left while the lease was in flight: back to queued, uncounted.
            this.count(s.name, 'running', 'queued');
            this.markDue(s);
            this.track(this.storage.requeue(row.id, row.attempts, row.notBefore, true)).catch(
              (err: unknown) => this.log.error('requeue failed', { err: String(err) }),
            );
            continue;
          }
          this.assign(w, job, row.attempts);
        }
        if (rows.length > 0) this.pump(s);
      },
      (err: unknown) => {
        s.leasingSlots -= max;
        this.log.error('job lease failed', { service: s.name, err: String(err) });
      },
    );
  }

  private assign(w: WorkerImpl, job: Job, attempt: number): void {
    const now = this.clock.now();
    const s = this.service(job.service);
    const deadline = now + s.policy.runTimeoutMs;
    const r: Running = { job, worker: w, attempt, deadline, cancelled: false };
    job.status = 'running';
    job.startedAt = now;
    w.running.set(job.id, r);
    w.lastAssignSeq = ++this.assignSeq;
    w.lastJobAt = now;
    this.running.set(job.id, r);
    const params = job.params;
    if (job.durable) job.params = [];
    this.emit(job.id, { type: 'status', status: 'running', attempt });
    try {
      w.sink.assign({
        id: job.id,
        service: job.service,
        params,
        headers: job.headers,
        attempt,
        deadline,
      } satisfies Assignment);
    } catch (err) {
      this.log.error('worker sink threw on assign', { err: String(err) });
    }
  }

  /** Ends a run's hold on its worker slot. Returns the run, or an error code. */
  private takeRun(w: WorkerImpl, jobId: string): Running | 'LEASE_LOST' {
    const r = w.running.get(jobId);
    if (!r) return 'LEASE_LOST';
    w.running.delete(jobId);
    this.running.delete(jobId);
    return r;
  }

  async workerComplete(
    w: WorkerImpl,
    jobId: string,
    result: Buffer[],
  ): Promise<WorkerReportResult> {
    const r = this.takeRun(w, jobId);
    if (typeof r === 'string') return this.lateReport(w, jobId, r);
    w.completed++;
    this.pumpWorker(w);
    if (r.cancelled) return null;
    if (!Array.isArray(result) || result.length === 0) result = [Buffer.alloc(0)];
    await this.settleRun(r, 'done', result, undefined);
    return null;
  }

  async workerFail(
    w: WorkerImpl,
    jobId: string,
    error: JobError,
    retry: boolean,
  ): Promise<WorkerReportResult> {
    const r = this.takeRun(w, jobId);
    if (typeof r === 'string') return this.lateReport(w, jobId, r);
    w.failed++;
    this.pumpWorker(w);
    if (r.cancelled) return null;
    await this.retryOrFail(r, normaliseError(error), retry);
    return null;
  }

  /** A report for a job the worker no longer holds: an overdue one frees its slot. */
  private lateReport(w: WorkerImpl, jobId: string, code: 'LEASE_LOST'): 'LEASE_LOST' {
    if (w.overdue.delete(jobId)) this.pumpWorker(w);
    return code;
  }

  private async retryOrFail(r: Running, error: JobError, retry: boolean): Promise<void> {
    const job = r.job;
    const s = this.service(job.service);
    if (!retry || r.attempt >= job.maxAttempts) {
      await this.settleRun(r, 'failed', undefined, error);
      return;
    }
    const delay = retryDelayMs(r.attempt, s.policy.retryBaseMs, s.policy.retryMaxMs, this.random);
    await this.requeueRun(r, delay, error);
  }

  /** Back to queued after `delayMs` (attempt counted). */
  private async requeueRun(
    r: Running,
    delayMs: number,
    error: JobError | undefined,
  ): Promise<void> {
    const job = r.job;
    const s = this.service(job.service);
    const now = this.clock.now();
    job.status = 'queued';
    job.error = error;
    if (!job.durable) {
      job.notBefore = now + delayMs;
      const back = (): void => {
        if (job.status !== 'queued' || !this.transientJobs.has(job.id)) return;
        this.enqueueTransient(s, job);
        this.pump(s);
      };
      if (delayMs <= 0) back();
      else this.later(back, delayMs);
      this.emit(job.id, { type: 'status', status: 'queued', attempt: r.attempt });
      return;
    }
    const ok = await this.track(this.storage.requeue(job.id, r.attempt, now + delayMs)).catch(
      (err: unknown) => {
        this.log.error('job requeue failed', { job: job.id, err: String(err) });
        return false;
      },
    );
    if (!ok) return;
    this.count(s.name, 'running', 'queued');
    if (delayMs > 0) this.wakeAt(s, now + delayMs);
    else this.markDue(s);
    this.emit(job.id, { type: 'status', status: 'queued', attempt: r.attempt });
    this.pump(s);
  }

  /** Final status for a run: stored (durable), then watchers told. */
  private async settleRun(
    r: Running,
    status: 'done' | 'failed',
    result: Buffer[] | undefined,
    error: JobError | undefined,
  ): Promise<void> {
    const job = r.job;
    const now = this.clock.now();
    if (!job.durable) {
      this.finalize(job, status, now, result, error);
      return;
    }
    const retainUntil = now + this.policyOf(job.service).retentionMs;
    const ok = await this.track(
      this.storage.finish(job.id, r.attempt, {
        status,
        finishedAt: now,
        retainUntil,
        result,
        error,
      }),
    ).catch((err: unknown) => {
      this.log.error('job finish failed', { job: job.id, err: String(err) });
      return false;
    });
    if (!ok) return;
    this.count(job.service, 'running', status);
    job.status = status;
    job.finishedAt = now;
    job.retainUntil = retainUntil;
    job.result = result;
    job.error = error;
    job.attempts = r.attempt;
    this.emit(job.id, { type: 'final', job: this.info(job) });
    if (job.parentId) this.childFinished(job.parentId);
  }

  /** Final status of a transient job, in memory. */
  private finalize(
    job: Job,
    status: 'done' | 'failed' | 'cancelled' | 'expired',
    now: number,
    result: Buffer[] | undefined,
    error: JobError | undefined,
  ): void {
    if (isFinalStatus(job.status)) return;
    job.status = status;
    job.finishedAt = now;
    job.result = result;
    job.error = error;
    job.params = [];
    this.transientJobs.delete(job.id);
    this.recentTransient.set(job.id, job);
    if (this.recentTransient.size > RECENT_TRANSIENT_MAX) {
      const oldest = this.recentTransient.keys().next().value;
      if (oldest !== undefined) this.recentTransient.delete(oldest);
    }
    if (job.service !== MULTICAST_SERVICE) this.service(job.service).transientFinished[status]++;
    this.emit(job.id, { type: 'final', job: this.info(job) });
    if (job.parentId) this.childFinished(job.parentId);
  }

  /** A multicast child ended: when all have, so does the parent. */
  private childFinished(parentId: string): void {
    const transientParent = this.transientJobs.get(parentId);
    void (async () => {
      const parent = transientParent ? this.info(transientParent) : await this.get(parentId);
      if (!parent || isFinalStatus(parent.status) || !parent.children) return;
      const kids: JobInfo[] = [];
      for (const id of parent.children) {
        const k = await this.get(id);
        if (!k || !isFinalStatus(k.status)) return;
        kids.push(k);
      }
      const allDone = kids.every((k) => k.status === 'done');
      const summary = kids.map((k) => ({
        service: k.service,
        id: k.id,
        status: k.status,
        ...(k.error ? { error: k.error } : {}),
      }));
      const result = [Buffer.from(JSON.stringify(summary))];
      const error: JobError | undefined = allDone
        ? undefined
        : { code: 'JOB_FAILED', message: 'not every service completed the job' };
      const now = this.clock.now();
      if (transientParent) {
        this.finalize(transientParent, allDone ? 'done' : 'failed', now, result, error);
        return;
      }
      const settled = await this.track(
        this.storage.settle(parentId, {
          status: allDone ? 'done' : 'failed',
          finishedAt: now,
          retainUntil: now + this.defaultPolicy.retentionMs,
          result,
          error,
        }),
      );
      if (settled) {
        this.count(MULTICAST_SERVICE, settled.previous, settled.row.status);
        this.emit(parentId, { type: 'final', job: rowInfo(settled.row) });
      }
    })().catch((err: unknown) =>
      this.log.error('multicast completion failed', { job: parentId, err: String(err) }),
    );
  }

  workerProgress(w: WorkerImpl, jobId: string, progress: JobProgress): WorkerReportResult {
    const r = w.running.get(jobId);
    if (!r) return 'LEASE_LOST';
    let text: string;
    try {
      text = JSON.stringify(progress ?? null);
    } catch {
      throw new FerryError('BAD_ARGUMENTS', 'progress must be JSON');
    }
    if (text.length > PROGRESS_MAX_BYTES) {
      throw new FerryError('BAD_ARGUMENTS', `progress exceeds ${PROGRESS_MAX_BYTES} bytes`);
    }
    r.job.progress = progress;
    if (r.job.durable) {
      this.track(this.storage.setProgress(jobId, text)).catch((err: unknown) =>
        this.log.error('progress write failed', { err: String(err) }),
      );
    }
    if (!r.cancelled) this.emit(jobId, { type: 'progress', progress });
    return null;
  }

  workerPartial(w: WorkerImpl, jobId: string, frames: Buffer[]): WorkerReportResult {
    const r = w.running.get(jobId);
    if (!r) return 'LEASE_LOST';
    if (!Array.isArray(frames) || frames.length === 0) {
      throw new FerryError('BAD_ARGUMENTS', 'a partial result needs at least one frame');
    }
    if (messageSize(frames) > this.maxParamsBytes) {
      throw new FerryError('MESSAGE_TOO_LARGE', 'partial result too large');
    }
    if (r.cancelled) return null;
    const job = r.job;
    const seq = ++job.partialCount;
    if (job.durable) {
      this.track(this.storage.addPartial(jobId, seq, frames)).catch((err: unknown) =>
        this.log.error('partial write failed', { err: String(err) }),
      );
    } else {
      job.partials.push({ seq, frames });
    }
    this.emit(jobId, { type: 'partial', seq, frames });
    return null;
  }

  workerExtend(w: WorkerImpl, jobId: string, ms: number): WorkerReportResult {
    const r = w.running.get(jobId);
    if (!r) return 'LEASE_LOST';
    if (!Number.isFinite(ms) || ms < 1) throw new FerryError('BAD_ARGUMENTS', 'ms must be ≥ 1');
    r.deadline = Math.max(r.deadline, this.clock.now() + ms);
    return null;
  }

  /** The worker is gone: its running jobs go back to queued at once (attempt counted). */
  closeWorker(w: WorkerImpl): void {
    if (w.closed) return;
    w.closed = true;
    w.overdue.clear();
    this.allWorkers.delete(w);
    for (const s of w.services) {
      const i = s.workers.indexOf(w);
      if (i >= 0) s.workers.splice(i, 1);
    }
    for (const id of [...w.running.keys()]) {
      const r = this.takeRun(w, id);
      if (typeof r === 'string' || r.cancelled) continue;
      void this.retryOrFailNow(r, { code: 'WORKER_LOST', message: 'the worker went away' });
    }
  }

  /** A run lost its worker (gone or past its deadline): requeue now, or fail at max attempts. */
  private retryOrFailNow(r: Running, error: JobError): Promise<void> {
    if (r.attempt >= r.job.maxAttempts) return this.settleRun(r, 'failed', undefined, error);
    return this.requeueRun(r, 0, error);
  }

  // ------------------------------------------------------------------ time

  private armScan(): void {
    this.cancelScan = this.clock.setTimer(() => {
      this.scanDeadlines();
      if (!this.closing) this.armScan();
    }, JOB_DEADLINE_SCAN_INTERVAL_MS);
  }

  private scanDeadlines(): void {
    const now = this.clock.now();
    for (const r of [...this.running.values()]) {
      if (r.deadline > now) continue;
      const w = r.worker;
      const taken = this.takeRun(w, r.job.id);
      if (typeof taken === 'string') continue;
      // The slot stays taken until the worker reports the job (or goes away).
      w.overdue.add(r.job.id);
      if (r.cancelled) continue;
      try {
        w.sink.cancel(r.job.id);
      } catch {
        /* the worker is told; nothing else to do */
      }
      void this.retryOrFailNow(r, {
        code: 'TIMEOUT',
        message: 'the worker did not finish or extend the job in time',
      });
    }
  }

  private armMaintenance(): void {
    this.cancelMaintenance = this.clock.setTimer(() => {
      this.maintain();
      if (!this.closing) this.armMaintenance();
    }, JOB_MAINTENANCE_INTERVAL_MS);
  }

  private maintain(): void {
    const now = this.clock.now();
    // Transient jobs past their TTL.
    for (const s of this.svcs.values()) {
      if (s.transient.length === 0) continue;
      const keep: Job[] = [];
      for (const job of s.transient) {
        if (job.expiresAt !== null && job.expiresAt <= now) {
          this.finalize(job, 'expired', now, undefined, {
            code: 'JOB_EXPIRED',
            message: 'no worker started the job within its ttl',
          });
        } else keep.push(job);
      }
      s.transient = keep;
    }
    // Durable jobs: TTL and retention, then probe for due jobs where workers are idle.
    this.track(this.storage.sweep(now, JOB_SWEEP_BATCH_MAX)).then(
      (out) => {
        for (const f of out.forgotten) this.count(f.service, f.status, null, f.count);
        for (const row of out.pastTtl) void this.expireDurable(row, now);
      },
      (err: unknown) => this.log.error('job sweep failed', { err: String(err) }),
    );
    for (const s of this.svcs.values()) {
      if (this.queuedDurable(s) > 0 && this.freeSlots(s) > 0) {
        this.markDue(s);
        this.pump(s);
      }
    }
  }

  private async expireDurable(row: JobRow, now: number): Promise<void> {
    const settled = await this.track(
      this.storage.settle(row.id, {
        status: 'expired',
        finishedAt: now,
        retainUntil: now + this.policyOf(row.service).retentionMs,
        error: { code: 'JOB_EXPIRED', message: 'no worker started the job within its ttl' },
      }),
    ).catch(() => null);
    if (!settled) return;
    this.count(row.service, settled.previous, 'expired');
    this.emit(row.id, { type: 'final', job: rowInfo(settled.row) });
    if (settled.row.parentId) this.childFinished(settled.row.parentId);
  }

  private markDue(s: ServiceState): void {
    s.maybeDue = true;
    s.dueMarks++;
  }

  private wakeAt(s: ServiceState, at: number): void {
    this.later(
      () => {
        this.markDue(s);
        this.pump(s);
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  // ------------------------------------------------------------------ listings

  async services(): Promise<ServiceInfo[]> {
    const counts = this.durableCounts;
    const names = new Set([...this.svcs.keys(), ...counts.keys()]);
    names.delete(MULTICAST_SERVICE);
    const out: ServiceInfo[] = [];
    for (const name of [...names].sort()) {
      const s = this.svcs.get(name);
      const c = counts.get(name);
      const tf = s?.transientFinished;
      let transientRunning = 0;
      if (s)
        for (const w of s.workers)
          for (const r of w.running.values())
            if (!r.job.durable && r.job.service === name) transientRunning++;
      out.push({
        name,
        workers: s?.workers.length ?? 0,
        idleSlots: s ? this.freeSlots(s) : 0,
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
    return [...this.allWorkers].map((w) => ({
      id: w.id,
      name: w.name,
      protocol: w.protocol,
      services: w.services.map((s) => s.name),
      concurrency: w.concurrency,
      running: w.running.size,
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
    const rows = await this.track(
      this.storage.list({ service: options.service, status: options.status, limit }),
    );
    return rows.map(rowInfo);
  }

  /** Jobs running now and jobs queued in memory, for stats. */
  get runningCount(): number {
    return this.running.size;
  }

  // ------------------------------------------------------------------ shutdown

  /** Stops timers and dispatch, fails waiting transient callers, waits for store calls. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.cancelScan?.();
    this.cancelMaintenance?.();
    for (const cancel of this.timers) cancel();
    this.timers.clear();
    const now = this.clock.now();
    for (const job of [...this.transientJobs.values()]) {
      this.finalize(job, 'failed', now, undefined, {
        code: 'SHUTTING_DOWN',
        message: 'the broker shut down before the job finished',
      });
    }
    if (this.inflight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}

function newJobId(): string {
  return randomUUID().replace(/-/g, '');
}

function normaliseError(error: JobError | undefined): JobError {
  const code = typeof error?.code === 'string' && error.code.length > 0 ? error.code : 'JOB_FAILED';
  const message = typeof error?.message === 'string' ? error.message : 'the job failed';
  return { code: code.slice(0, 100), message: message.slice(0, 10_000) };
}

function rowJob(row: JobRow): Job {
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

function rowInfo(row: JobRow): JobInfo {
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
