/**
 * Submitting jobs: checks, the service's maxQueued limit, and the two paths. A transient job
 * is queued in memory and dispatched at once; a durable one is stored first (dedup keys
 * honoured), handed to a worker at the commit, and confirmed to its submitter once durable.
 * When nothing of its service waits in the store and a worker has a free slot, a durable job
 * takes the direct path: stored already running for that worker (one write, no read-back).
 */
import {
  FerryError,
  isValidQueueName,
  type JobInfo,
  messageSize,
  type NewJob,
  toFerryError,
} from 'ferrymq/model';
import type { JobStorage } from '../storage/types.js';
import { leastRecentlyUsed } from './credit.js';
import { checkDelayMs, checkHeaders, checkKey, checkPriority, expiryOf } from './checks.js';
import type { JobDispatch } from './job-dispatch.js';
import { jobInfo, newJobId, toRow } from './job-records.js';
import type { JobServerState } from './job-server-state.js';
import {
  enqueueTransient,
  markDue,
  type Job,
  type JobWorker,
  type ServiceState,
} from './job-state.js';

export class JobSubmit {
  private readonly storage: JobStorage;

  constructor(
    private readonly state: JobServerState,
    private readonly dispatch: JobDispatch,
    /** A job's current state, for a durable submit that matched an earlier dedup key. */
    private readonly get: (id: string) => Promise<JobInfo | null>,
  ) {
    this.storage = state.storage;
  }

  /** Checks a new job and makes its in-memory record (queued, not yet stored). */
  validate(job: NewJob, now: number): { job: Job; dedupKey: string | null } {
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
    const maxParamsBytes = this.state.maxParamsBytes;
    if (size > maxParamsBytes) {
      throw new FerryError(
        'MESSAGE_TOO_LARGE',
        `params are ${size} bytes; the limit is ${maxParamsBytes}`,
      );
    }
    const priority = checkPriority(job.priority);
    const delayMs = checkDelayMs(job.delayMs);
    const expiresAt = expiryOf(job.ttlMs, now);
    const policy = this.state.policyOf(job.service);
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

  /** Submits a job; a durable one is confirmed once it is durable. */
  submit(spec: NewJob): Promise<JobInfo> {
    return this.submitCommitted(spec).then((info) =>
      info.durable ? this.storage.durable().then(() => info) : info,
    );
  }

  /**
   * Submits a job, resolving at its commit (a durable one may not be on disk yet): for a call,
   * whose answer waits for the job's final commit to be durable, which covers this one.
   */
  submitCommitted(spec: NewJob): Promise<JobInfo> {
    try {
      return this.submitJob(spec, null);
    } catch (err) {
      return Promise.reject(toFerryError(err));
    }
  }

  /**
   * The direct path's worker: one with a free slot, when nothing of the service waits (no
   * transient job, nothing due in the store, no lease in flight) and the job is due now.
   */
  private directWorker(s: ServiceState, job: Job, now: number): JobWorker | undefined {
    if (job.notBefore > now || s.transient.length > 0 || s.maybeDue || s.leasingSlots > 0) {
      return undefined;
    }
    return leastRecentlyUsed(s.workers);
  }

  private submitJob(spec: NewJob, parentId: string | null): Promise<JobInfo> {
    if (this.state.closing) throw new FerryError('SHUTTING_DOWN');
    const now = this.state.clock.now();
    const { job, dedupKey } = this.validate(spec, now);
    job.parentId = parentId;
    const s = this.state.service(job.service);
    const queued = s.transient.length + this.state.queuedDurable(s) + s.pendingDurable;
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
      this.state.transient.add(job);
      enqueueTransient(s, job);
      this.dispatch.pump(s);
      return Promise.resolve(jobInfo(job));
    }
    if (this.state.isStorageLow()) {
      throw new FerryError('STORAGE_FULL', 'free disk space is below the floor; jobs are refused');
    }
    s.pendingDurable++;
    const direct = this.directWorker(s, job, now);
    const row = toRow(job, dedupKey, s.policy.dedupWindowMs);
    if (direct) {
      direct.reserved++;
      row.status = 'running';
      row.started = true;
    }
    return this.state.calls.track(this.storage.insert([row])).then(
      async (out) => {
        s.pendingDurable--;
        if (direct) direct.reserved--;
        if (out.duplicate[0]) {
          if (direct) this.dispatch.pumpWorker(direct);
          const prior = await this.get(out.ids[0]!);
          if (prior) return prior;
        }
        if (direct) {
          this.state.durable.move(s.name, null, 'running');
          this.dispatch.startDirect(direct, job);
          return jobInfo(job);
        }
        this.state.durable.move(s.name, null, 'queued');
        if (job.notBefore > now) this.dispatch.wakeAt(s, job.notBefore);
        else markDue(s);
        this.dispatch.pump(s);
        return jobInfo(job);
      },
      (err: unknown) => {
        s.pendingDurable--;
        if (direct) {
          direct.reserved--;
          this.dispatch.pumpWorker(direct);
        }
        throw toFerryError(err);
      },
    );
  }
}
