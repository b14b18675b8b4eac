/**
 * What every part of the job server shares: the store and clock, services by name, workers,
 * the table of running jobs, transient jobs, durable counts, storage calls in flight, timers
 * and the closing flag. jobs.ts builds it and the parts that work on it.
 */
import { DEFAULT_JOB_POLICY, type JobPolicy } from 'ferrymq/model';
import type { JobStorage, RecoveredJob } from '../storage/types.js';
import { systemClock, type Clock } from './clock.js';
import { DurableCounts } from './durable-counts.js';
import { InflightTable } from './inflight-table.js';
import { newServiceState, type JobWorker, type Running, type ServiceState } from './job-state.js';
import { silentLogger, type Logger } from './logger.js';
import { PendingCalls } from './pending-calls.js';
import { Scheduler } from './scheduler.js';
import { TransientJobs } from './transient-jobs.js';

const DEFAULT_MAX_PARAMS_BYTES = 8 * 1024 * 1024;

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
  /** The previous run's running jobs the store held for the recovery grace (job-recovery.ts). */
  recovered?: { jobs: readonly RecoveredJob[]; until: number } | undefined;
  /**
   * Other brokers share the store (Storage.shared): counters come from it, and a call no
   * worker here can run is stored so that a worker on another broker can.
   */
  shared?: boolean;
}

export class JobServerState {
  readonly storage: JobStorage;
  readonly clock: Clock;
  readonly random: () => number;
  readonly log: Logger;
  readonly defaultPolicy: JobPolicy;
  readonly maxParamsBytes: number;
  readonly isStorageLow: () => boolean;
  readonly shared: boolean;
  readonly services = new Map<string, ServiceState>();
  readonly workers = new Set<JobWorker>();
  /** Every running job by id; each worker holds its own. */
  readonly runs = new InflightTable<Running, JobWorker>();
  readonly transient = new TransientJobs();
  readonly durable = new DurableCounts();
  /** Storage calls in flight, so close() can wait for them. */
  readonly calls = new PendingCalls();
  readonly scheduler: Scheduler;
  /** Order of assignments, for least-recently-used dispatch. */
  assignSeq = 0;
  closing = false;
  private readonly servicePolicies: Record<string, Partial<JobPolicy>>;

  constructor(options: JobServerOptions) {
    this.storage = options.storage;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger ?? silentLogger;
    this.defaultPolicy = { ...DEFAULT_JOB_POLICY, ...options.defaultPolicy };
    this.servicePolicies = options.servicePolicies ?? {};
    this.maxParamsBytes = options.maxParamsBytes ?? DEFAULT_MAX_PARAMS_BYTES;
    this.isStorageLow = options.isStorageLow ?? (() => false);
    this.shared = options.shared ?? false;
    this.scheduler = new Scheduler(this.clock);
  }

  policyOf(service: string): JobPolicy {
    return { ...this.defaultPolicy, ...this.servicePolicies[service] };
  }

  /** The service's state, created on first use. */
  service(name: string): ServiceState {
    let s = this.services.get(name);
    if (!s) {
      s = newServiceState(name, this.policyOf(name));
      this.services.set(name, s);
    }
    return s;
  }

  /** Durable jobs of a service queued in the store (due or not). */
  queuedDurable(s: ServiceState): number {
    return this.durable.queued(s.name);
  }
}
