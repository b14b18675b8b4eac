/**
 * Settling leases: ack, nack (retry with backoff, a given delay, straight to the dead letters,
 * or requeue uncounted), extend, ack timeouts, and a closing session's leases going back for
 * redelivery. Out of attempts, a message becomes a dead letter.
 */
import { FerryError, toFerryError } from 'ferrymq/model';
import type { ReleaseItem, Storage } from '../storage/types.js';
import { retryDelayMs } from './backoff.js';
import type { BrokerState } from './broker-state.js';
import type { NackOptions, SettleResult } from './broker-types.js';
import type { Clock } from './clock.js';
import type { InflightTable } from './inflight-table.js';
import type { Logger } from './logger.js';
import type { PendingCalls } from './pending-calls.js';
import type { QueueDispatch } from './queue-dispatch.js';
import { addReady, type Lease, type QueueState, type SessionState } from './queue-state.js';
import type { DueTimer } from './scheduler.js';

export class QueueSettle {
  private readonly storage: Storage;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly leases: InflightTable<Lease, SessionState>;
  private readonly calls: PendingCalls;

  constructor(
    private readonly state: BrokerState,
    private readonly dispatch: QueueDispatch,
    private readonly due: DueTimer,
  ) {
    this.storage = state.storage;
    this.clock = state.clock;
    this.log = state.log;
    this.leases = state.leases;
    this.calls = state.calls;
  }

  private takeLease(session: SessionState, id: unknown): Lease | undefined {
    const lease = this.leases.getHeld(session, id);
    if (!lease) return undefined;
    this.dropLease(lease);
    return lease;
  }

  private dropLease(lease: Lease): void {
    this.leases.remove(lease);
    lease.consumer.inflight--;
    lease.consumer.removeBytes(lease.size);
    lease.consumer.queue.counts.leased--;
    lease.consumer.queue.leasedBytes -= lease.size;
  }

  ack(session: SessionState, ids: string[]): Promise<SettleResult[]> {
    const results: SettleResult[] = ids.map(() => 'LEASE_LOST');
    const taken: { index: number; lease: Lease }[] = [];
    const touched = new Set<QueueState>();
    const now = this.clock.now();
    const recovered: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const lease = this.takeLease(session, ids[i]);
      if (!lease) {
        if (this.state.recovered.has(String(ids[i]))) recovered.push(i);
        continue;
      }
      const q = lease.consumer.queue;
      q.counts.bytes -= lease.size;
      q.acked.mark(now);
      taken.push({ index: i, lease });
      touched.add(q);
    }
    for (const q of touched) this.dispatch.pump(q);
    if (recovered.length > 0) {
      return Promise.all([
        this.ackRecovered(ids, recovered, results),
        taken.length > 0 ? this.ackTaken(taken, touched, results) : undefined,
      ]).then(() => results);
    }
    if (taken.length === 0) return Promise.resolve(results);
    return this.ackTaken(taken, touched, results);
  }

  /**
   * Acks of leases the previous run held, re-sent by consumers that reconnected within the
   * recovery grace: the rows are deleted if still held back at that attempt.
   */
  private ackRecovered(ids: string[], indexes: number[], results: SettleResult[]): Promise<void> {
    const items = indexes.map((i) => ({ index: i, lease: this.state.recovered.get(ids[i]!)! }));
    // Taken now: a second ack of the same id in flight answers LEASE_LOST.
    for (const it of items) this.state.recovered.delete(it.lease.id);
    const refs = items.map((it) => ({ id: it.lease.id, attempts: it.lease.attempts }));
    return this.calls.track(this.storage.ackRecovered(refs)).then(
      (oks) => {
        const now = this.clock.now();
        for (let j = 0; j < items.length; j++) {
          if (!oks[j]) continue;
          const r = items[j]!.lease;
          const q = this.state.queueFor(r.queue, false);
          if (q) {
            q.counts.scheduled--;
            q.counts.bytes -= r.size;
            q.acked.mark(now);
          }
          results[items[j]!.index] = null;
        }
      },
      (err: unknown) => {
        const code = toFerryError(err).code;
        for (const it of items) results[it.index] = code;
      },
    );
  }

  private ackTaken(
    taken: { index: number; lease: Lease }[],
    touched: Set<QueueState>,
    results: SettleResult[],
  ): Promise<SettleResult[]> {
    const refs = taken.map((t) => ({ id: t.lease.id, attempts: t.lease.attempt }));
    const watchers = this.state.settleWatchers;
    return this.calls.track(this.storage.ack(refs)).then(
      (oks) => {
        for (let j = 0; j < taken.length; j++) {
          results[taken[j]!.index] = oks[j] ? null : 'LEASE_LOST';
          if (oks[j] && watchers.size > 0) watchers.get(taken[j]!.lease.id)?.('acked');
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
          addReady(q, 1);
          q.counts.bytes += t.lease.size;
          back.push({ id: t.lease.id, attempts: t.lease.attempt, notBefore: this.clock.now() });
        }
        this.calls.track(this.storage.release(back, this.clock.now())).then(
          () => {
            for (const q of touched) this.dispatch.pump(q);
          },
          () => {},
        );
        return results;
      },
    );
  }

  nack(session: SessionState, ids: string[], options: NackOptions): Promise<SettleResult[]> {
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
        this.state.settleWatchers.get(lease.id)?.('dead');
        continue;
      }
      const delay =
        delayMs ??
        (backoff ? retryDelayMs(lease.attempt, p.retryBaseMs, p.retryMaxMs, this.state.random) : 0);
      const notBefore = now + Math.round(delay);
      if (notBefore > now) {
        q.counts.scheduled++;
        this.due.schedule(notBefore);
      } else {
        addReady(q, 1);
        touched.add(q);
      }
      if (!uncount) q.redelivered++;
      items.push({ id: lease.id, attempts: lease.attempt, notBefore, uncount });
    }
    const p = this.calls.track(this.storage.release(items, now));
    for (const q of touched) this.dispatch.pump(q);
    return p;
  }

  extend(session: SessionState, ids: string[], ms: number): SettleResult[] {
    if (!Number.isFinite(ms) || ms < 1) {
      throw new FerryError('BAD_ARGUMENTS', 'extend needs ms ≥ 1');
    }
    const deadline = this.clock.now() + ms;
    return ids.map((id) => {
      const lease = this.leases.getHeld(session, id);
      if (!lease) return 'LEASE_LOST';
      this.leases.extend(lease, deadline);
      return null;
    });
  }

  /** Ends a session: its consumers stop and its leases go back for redelivery at once. */
  closeSession(session: SessionState): void {
    if (session.closed) return;
    session.closed = true;
    this.state.sessions.delete(session);
    for (const c of [...session.consumers.values()]) this.dispatch.detachConsumer(c);
    const leases = [...session.held];
    for (const l of leases) this.dropLease(l);
    if (leases.length > 0 && !this.state.closing) {
      // The consumer is gone: redeliver at once. The attempt counts toward max attempts.
      this.releaseLeases(leases, undefined, 0, false).catch((err: unknown) =>
        this.log.error('release failed', { err: String(err) }),
      );
    }
  }

  /** Leases past their ack deadline go back for redelivery (the attempt counts). */
  expireLeases(): void {
    const expired = this.leases.expired(this.clock.now());
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
}
