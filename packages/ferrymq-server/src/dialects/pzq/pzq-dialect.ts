/**
 * The PZQ dialect: PZQ producers, consumers and monitor (research/protocols.md §1) on one
 * Ferry queue, through an ordinary broker session.
 *
 * - A producer message becomes a `send` to the queue; its ACK goes out once the store has
 *   committed it (the broker's sync policy), a NACK with the reason when it was refused.
 *   Malformed messages get PZQ's own NACK texts; messages too short to answer are dropped.
 * - Consumers share one consumer of the queue, active while at least one is connected (PZQ
 *   consumers connect ROUTERs to a DEALER the broker binds, which sends round-robin and
 *   cannot address one peer). Its credit bounds what is in flight; its ack timeout is PZQ's.
 *   The broker key is the Ferry message id, so a redelivery carries the same key, and the
 *   lease survives in the store: after a restart an un-acked message is delivered again.
 * - A consumer ACK `"1"` acks the message; `"0"` makes it eligible again at once.
 * - The monitor answers `MONITOR` with PZQ's six lines for the queue.
 *
 * Nothing here throws on peer input: what cannot be answered is logged and counted.
 */
import type { Broker, Delivery, Session } from '../../core/broker.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { toFerryError } from 'ferrymq/model';
import {
  decodeConsumerAck,
  decodeProducerMessage,
  encodeDelivery,
  encodeMonitorReply,
  encodeProducerAck,
  isMonitorRequest,
  type PzqMonitorStats,
} from './pzq-frames.js';

/** Deliveries not yet acked by PZQ consumers, all together (PZQ itself kept ~1 per consumer). */
const PZQ_DEFAULT_PREFETCH = 100;
const US_PER_MS = 1_000;

/** The broker calls the dialect makes. */
export type PzqBroker = Pick<Broker, 'openSession' | 'queueStats' | 'stats'>;

export interface PzqDialectOptions {
  /** The Ferry queue PZQ traffic goes to. */
  queue: string;
  /** Ack timeout, microseconds (PZQ's --ack-timeout). */
  ackTimeoutUs: number;
  prefetch?: number;
  clock?: Clock;
  logger?: Logger;
}

/** Where the dialect's frames go. */
export interface PzqOutputs {
  /** To one producer (ROUTER). */
  toProducer(peer: Buffer, frames: Buffer[]): void;
  /** To the next consumer in turn (DEALER). */
  toConsumers(frames: Buffer[]): void;
  /** To one monitor client (ROUTER). */
  toMonitor(peer: Buffer, frames: Buffer[]): void;
}

export interface PzqCounters {
  stored: number;
  refused: number;
  /** Producer messages too short to answer. */
  dropped: number;
  delivered: number;
  acked: number;
  nacked: number;
  /** Consumer ACKs that were malformed or named no message in flight. */
  badAcks: number;
  monitorRequests: number;
}

export class PzqDialect {
  private readonly session: Session;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly queue: string;
  private readonly ackTimeoutUs: number;
  private readonly prefetch: number;
  private consumerTag: string | undefined;
  private connected = 0;
  private closed = false;
  readonly counters: PzqCounters = {
    stored: 0,
    refused: 0,
    dropped: 0,
    delivered: 0,
    acked: 0,
    nacked: 0,
    badAcks: 0,
    monitorRequests: 0,
  };

  constructor(
    private readonly broker: PzqBroker,
    private readonly out: PzqOutputs,
    options: PzqDialectOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
    this.queue = options.queue;
    this.ackTimeoutUs = options.ackTimeoutUs;
    this.prefetch = options.prefetch ?? PZQ_DEFAULT_PREFETCH;
    this.session = broker.openSession({
      deliver: (_tag, messages) => this.deliver(messages),
    });
  }

  /** The ack timeout the broker applies, ms (PZQ's microseconds, rounded, at least 1). */
  get ackTimeoutMs(): number {
    return Math.max(1, Math.round(this.ackTimeoutUs / US_PER_MS));
  }

  // ---- producers -----------------------------------------------------------------------

  /** A message from a producer (frames after the ROUTER id). Never throws. False: invalid. */
  handleProducer(peer: Buffer, frames: Buffer[]): boolean {
    if (this.closed) return true;
    const msg = decodeProducerMessage(frames);
    if (msg.kind === 'dropped') {
      this.counters.dropped++;
      this.log.warn('pzq: dropped a producer message', { reason: msg.reason });
      return false;
    }
    if (msg.kind === 'refused') {
      this.counters.refused++;
      this.log.debug('pzq: refused a malformed producer message', { reason: msg.text });
      this.out.toProducer(peer, encodeProducerAck(msg.id, false, msg.text));
      return false;
    }
    this.session.send(this.queue, [{ frames: msg.body }]).then(
      () => {
        this.counters.stored++;
        this.out.toProducer(peer, encodeProducerAck(msg.id, true));
      },
      (err: unknown) => {
        const e = toFerryError(err);
        this.counters.refused++;
        this.log.debug('pzq: a producer message was not stored', { code: e.code });
        this.out.toProducer(peer, encodeProducerAck(msg.id, false, `${e.code}: ${e.message}`));
      },
    );
    return true;
  }

  // ---- consumers -----------------------------------------------------------------------

  /** PZQ consumers connected now (as the transport last said). */
  get connectedConsumers(): number {
    return this.connected;
  }

  /** The number of connected consumers changed: consume while there is at least one. */
  consumersChanged(count: number): void {
    if (this.closed) return;
    this.connected = count;
    try {
      if (count > 0 && this.consumerTag === undefined) {
        this.consumerTag = this.session.consume(this.queue, {
          prefetch: this.prefetch,
          ackTimeoutMs: this.ackTimeoutMs,
        });
        this.log.debug('pzq: consumers connected; delivering');
      } else if (count === 0 && this.consumerTag !== undefined) {
        this.session.cancel(this.consumerTag);
        this.consumerTag = undefined;
        this.log.debug('pzq: no consumer connected; delivery paused');
      }
    } catch (err) {
      this.log.error('pzq: could not change the consumer', { err: String(err) });
    }
  }

  /**
   * Deliveries queued for consumers that never left the broker (every consumer went away):
   * back to the queue at once, not counted as attempts.
   */
  takeBack(queued: Buffer[][]): void {
    const keys = queued.map((frames) => frames[0]?.toString('latin1') ?? '');
    if (keys.length === 0) return;
    this.session
      .nack(keys, { requeue: true })
      .catch((err: unknown) =>
        this.log.error('pzq: could not requeue unsent deliveries', { err: String(err) }),
      );
  }

  private deliver(messages: Delivery[]): void {
    if (this.closed) return;
    const sentAtUs = this.clock.now() * US_PER_MS;
    for (const m of messages) {
      this.counters.delivered++;
      this.out.toConsumers(encodeDelivery(m.id, sentAtUs, this.ackTimeoutUs, m.frames));
    }
  }

  /** An ACK from a consumer (frames as the DEALER receives them). Never throws. */
  handleConsumer(frames: Buffer[]): void {
    if (this.closed) return;
    const ack = decodeConsumerAck(frames);
    if (ack.kind === 'invalid') {
      this.counters.badAcks++;
      this.log.warn('pzq: ignored a malformed consumer ACK', { reason: ack.reason });
      return;
    }
    const settle = ack.ok
      ? this.session.ack([ack.key])
      : this.session.nack([ack.key], { delayMs: 0 });
    settle.then(
      ([r]) => {
        if (r === null || r === undefined) {
          if (ack.ok) this.counters.acked++;
          else this.counters.nacked++;
          return;
        }
        this.counters.badAcks++;
        this.log.debug('pzq: consumer ACK for a message not in flight', {
          key: ack.key,
          code: r,
        });
      },
      (err: unknown) => this.log.error('pzq: settling an ACK failed', { err: String(err) }),
    );
  }

  // ---- monitor -------------------------------------------------------------------------

  /** A monitor request. Anything but MONITOR gets no reply, as with PZQ (false). Never throws. */
  handleMonitor(peer: Buffer, frames: Buffer[]): boolean {
    if (this.closed) return true;
    if (!isMonitorRequest(frames)) {
      this.log.debug('pzq: ignored a monitor request that is not MONITOR');
      return false;
    }
    this.counters.monitorRequests++;
    this.monitorStats().then(
      (stats) => this.out.toMonitor(peer, encodeMonitorReply(stats)),
      (err: unknown) => this.log.error('pzq: monitor stats failed', { err: String(err) }),
    );
    return true;
  }

  /** PZQ's six monitor values, for the queue (see docs/dialects.md for the mapping). */
  async monitorStats(): Promise<PzqMonitorStats> {
    const storage = this.broker.stats().storage;
    let q = { depth: 0, leased: 0, leasedBytes: 0, ackTimeouts: 0 };
    try {
      q = await this.broker.queueStats(this.queue);
    } catch (err) {
      if (toFerryError(err).code !== 'QUEUE_NOT_FOUND') throw err;
    }
    return {
      messages: q.depth,
      messagesInflight: q.leased,
      dbSize: storage.sizeBytes,
      inflightDbSize: q.leasedBytes,
      syncs: storage.fsyncs,
      expiredMessages: q.ackTimeouts,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.session.close();
  }
}
