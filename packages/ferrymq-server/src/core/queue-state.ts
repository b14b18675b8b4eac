/**
 * What the queue engine holds in memory per queue, session, consumer and lease, and the small
 * rules over it every part shares: counting messages that became ready, and picking the next
 * consumer with credit (round robin).
 */
import type { QueueCounts, QueuePolicy } from 'ferrymq/model';
import type { SessionSink } from './broker-types.js';
import { nextWithCredit, type CreditHolder } from './credit.js';
import { HeldConfirms } from './held-confirms.js';
import type { InflightEntry, InflightHolder } from './inflight-table.js';
import { RateMeter } from './rate-meter.js';

export interface QueueState {
  name: string;
  /** The policy in force: defaults, then the config file, then `overrides`. */
  policy: QueuePolicy;
  /** Policy values an operator set at runtime (stored; they win over the config file). */
  overrides: Partial<QueuePolicy>;
  /** Deliveries stopped by an operator: sends are stored, nothing is leased. */
  paused: boolean;
  counts: QueueCounts;
  /** Sends accepted but not yet committed: count toward limits. */
  pendingCount: number;
  pendingBytes: number;
  /** Of those, the ones that will be ready (not leased directly, not delayed) once committed. */
  pendingReady: number;
  consumers: Consumer[];
  rr: number;
  leasing: boolean;
  probe: boolean;
  /** Ready increments ever made: a lease compares before/after to never under-count. */
  readyAdds: number;
  enqueued: RateMeter;
  acked: RateMeter;
  expired: number;
  deadLettered: number;
  leasedBytes: number;
  ackTimeouts: number;
  redelivered: number;
  /** Producers' confirms held back by flow control (flow-control.ts). */
  held: HeldConfirms;
}

export function newQueueState(name: string, policy: QueuePolicy, counts?: QueueCounts): QueueState {
  return {
    name,
    policy,
    overrides: {},
    paused: false,
    counts: counts ?? { ready: 0, leased: 0, scheduled: 0, dead: 0, bytes: 0 },
    pendingCount: 0,
    pendingBytes: 0,
    pendingReady: 0,
    consumers: [],
    rr: 0,
    leasing: false,
    probe: false,
    readyAdds: 0,
    enqueued: new RateMeter(),
    acked: new RateMeter(),
    expired: 0,
    deadLettered: 0,
    leasedBytes: 0,
    ackTimeouts: 0,
    redelivered: 0,
    held: new HeldConfirms(),
  };
}

/** Counts messages that became ready (so a lease in flight can tell what it may have missed). */
export function addReady(q: QueueState, n: number): void {
  q.counts.ready += n;
  q.readyAdds += n;
}

/** Round robin: the next consumer of the queue with spare credit, or none. */
export function nextConsumer(q: QueueState): Consumer | undefined {
  const i = nextWithCredit(q.consumers, q.rr);
  if (i < 0) return undefined;
  q.rr = (i + 1) % q.consumers.length;
  return q.consumers[i];
}

/** A session as the engine sees it: its consumers and the leases it holds. */
export class SessionState implements InflightHolder<Lease> {
  readonly consumers = new Map<string, Consumer>();
  readonly held = new Set<Lease>();
  closed = false;
  private nextTag = 1;

  constructor(
    readonly id: string,
    readonly sink: SessionSink,
  ) {}

  newTag(): string {
    return `c${this.nextTag++}`;
  }
}

/**
 * Bytes delivered and not yet settled, broker-wide, against their cap. The queues the cap held
 * back wait in arrival order; when bytes are freed they are pumped first, before the queue
 * whose settle freed them takes the room back.
 */
export class InflightBytes {
  bytes = 0;
  private readonly waiting = new Set<QueueState>();

  constructor(
    /** Broker-wide cap. */
    readonly max: number,
    /** Per-consumer cap. */
    readonly perConsumer: number,
    /** Pumps the queues the cap held back (called once bytes were freed). */
    private readonly onFreed: (queues: QueueState[]) => void,
  ) {}

  /** The cap held back a delivery of `q`. */
  block(q: QueueState): void {
    this.waiting.add(q);
  }

  add(n: number): void {
    this.bytes += n;
  }

  remove(n: number): void {
    this.bytes -= n;
    if (this.waiting.size > 0 && this.bytes < this.max) {
      const queues = [...this.waiting];
      this.waiting.clear();
      this.onFreed(queues);
    }
  }
}

export class Consumer implements CreditHolder {
  /** Deliveries not yet settled, plus credit reserved for deliveries on their way. */
  inflight = 0;
  /** Bytes of the deliveries not yet settled. */
  inflightBytes = 0;
  active = true;

  constructor(
    readonly tag: string,
    readonly session: SessionState,
    readonly queue: QueueState,
    readonly prefetch: number,
    /** The consumer's own ack timeout; without it, the queue's (as it is at each delivery). */
    readonly ackTimeoutOverride: number | undefined,
    private readonly bytes: InflightBytes,
  ) {}

  get ackTimeoutMs(): number {
    return this.ackTimeoutOverride ?? this.queue.policy.ackTimeoutMs;
  }

  /**
   * Messages it may take now: its prefetch less what it holds, and no more than its byte room
   * (its own cap and the broker's) holds at the queue's average message size. A consumer
   * holding nothing always gets one message, however large, so a message above the
   * per-consumer cap is still delivered.
   */
  get credit(): number {
    if (!this.active) return 0;
    const byCount = this.prefetch - this.inflight;
    if (byCount <= 0) return 0;
    const globalRoom = this.bytes.max - this.bytes.bytes;
    if (globalRoom <= 0) {
      this.bytes.block(this.queue);
      return 0;
    }
    const room = Math.min(this.bytes.perConsumer - this.inflightBytes, globalRoom);
    if (room <= 0) return this.inflight === 0 ? 1 : 0;
    const c = this.queue.counts;
    const live = c.ready + c.leased + c.scheduled;
    const avg = live > 0 ? c.bytes / live : 0;
    if (avg <= 0) return byCount;
    return Math.max(1, Math.min(byCount, Math.floor(room / avg)));
  }

  /** A delivery of `size` bytes was handed to it. */
  addBytes(size: number): void {
    this.inflightBytes += size;
    this.bytes.add(size);
  }

  /** A delivery of `size` bytes was settled (acked, given back, timed out). */
  removeBytes(size: number): void {
    this.inflightBytes -= size;
    this.bytes.remove(size);
  }
}

/** A message delivered and not yet settled; held by its consumer's session. */
export interface Lease extends InflightEntry<SessionState> {
  attempt: number;
  consumer: Consumer;
  size: number;
}
