/**
 * The pub/sub side of the SDK: subscriptions as async iterators of topic messages.
 *
 *   await ferry.publish('config/db/primary', 'db1:5432', { retain: true });
 *   for await (const m of ferry.subscribe('config/', { snapshot: true })) apply(m.topic, m.body);
 *   const sub = ferry.subscribe('config/**', { durable: 'node-7', snapshot: true });
 *
 * FerryClient owns the connection; this file gets a {@link TopicWire} from it.
 */
import { FerryError } from '../model/errors.js';
import {
  PUBLISHED_AT_HEADER,
  RESERVED_HEADER_PREFIX,
  RETAIN_HEADER,
  SEQ_HEADER,
  TOPIC_HEADER,
} from '../model/topics.js';
import { splitMessages, type Json, type Reply } from '../protocol/codec.js';

/** Topic messages acknowledged per TOPIC_ACK (live) or CONFIRM request. */
const TOPIC_ACK_EVERY = 64;
/** Longest a consumed count or a confirmation waits before it is sent. */
const TOPIC_FLUSH_MS = 20;

export interface PublishOptions {
  /** Keep as the topic's last value; an empty body deletes it. */
  retain?: boolean;
  /** The retained value (and durable copies) expire after this many ms. */
  ttlMs?: number;
  headers?: Record<string, string>;
}

export interface SubscribeOptions {
  /**
   * Name of a durable subscription: what is published while no subscriber is attached is
   * stored and delivered later, with acks and redelivery. Subscribers using the same name
   * share its messages (a queue group).
   */
  durable?: string;
  /** A queue group: same as `durable` (a shared durable subscription of that name). */
  group?: string;
  /** First the retained values matching the pattern, then every later message. */
  snapshot?: boolean;
  /** The node name confirmations are sent under (default: the durable name). */
  node?: string;
  /** Live: messages the broker may send ahead of your loop before it drops you. */
  window?: number;
  /** Durable: most unacked deliveries at once. */
  prefetch?: number;
  /** Durable: redelivered if not acked within this. */
  ackTimeoutMs?: number;
}

/** A message of a topic. */
export interface TopicMessage {
  readonly topic: string;
  /** Sequence number of the publish (strictly increasing over the broker's life). */
  readonly seq: number;
  /** The first frame. */
  readonly body: Buffer;
  readonly frames: Buffer[];
  readonly headers: Record<string, string>;
  /** A change of the topic's retained value. */
  readonly retained: boolean;
  /** A retained delete (empty value or TTL expiry). */
  readonly deleted: boolean;
  /** Part of the initial snapshot (the state before the updates). */
  readonly snapshot: boolean;
  readonly publishedAt: Date;
  /**
   * Done with it. Durable: the broker deletes its copy (else it is redelivered). With a node
   * name, a retained version is confirmed as held by that node.
   */
  ack(): Promise<void>;
}

export interface RetainedState {
  /** The sequence number this state reflects. */
  seq: number;
  messages: TopicMessage[];
}

export interface RolloutOptions {
  /** Nodes that must confirm; default every durable subscription whose pattern matches. */
  nodes?: string[];
  timeoutMs?: number;
  ttlMs?: number;
  headers?: Record<string, string>;
}

/** What subscriptions use to reach the broker. */
export interface TopicWire {
  request(
    command: 'TOPIC_ACK' | 'CONFIRM' | 'UNSUBSCRIBE' | 'SUBSCRIBE' | 'NACK',
    args: Json,
  ): Promise<Reply>;
  /** Queues an ack of a durable delivery (batched with the client's other acks). */
  ack(id: string): Promise<unknown>;
  isClosed(): boolean;
}

interface Waiter {
  resolve: (r: IteratorResult<TopicMessage>) => void;
  reject: (e: unknown) => void;
}

/** Reads topic message descriptors + payload (TOPIC replies, RETAINED answers). */
export function topicMessagesOf(
  reply: Reply,
  snapshot: boolean,
  ack: (m: { topic: string; seq: number; retained: boolean }) => Promise<void>,
): TopicMessage[] {
  const specs = reply.args['messages'];
  if (!Array.isArray(specs)) return [];
  const decoded = splitMessages(specs, reply.payload);
  return decoded.map((d, i) => {
    const s = specs[i] as Json;
    const m = {
      topic: String(s['topic']),
      seq: Number(s['seq']),
      body: d.frames[0] ?? Buffer.alloc(0),
      frames: d.frames,
      headers: (s['headers'] as Record<string, string> | undefined) ?? {},
      retained: s['retained'] === true,
      deleted: s['deleted'] === true,
      snapshot,
      publishedAt: new Date(Number(s['publishedAt'] ?? 0)),
      ack: () => ack(m),
    };
    return m;
  });
}

export class TopicSubscription implements AsyncIterable<TopicMessage> {
  private items: TopicMessage[] = [];
  private waiters: Waiter[] = [];
  private ended = false;
  private error: unknown;
  /** Set once the snapshot has fully arrived (or at once without one). */
  private snapshotSeq: number | undefined;
  /** Durable deliveries that came before the snapshot ended. */
  private heldDeliveries: { id: string; msg: TopicMessage }[] = [];
  /** Queue message id of each durable delivery not yet handed to the application. */
  private readonly deliveryIds = new WeakMap<TopicMessage, string>();
  private consumedCount = 0;
  private confirms: { topic: string; seq: number }[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  established = false;
  cancelled = false;
  readonly ready: Promise<void>;
  private readyResolve!: () => void;
  private readyReject!: (err: unknown) => void;

  constructor(
    private readonly wire: TopicWire,
    readonly tag: string,
    readonly pattern: string,
    readonly options: SubscribeOptions,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => {});
  }

  get durableName(): string | undefined {
    return this.options.durable ?? this.options.group;
  }

  private get node(): string | undefined {
    return this.options.node ?? this.durableName;
  }

  subscribeArgs(): Json {
    const o = this.options;
    const args: Json = { pattern: this.pattern, subscription: this.tag };
    if (o.durable !== undefined) args['durable'] = o.durable;
    if (o.group !== undefined) args['group'] = o.group;
    if (o.snapshot === true) args['snapshot'] = true;
    if (o.window !== undefined) args['window'] = o.window;
    if (o.prefetch !== undefined) args['prefetch'] = o.prefetch;
    if (o.ackTimeoutMs !== undefined) args['ackTimeoutMs'] = o.ackTimeoutMs;
    return args;
  }

  /** (Re)subscribes; resolves once the broker answered. */
  start(): Promise<void> {
    this.snapshotSeq = this.options.snapshot === true ? undefined : 0;
    this.heldDeliveries = [];
    this.consumedCount = 0;
    return this.wire.request('SUBSCRIBE', this.subscribeArgs()).then(
      () => {
        this.established = true;
        this.readyResolve();
      },
      (err: unknown) => {
        this.readyReject(err);
        this.fail(err);
        throw err;
      },
    );
  }

  /** A TOPIC message for this subscription (live updates or snapshot parts). */
  onTopic(reply: Reply): void {
    if (this.cancelled) return;
    const snap = reply.args['snapshot'] as { seq?: unknown; last?: unknown } | undefined;
    const isSnapshot = snap !== undefined;
    let msgs: TopicMessage[];
    try {
      msgs = topicMessagesOf(reply, isSnapshot, (m) => this.ackLive(m));
    } catch {
      return;
    }
    for (const m of msgs) this.push(m);
    if (isSnapshot && snap.last === true) {
      this.snapshotSeq = Number(snap.seq);
      const held = this.heldDeliveries;
      this.heldDeliveries = [];
      for (const h of held) this.acceptDelivery(h.id, h.msg);
    }
  }

  /** A durable delivery (a DELIVER of the subscription's queue). */
  onDelivery(id: string, headers: Record<string, string>, frames: Buffer[]): void {
    if (this.cancelled) return;
    const topic = headers[TOPIC_HEADER];
    const seq = Number(headers[SEQ_HEADER]);
    const user: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (!k.startsWith(RESERVED_HEADER_PREFIX)) user[k] = v;
    }
    const retained = headers[RETAIN_HEADER] === '1';
    const body = frames[0] ?? Buffer.alloc(0);
    const msg: TopicMessage = {
      topic: topic ?? '',
      seq,
      body,
      frames,
      headers: user,
      retained,
      deleted: retained && frames.length === 1 && body.length === 0,
      snapshot: false,
      publishedAt: new Date(Number(headers[PUBLISHED_AT_HEADER] ?? 0)),
      ack: async () => {
        await this.wire.ack(id);
        if (retained) this.queueConfirm(msg.topic, seq);
      },
    };
    if (this.snapshotSeq === undefined) {
      this.heldDeliveries.push({ id, msg });
      return;
    }
    this.acceptDelivery(id, msg);
  }

  private acceptDelivery(id: string, msg: TopicMessage): void {
    this.deliveryIds.set(msg, id);
    if (msg.seq <= (this.snapshotSeq ?? 0)) {
      // Older than the snapshot we just gave: the snapshot already holds its effect.
      void this.wire.ack(id).catch(() => {});
      return;
    }
    this.push(msg);
  }

  private async ackLive(m: { topic: string; seq: number; retained: boolean }): Promise<void> {
    if (m.retained) this.queueConfirm(m.topic, m.seq);
    return Promise.resolve();
  }

  private queueConfirm(topic: string, seq: number): void {
    if (this.node === undefined) return;
    this.confirms.push({ topic, seq });
    if (this.confirms.length >= TOPIC_ACK_EVERY) this.flush();
    else this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), TOPIC_FLUSH_MS);
    this.flushTimer.unref();
  }

  /** Sends the consumed count (live window) and queued confirmations now. */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.wire.isClosed()) return;
    if (this.consumedCount > 0 && this.durableName === undefined && this.established) {
      const count = this.consumedCount;
      this.consumedCount = 0;
      void this.wire.request('TOPIC_ACK', { subscription: this.tag, count }).catch(() => {});
    }
    if (this.confirms.length > 0 && this.node !== undefined) {
      const items = this.confirms;
      this.confirms = [];
      void this.wire.request('CONFIRM', { node: this.node, items }).catch(() => {});
    }
  }

  private push(m: TopicMessage): void {
    if (this.ended) return;
    const w = this.waiters.shift();
    if (w) {
      this.onConsumed(m);
      w.resolve({ value: m, done: false });
    } else this.items.push(m);
  }

  private onConsumed(m: TopicMessage): void {
    if (m.snapshot) return; // the snapshot does not count against the window
    if (this.durableName !== undefined) return;
    this.consumedCount++;
    if (this.consumedCount >= TOPIC_ACK_EVERY) this.flush();
    else this.scheduleFlush();
  }

  /** Ends the iterator with an error after what is buffered (e.g. SUBSCRIBER_DROPPED). */
  fail(err: unknown): void {
    this.error = err;
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  onDropped(reply: Reply): void {
    const message = typeof reply.args['message'] === 'string' ? reply.args['message'] : undefined;
    this.cancelled = true;
    this.fail(new FerryError('SUBSCRIBER_DROPPED', message));
  }

  /** Drops what is buffered (their leases died with a lost session). */
  resetAfterReconnect(): void {
    if (this.durableName !== undefined) this.items = [];
  }

  [Symbol.asyncIterator](): AsyncIterator<TopicMessage> {
    return {
      next: () => {
        const v = this.items.shift();
        if (v !== undefined) {
          this.onConsumed(v);
          return Promise.resolve({ value: v, done: false });
        }
        if (this.error !== undefined) {
          const e: unknown = this.error;
          this.error = undefined;
          return Promise.reject(e);
        }
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
      },
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  /** Stops the subscription (a durable one keeps storing; see `unsubscribe`). */
  async close(options: { delete?: boolean } = {}): Promise<void> {
    this.flush();
    if (this.cancelled && !options.delete) {
      this.end();
      return;
    }
    this.cancelled = true;
    // Durable deliveries the application never saw go straight back to the queue.
    const unhanded = [
      ...this.heldDeliveries.map((h) => h.id),
      ...this.items.flatMap((m) => {
        const id = this.deliveryIds.get(m);
        return id === undefined ? [] : [id];
      }),
    ];
    this.heldDeliveries = [];
    this.items = [];
    this.end();
    if (this.wire.isClosed()) return;
    const args: Json = { subscription: this.tag };
    if (options.delete) args['delete'] = true;
    await this.wire.request('UNSUBSCRIBE', args).catch((err: unknown) => {
      if (!(err instanceof FerryError && err.code === 'SUBSCRIPTION_NOT_FOUND')) throw err;
    });
    if (unhanded.length > 0 && !options.delete) {
      await this.wire.request('NACK', { ids: unhanded, requeue: true }).catch(() => {});
    }
  }

  /** Ends the iterator without telling the broker (the connection is gone). */
  endLocally(): void {
    this.cancelled = true;
    this.end();
  }

  private end(): void {
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }
}
