/**
 * HTTP consumers over the core's sessions and consumers.
 *
 * The gateway holds ONE broker session (HTTP sends go through it too). A consume request (a long poll) becomes a temporary
 * consumer of that session with `prefetch = max` and `ackTimeoutMs = leaseMs`; the first
 * delivery answers the request and the consumer is cancelled at once (its leases stay valid:
 * the core keeps a cancelled consumer's leases until they are acked, nacked, or time out). A
 * poll that ends empty cancels its consumer the same way.
 *
 * A lease id is `<message id>.<attempt>`. All HTTP clients share the session, so the gateway
 * remembers, per leased message id, the attempt it handed out: a lease id whose attempt is not
 * the current one (the lease timed out and the message went to someone else) is LEASE_LOST.
 * A lease lasts the queue's ack timeout unless the request asks for `leaseMs`; extend moves
 * its deadline. A lease not settled in time is redelivered by the core like any other.
 *
 * A delivery whose HTTP client is already gone is given back to the queue at once, uncounted.
 */
import type {
  Broker,
  Delivery,
  SendOptions,
  SendOutcome,
  Session,
  SettleResult,
} from '../core/broker.js';
import { type ErrorCode, FerryError, type NewMessage } from 'ferrymq/model';

/** Longest a consume request may wait for a message. */
export const MAX_CONSUME_WAIT_MS = 60_000;
/** Most messages one consume request may take. */
export const MAX_CONSUME_MESSAGES = 1_000;
/** Longest lease a consume or extend may ask for. */
export const MAX_LEASE_MS = 12 * 60 * 60_000;
/** How often forgotten leases (timed out in the core) are dropped from the gateway's table. */
const LEASE_TABLE_SWEEP_MS = 10_000;
/** A lease entry is kept this long past its deadline (the core's scan runs every 100 ms). */
const LEASE_TABLE_GRACE_MS = 5_000;

export interface ConsumeRequest {
  queue: string;
  max: number;
  waitMs: number;
  /** Default: the queue's ack timeout. */
  leaseMs?: number | undefined;
  /** Called once, if the HTTP client goes away while waiting. */
  signal?: AbortSignal | undefined;
}

export interface LeasedDelivery extends Delivery {
  lease: string;
  leaseExpiresAt: number;
}

interface Poll {
  tag: string;
  queue: string;
  resolve: (messages: LeasedDelivery[]) => void;
  reject: (err: FerryError) => void;
  timer: NodeJS.Timeout | undefined;
  leaseMs: number;
  done: boolean;
}

interface LeaseEntry {
  queue: string;
  attempt: number;
  deadline: number;
}

function formatLeaseId(id: string, attempt: number): string {
  return `${id}.${attempt}`;
}

function parseLeaseId(lease: string): { id: string; attempt: number } | undefined {
  const i = lease.lastIndexOf('.');
  if (i <= 0) return undefined;
  const attempt = Number(lease.slice(i + 1));
  if (!Number.isInteger(attempt) || attempt < 1) return undefined;
  return { id: lease.slice(0, i), attempt };
}

export class HttpConsumers {
  private readonly session: Session;
  private readonly polls = new Map<string, Poll>();
  private readonly leases = new Map<string, LeaseEntry>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly broker: Broker) {
    this.session = broker.openSession({
      deliver: (tag, messages) => this.deliver(tag, messages),
      // The queue was deleted while the poll waited: the poll answers with why (QUEUE_DELETED).
      cancelled: (tag, reason) => {
        const poll = this.polls.get(tag);
        if (!poll || poll.done) return;
        poll.done = true;
        if (poll.timer) clearTimeout(poll.timer);
        this.polls.delete(tag);
        poll.reject(reason);
      },
    });
    this.sweeper = setInterval(() => this.sweep(), LEASE_TABLE_SWEEP_MS);
    this.sweeper.unref();
  }

  /** Open long polls (for stats). */
  get waiting(): number {
    return this.polls.size;
  }

  /** Sends through the gateway's session (producers need no state of their own). */
  send(queue: string, messages: NewMessage[], options?: SendOptions): Promise<SendOutcome> {
    return this.session.send(queue, messages, options);
  }

  async consume(req: ConsumeRequest): Promise<LeasedDelivery[]> {
    if (this.closed) throw new FerryError('SHUTTING_DOWN');
    const leaseMs = req.leaseMs ?? this.broker.policyOf(req.queue).ackTimeoutMs;
    if (req.waitMs === 0 && !(await this.hasReady(req.queue))) return [];
    return new Promise<LeasedDelivery[]>((resolve, reject) => {
      const poll: Poll = {
        tag: '',
        queue: req.queue,
        resolve,
        reject,
        timer: undefined,
        leaseMs,
        done: false,
      };
      const tag = `http-${Math.random().toString(36).slice(2)}`;
      poll.tag = tag;
      this.polls.set(tag, poll);
      try {
        this.session.consume(req.queue, { tag, prefetch: req.max, ackTimeoutMs: leaseMs });
      } catch (err) {
        this.polls.delete(tag);
        reject(err);
        return;
      }
      // wait=0 with ready messages: give the store's lease round trip a moment to answer.
      const waitMs = req.waitMs === 0 ? IMMEDIATE_GRACE_MS : req.waitMs;
      if (!poll.done) poll.timer = setTimeout(() => this.finish(poll, []), waitMs);
      req.signal?.addEventListener('abort', () => this.finish(poll, []), { once: true });
    });
  }

  private async hasReady(queue: string): Promise<boolean> {
    if (!this.broker.listQueues().includes(queue)) return false;
    const s = await this.broker.queueStats(queue);
    return s.ready > 0 && !s.paused;
  }

  private deliver(tag: string, messages: Delivery[]): void {
    const poll = this.polls.get(tag);
    if (!poll || poll.done) {
      // The poll ended while this was on its way: straight back to the queue, uncounted.
      void this.session.nack(
        messages.map((m) => m.id),
        { requeue: true },
      );
      return;
    }
    const now = Date.now();
    const out: LeasedDelivery[] = messages.map((m) => {
      const deadline = now + poll.leaseMs;
      this.leases.set(m.id, { queue: poll.queue, attempt: m.attempt, deadline });
      return { ...m, lease: formatLeaseId(m.id, m.attempt), leaseExpiresAt: deadline };
    });
    this.finish(poll, out);
  }

  private finish(poll: Poll, messages: LeasedDelivery[]): void {
    if (poll.done) return;
    poll.done = true;
    if (poll.timer) clearTimeout(poll.timer);
    this.polls.delete(poll.tag);
    try {
      this.session.cancel(poll.tag);
    } catch {
      /* never created, or the session is closed */
    }
    poll.resolve(messages);
  }

  /** Gives back deliveries whose HTTP client left before the answer was written. */
  giveBack(messages: LeasedDelivery[]): void {
    const ids = messages.map((m) => m.id);
    for (const id of ids) this.leases.delete(id);
    void this.session.nack(ids, { requeue: true }).catch(() => {});
  }

  /** The queue of a lease the gateway handed out and still holds, else undefined. */
  queueOfLease(lease: string): string | undefined {
    const parsed = parseLeaseId(lease);
    const e = parsed && this.leases.get(parsed.id);
    return e && e.attempt === parsed.attempt ? e.queue : undefined;
  }

  /** Resolves lease ids to message ids; a stale or malformed one becomes undefined. */
  private resolve(leases: readonly string[]): (string | undefined)[] {
    return leases.map((l) => {
      const parsed = parseLeaseId(l);
      if (!parsed) return undefined;
      const e = this.leases.get(parsed.id);
      return e && e.attempt === parsed.attempt ? parsed.id : undefined;
    });
  }

  private async settle(
    leases: readonly string[],
    op: (ids: string[]) => Promise<SettleResult[]> | SettleResult[],
    forget: boolean,
  ): Promise<SettleResult[]> {
    const ids = this.resolve(leases);
    const known = ids.filter((i): i is string => i !== undefined);
    const results: SettleResult[] = ids.map(() => 'LEASE_LOST');
    if (known.length === 0) return results;
    const settled = await op(known);
    let k = 0;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === undefined) continue;
      const r = settled[k++];
      results[i] = r === undefined ? 'LEASE_LOST' : r;
      if (forget || results[i] !== null) this.leases.delete(ids[i]!);
    }
    return results;
  }

  ack(leases: readonly string[]): Promise<SettleResult[]> {
    return this.settle(leases, (ids) => this.session.ack(ids), true);
  }

  nack(
    leases: readonly string[],
    options: { delayMs?: number | undefined; dead?: boolean | undefined },
  ): Promise<SettleResult[]> {
    return this.settle(leases, (ids) => this.session.nack(ids, options), true);
  }

  /** Each lease's deadline becomes at least `ms` from now; returns the new deadlines. */
  async extend(
    leases: readonly string[],
    ms: number,
  ): Promise<{ result: SettleResult; leaseExpiresAt: number | null }[]> {
    const results = await this.settle(leases, (ids) => this.session.extend(ids, ms), false);
    const deadline = Date.now() + ms;
    return results.map((r, i) => {
      if (r !== null) return { result: r, leaseExpiresAt: null };
      const e = this.leases.get(parseLeaseId(leases[i]!)!.id)!;
      e.deadline = Math.max(e.deadline, deadline);
      return { result: null, leaseExpiresAt: e.deadline };
    });
  }

  private sweep(): void {
    const cutoff = Date.now() - LEASE_TABLE_GRACE_MS;
    for (const [id, e] of this.leases) if (e.deadline < cutoff) this.leases.delete(id);
  }

  /** Answers every waiting poll (empty) and ends the session: its leases are redelivered. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const p of [...this.polls.values()]) this.finish(p, []);
    this.session.close();
  }
}

/** With `wait=0` and ready messages, how long the store's lease may take to answer. */
const IMMEDIATE_GRACE_MS = 1_000;

/** The error code of a single settle result, as HTTP answers it. */
export function settleError(
  result: SettleResult | undefined,
  lease: string,
): FerryError | undefined {
  if (result === null) return undefined;
  const code: ErrorCode = result ?? 'LEASE_LOST';
  return new FerryError(
    code,
    code === 'LEASE_LOST' ? `lease ${lease} is not held any more` : undefined,
  );
}
