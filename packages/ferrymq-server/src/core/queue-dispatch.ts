/**
 * Consumers and leasing: consume and cancel, leasing what the consumers' credit allows from
 * the store (pump), spreading a leased batch over the consumers round robin, and handing
 * messages out as leases with an ack deadline.
 */
import { FerryError } from 'ferrymq/model';
import type { LeasedMessage, ReleaseItem, Storage } from '../storage/types.js';
import type { BrokerState } from './broker-state.js';
import {
  DEFAULT_PREFETCH,
  LEASE_BATCH_MAX,
  type ConsumeOptions,
  type Delivery,
} from './broker-types.js';
import type { Clock } from './clock.js';
import { totalCredit } from './credit.js';
import type { InflightTable } from './inflight-table.js';
import type { Logger } from './logger.js';
import type { PendingCalls } from './pending-calls.js';
import {
  Consumer,
  addReady,
  nextConsumer,
  type Lease,
  type QueueState,
  type SessionState,
} from './queue-state.js';
import { releaseIfUnder } from './flow-control.js';

export class QueueDispatch {
  private readonly storage: Storage;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly leases: InflightTable<Lease, SessionState>;
  private readonly calls: PendingCalls;

  constructor(private readonly state: BrokerState) {
    this.storage = state.storage;
    this.clock = state.clock;
    this.log = state.log;
    this.leases = state.leases;
    this.calls = state.calls;
  }

  consume(session: SessionState, queueName: string, options: ConsumeOptions): string {
    if (this.state.closing || session.closed) throw new FerryError('SHUTTING_DOWN');
    this.state.queueFor(queueName, false); // the name is checked before anything is created
    const tag = options.tag ?? session.newTag();
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > 100) {
      throw new FerryError('BAD_ARGUMENTS', 'consumer tag must be a string of 1–100 characters');
    }
    if (session.consumers.has(tag)) {
      throw new FerryError('CONSUMER_EXISTS', `consumer ${tag} already exists in this session`);
    }
    const limits = this.state.limits;
    if (session.consumers.size >= limits.maxConsumersPerSession) {
      throw new FerryError('TOO_MANY_CONSUMERS');
    }
    const prefetch = options.prefetch ?? DEFAULT_PREFETCH;
    if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > limits.maxPrefetch) {
      throw new FerryError('BAD_ARGUMENTS', `prefetch must be an integer 1–${limits.maxPrefetch}`);
    }
    const ackTimeoutMs = options.ackTimeoutMs;
    if (ackTimeoutMs !== undefined && (!Number.isFinite(ackTimeoutMs) || ackTimeoutMs < 1)) {
      throw new FerryError('BAD_ARGUMENTS', 'ackTimeoutMs must be a number ≥ 1');
    }
    // Every check passed: only now may the queue be created.
    const q = this.state.queueFor(queueName, true)!;
    const c = new Consumer(tag, session, q, prefetch, ackTimeoutMs, this.state.inflightBytes);
    session.consumers.set(tag, c);
    q.consumers.push(c);
    q.probe = true;
    this.pump(q);
    return tag;
  }

  /** Stops deliveries to a consumer. Its leases stay valid until acked or the session ends. */
  cancel(session: SessionState, tag: string): void {
    const c = session.consumers.get(tag);
    if (!c) throw new FerryError('CONSUMER_NOT_FOUND', `no consumer ${tag} in this session`);
    this.detachConsumer(c);
  }

  detachConsumer(c: Consumer): void {
    c.active = false;
    c.session.consumers.delete(c.tag);
    const list = c.queue.consumers;
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
  }

  /**
   * A queue is deleted: its consumers are detached and told why (QUEUE_DELETED), and the
   * leases of its messages are forgotten (acks for them answer LEASE_LOST).
   */
  dropQueue(q: QueueState, reason: FerryError): void {
    for (const c of [...q.consumers]) {
      this.detachConsumer(c);
      try {
        c.session.sink.cancelled?.(c.tag, reason);
      } catch (err) {
        this.log.error('cancel notice failed', { session: c.session.id, err: String(err) });
      }
    }
    for (const lease of [...this.leases.values()]) {
      if (lease.consumer.queue !== q) continue;
      this.leases.remove(lease);
      lease.consumer.inflight--;
    }
    q.counts = { ready: 0, leased: 0, scheduled: 0, dead: 0, bytes: 0 };
    q.leasedBytes = 0;
  }

  /** Leases what credit allows from the store and hands it to consumers. */
  pump(q: QueueState): void {
    releaseIfUnder(q, this.state.limits.flowBacklogFactor);
    if (q.leasing || this.state.closing || q.paused) return;
    if (q.counts.ready <= 0 && !q.probe) return;
    const credit = totalCredit(q.consumers);
    if (credit <= 0) return;
    const max = Math.min(credit, LEASE_BATCH_MAX, q.probe ? credit : q.counts.ready);
    q.probe = false;
    q.leasing = true;
    const now = this.clock.now();
    const addsBefore = q.readyAdds;
    this.calls.track(this.storage.lease(q.name, max, now)).then(
      (outcome) => {
        q.leasing = false;
        const got = outcome.messages.length + outcome.expired.count;
        // Fewer than asked: the store had no more ready then. Whatever became ready since the
        // lease was issued may not have been seen by it, so count exactly that as ready.
        q.counts.ready = got < max ? q.readyAdds - addsBefore : Math.max(0, q.counts.ready - got);
        // A shared store: other brokers add messages this one does not count; a full lease
        // may have left more behind.
        if (got === max && this.state.storage.shared) q.probe = true;
        q.counts.bytes -= outcome.expired.bytes;
        q.expired += outcome.expired.count;
        q.counts.leased += outcome.messages.length;
        this.distribute(q, outcome.messages);
        if (q.counts.ready > 0 || q.probe) this.pump(q);
        else releaseIfUnder(q, this.state.limits.flowBacklogFactor);
      },
      (err: unknown) => {
        q.leasing = false;
        this.log.error('lease failed', { queue: q.name, err: String(err) });
      },
    );
  }

  private distribute(q: QueueState, messages: LeasedMessage[]): void {
    if (messages.length === 0) return;
    const now = this.clock.now();
    const batches = new Map<Consumer, LeasedMessage[]>();
    const orphans: ReleaseItem[] = [];
    for (const m of messages) {
      // Paused while the lease was in flight: nothing goes out; back to the queue, uncounted.
      const chosen = q.paused ? undefined : nextConsumer(q);
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
      addReady(q, orphans.length);
      this.releaseOrphans(orphans);
    }
    for (const [c, batch] of batches) {
      c.inflight -= batch.length; // handOut counts them as leases
      this.handOut(c, batch);
    }
  }

  /** Records leases for messages stored as leased, and delivers them to the consumer. */
  handOut(c: Consumer, messages: LeasedMessage[]): void {
    const now = this.clock.now();
    const q = c.queue;
    const batch: Delivery[] = [];
    for (const m of messages) {
      const lease: Lease = {
        id: m.id,
        holder: c.session,
        attempt: m.attempts,
        consumer: c,
        deadline: now + c.ackTimeoutMs,
        size: m.size,
      };
      c.inflight++;
      c.addBytes(m.size);
      q.leasedBytes += m.size;
      this.leases.add(lease);
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

  /** Gives messages whose consumer left back to the store, uncounted. */
  releaseOrphans(items: ReleaseItem[]): void {
    this.calls
      .track(this.storage.release(items, this.clock.now()))
      .catch((err: unknown) => this.log.error('release failed', { err: String(err) }));
  }
}
