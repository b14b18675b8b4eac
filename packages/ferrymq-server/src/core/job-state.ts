/**
 * What the job server holds in memory per job, run, service and worker, and the small rules
 * over it every part shares: the transient queue's order, and marking a service's durable
 * jobs as possibly due.
 */
import type { Headers, JobError, JobPolicy, JobProgress, JobStatus } from 'ferrymq/model';
import type { CreditHolder } from './credit.js';
import type { InflightEntry, InflightHolder } from './inflight-table.js';
import type { WorkerSink } from './job-types.js';

/** The service name multicast parents are stored under (not a valid service name). */
export const MULTICAST_SERVICE = '~multicast';

/** A job the server holds in memory: every transient job, and durable ones while running. */
export interface Job {
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

/** One attempt of a job on a worker (its holder), until reported or past its deadline. */
export interface Running extends InflightEntry<JobWorker> {
  job: Job;
  attempt: number;
  /** Cancelled while running: the slot stays taken until the worker reports or the deadline. */
  cancelled: boolean;
}

export interface ServiceState {
  name: string;
  policy: JobPolicy;
  workers: JobWorker[];
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

export function newServiceState(name: string, policy: JobPolicy): ServiceState {
  return {
    name,
    policy,
    workers: [],
    transient: [],
    pendingDurable: 0,
    maybeDue: false,
    dueMarks: 0,
    leasingSlots: 0,
    transientFinished: { done: 0, failed: 0, cancelled: 0, expired: 0 },
  };
}

/** The store may now hold a due durable job of the service. */
export function markDue(s: ServiceState): void {
  s.maybeDue = true;
  s.dueMarks++;
}

/** Queues a transient job: after every job of the same or higher priority. */
export function enqueueTransient(s: ServiceState, job: Job): void {
  const list = s.transient;
  let i = list.length;
  while (i > 0 && list[i - 1]!.priority < job.priority) i--;
  list.splice(i, 0, job);
}

/** A registered worker as the job server sees it: its services, slots and runs. */
export class JobWorker implements CreditHolder, InflightHolder<Running> {
  readonly name: string;
  readonly protocol: string;
  /** The runs it holds. */
  readonly held = new Set<Running>();
  /**
   * Jobs taken back past their deadline that the worker has not reported yet: they keep their
   * slot, so a worker never holds more than `concurrency` jobs, even one it was told to drop.
   */
  readonly overdue = new Set<string>();
  /** Slots held for durable jobs on the direct path while their insert commits. */
  reserved = 0;
  lastJobAt: number | null = null;
  /** Global order of the last assignment: lower = less recently used. */
  lastAssignSeq = 0;
  completed = 0;
  failed = 0;
  paused = false;
  closed = false;

  constructor(
    readonly id: string,
    readonly sink: WorkerSink,
    readonly services: ServiceState[],
    readonly concurrency: number,
    name: string | undefined,
    protocol: string | undefined,
    readonly connectedAt: number,
  ) {
    this.name = name ?? id;
    this.protocol = protocol ?? 'ferry';
  }

  /** Free slots: 0 while paused or closed. */
  get credit(): number {
    if (this.paused || this.closed) return 0;
    return Math.max(0, this.concurrency - this.held.size - this.overdue.size - this.reserved);
  }
}
