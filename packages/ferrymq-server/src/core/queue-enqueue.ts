/**
 * Sending: checks and limits, the direct path (a new message stored already leased to a
 * consumer with spare credit), one message into several queues in one commit, multicast with
 * an optional wait for every ack, and applying a committed enqueue to the counters.
 */
import {
  FerryError,
  messageSize,
  type NewMessage,
  type QueuePolicy,
  toFerryError,
} from 'ferrymq/model';
import type { EnqueueItem, LeasedMessage, ReleaseItem, Storage } from '../storage/types.js';
import type { BrokerState } from './broker-state.js';
import {
  type BrokerLimits,
  type CopyStore,
  type MulticastOptions,
  type MulticastOutcome,
  type QueueCopies,
  type SendCopiesOptions,
  type SendOptions,
  type SendOutcome,
} from './broker-types.js';
import { overBound } from './flow-control.js';
import { multicastToQueues } from './queue-multicast.js';
import { checkDelayMs, checkHeaders, checkKey, checkPriority, expiryOf } from './checks.js';
import type { Clock } from './clock.js';
import type { PendingCalls } from './pending-calls.js';
import type { QueueDispatch } from './queue-dispatch.js';
import {
  addReady,
  nextConsumer,
  type Consumer,
  type QueueState,
  type SessionState,
} from './queue-state.js';
import type { DueTimer } from './scheduler.js';

interface PreparedCopies {
  q: QueueState;
  items: EnqueueItem[];
  /** Per item: the index of its message in the copies, and of this queue in its queues. */
  slots: [number, number][];
  bytes: number;
  direct: (Consumer | undefined)[];
  ready: number;
}

export class QueueEnqueue {
  private readonly storage: Storage;
  private readonly clock: Clock;
  private readonly calls: PendingCalls;
  private readonly limits: BrokerLimits;

  constructor(
    private readonly state: BrokerState,
    private readonly dispatch: QueueDispatch,
    private readonly due: DueTimer,
  ) {
    this.storage = state.storage;
    this.clock = state.clock;
    this.calls = state.calls;
    this.limits = state.limits;
  }

  send(
    session: SessionState,
    queueName: string,
    messages: NewMessage[],
    options: SendOptions = {},
  ): Promise<SendOutcome> {
    try {
      if (this.state.closing || session.closed) throw new FerryError('SHUTTING_DOWN');
      if (this.state.isStorageLow()) {
        throw new FerryError(
          'STORAGE_FULL',
          'free disk space is below the floor; sends are refused',
        );
      }
      // Every check comes before the queue is created: a refused send leaves no queue behind.
      const existing = this.state.queueFor(queueName, false);
      const p = existing?.policy ?? this.state.policyOf(queueName);
      const now = this.clock.now();
      const items: EnqueueItem[] = [];
      let bytes = 0;
      for (let i = 0; i < messages.length; i++) {
        const item = this.toEnqueueItem(queueName, p, messages[i]!, now, i);
        items.push(item);
        bytes += messageSize(item.frames);
      }
      if (options.requestKey !== undefined) checkKey(options.requestKey, 'requestKey');
      checkLimits(queueName, p, existing, items.length, bytes);
      if (items.length === 0) return Promise.resolve({ ids: [], duplicates: [], replayed: false });
      const q = existing ?? this.state.queueFor(queueName, true)!;
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
      return this.calls.track(this.storage.enqueue(items, request)).then(
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
          // Handed out at the commit; confirmed once it is durable — and, when consumers
          // are behind, once they bring the backlog back under the flow-control bound.
          const result = { ids: outcome.ids, duplicates, replayed: outcome.replayed };
          return this.storage.durable().then(() => this.confirmWhenUnder(q, session, result));
        },
        (err: unknown) => {
          settle();
          for (const c of direct) if (c) c.inflight--;
          this.dispatch.pump(q);
          throw toFerryError(err);
        },
      );
    } catch (err) {
      return Promise.reject(toFerryError(err));
    }
  }

  /** One message to several queues, optionally waiting for every copy's ack (queue-multicast.ts). */
  multicast(
    session: SessionState,
    queues: string[],
    message: NewMessage,
    options: MulticastOptions,
  ): Promise<MulticastOutcome> {
    return multicastToQueues(
      {
        storeCopies: (copies) => this.storeCopies(session, copies, undefined),
        durable: () => this.storage.durable(),
        clock: this.clock,
        settleWatchers: this.state.settleWatchers,
      },
      queues,
      message,
      options,
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
        if (c.active && !c.session.closed && !q.paused) {
          let batch = handOut.get(c);
          if (!batch) handOut.set(c, (batch = []));
          batch.push(m);
        } else {
          // Its consumer left (or the queue was paused) before the commit: back, uncounted.
          q.counts.leased--;
          addReady(q, 1);
          orphans.push({ id: m.id, attempts: 1, notBefore: it.enqueuedAt, uncount: true });
        }
      } else if (it.notBefore > it.enqueuedAt) {
        q.counts.scheduled++;
        this.due.schedule(it.notBefore);
      } else {
        addReady(q, 1);
      }
    }
    if (stored > 0) q.enqueued.mark(this.clock.now(), stored);
    for (const [c, batch] of handOut) this.dispatch.handOut(c, batch);
    if (orphans.length > 0) this.dispatch.releaseOrphans(orphans);
    this.dispatch.pump(q);
    return duplicates;
  }

  /** Resolves with `result` now, or when flow control releases the queue's held confirms. */
  private confirmWhenUnder<T>(q: QueueState, session: SessionState, result: T): T | Promise<T> {
    const factor = this.limits.flowBacklogFactor;
    if (!overBound(q, factor) || this.state.closing || session.closed) return result;
    if (q.held.size >= this.limits.maxHeldConfirms) return result;
    return new Promise<T>((resolve) =>
      q.held.hold({ session: session.id, release: () => resolve(result) }),
    );
  }

  /**
   * Throws what sendToQueues would refuse for (bad names, limits, message checks) without
   * storing anything: a caller that must not write anything else on refusal checks first.
   */
  checkSendToQueues(queueNames: string[], message: NewMessage): void {
    this.checkCopies([{ queues: queueNames, message }]);
  }

  /** checkSendToQueues for several messages at once (limits counted over all of them). */
  checkCopies(copies: QueueCopies[]): void {
    if (this.state.closing) throw new FerryError('SHUTTING_DOWN');
    if (this.state.isStorageLow()) {
      throw new FerryError('STORAGE_FULL', 'free disk space is below the floor; sends are refused');
    }
    this.prepareCopies(copies, this.clock.now());
  }

  /**
   * Per queue, the copies it gets, in order. Every queue's limits are checked over all its
   * copies before any queue is created: a refusal leaves no queue behind.
   */
  private prepareCopies(copies: QueueCopies[], now: number): PreparedCopies[] {
    const byQueue = new Map<
      string,
      {
        existing: QueueState | undefined;
        items: EnqueueItem[];
        slots: [number, number][];
        bytes: number;
      }
    >();
    copies.forEach((copy, c) => {
      copy.queues.forEach((name, position) => {
        let e = byQueue.get(name);
        if (!e) {
          e = { existing: this.state.queueFor(name, false), items: [], slots: [], bytes: 0 };
          byQueue.set(name, e);
        }
        const p = e.existing?.policy ?? this.state.policyOf(name);
        const item = this.toEnqueueItem(name, p, copy.message, now, e.items.length);
        e.items.push(item);
        e.slots.push([c, position]);
        e.bytes += messageSize(item.frames);
      });
    });
    for (const [name, e] of byQueue) {
      const p = e.existing?.policy ?? this.state.policyOf(name);
      checkLimits(name, p, e.existing, e.items.length, e.bytes);
    }
    return [...byQueue].map(([name, e]) => ({
      q: e.existing ?? this.state.queueFor(name, true)!,
      items: e.items,
      slots: e.slots,
      bytes: e.bytes,
      direct: [] as (Consumer | undefined)[],
      ready: 0,
    }));
  }

  /**
   * One message into several queues with one storage call (one commit): every queue's limits
   * are checked first, so either every copy is stored or none is. Resolves with the copies' ids.
   */
  sendToQueues(
    session: SessionState,
    queueNames: string[],
    message: NewMessage,
  ): Promise<string[]> {
    return this.sendCopies(session, [{ queues: queueNames, message }]).then((ids) => ids[0]!);
  }

  /**
   * sendToQueues for several messages in one storage call: all copies of all of them or none.
   * A queue's copies are handed to its consumers together (one delivery per consumer).
   * Resolves, per message, with its copies' ids in the order of its queues, once durable.
   */
  sendCopies(
    session: SessionState,
    copies: QueueCopies[],
    options: SendCopiesOptions = {},
  ): Promise<string[][]> {
    return this.storeCopies(session, copies, options.store).then((ids) =>
      this.storage.durable().then(() => ids),
    );
  }

  /** sendCopies up to the commit: the copies are stored and handed out; not yet durable. */
  private storeCopies(
    session: SessionState,
    copies: QueueCopies[],
    store: CopyStore | undefined,
  ): Promise<string[][]> {
    try {
      if (this.state.closing || session.closed) throw new FerryError('SHUTTING_DOWN');
      if (this.state.isStorageLow()) {
        throw new FerryError(
          'STORAGE_FULL',
          'free disk space is below the floor; sends are refused',
        );
      }
      const ids = copies.map(() => [] as string[]);
      const now = this.clock.now();
      const preps = this.prepareCopies(copies, now);
      if (preps.length === 0) return Promise.resolve(ids);
      for (const pr of preps) {
        pr.direct = this.reserveDirect(pr.q, pr.items);
        for (let i = 0; i < pr.items.length; i++) {
          if (!pr.direct[i] && pr.items[i]!.notBefore <= now) pr.ready++;
        }
        pr.q.pendingCount += pr.items.length;
        pr.q.pendingBytes += pr.bytes;
        pr.q.pendingReady += pr.ready;
      }
      const settle = (): void => {
        for (const pr of preps) {
          pr.q.pendingCount -= pr.items.length;
          pr.q.pendingBytes -= pr.bytes;
          pr.q.pendingReady -= pr.ready;
        }
      };
      const items = preps.flatMap((pr) => pr.items);
      const stored = store
        ? store(
            items,
            preps.flatMap((pr) => pr.slots.map(([c]) => c)),
          )
        : this.storage.enqueue(items);
      return this.calls.track(stored).then(
        (outcome) => {
          settle();
          let off = 0;
          for (const pr of preps) {
            const n = pr.items.length;
            const own = outcome.ids.slice(off, off + n);
            const dup = pr.items.map((_, i) => outcome.duplicate[off + i] ?? false);
            off += n;
            this.afterEnqueue(pr.q, pr.items, pr.direct, own, dup, false);
            own.forEach((id, i) => {
              const [c, position] = pr.slots[i]!;
              ids[c]![position] = id;
            });
          }
          return ids;
        },
        (err: unknown) => {
          settle();
          for (const pr of preps) {
            for (const c of pr.direct) if (c) c.inflight--;
            this.dispatch.pump(pr.q);
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
    const out = new Array<Consumer | undefined>(items.length);
    if (
      q.paused ||
      q.consumers.length === 0 ||
      q.counts.ready > 0 ||
      q.pendingReady > 0 ||
      q.leasing
    ) {
      return out;
    }
    // Within one request a higher priority may not wait behind a lower one: only go direct
    // when the request is uniform in priority (the common case).
    const prio = items[0]!.priority;
    if (!items.every((it) => it.priority === prio)) return out;
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (it.notBefore > it.enqueuedAt) continue;
      const chosen = nextConsumer(q);
      // Out of credit: this and every later item go through the queue, in order.
      if (!chosen) break;
      chosen.inflight++;
      it.leased = true;
      out[i] = chosen;
    }
    return out;
  }

  private toEnqueueItem(
    queue: string,
    policy: QueuePolicy,
    m: NewMessage,
    now: number,
    index: number,
  ): EnqueueItem {
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
    const priority = checkPriority(m.priority, where);
    const delayMs = checkDelayMs(m.delayMs, where);
    const expiresAt = expiryOf(m.ttlMs, now, where);
    const dedupKey = m.dedupKey ?? null;
    if (dedupKey !== null) checkKey(dedupKey, `${where}: dedupKey`);
    if (m.headers !== undefined) checkHeaders(m.headers, where);
    return {
      queue,
      frames: m.frames,
      headers: m.headers && Object.keys(m.headers).length > 0 ? m.headers : undefined,
      priority,
      enqueuedAt: now,
      notBefore: now + Math.round(delayMs),
      expiresAt,
      dedupKey,
      dedupUntil: now + policy.dedupWindowMs,
    };
  }
}

/** QUEUE_FULL when `count` more messages of `bytes` would pass the queue's max depth or bytes. */
function checkLimits(
  name: string,
  p: QueuePolicy,
  q: QueueState | undefined,
  count: number,
  bytes: number,
): void {
  const depth = q ? q.counts.ready + q.counts.leased + q.counts.scheduled + q.pendingCount : 0;
  if (p.maxDepth > 0 && depth + count > p.maxDepth) {
    throw new FerryError(
      'QUEUE_FULL',
      `queue ${name} holds ${depth} of its ${p.maxDepth} messages; ${count} more refused`,
    );
  }
  const held = q ? q.counts.bytes + q.pendingBytes : 0;
  if (p.maxBytes > 0 && held + bytes > p.maxBytes) {
    throw new FerryError('QUEUE_FULL', `queue ${name} holds ${held} of its ${p.maxBytes} bytes`);
  }
}
