/**
 * The broker core: queues, sessions, consumers with credit, leases with ack timeouts,
 * redelivery, retries with backoff, dead letters, delays, TTLs, dedup and limits.
 *
 * Pure logic over the {@link Storage} contract and an injected {@link Clock}: no sockets, no
 * SQL. Memory is bounded by what is in flight (leases ≤ the sum of consumer prefetch), never by
 * queue depth: backlogs stay in the store and are leased in batches as credit allows.
 */
import type { BrokerStats, QueueStats } from 'ferrymq/model';
import { FerryError, toFerryError, type ErrorCode } from 'ferrymq/model';
import type { EnqueueItem, LeasedMessage, ReleaseItem, Storage } from '../storage/types.js';
import { retryDelayMs } from './backoff.js';
import { systemClock, type Clock } from './clock.js';
import { silentLogger, type Logger } from './logger.js';
import { RateMeter } from './rate-meter.js';
import {
  DEFAULT_QUEUE_POLICY,
  PRIORITY_MAX,
  PRIORITY_MIN,
  isValidQueueName,
  messageSize,
  type Headers,
  type MessageState,
  type NewMessage,
  type QueueCounts,
  type QueuePolicy,
  type StoredMessage,
} from 'ferrymq/model';

export const DEFAULT_PREFETCH = 100;
export const DEFAULT_MAX_PREFETCH = 10_000;
export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_QUEUES = 10_000;
export const DEFAULT_MAX_CONSUMERS_PER_SESSION = 1_000;
export const DEDUP_KEY_MAX_LENGTH = 256;
export const HEADERS_MAX_BYTES = 64 * 1024;
/** Most messages leased from the store in one call. */
export const LEASE_BATCH_MAX = 1_000;
/** How often leases are checked for an expired ack timeout. */
export const LEASE_SCAN_INTERVAL_MS = 100;
/** How often TTLs and dedup windows are swept, and idle consumers re-probe their queue. */
export const MAINTENANCE_INTERVAL_MS = 1_000;
/** Most expired messages removed per sweep. */
export const SWEEP_BATCH_MAX = 10_000;
/** Earliest a due-message timer fires after the last one. */
const DUE_MIN_INTERVAL_MS = 5;

export interface BrokerLimits {
  maxQueues: number;
  maxConsumersPerSession: number;
  maxPrefetch: number;
  maxMessageBytes: number;
}

export const DEFAULT_BROKER_LIMITS: Readonly<BrokerLimits> = Object.freeze({
  maxQueues: DEFAULT_MAX_QUEUES,
  maxConsumersPerSession: DEFAULT_MAX_CONSUMERS_PER_SESSION,
  maxPrefetch: DEFAULT_MAX_PREFETCH,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
});

export interface BrokerOptions {
  storage: Storage;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
  /** Policy for every queue, over the built-in defaults. */
  defaultPolicy?: Partial<QueuePolicy>;
  /** Policy per queue name, over defaultPolicy. */
  queuePolicies?: Record<string, Partial<QueuePolicy>>;
  limits?: Partial<BrokerLimits>;
  /** True while free disk space is below the floor: sends are refused with STORAGE_FULL. */
  isStorageLow?: () => boolean;
}

/** A message handed to a consumer. */
export interface Delivery {
  id: string;
  queue: string;
  attempt: number;
  frames: Buffer[];
  headers: Headers | undefined;
  priority: number;
  enqueuedAt: number;
}

/** How the core reaches the peer behind a session. Implemented by dialects. */
export interface SessionSink {
  deliver(consumerTag: string, messages: Delivery[]): void;
}

export interface ConsumeOptions {
  /** Client-chosen tag; generated when absent. */
  tag?: string | undefined;
  /** Most unacked deliveries at once. */
  prefetch?: number | undefined;
  /** Overrides the queue's ack timeout for this consumer. */
  ackTimeoutMs?: number | undefined;
}

export interface SendOptions {
  /** Idempotency key of the whole request: a replay within the dedup window stores nothing. */
  requestKey?: string | undefined;
}

export interface SendOutcome {
  ids: string[];
  /** Indexes of messages that matched an earlier dedup key (stored once, earlier). */
  duplicates: number[];
  replayed: boolean;
}

export interface MulticastOptions {
  /** Answer only once every copy is acked (or dead-lettered), or after timeoutMs. */
  waitForAcks?: boolean | undefined;
  timeoutMs?: number | undefined;
}

export interface MulticastOutcome {
  /** The id of the copy in each queue. */
  ids: Record<string, string>;
  /** With waitForAcks: every copy acked in time. */
  complete?: boolean;
  acked?: string[];
  dead?: string[];
  pending?: string[];
}

export const MAX_MULTICAST_QUEUES = 100;
export const DEFAULT_MULTICAST_TIMEOUT_MS = 30_000;
export const MAX_MULTICAST_TIMEOUT_MS = 24 * 3_600_000;

/** Per id: null when done, or the code of why not. */
export type SettleResult = ErrorCode | null;

export interface NackOptions {
  /** Redeliver after this delay; default: the queue's exponential backoff. */
  delayMs?: number | undefined;
  /** Send straight to the dead letters. */
  dead?: boolean | undefined;
  /**
   * The message never reached the application (it was prefetched, then the consumer stopped):
   * back to the queue at once, and this delivery does not count toward max attempts.
   */
  requeue?: boolean | undefined;
}

export interface PeekOptions {
  state?: MessageState | undefined;
  limit?: number | undefined;
  afterId?: string | undefined;
}

interface QueueState {
  name: string;
  policy: QueuePolicy;
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
}

interface Consumer {
  tag: string;
  session: SessionImpl;
  queue: QueueState;
  prefetch: number;
  ackTimeoutMs: number;
  inflight: number;
  active: boolean;
}

interface Lease {
  id: string;
  attempt: number;
  consumer: Consumer;
  deadline: number;
  size: number;
}

/** One client's view of the broker. Created by a dialect per connected peer. */
export interface Session {
  readonly id: string;
  send(queue: string, messages: NewMessage[], options?: SendOptions): Promise<SendOutcome>;
  /** One message to several queues, stored in one commit; optionally waits for every ack. */
  multicast(
    queues: string[],
    message: NewMessage,
    options?: MulticastOptions,
  ): Promise<MulticastOutcome>;
  /** One message into several queues in one storage call: all copies or none. */
  sendToQueues(queues: string[], message: NewMessage): Promise<string[]>;
  consume(queue: string, options?: ConsumeOptions): string;
  cancel(tag: string): void;
  ack(ids: string[]): Promise<SettleResult[]>;
  nack(ids: string[], options?: NackOptions): Promise<SettleResult[]>;
  extend(ids: string[], ms: number): SettleResult[];
  /** Ends the session: its leases are released for redelivery at once. */
  close(): void;
  readonly closed: boolean;
}

class SessionImpl implements Session {
  readonly consumers = new Map<string, Consumer>();
  readonly leases = new Set<Lease>();
  closed = false;
  private nextTag = 1;

  constructor(
    readonly id: string,
    readonly sink: SessionSink,
    private readonly broker: Broker,
  ) {}

  newTag(): string {
    return `c${this.nextTag++}`;
  }

  send(queue: string, messages: NewMessage[], options?: SendOptions): Promise<SendOutcome> {
    return this.broker.send(this, queue, messages, options);
  }
  multicast(
    queues: string[],
    message: NewMessage,
    options?: MulticastOptions,
  ): Promise<MulticastOutcome> {
    return this.broker.multicast(this, queues, message, options ?? {});
  }
  sendToQueues(queues: string[], message: NewMessage): Promise<string[]> {
    return this.broker.sendToQueues(this, queues, message);
  }
  consume(queue: string, options?: ConsumeOptions): string {
    return this.broker.consume(this, queue, options ?? {});
  }
  cancel(tag: string): void {
    this.broker.cancel(this, tag);
  }
  ack(ids: string[]): Promise<SettleResult[]> {
    return this.broker.ack(this, ids);
  }
  nack(ids: string[], options?: NackOptions): Promise<SettleResult[]> {
    return this.broker.nack(this, ids, options ?? {});
  }
  extend(ids: string[], ms: number): SettleResult[] {
    return this.broker.extend(this, ids, ms);
  }
  close(): void {
    this.broker.closeSession(this);
  }
}

export class Broker {
  private readonly storage: Storage;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly defaultPolicy: QueuePolicy;
  private readonly queuePolicies: Record<string, Partial<QueuePolicy>>;
  readonly limits: BrokerLimits;
  private readonly isStorageLow: () => boolean;
  private readonly queues = new Map<string, QueueState>();
  private readonly leases = new Map<string, Lease>();
  private readonly sessions = new Set<SessionImpl>();
  private nextSessionId = 1;
  private readonly startedAt: number;
  private closing = false;
  private dueAt: number | null = null;
  private cancelDueTimer: (() => void) | undefined;
  private cancelLeaseTimer: (() => void) | undefined;
  private cancelMaintenanceTimer: (() => void) | undefined;
  private inflightStorageCalls = 0;
  /** Multicasts waiting for acks: message id → what to tell when it is acked or dead. */
  private readonly settleWatchers = new Map<string, (outcome: 'acked' | 'dead') => void>();
  private idleWaiters: (() => void)[] = [];

  private constructor(options: BrokerOptions) {
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

  /** Opens the store, recovers counters, starts the timers. */
  static async open(options: BrokerOptions): Promise<Broker> {
    const broker = new Broker(options);
    const recovery = await broker.storage.open();
    for (const [name, counts] of recovery.queues) {
      broker.queues.set(name, broker.newQueueState(name, counts));
    }
    if (recovery.releasedLeases > 0) {
      broker.log.info('released leases of the previous run', { count: recovery.releasedLeases });
    }
    if (recovery.nextDueAt !== null) broker.scheduleDue(recovery.nextDueAt);
    broker.armLeaseTimer();
    broker.armMaintenanceTimer();
    return broker;
  }

  policyOf(queue: string): QueuePolicy {
    return { ...this.defaultPolicy, ...this.queuePolicies[queue] };
  }

  private newQueueState(name: string, counts?: QueueCounts): QueueState {
    return {
      name,
      policy: this.policyOf(name),
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
    };
  }

  /** Counts messages that became ready (so a lease in flight can tell what it may have missed). */
  private addReady(q: QueueState, n: number): void {
    q.counts.ready += n;
    q.readyAdds += n;
  }

  private queueFor(name: string, create: boolean): QueueState | undefined {
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
      q = this.newQueueState(name);
      this.queues.set(name, q);
      this.track(this.storage.ensureQueue(name)).catch((err: unknown) =>
        this.log.error('could not create queue', { queue: name, err: String(err) }),
      );
    }
    return q;
  }

  /** Keeps count of storage calls in flight so close() can wait for them. */
  private track<T>(p: Promise<T>): Promise<T> {
    this.inflightStorageCalls++;
    const done = (): void => {
      this.inflightStorageCalls--;
      if (this.inflightStorageCalls === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    };
    p.then(done, done);
    return p;
  }

  openSession(sink: SessionSink): Session {
    if (this.closing) throw new FerryError('SHUTTING_DOWN');
    const s = new SessionImpl(`s${this.nextSessionId++}`, sink, this);
    this.sessions.add(s);
    return s;
  }

  // ---------------------------------------------------------------- producing

  send(
    session: SessionImpl,
    queueName: string,
    messages: NewMessage[],
    options: SendOptions = {},
  ): Promise<SendOutcome> {
    try {
      if (this.closing || session.closed) throw new FerryError('SHUTTING_DOWN');
      if (this.isStorageLow()) {
        throw new FerryError(
          'STORAGE_FULL',
          'free disk space is below the floor; sends are refused',
        );
      }
      const q = this.queueFor(queueName, true)!;
      const now = this.clock.now();
      const items: EnqueueItem[] = [];
      let bytes = 0;
      for (let i = 0; i < messages.length; i++) {
        const item = this.toEnqueueItem(q, messages[i]!, now, i);
        items.push(item);
        bytes += messageSize(item.frames);
      }
      if (options.requestKey !== undefined) checkKey(options.requestKey, 'requestKey');
      const p = q.policy;
      const depth = q.counts.ready + q.counts.leased + q.counts.scheduled + q.pendingCount;
      if (p.maxDepth > 0 && depth + items.length > p.maxDepth) {
        throw new FerryError(
          'QUEUE_FULL',
          `queue ${q.name} holds ${depth} of its ${p.maxDepth} messages; ${items.length} more refused`,
        );
      }
      if (p.maxBytes > 0 && q.counts.bytes + q.pendingBytes + bytes > p.maxBytes) {
        throw new FerryError(
          'QUEUE_FULL',
          `queue ${q.name} holds ${q.counts.bytes + q.pendingBytes} of its ${p.maxBytes} bytes`,
        );
      }
      if (items.length === 0) return Promise.resolve({ ids: [], duplicates: [], replayed: false });
      const direct = this.reserveDirect(q, items);
      let readyCount = 0;
      for (let i = 0; i < items.length; i++) {
        if (!direct[i] && items[i]!.notBefore <= now) readyCount++;
      }
      q.pendingCount += items.length;
      q.pendingBytes += bytes;
      q.pendingReady += readyCount;
      const request =
        options.requestKey === undefined
          ? undefined
          : { key: options.requestKey, until: now + p.dedupWindowMs };
      const settle = (): void => {
        q.pendingCount -= items.length;
        q.pendingBytes -= bytes;
        q.pendingReady -= readyCount;
      };
      return this.track(this.storage.enqueue(items, request)).then(
        (outcome) => {
          settle();
          const duplicates = this.afterEnqueue(
            q,
            items,
            direct,
            outcome.ids,
            outcome.duplicate,
            outcome.replayed,
          );
          return { ids: outcome.ids, duplicates, replayed: outcome.replayed };
        },
        (err: unknown) => {
          settle();
          for (const c of direct) if (c) c.inflight--;
          this.pump(q);
          throw toFerryError(err);
        },
      );
    } catch (err) {
      return Promise.reject(toFerryError(err));
    }
  }

  multicast(
    session: SessionImpl,
    queues: string[],
    message: NewMessage,
    options: MulticastOptions,
  ): Promise<MulticastOutcome> {
    if (
      !Array.isArray(queues) ||
      queues.length === 0 ||
      queues.length > MAX_MULTICAST_QUEUES ||
      new Set(queues).size !== queues.length
    ) {
      return Promise.reject(
        new FerryError(
          'BAD_ARGUMENTS',
          `queues must be 1–${MAX_MULTICAST_QUEUES} distinct queue names`,
        ),
      );
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_MULTICAST_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_MULTICAST_TIMEOUT_MS) {
      return Promise.reject(
        new FerryError('BAD_ARGUMENTS', `timeoutMs must be in (0, ${MAX_MULTICAST_TIMEOUT_MS}]`),
      );
    }
    for (const q of queues) {
      if (!isValidQueueName(q)) {
        return Promise.reject(
          new FerryError('INVALID_QUEUE_NAME', `invalid queue name: ${JSON.stringify(q)}`),
        );
      }
    }
    // Every copy's storage call is made in this turn: one transaction, one fsync.
    const stored = this.sendToQueues(session, queues, message).then((list) => {
      const ids: Record<string, string> = {};
      queues.forEach((q, i) => (ids[q] = list[i]!));
      return ids;
    });
    if (!options.waitForAcks) return stored.then((ids) => ({ ids }));
    return stored.then(
      (ids) =>
        new Promise<MulticastOutcome>((resolve) => {
          const acked: string[] = [];
          const dead: string[] = [];
          const pending = new Set(queues);
          const byId = new Map(queues.map((q) => [ids[q]!, q]));
          const finish = (): void => {
            cancel();
            for (const id of byId.keys()) this.settleWatchers.delete(id);
            resolve({
              ids,
              complete: pending.size === 0 && dead.length === 0,
              acked: acked.sort(),
              dead: dead.sort(),
              pending: [...pending].sort(),
            });
          };
          const cancel = this.clock.setTimer(finish, timeoutMs);
          for (const [id, q] of byId) {
            this.settleWatchers.set(id, (outcome) => {
              if (!pending.delete(q)) return;
              (outcome === 'acked' ? acked : dead).push(q);
              if (pending.size === 0) finish();
            });
          }
        }),
    );
  }

  /** Applies a committed enqueue of one queue's items: counters, hand-outs, orphans. */
  private afterEnqueue(
    q: QueueState,
    items: EnqueueItem[],
    direct: (Consumer | undefined)[],
    ids: string[],
    duplicate: boolean[],
    replayed: boolean,
  ): number[] {
    const duplicates: number[] = [];
    const handOut = new Map<Consumer, LeasedMessage[]>();
    const orphans: ReleaseItem[] = [];
    let stored = 0;
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const c = direct[i];
      if (replayed || duplicate[i]) {
        duplicates.push(i);
        if (c) c.inflight--; // the reservation is not used
        continue;
      }
      stored++;
      const size = messageSize(it.frames);
      q.counts.bytes += size;
      if (c) {
        q.counts.leased++;
        const m: LeasedMessage = {
          id: ids[i]!,
          frames: it.frames,
          headers: it.headers,
          priority: it.priority,
          attempts: 1,
          enqueuedAt: it.enqueuedAt,
          size,
        };
        c.inflight--; // handOut counts it again as a lease
        if (c.active && !c.session.closed) {
          let batch = handOut.get(c);
          if (!batch) handOut.set(c, (batch = []));
          batch.push(m);
        } else {
          // Its consumer left before the commit: back to the queue, uncounted.
          q.counts.leased--;
          this.addReady(q, 1);
          orphans.push({ id: m.id, attempts: 1, notBefore: it.enqueuedAt, uncount: true });
        }
      } else if (it.notBefore > it.enqueuedAt) {
        q.counts.scheduled++;
        this.scheduleDue(it.notBefore);
      } else {
        this.addReady(q, 1);
      }
    }
    if (stored > 0) q.enqueued.mark(this.clock.now(), stored);
    for (const [c, batch] of handOut) this.handOut(c, batch);
    if (orphans.length > 0) this.releaseOrphans(orphans);
    this.pump(q);
    return duplicates;
  }

  /**
   * Throws what sendToQueues would refuse for (bad names, limits, message checks) without
   * storing anything: a caller that must not write anything else on refusal checks first.
   */
  checkSendToQueues(queueNames: string[], message: NewMessage): void {
    if (this.closing) throw new FerryError('SHUTTING_DOWN');
    if (this.isStorageLow()) {
      throw new FerryError('STORAGE_FULL', 'free disk space is below the floor; sends are refused');
    }
    this.prepareCopies(queueNames, message, this.clock.now());
  }

  private prepareCopies(
    queueNames: string[],
    message: NewMessage,
    now: number,
  ): {
    q: QueueState;
    items: EnqueueItem[];
    bytes: number;
    direct: (Consumer | undefined)[];
    ready: number;
  }[] {
    return queueNames.map((name) => {
      const q = this.queueFor(name, true)!;
      const item = this.toEnqueueItem(q, message, now, 0);
      const bytes = messageSize(item.frames);
      const p = q.policy;
      const depth = q.counts.ready + q.counts.leased + q.counts.scheduled + q.pendingCount;
      if (p.maxDepth > 0 && depth + 1 > p.maxDepth) {
        throw new FerryError(
          'QUEUE_FULL',
          `queue ${q.name} holds ${depth} of its ${p.maxDepth} messages`,
        );
      }
      if (p.maxBytes > 0 && q.counts.bytes + q.pendingBytes + bytes > p.maxBytes) {
        throw new FerryError(
          'QUEUE_FULL',
          `queue ${q.name} holds ${q.counts.bytes + q.pendingBytes} of its ${p.maxBytes} bytes`,
        );
      }
      return { q, items: [item], bytes, direct: [] as (Consumer | undefined)[], ready: 0 };
    });
  }

  /**
   * One message into several queues with one storage call (one commit): every queue's limits
   * are checked first, so either every copy is stored or none is. Resolves with the copies' ids.
   */
  sendToQueues(session: SessionImpl, queueNames: string[], message: NewMessage): Promise<string[]> {
    try {
      if (this.closing || session.closed) throw new FerryError('SHUTTING_DOWN');
      if (this.isStorageLow()) {
        throw new FerryError(
          'STORAGE_FULL',
          'free disk space is below the floor; sends are refused',
        );
      }
      if (queueNames.length === 0) return Promise.resolve([]);
      const now = this.clock.now();
      const preps = this.prepareCopies(queueNames, message, now);
      for (const pr of preps) {
        pr.direct = this.reserveDirect(pr.q, pr.items);
        pr.ready = !pr.direct[0] && pr.items[0]!.notBefore <= now ? 1 : 0;
        pr.q.pendingCount += 1;
        pr.q.pendingBytes += pr.bytes;
        pr.q.pendingReady += pr.ready;
      }
      const settle = (): void => {
        for (const pr of preps) {
          pr.q.pendingCount -= 1;
          pr.q.pendingBytes -= pr.bytes;
          pr.q.pendingReady -= pr.ready;
        }
      };
      return this.track(this.storage.enqueue(preps.map((pr) => pr.items[0]!))).then(
        (outcome) => {
          settle();
          preps.forEach((pr, i) =>
            this.afterEnqueue(
              pr.q,
              pr.items,
              pr.direct,
              [outcome.ids[i]!],
              [outcome.duplicate[i] ?? false],
              false,
            ),
          );
          return outcome.ids;
        },
        (err: unknown) => {
          settle();
          for (const pr of preps) {
            for (const c of pr.direct) if (c) c.inflight--;
            this.pump(pr.q);
          }
          throw toFerryError(err);
        },
      );
    } catch (err) {
      return Promise.reject(toFerryError(err));
    }
  }

  /**
   * The direct path: when nothing is ready or about to be ready in the queue, a new message
   * can be stored already leased to a consumer with spare credit and handed to it from memory
   * after the commit. That skips a second write and a read per message, and a commit turn.
   * Returns, per item, the consumer whose credit was reserved (or undefined).
   */
  private reserveDirect(q: QueueState, items: EnqueueItem[]): (Consumer | undefined)[] {
    const out: (Consumer | undefined)[] = new Array(items.length);
    if (q.consumers.length === 0 || q.counts.ready > 0 || q.pendingReady > 0 || q.leasing) {
      return out;
    }
    // Within one request a higher priority may not wait behind a lower one: only go direct
    // when the request is uniform in priority (the common case).
    const prio = items[0]!.priority;
    if (!items.every((it) => it.priority === prio)) return out;
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (it.notBefore > it.enqueuedAt) continue;
      const chosen = this.nextWithCredit(q);
      // Out of credit: this and every later item go through the queue, in order.
      if (!chosen) break;
      chosen.inflight++;
      it.leased = true;
      out[i] = chosen;
    }
    return out;
  }

  private toEnqueueItem(q: QueueState, m: NewMessage, now: number, index: number): EnqueueItem {
    const where = `message ${index}`;
    if (!Array.isArray(m.frames) || m.frames.length === 0) {
      throw new FerryError('BAD_ARGUMENTS', `${where} has no frames`);
    }
    const size = messageSize(m.frames);
    if (size > this.limits.maxMessageBytes) {
      throw new FerryError(
        'MESSAGE_TOO_LARGE',
        `${where} is ${size} bytes; the limit is ${this.limits.maxMessageBytes}`,
      );
    }
    const priority = m.priority ?? 0;
    if (!Number.isInteger(priority) || priority < PRIORITY_MIN || priority > PRIORITY_MAX) {
      throw new FerryError('BAD_ARGUMENTS', `${where}: priority must be an integer 0–255`);
    }
    const delayMs = m.delayMs ?? 0;
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new FerryError('BAD_ARGUMENTS', `${where}: delayMs must be a number ≥ 0`);
    }
    let expiresAt: number | null = null;
    if (m.ttlMs !== undefined) {
      if (!Number.isFinite(m.ttlMs) || m.ttlMs <= 0) {
        throw new FerryError('BAD_ARGUMENTS', `${where}: ttlMs must be a number > 0`);
      }
      expiresAt = now + Math.round(m.ttlMs);
    }
    const dedupKey = m.dedupKey ?? null;
    if (dedupKey !== null) checkKey(dedupKey, `${where}: dedupKey`);
    if (m.headers !== undefined) checkHeaders(m.headers, where);
    return {
      queue: q.name,
      frames: m.frames,
      headers: m.headers && Object.keys(m.headers).length > 0 ? m.headers : undefined,
      priority,
      enqueuedAt: now,
      notBefore: now + Math.round(delayMs),
      expiresAt,
      dedupKey,
      dedupUntil: now + q.policy.dedupWindowMs,
    };
  }

  // ---------------------------------------------------------------- consuming

  consume(session: SessionImpl, queueName: string, options: ConsumeOptions): string {
    if (this.closing || session.closed) throw new FerryError('SHUTTING_DOWN');
    const q = this.queueFor(queueName, true)!;
    const tag = options.tag ?? session.newTag();
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > 100) {
      throw new FerryError('BAD_ARGUMENTS', 'consumer tag must be a string of 1–100 characters');
    }
    if (session.consumers.has(tag)) {
      throw new FerryError('CONSUMER_EXISTS', `consumer ${tag} already exists in this session`);
    }
    if (session.consumers.size >= this.limits.maxConsumersPerSession) {
      throw new FerryError('TOO_MANY_CONSUMERS');
    }
    const prefetch = options.prefetch ?? DEFAULT_PREFETCH;
    if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > this.limits.maxPrefetch) {
      throw new FerryError(
        'BAD_ARGUMENTS',
        `prefetch must be an integer 1–${this.limits.maxPrefetch}`,
      );
    }
    const ackTimeoutMs = options.ackTimeoutMs ?? q.policy.ackTimeoutMs;
    if (!Number.isFinite(ackTimeoutMs) || ackTimeoutMs < 1) {
      throw new FerryError('BAD_ARGUMENTS', 'ackTimeoutMs must be a number ≥ 1');
    }
    const c: Consumer = {
      tag,
      session,
      queue: q,
      prefetch,
      ackTimeoutMs,
      inflight: 0,
      active: true,
    };
    session.consumers.set(tag, c);
    q.consumers.push(c);
    q.probe = true;
    this.pump(q);
    return tag;
  }

  /** Stops deliveries to a consumer. Its leases stay valid until acked or the session ends. */
  cancel(session: SessionImpl, tag: string): void {
    const c = session.consumers.get(tag);
    if (!c) throw new FerryError('CONSUMER_NOT_FOUND', `no consumer ${tag} in this session`);
    this.detachConsumer(c);
  }

  private detachConsumer(c: Consumer): void {
    c.active = false;
    c.session.consumers.delete(c.tag);
    const list = c.queue.consumers;
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
  }

  /** Leases what credit allows from the store and hands it to consumers. */
  private pump(q: QueueState): void {
    if (q.leasing || this.closing) return;
    if (q.counts.ready <= 0 && !q.probe) return;
    let credit = 0;
    for (const c of q.consumers) credit += Math.max(0, c.prefetch - c.inflight);
    if (credit <= 0) return;
    const max = Math.min(credit, LEASE_BATCH_MAX, q.probe ? credit : q.counts.ready);
    q.probe = false;
    q.leasing = true;
    const now = this.clock.now();
    const addsBefore = q.readyAdds;
    this.track(this.storage.lease(q.name, max, now)).then(
      (outcome) => {
        q.leasing = false;
        const got = outcome.messages.length + outcome.expired.count;
        // Fewer than asked: the store had no more ready then. Whatever became ready since the
        // lease was issued may not have been seen by it, so count exactly that as ready.
        q.counts.ready = got < max ? q.readyAdds - addsBefore : Math.max(0, q.counts.ready - got);
        q.counts.bytes -= outcome.expired.bytes;
        q.expired += outcome.expired.count;
        q.counts.leased += outcome.messages.length;
        this.distribute(q, outcome.messages);
        if (q.counts.ready > 0) this.pump(q);
      },
      (err: unknown) => {
        q.leasing = false;
        this.log.error('lease failed', { queue: q.name, err: String(err) });
      },
    );
  }

  /** Round robin: the next consumer of the queue with spare credit, or none. */
  private nextWithCredit(q: QueueState): Consumer | undefined {
    const n = q.consumers.length;
    for (let k = 0; k < n; k++) {
      const c = q.consumers[(q.rr + k) % n]!;
      if (c.active && c.inflight < c.prefetch) {
        q.rr = (q.rr + k + 1) % n;
        return c;
      }
    }
    return undefined;
  }

  private distribute(q: QueueState, messages: LeasedMessage[]): void {
    if (messages.length === 0) return;
    const now = this.clock.now();
    const batches = new Map<Consumer, LeasedMessage[]>();
    const orphans: ReleaseItem[] = [];
    for (const m of messages) {
      const chosen = this.nextWithCredit(q);
      if (!chosen) {
        // Every consumer left while the lease was in flight: give it back, uncounted.
        orphans.push({ id: m.id, attempts: m.attempts, notBefore: now, uncount: true });
        continue;
      }
      chosen.inflight++; // reserve now, so the next message sees the credit used
      let batch = batches.get(chosen);
      if (!batch) batches.set(chosen, (batch = []));
      batch.push(m);
    }
    if (orphans.length > 0) {
      q.counts.leased -= orphans.length;
      this.addReady(q, orphans.length);
      this.releaseOrphans(orphans);
    }
    for (const [c, batch] of batches) {
      c.inflight -= batch.length; // handOut counts them as leases
      this.handOut(c, batch);
    }
  }

  /** Records leases for messages stored as leased, and delivers them to the consumer. */
  private handOut(c: Consumer, messages: LeasedMessage[]): void {
    const now = this.clock.now();
    const q = c.queue;
    const batch: Delivery[] = [];
    for (const m of messages) {
      const lease: Lease = {
        id: m.id,
        attempt: m.attempts,
        consumer: c,
        deadline: now + c.ackTimeoutMs,
        size: m.size,
      };
      c.inflight++;
      q.leasedBytes += m.size;
      this.leases.set(m.id, lease);
      c.session.leases.add(lease);
      batch.push({
        id: m.id,
        queue: q.name,
        attempt: m.attempts,
        frames: m.frames,
        headers: m.headers,
        priority: m.priority,
        enqueuedAt: m.enqueuedAt,
      });
    }
    try {
      c.session.sink.deliver(c.tag, batch);
    } catch (err) {
      this.log.error('delivery failed', { session: c.session.id, err: String(err) });
    }
  }

  private releaseOrphans(items: ReleaseItem[]): void {
    this.track(this.storage.release(items, this.clock.now())).catch((err: unknown) =>
      this.log.error('release failed', { err: String(err) }),
    );
  }

  // ---------------------------------------------------------------- settling

  private takeLease(session: SessionImpl, id: unknown): Lease | undefined {
    if (typeof id !== 'string') return undefined;
    const lease = this.leases.get(id);
    if (!lease || lease.consumer.session !== session) return undefined;
    this.dropLease(lease);
    return lease;
  }

  private dropLease(lease: Lease): void {
    this.leases.delete(lease.id);
    lease.consumer.session.leases.delete(lease);
    lease.consumer.inflight--;
    lease.consumer.queue.counts.leased--;
    lease.consumer.queue.leasedBytes -= lease.size;
  }

  ack(session: SessionImpl, ids: string[]): Promise<SettleResult[]> {
    const results: SettleResult[] = ids.map(() => 'LEASE_LOST');
    const taken: { index: number; lease: Lease }[] = [];
    const touched = new Set<QueueState>();
    const now = this.clock.now();
    for (let i = 0; i < ids.length; i++) {
      const lease = this.takeLease(session, ids[i]);
      if (!lease) continue;
      const q = lease.consumer.queue;
      q.counts.bytes -= lease.size;
      q.acked.mark(now);
      taken.push({ index: i, lease });
      touched.add(q);
    }
    for (const q of touched) this.pump(q);
    if (taken.length === 0) return Promise.resolve(results);
    const refs = taken.map((t) => ({ id: t.lease.id, attempts: t.lease.attempt }));
    return this.track(this.storage.ack(refs)).then(
      (oks) => {
        for (let j = 0; j < taken.length; j++) {
          results[taken[j]!.index] = oks[j] ? null : 'LEASE_LOST';
          if (oks[j] && this.settleWatchers.size > 0) {
            this.settleWatchers.get(taken[j]!.lease.id)?.('acked');
          }
        }
        return results;
      },
      (err: unknown) => {
        // Not deleted: the rows are still leased in the store. Put them back for redelivery.
        const code = toFerryError(err).code;
        const back: ReleaseItem[] = [];
        for (const t of taken) {
          results[t.index] = code;
          const q = t.lease.consumer.queue;
          this.addReady(q, 1);
          q.counts.bytes += t.lease.size;
          back.push({ id: t.lease.id, attempts: t.lease.attempt, notBefore: this.clock.now() });
        }
        this.track(this.storage.release(back, this.clock.now())).then(
          () => {
            for (const q of touched) this.pump(q);
          },
          () => {},
        );
        return results;
      },
    );
  }

  nack(session: SessionImpl, ids: string[], options: NackOptions): Promise<SettleResult[]> {
    if (
      options.delayMs !== undefined &&
      (!Number.isFinite(options.delayMs) || options.delayMs < 0)
    ) {
      return Promise.reject(new FerryError('BAD_ARGUMENTS', 'delayMs must be a number ≥ 0'));
    }
    const results: SettleResult[] = ids.map(() => 'LEASE_LOST');
    const leases: Lease[] = [];
    for (let i = 0; i < ids.length; i++) {
      const lease = this.takeLease(session, ids[i]);
      if (!lease) continue;
      results[i] = null;
      leases.push(lease);
    }
    if (leases.length === 0) return Promise.resolve(results);
    if (options.requeue && options.dead) {
      return Promise.reject(new FerryError('BAD_ARGUMENTS', 'requeue and dead exclude each other'));
    }
    const released = options.requeue
      ? this.releaseLeases(leases, undefined, 0, false, true)
      : this.releaseLeases(leases, options.dead ? 'rejected' : undefined, options.delayMs);
    return released.then(
      () => results,
      (err: unknown) => {
        const code = toFerryError(err).code;
        return results.map((r) => (r === null ? code : r));
      },
    );
  }

  /**
   * Returns leases (already dropped from memory) to the store: dead when asked or when out of
   * attempts, otherwise ready now or after a delay (explicit, or the queue's backoff).
   */
  private releaseLeases(
    leases: Lease[],
    deadReason: string | undefined,
    delayMs: number | undefined,
    backoff = true,
    uncount = false,
  ): Promise<unknown> {
    const now = this.clock.now();
    const items: ReleaseItem[] = [];
    const touched = new Set<QueueState>();
    for (const lease of leases) {
      const q = lease.consumer.queue;
      const p = q.policy;
      let reason = deadReason;
      if (reason === undefined && !uncount && lease.attempt >= p.maxAttempts)
        reason = 'max-attempts';
      if (reason !== undefined) {
        q.counts.dead++;
        q.counts.bytes -= lease.size;
        q.deadLettered++;
        items.push({ id: lease.id, attempts: lease.attempt, notBefore: now, deadReason: reason });
        this.settleWatchers.get(lease.id)?.('dead');
        continue;
      }
      const delay =
        delayMs ??
        (backoff ? retryDelayMs(lease.attempt, p.retryBaseMs, p.retryMaxMs, this.random) : 0);
      const notBefore = now + Math.round(delay);
      if (notBefore > now) {
        q.counts.scheduled++;
        this.scheduleDue(notBefore);
      } else {
        this.addReady(q, 1);
        touched.add(q);
      }
      if (!uncount) q.redelivered++;
      items.push({ id: lease.id, attempts: lease.attempt, notBefore, uncount });
    }
    const p = this.track(this.storage.release(items, now));
    for (const q of touched) this.pump(q);
    return p;
  }

  extend(session: SessionImpl, ids: string[], ms: number): SettleResult[] {
    if (!Number.isFinite(ms) || ms < 1) {
      throw new FerryError('BAD_ARGUMENTS', 'extend needs ms ≥ 1');
    }
    const deadline = this.clock.now() + ms;
    return ids.map((id) => {
      const lease = typeof id === 'string' ? this.leases.get(id) : undefined;
      if (!lease || lease.consumer.session !== session) return 'LEASE_LOST';
      lease.deadline = Math.max(lease.deadline, deadline);
      return null;
    });
  }

  closeSession(session: SessionImpl): void {
    if (session.closed) return;
    session.closed = true;
    this.sessions.delete(session);
    for (const c of [...session.consumers.values()]) this.detachConsumer(c);
    const leases = [...session.leases];
    for (const l of leases) this.dropLease(l);
    if (leases.length > 0 && !this.closing) {
      // The consumer is gone: redeliver at once. The attempt counts toward max attempts.
      this.releaseLeases(leases, undefined, 0, false).catch((err: unknown) =>
        this.log.error('release failed', { err: String(err) }),
      );
    }
  }

  // ---------------------------------------------------------------- timers

  private armLeaseTimer(): void {
    this.cancelLeaseTimer = this.clock.setTimer(() => {
      this.expireLeases();
      if (!this.closing) this.armLeaseTimer();
    }, LEASE_SCAN_INTERVAL_MS);
  }

  private expireLeases(): void {
    if (this.leases.size === 0) return;
    const now = this.clock.now();
    const expired: Lease[] = [];
    for (const lease of this.leases.values()) if (lease.deadline <= now) expired.push(lease);
    if (expired.length === 0) return;
    for (const l of expired) {
      this.dropLease(l);
      l.consumer.queue.ackTimeouts++;
    }
    this.log.debug('ack timeout expired', { count: expired.length });
    this.releaseLeases(expired, undefined, 0, false).catch((err: unknown) =>
      this.log.error('release failed', { err: String(err) }),
    );
  }

  private armMaintenanceTimer(): void {
    this.cancelMaintenanceTimer = this.clock.setTimer(() => {
      this.maintain();
      if (!this.closing) this.armMaintenanceTimer();
    }, MAINTENANCE_INTERVAL_MS);
  }

  private maintain(): void {
    this.track(this.storage.sweepExpired(this.clock.now(), SWEEP_BATCH_MAX)).then(
      (deltas) => {
        for (const d of deltas) {
          const q = this.queues.get(d.queue);
          if (!q) continue;
          q.counts.ready = Math.max(0, q.counts.ready - d.ready);
          q.counts.scheduled = Math.max(0, q.counts.scheduled - d.scheduled);
          q.counts.bytes -= d.bytes;
          q.expired += d.ready + d.scheduled;
        }
      },
      (err: unknown) => this.log.error('sweep failed', { err: String(err) }),
    );
    // Self-healing: a queue whose counters say empty but whose consumers wait gets a probe.
    for (const q of this.queues.values()) {
      if (q.consumers.length > 0 && q.counts.ready <= 0) {
        q.probe = true;
        this.pump(q);
      }
    }
  }

  private scheduleDue(at: number): void {
    if (this.closing) return;
    if (this.dueAt !== null && this.dueAt <= at) return;
    this.cancelDueTimer?.();
    this.dueAt = at;
    const wait = Math.max(DUE_MIN_INTERVAL_MS, at - this.clock.now());
    this.cancelDueTimer = this.clock.setTimer(() => this.promoteDue(), wait);
  }

  private promoteDue(): void {
    this.dueAt = null;
    this.cancelDueTimer = undefined;
    const now = this.clock.now();
    this.track(this.storage.promoteDue(now)).then(
      (deltas) => {
        for (const d of deltas) {
          const q = this.queues.get(d.queue);
          if (!q) continue;
          q.counts.scheduled = Math.max(0, q.counts.scheduled - d.count);
          this.addReady(q, d.count);
          this.pump(q);
        }
      },
      (err: unknown) => this.log.error('promote failed', { err: String(err) }),
    );
    this.track(this.storage.nextDueAt()).then(
      (next) => {
        if (next !== null) this.scheduleDue(next);
      },
      () => {},
    );
  }

  // ---------------------------------------------------------------- admin

  listQueues(): string[] {
    return [...this.queues.keys()].sort();
  }

  private requireQueue(name: string): QueueState {
    const q = this.queueFor(name, false);
    if (!q) throw new FerryError('QUEUE_NOT_FOUND', `no queue ${name}`);
    return q;
  }

  async queueStats(name: string): Promise<QueueStats> {
    const q = this.requireQueue(name);
    const now = this.clock.now();
    const oldest = await this.track(this.storage.oldestEnqueuedAt(name));
    const c = q.counts;
    return {
      name,
      ready: c.ready,
      leased: c.leased,
      scheduled: c.scheduled,
      dead: c.dead,
      bytes: c.bytes,
      depth: c.ready + c.leased + c.scheduled,
      consumers: q.consumers.length,
      enqueued: q.enqueued.total,
      acked: q.acked.total,
      expired: q.expired,
      deadLettered: q.deadLettered,
      leasedBytes: q.leasedBytes,
      ackTimeouts: q.ackTimeouts,
      redelivered: q.redelivered,
      enqueueRate: q.enqueued.perSecond(now),
      ackRate: q.acked.perSecond(now),
      oldestAgeMs: oldest === null ? null : Math.max(0, now - oldest),
    };
  }

  async allQueueStats(): Promise<QueueStats[]> {
    return Promise.all(this.listQueues().map((n) => this.queueStats(n)));
  }

  stats(): BrokerStats {
    const m = this.storage.metrics();
    let consumers = 0;
    for (const s of this.sessions) consumers += s.consumers.size;
    return {
      uptimeMs: this.clock.now() - this.startedAt,
      sessions: this.sessions.size,
      consumers,
      queues: this.queues.size,
      leases: this.leases.size,
      storageLow: this.isStorageLow(),
      storage: {
        ...m,
        avgBatchOps: m.commits === 0 ? 0 : m.operations / m.commits,
        avgCommitMs: m.commits === 0 ? 0 : m.commitMsTotal / m.commits,
      },
    };
  }

  async peek(name: string, options: PeekOptions = {}): Promise<StoredMessage[]> {
    this.requireQueue(name);
    const limit = options.limit ?? 10;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new FerryError('BAD_ARGUMENTS', 'limit must be an integer 1–1000');
    }
    return this.track(
      this.storage.browse(name, { state: options.state, limit, afterId: options.afterId }),
    );
  }

  /** Deletes a queue's ready and scheduled messages (or its dead letters). Leased ones stay. */
  async purge(name: string, options: { dead?: boolean } = {}): Promise<number> {
    const q = this.requireQueue(name);
    const out = await this.track(this.storage.purge(name, options.dead ? 'dead' : 'ready'));
    q.counts.ready = Math.max(0, q.counts.ready - out.ready);
    q.counts.scheduled = Math.max(0, q.counts.scheduled - out.scheduled);
    q.counts.dead = Math.max(0, q.counts.dead - out.dead);
    q.counts.bytes -= out.bytes;
    return out.ready + out.scheduled + out.dead;
  }

  /** Moves dead letters back to ready, attempts reset. */
  async redrive(name: string, options: { ids?: string[]; limit?: number } = {}): Promise<number> {
    const q = this.requireQueue(name);
    if (options.ids !== undefined && !options.ids.every((i) => typeof i === 'string')) {
      throw new FerryError('BAD_ARGUMENTS', 'ids must be strings');
    }
    const out = await this.track(this.storage.redrive(name, options));
    q.counts.dead = Math.max(0, q.counts.dead - out.count);
    this.addReady(q, out.count);
    q.counts.bytes += out.bytes;
    this.pump(q);
    return out.count;
  }

  // ---------------------------------------------------------------- shutdown

  get isClosing(): boolean {
    return this.closing;
  }

  /** Refuses new work, waits for store calls in flight, closes the store. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.cancelDueTimer?.();
    this.cancelLeaseTimer?.();
    this.cancelMaintenanceTimer?.();
    for (const s of [...this.sessions]) this.closeSession(s);
    if (this.inflightStorageCalls > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    await this.storage.close();
  }
}

export function checkKey(key: unknown, what: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > DEDUP_KEY_MAX_LENGTH) {
    throw new FerryError(
      'BAD_ARGUMENTS',
      `${what} must be a string of 1–${DEDUP_KEY_MAX_LENGTH} characters`,
    );
  }
}

export function checkHeaders(headers: unknown, where: string): void {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new FerryError('BAD_ARGUMENTS', `${where}: headers must be an object of strings`);
  }
  let bytes = 0;
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v !== 'string') {
      throw new FerryError('BAD_ARGUMENTS', `${where}: header ${k} must be a string`);
    }
    bytes += k.length + v.length;
  }
  if (bytes > HEADERS_MAX_BYTES) {
    throw new FerryError('BAD_ARGUMENTS', `${where}: headers exceed ${HEADERS_MAX_BYTES} bytes`);
  }
}
