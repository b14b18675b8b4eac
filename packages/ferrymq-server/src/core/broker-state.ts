/**
 * What every part of the queue engine shares: the store and clock, the queues by name, the
 * sessions, the lease table, storage calls in flight, multicasts waiting for acks, and the
 * closing flag. The parts (queue-enqueue, queue-dispatch, queue-settle, queue-maintenance,
 * queue-admin) each take this one object; broker.ts builds it and them.
 */
import {
  DEFAULT_QUEUE_POLICY,
  FerryError,
  isValidQueueName,
  policyChangesProblem,
  type QueueCounts,
  type QueuePolicy,
  type QueueSettings,
} from 'ferrymq/model';
import type { RecoveredLease, Storage } from '../storage/types.js';
import { DEFAULT_BROKER_LIMITS, type BrokerLimits, type BrokerOptions } from './broker-types.js';
import { systemClock, type Clock } from './clock.js';
import { InflightTable } from './inflight-table.js';
import { silentLogger, type Logger } from './logger.js';
import { PendingCalls } from './pending-calls.js';
import {
  InflightBytes,
  newQueueState,
  type Lease,
  type QueueState,
  type SessionState,
} from './queue-state.js';

export class BrokerState {
  readonly storage: Storage;
  readonly clock: Clock;
  readonly random: () => number;
  readonly log: Logger;
  readonly limits: BrokerLimits;
  readonly isStorageLow: () => boolean;
  readonly queues = new Map<string, QueueState>();
  readonly sessions = new Set<SessionState>();
  /** Every lease by message id; each session holds its own. */
  readonly leases = new InflightTable<Lease, SessionState>();
  /** Storage calls in flight, so close() can wait for them. */
  readonly calls = new PendingCalls();
  /** Multicasts waiting for acks: message id → what to tell when it is acked or dead. */
  readonly settleWatchers = new Map<string, (outcome: 'acked' | 'dead') => void>();
  readonly startedAt: number;
  /** Bytes delivered and not yet settled; the broker sets what runs when its cap frees up. */
  readonly inflightBytes: InflightBytes;
  /** Pumps these queues (set by the broker once dispatch exists). */
  pumpQueues: (queues: QueueState[]) => void = () => {};

  /**
   * Leases of the previous run held back for the recovery grace, by message id: an ack for
   * one of them (re-sent by its consumer after reconnecting) deletes it instead of answering
   * LEASE_LOST. Emptied when the grace ends.
   */
  readonly recovered = new Map<string, RecoveredLease>();
  closing = false;
  private readonly defaultPolicy: QueuePolicy;
  private readonly queuePolicies: Record<string, Partial<QueuePolicy>>;

  constructor(options: BrokerOptions) {
    this.storage = options.storage;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger ?? silentLogger;
    this.defaultPolicy = { ...DEFAULT_QUEUE_POLICY, ...options.defaultPolicy };
    this.queuePolicies = options.queuePolicies ?? {};
    this.limits = { ...DEFAULT_BROKER_LIMITS, ...options.limits };
    this.inflightBytes = new InflightBytes(
      this.limits.maxInflightBytes,
      this.limits.consumerMaxBytes,
      (queues) => this.pumpQueues(queues),
    );
    this.isStorageLow = options.isStorageLow ?? (() => false);
    this.startedAt = this.clock.now();
  }

  policyOf(queue: string): QueuePolicy {
    return { ...this.defaultPolicy, ...this.queuePolicies[queue] };
  }

  /** The policy in force with these runtime values: they win over the config file. */
  effectivePolicy(queue: string, overrides: Partial<QueuePolicy>): QueuePolicy {
    return { ...this.policyOf(queue), ...overrides };
  }

  /** Counts and runtime settings the store recovered for a queue, at open. */
  recoverQueue(name: string, counts: QueueCounts, settings?: QueueSettings): void {
    const q = newQueueState(name, this.policyOf(name), counts);
    if (settings) {
      q.paused = settings.paused;
      for (const [k, v] of Object.entries(settings.overrides)) {
        // A value this version would refuse (a hand-edited store) is left out, and said so.
        const problem = policyChangesProblem({ [k]: v });
        if (problem === undefined && typeof v === 'number')
          (q.overrides as Record<string, unknown>)[k] = v;
        else this.log.warn('stored queue policy value ignored', { queue: name, key: k, problem });
      }
      q.policy = this.effectivePolicy(name, q.overrides);
    }
    this.queues.set(name, q);
  }

  queueFor(name: string, create: boolean): QueueState | undefined {
    if (!isValidQueueName(name)) {
      throw new FerryError('INVALID_QUEUE_NAME', `invalid queue name: ${JSON.stringify(name)}`);
    }
    let q = this.queues.get(name);
    if (!q && create) {
      if (this.queues.size >= this.limits.maxQueues) {
        throw new FerryError(
          'TOO_MANY_QUEUES',
          `the broker holds ${this.queues.size} queues, its limit`,
        );
      }
      q = newQueueState(name, this.policyOf(name));
      this.queues.set(name, q);
      this.calls
        .track(this.storage.ensureQueue(name))
        .catch((err: unknown) =>
          this.log.error('could not create queue', { queue: name, err: String(err) }),
        );
    }
    return q;
  }

  requireQueue(name: string): QueueState {
    const q = this.queueFor(name, false);
    if (!q) throw new FerryError('QUEUE_NOT_FOUND', `no queue ${name}`);
    return q;
  }
}
