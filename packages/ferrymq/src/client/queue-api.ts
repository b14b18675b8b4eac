/**
 * The queue side of FerryClient: sends (those made in one tick go out as one SEND request per
 * queue) and consumers fed by DELIVER messages; settling them is settler.ts's. Resumes
 * consumers after a reconnect. FerryClient delegates to it.
 */
import { toBuffer, toFrames, type Body } from '../model/body.js';
import { FerryError } from '../model/errors.js';
import type { AckOutcome, ExtendOutcome, NackOutcome } from '../model/queues.js';
import {
  errorFromReply,
  splitMessages,
  type DeliveredSpec,
  type Json,
  type MessageSpec,
  type Reply,
} from '../protocol/codec.js';
import { Channel } from './channel.js';
import type { Connection } from './connection.js';
import { Settler } from './settler.js';
import type { TopicSubscription } from './topic-client.js';

export const DEFAULT_CLIENT_BATCH = 1_000;
/**
 * Acks queued in one tick go out together, but never more than this many at once: a consumer
 * working through a large prefetched batch returns credit as it goes, so the broker can lease
 * and deliver the next messages while this batch is still being handled.
 */
export const DEFAULT_ACK_FLUSH_AT = 128;

export interface SendOptions {
  headers?: Record<string, string>;
  /** 0–255, higher first. */
  priority?: number;
  delayMs?: number;
  ttlMs?: number;
  /** A repeat of the key within the queue's dedup window is stored once. */
  dedupKey?: string;
}

export interface OutgoingMessage extends SendOptions {
  /** One body, or several frames. */
  body: Body | Body[];
}

/** What `sendMulticast` resolves with. */
export interface QueueMulticastOutcome {
  /** The copy's id in each queue. */
  ids: Record<string, string>;
  /** With `wait`: every copy was acked in time. */
  complete?: boolean;
  acked?: string[];
  dead?: string[];
  pending?: string[];
}

export interface ConsumeOptions {
  /** Most unacknowledged messages the broker sends this consumer at once. */
  prefetch?: number;
  /** Overrides the queue's ack timeout for these deliveries. */
  ackTimeoutMs?: number;
}

/** @public (the SDK's index exports it) */
export interface NackOptions {
  /** Redeliver after this delay (default: the queue's exponential backoff). */
  delayMs?: number;
  /** Send to the dead letters now. */
  dead?: boolean;
}

/**
 * A delivered message. Ack it when done, or nack it to retry. Settling resolves with an
 * outcome and never throws because the lease is gone (`'lease-lost'`: the broker restarted or
 * the ack timeout passed; the message was or will be redelivered).
 */
export interface Message {
  readonly id: string;
  readonly queue: string;
  /** The first frame. */
  readonly body: Buffer;
  /** All frames. */
  readonly frames: Buffer[];
  readonly headers: Record<string, string>;
  /** Deliveries of this message so far, this one included: 1 the first time. */
  readonly attempts: number;
  readonly priority: number;
  readonly enqueuedAt: Date;
  ack(): Promise<AckOutcome>;
  nack(options?: NackOptions): Promise<NackOutcome>;
  /** Push the ack deadline to at least `ms` from now. */
  extend(ms: number): Promise<ExtendOutcome>;
}

export interface Consumer extends AsyncIterable<Message> {
  readonly queue: string;
  /** Stops deliveries; messages received but not yet handed out are returned to the queue. */
  cancel(): Promise<void>;
}

export interface QueueApiOptions {
  /** Most messages per SEND request. */
  maxBatch: number;
  /** Send queued acks as soon as this many are waiting. */
  ackFlushAt: number;
}

interface QueuedSend {
  message: OutgoingMessage;
  resolve: (id: string) => void;
  reject: (err: unknown) => void;
}

/** A consumer: its messages arrive on a channel the application iterates. @internal */
export class ConsumerImpl implements Consumer {
  readonly channel = new Channel<Message>();
  established = false;
  cancelled = false;

  constructor(
    private readonly owner: { cancelConsumer(c: ConsumerImpl): Promise<void> },
    readonly tag: string,
    readonly queue: string,
    readonly options: ConsumeOptions,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    const it = this.channel[Symbol.asyncIterator]();
    return {
      next: () => it.next(),
      return: async () => {
        await this.cancel();
        return { value: undefined, done: true };
      },
    };
  }

  cancel(): Promise<void> {
    return this.owner.cancelConsumer(this);
  }
}

/** Producing, consuming and settling queue messages over a {@link Connection}. @internal */
export class QueueApi {
  private nextSendSeq = 1;
  private nextConsumer = 1;
  private readonly consumers = new Map<string, ConsumerImpl>();
  private readonly sendQueues = new Map<string, QueuedSend[]>();
  private flushScheduled = false;
  private readonly maxBatch: number;
  private readonly settler: Settler;

  constructor(
    private readonly conn: Connection,
    private readonly clientId: string,
    options: QueueApiOptions,
    /** Durable subscriptions get their messages as DELIVERs too: looked up by tag. */
    private readonly topicSubs: ReadonlyMap<string, TopicSubscription>,
  ) {
    this.maxBatch = options.maxBatch;
    this.settler = new Settler(conn, options.ackFlushAt, () => this.scheduleFlush());
  }

  // -------------------------------------------------------------- producing

  send(queue: string, body: Body | Body[], options: SendOptions): Promise<string> {
    if (this.conn.closed) return Promise.reject(this.conn.closedError());
    return new Promise<string>((resolve, reject) => {
      let list = this.sendQueues.get(queue);
      if (!list) {
        list = [];
        this.sendQueues.set(queue, list);
      }
      list.push({ message: { ...options, body }, resolve, reject });
      this.scheduleFlush();
    });
  }

  async sendBatch(queue: string, messages: OutgoingMessage[]): Promise<string[]> {
    if (this.conn.closed) throw this.conn.closedError();
    const out: string[] = [];
    for (let i = 0; i < messages.length; i += this.maxBatch) {
      const chunk = messages.slice(i, i + this.maxBatch);
      out.push(...(await this.sendRequest(queue, chunk)));
    }
    return out;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Sends what this tick queued now, if anything (when closing). */
  flushIfScheduled(): void {
    if (this.flushScheduled) this.flush();
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [queue, list] of this.sendQueues) {
      this.sendQueues.delete(queue);
      for (let i = 0; i < list.length; i += this.maxBatch) {
        const chunk = list.slice(i, i + this.maxBatch);
        this.sendRequest(
          queue,
          chunk.map((c) => c.message),
        ).then(
          (ids) => chunk.forEach((c, j) => c.resolve(ids[j]!)),
          (err: unknown) => chunk.forEach((c) => c.reject(err)),
        );
      }
    }
    this.settler.flushAcks();
  }

  private async sendRequest(queue: string, messages: OutgoingMessage[]): Promise<string[]> {
    const payload: Buffer[] = [];
    const specs: MessageSpec[] = [];
    let plain = true;
    for (const m of messages) {
      const frames = Array.isArray(m.body) ? m.body.map(toBuffer) : [toBuffer(m.body)];
      const spec: MessageSpec = {};
      if (frames.length !== 1) spec.frames = frames.length;
      if (m.headers !== undefined) spec.headers = m.headers;
      if (m.priority !== undefined) spec.priority = m.priority;
      if (m.delayMs !== undefined) spec.delayMs = m.delayMs;
      if (m.ttlMs !== undefined) spec.ttlMs = m.ttlMs;
      if (m.dedupKey !== undefined) spec.dedupKey = m.dedupKey;
      if (Object.keys(spec).length > 0) plain = false;
      specs.push(spec);
      payload.push(...frames);
    }
    const requestKey = `${this.clientId}:${this.nextSendSeq++}`;
    const reply = await this.conn.request(
      'SEND',
      { queue, messages: plain ? messages.length : specs, requestKey },
      payload,
    );
    const ids = reply.args['ids'];
    if (!Array.isArray(ids) || ids.length !== messages.length) {
      throw new FerryError('INTERNAL', 'the broker answered SEND without one id per message');
    }
    return ids.map(String);
  }

  async sendMulticast(
    queues: string[],
    body: Body | Body[],
    options: SendOptions & { wait?: boolean; timeoutMs?: number },
  ): Promise<QueueMulticastOutcome> {
    const args: Json = { queues };
    if (options.headers !== undefined) args['headers'] = options.headers;
    if (options.priority !== undefined) args['priority'] = options.priority;
    if (options.ttlMs !== undefined) args['ttlMs'] = options.ttlMs;
    if (options.wait !== undefined) args['wait'] = options.wait;
    if (options.timeoutMs !== undefined) args['timeoutMs'] = options.timeoutMs;
    // A key, so a re-send after a reconnect stores no second copy in any queue.
    if (this.conn.supports('request-keys')) {
      args['requestKey'] = `${this.clientId}:m${this.nextSendSeq++}`;
    }
    const wait = options.wait
      ? (options.timeoutMs ?? 30_000) + this.conn.requestTimeoutMs
      : undefined;
    const reply = await this.conn.request('SEND_MULTICAST', args, toFrames(body), wait);
    return reply.args as unknown as QueueMulticastOutcome;
  }

  // -------------------------------------------------------------- consuming

  consume(queue: string, options: ConsumeOptions): Consumer {
    const tag = `${this.clientId.slice(0, 6)}-${this.nextConsumer++}`;
    const c = new ConsumerImpl(this, tag, queue, options);
    this.consumers.set(tag, c);
    this.conn.request('CONSUME', this.consumeArgs(c)).then(
      () => {
        c.established = true;
      },
      (err: unknown) => {
        // Refused (bad queue name, bad prefetch, …): the iterator's next read throws it.
        this.consumers.delete(tag);
        c.cancelled = true;
        c.channel.fail(err);
      },
    );
    return c;
  }

  private consumeArgs(c: ConsumerImpl): Json {
    const args: Json = { queue: c.queue, consumer: c.tag };
    if (c.options.prefetch !== undefined) args['prefetch'] = c.options.prefetch;
    if (c.options.ackTimeoutMs !== undefined) args['ackTimeoutMs'] = c.options.ackTimeoutMs;
    return args;
  }

  /** A new session: consumers subscribe again (their leases died with the old one). */
  resume(): void {
    for (const c of this.consumers.values()) {
      if (!c.established || c.cancelled) continue;
      c.channel.drain(); // their leases died with the old session
      this.conn.rawRequest('CONSUME', this.consumeArgs(c)).catch(() => {});
    }
  }

  /** A DELIVER: to its consumer, or its durable subscription; else straight back. */
  onDeliver(reply: Reply): void {
    const tag = reply.args['consumer'];
    const specs = reply.args['messages'];
    if (typeof tag !== 'string' || !Array.isArray(specs)) return;
    const ts = this.topicSubs.get(tag);
    const c = this.consumers.get(tag);
    let decoded;
    try {
      decoded = splitMessages(specs, reply.payload);
    } catch {
      return;
    }
    const ids: string[] = [];
    const session = this.conn.session;
    for (let i = 0; i < decoded.length; i++) {
      const spec = specs[i] as DeliveredSpec;
      const frames = decoded[i]!.frames;
      if (ts && !ts.cancelled) {
        ts.onDelivery(String(spec.id), spec.headers ?? {}, frames);
        continue;
      }
      if (!c || c.cancelled) {
        ids.push(spec.id);
        continue;
      }
      c.channel.push(this.makeMessage(c.queue, spec, frames, session));
    }
    if (ids.length > 0) {
      // Delivered to a consumer we no longer have: give them straight back.
      this.conn.request('NACK', { ids, requeue: true }).catch(() => {});
    }
  }

  /** CANCELLED: the broker ended a consumer (its queue was deleted); its iterator throws why. */
  onCancelled(reply: Reply): void {
    const tag = reply.args['consumer'];
    const c = typeof tag === 'string' ? this.consumers.get(tag) : undefined;
    if (!c) return;
    this.consumers.delete(c.tag);
    c.cancelled = true;
    c.channel.fail(errorFromReply(reply));
  }

  private makeMessage(
    queue: string,
    spec: DeliveredSpec,
    frames: Buffer[],
    session: string | undefined,
  ): Message {
    const id = String(spec.id);
    return {
      id,
      queue,
      body: frames[0] ?? Buffer.alloc(0),
      frames,
      headers: spec.headers ?? {},
      attempts: spec.attempt ?? 1,
      priority: spec.priority ?? 0,
      enqueuedAt: new Date(spec.enqueuedAt ?? 0),
      ack: () => this.settler.ack(id),
      nack: (options: NackOptions = {}) => this.settler.nack(id, session, { ...options }),
      extend: (ms: number) => this.settler.extend(id, session, ms),
    };
  }

  /** Acks a durable subscription's delivery (batched with the consumers' acks). */
  ack(id: string): Promise<AckOutcome> {
    return this.settler.ack(id);
  }

  // -------------------------------------------------------------- closing

  async cancelConsumer(c: ConsumerImpl): Promise<void> {
    if (c.cancelled) return;
    c.cancelled = true;
    this.consumers.delete(c.tag);
    const unhanded = c.channel.drain();
    c.channel.end();
    if (this.conn.closed) return;
    try {
      await this.conn.request('CANCEL', { consumer: c.tag });
    } catch (err) {
      if (!(err instanceof FerryError && err.code === 'CONSUMER_NOT_FOUND')) throw err;
    }
    if (unhanded.length > 0) {
      await this.conn
        .request('NACK', { ids: unhanded.map((m) => m.id), requeue: true })
        .catch(() => {});
    }
  }

  /** Cancels every consumer: with the broker if there is time and a session, else locally. */
  async closeConsumers(timeoutMs: number): Promise<void> {
    for (const c of [...this.consumers.values()]) {
      if (timeoutMs > 0 && this.conn.session !== undefined) await c.cancel().catch(() => {});
      else c.channel.end();
    }
  }

  /** Rejects the sends and acks still queued (the client closed). */
  failQueued(): void {
    for (const list of this.sendQueues.values()) {
      for (const s of list) s.reject(this.conn.closedError());
    }
    this.sendQueues.clear();
    this.settler.failQueued();
  }
}
