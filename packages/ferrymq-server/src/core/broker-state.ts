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
  type QueueCounts,
  type QueuePolicy,
} from 'ferrymq/model';
import type { RecoveredLease, Storage } from '../storage/types.js';
import { DEFAULT_BROKER_LIMITS, type BrokerLimits, type BrokerOptions } from './broker-types.js';
import { systemClock, type Clock } from './clock.js';
import { InflightTable } from './inflight-table.js';
import { silentLogger, type Logger } from './logger.js';
import { PendingCalls } from './pending-calls.js';
import { newQueueState, type Lease, type QueueState, type SessionState } from './queue-state.js';

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
    this.isStorageLow = options.isStorageLow ?? (() => false);
    this.startedAt = this.clock.now();
  }

  policyOf(queue: string): QueuePolicy {
    return { ...this.defaultPolicy, ...this.queuePolicies[queue] };
  }

  /** Counts the store recovered for a queue, at open. */
  recoverQueue(name: string, counts: QueueCounts): void {
    this.queues.set(name, newQueueState(name, this.policyOf(name), counts));
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
