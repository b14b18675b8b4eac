/**
 * Settling delivered messages: acks batched per tick (or sent at once past `ackFlushAt`),
 * nacks and extends one by one. A settle whose lease is gone — the broker restarted, the
 * session was replaced, the ack timeout passed — resolves `'lease-lost'` instead of throwing
 * (the message was or will be redelivered), is counted and reported on the status stream.
 * Only other failures (the client closed, a timeout, a refused argument) reject.
 *
 * An ack always goes to the broker, also when the session it was delivered in is gone: after
 * a crash the broker holds the previous run's leases back for its recovery grace and an ack
 * arriving then deletes the message instead of redelivering it (docs/semantics.md); otherwise
 * it answers LEASE_LOST. Nacks and extends act on a live lease, so they stay with theirs.
 */
import { FerryError, type ErrorCode } from '../model/errors.js';
import type { AckOutcome, ExtendOutcome, LeaseLost, NackOutcome } from '../model/queues.js';
import type { Json } from '../protocol/codec.js';
import type { Connection } from './connection.js';

const LEASE_LOST: LeaseLost = 'lease-lost';

type QueueSettleCommand = 'ACK' | 'NACK' | 'EXTEND';

interface QueuedSettle {
  id: string;
  resolve: (lost: boolean) => void;
  reject: (err: unknown) => void;
}

/** True for the error of a settle whose lease is gone. */
function isLeaseLost(err: unknown): boolean {
  return err instanceof FerryError && err.code === 'LEASE_LOST';
}

/** Acks, nacks and extends of delivered messages over a {@link Connection}. @internal */
export class Settler {
  private acks: QueuedSettle[] = [];

  constructor(
    private readonly conn: Connection,
    /** Send queued acks as soon as this many are waiting. */
    private readonly ackFlushAt: number,
    /** Asks for a flush at the end of this tick (the queue API batches sends the same way). */
    private readonly scheduleFlush: () => void,
  ) {}

  /** Queues an ack: it goes out with this tick's others (or at once past ackFlushAt). */
  ack(id: string): Promise<AckOutcome> {
    if (this.conn.closed) return Promise.reject(new FerryError('CONNECTION_CLOSED'));
    return new Promise<boolean>((resolve, reject) => {
      this.acks.push({ id, resolve, reject });
      if (this.acks.length >= this.ackFlushAt) this.flushAcks();
      else this.scheduleFlush();
    }).then((lost) => (lost ? LEASE_LOST : 'acked'));
  }

  async nack(id: string, session: string | undefined, args: Json): Promise<NackOutcome> {
    return (await this.settleOne('NACK', id, session, args)) ? LEASE_LOST : 'nacked';
  }

  async extend(id: string, session: string | undefined, ms: number): Promise<ExtendOutcome> {
    return (await this.settleOne('EXTEND', id, session, { ms })) ? LEASE_LOST : 'extended';
  }

  /** Sends the queued acks now, in one ACK request bound to no session (see above). */
  flushAcks(): void {
    if (this.acks.length === 0) return;
    const items = this.acks;
    this.acks = [];
    this.settleRequest('ACK', items, undefined, {});
  }

  /** Rejects the acks still queued (the client closed). */
  failQueued(): void {
    for (const a of this.acks) a.reject(new FerryError('CONNECTION_CLOSED'));
    this.acks = [];
  }

  /** The delivery session is gone already: nothing to send, the lease died with it. */
  private lostAlready(command: QueueSettleCommand, id: string, session?: string): boolean {
    if (session === undefined || session === this.conn.session) return false;
    this.conn.reportLeaseLost(command, id);
    return true;
  }

  private settleOne(
    command: 'NACK' | 'EXTEND',
    id: string,
    session: string | undefined,
    args: Json,
  ): Promise<boolean> {
    if (this.conn.closed) return Promise.reject(new FerryError('CONNECTION_CLOSED'));
    if (this.lostAlready(command, id, session)) return Promise.resolve(true);
    return new Promise<boolean>((resolve, reject) =>
      this.settleRequest(command, [{ id, resolve, reject }], session, args),
    );
  }

  /**
   * One request for `items`. Bound to their delivery session: if it ends before the answer,
   * every item is lease-lost. Settles wait for the broker however long it is away (no
   * timeout): once back, it answers, or the new session says the leases are gone.
   */
  private settleRequest(
    command: QueueSettleCommand,
    items: QueuedSettle[],
    session: string | undefined,
    args: Json,
  ): void {
    const ids = items.map((i) => i.id);
    this.conn.request(command, { ...args, ids }, [], 0, session).then(
      (reply) => {
        const failed = new Map<string, ErrorCode>();
        const list = reply.args['failed'];
        if (Array.isArray(list)) {
          for (const f of list as { id: string; code: ErrorCode }[]) failed.set(f.id, f.code);
        }
        for (const it of items) {
          const code = failed.get(it.id);
          if (code === undefined) {
            it.resolve(false);
          } else if (code === 'LEASE_LOST') {
            this.conn.reportLeaseLost(command, it.id);
            it.resolve(true);
          } else {
            it.reject(new FerryError(code, `${command} ${it.id}: ${code}`));
          }
        }
      },
      (err: unknown) => {
        for (const it of items) {
          if (isLeaseLost(err)) {
            this.conn.reportLeaseLost(command, it.id);
            it.resolve(true);
          } else {
            it.reject(err);
          }
        }
      },
    );
  }
}
