/**
 * Operating the queues: listings, per-queue and broker stats, sessions and their consumers,
 * peeking, reading and deleting one message, purging and redriving dead letters.
 */
import {
  type BrokerStats,
  FerryError,
  type MessageState,
  type QueueCounts,
  type QueueStats,
  type StoredMessage,
} from 'ferrymq/model';
import type { BrokerState } from './broker-state.js';
import type { PeekOptions, SessionInfo } from './broker-types.js';
import type { QueueDispatch } from './queue-dispatch.js';
import { addReady } from './queue-state.js';

export class QueueAdmin {
  constructor(
    private readonly state: BrokerState,
    private readonly dispatch: QueueDispatch,
  ) {}

  listQueues(): string[] {
    return [...this.state.queues.keys()].sort();
  }

  async queueStats(name: string, stored?: Map<string, QueueCounts>): Promise<QueueStats> {
    const q = this.state.requireQueue(name);
    const now = this.state.clock.now();
    const oldest = await this.state.calls.track(this.state.storage.oldestEnqueuedAt(name));
    // A shared store: the counters here follow other brokers' work only every second, so the
    // numbers shown are read from the store now (exact, the whole cluster's).
    const c = (await this.sharedCounts(stored))?.get(name) ?? q.counts;
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
      confirmsHeld: q.held.size,
      confirmsHeldTotal: q.held.total,
      enqueueRate: q.enqueued.perSecond(now),
      ackRate: q.acked.perSecond(now),
      oldestAgeMs: oldest === null ? null : Math.max(0, now - oldest),
      paused: q.paused,
      policy: { ...q.policy },
      overrides: { ...q.overrides },
    };
  }

  async allQueueStats(): Promise<QueueStats[]> {
    const stored = await this.sharedCounts();
    return Promise.all(this.listQueues().map((n) => this.queueStats(n, stored)));
  }

  /** The store's counters when it is shared (read once per stats call); undefined otherwise. */
  private async sharedCounts(
    stored?: Map<string, QueueCounts>,
  ): Promise<Map<string, QueueCounts> | undefined> {
    if (!this.state.storage.shared) return undefined;
    return stored ?? (await this.state.calls.track(this.state.storage.counts()));
  }

  stats(): BrokerStats {
    const m = this.state.storage.metrics();
    let consumers = 0;
    for (const s of this.state.sessions) consumers += s.consumers.size;
    return {
      uptimeMs: this.state.clock.now() - this.state.startedAt,
      sessions: this.state.sessions.size,
      consumers,
      queues: this.state.queues.size,
      leases: this.state.leases.size,
      storageLow: this.state.isStorageLow(),
      storage: {
        ...m,
        avgBatchOps: m.commits === 0 ? 0 : m.operations / m.commits,
        avgCommitMs: m.commits === 0 ? 0 : m.commitMsTotal / m.commits,
      },
    };
  }

  async peek(name: string, options: PeekOptions = {}): Promise<StoredMessage[]> {
    this.state.requireQueue(name);
    const limit = options.limit ?? 10;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new FerryError('BAD_ARGUMENTS', 'limit must be an integer 1–1000');
    }
    return this.state.calls.track(
      this.state.storage.browse(name, { state: options.state, limit, afterId: options.afterId }),
    );
  }

  /** Every open session with its consumers (prefetch, deliveries in flight) and leases. */
  sessions(): SessionInfo[] {
    return [...this.state.sessions].map((s) => ({
      id: s.id,
      leases: s.held.size,
      consumers: [...s.consumers.values()].map((c) => ({
        tag: c.tag,
        queue: c.queue.name,
        prefetch: c.prefetch,
        inflight: c.inflight,
        ackTimeoutMs: c.ackTimeoutMs,
      })),
    }));
  }

  /** One message by id (MESSAGE_NOT_FOUND if the queue holds none with that id). */
  async message(name: string, id: string): Promise<StoredMessage> {
    this.state.requireQueue(name);
    const m = await this.state.calls.track(this.state.storage.message(name, id));
    if (!m) throw new FerryError('MESSAGE_NOT_FOUND', `queue ${name} holds no message ${id}`);
    return m;
  }

  /**
   * Deletes one ready, scheduled or dead message. A leased one is refused (MESSAGE_LEASED):
   * its consumer holds it and settles it; nack it dead first, or wait.
   */
  async deleteMessage(name: string, id: string): Promise<MessageState> {
    const q = this.state.requireQueue(name);
    const before = await this.message(name, id);
    if (before.state === 'leased') {
      throw new FerryError('MESSAGE_LEASED', `message ${id} is leased to a consumer`);
    }
    const out = await this.state.calls.track(this.state.storage.deleteMessage(name, id));
    if (!out) {
      // Leased or settled between the read and the delete.
      throw new FerryError('MESSAGE_LEASED', `message ${id} was leased or settled meanwhile`);
    }
    if (out.state === 'dead') q.counts.dead = Math.max(0, q.counts.dead - 1);
    else {
      if (out.state === 'ready') q.counts.ready = Math.max(0, q.counts.ready - 1);
      else q.counts.scheduled = Math.max(0, q.counts.scheduled - 1);
      q.counts.bytes -= out.size;
    }
    return out.state;
  }

  /** Deletes a queue's ready and scheduled messages (or its dead letters). Leased ones stay. */
  async purge(name: string, options: { dead?: boolean } = {}): Promise<number> {
    const q = this.state.requireQueue(name);
    const out = await this.state.calls.track(
      this.state.storage.purge(name, options.dead ? 'dead' : 'ready'),
    );
    q.counts.ready = Math.max(0, q.counts.ready - out.ready);
    q.counts.scheduled = Math.max(0, q.counts.scheduled - out.scheduled);
    q.counts.dead = Math.max(0, q.counts.dead - out.dead);
    q.counts.bytes -= out.bytes;
    return out.ready + out.scheduled + out.dead;
  }

  /** Moves dead letters back to ready, attempts reset. */
  async redrive(name: string, options: { ids?: string[]; limit?: number } = {}): Promise<number> {
    const q = this.state.requireQueue(name);
    if (options.ids !== undefined && !options.ids.every((i) => typeof i === 'string')) {
      throw new FerryError('BAD_ARGUMENTS', 'ids must be strings');
    }
    const out = await this.state.calls.track(this.state.storage.redrive(name, options));
    q.counts.dead = Math.max(0, q.counts.dead - out.count);
    addReady(q, out.count);
    q.counts.bytes += out.bytes;
    this.dispatch.pump(q);
    return out.count;
  }
}
