/**
 * The Ferry TypeScript SDK.
 *
 *   const ferry = await connect('tcp://127.0.0.1:7400');
 *   await ferry.send('emails', JSON.stringify({ to: 'a@example.com' }));
 *   for await (const msg of ferry.consume('emails')) { ...; await msg.ack(); }
 *
 * Sends made in the same tick go out as one request; acks too. Every send request carries an
 * idempotency key, so when the connection drops or the broker restarts the SDK sends again what
 * was not confirmed and the broker stores it once. Consumers are resumed after a reconnect.
 */
import { randomBytes } from 'node:crypto';
import {
  TopicSubscription,
  topicMessagesOf,
  type PublishOptions,
  type RetainedState,
  type RolloutOptions,
  type SubscribeOptions,
  type TopicWire,
} from './topic-client.js';
import { type RolloutOutcome, type TopicStatus } from '../model/topics.js';
import { toBuffer, type Body } from '../model/body.js';
import { FerryError, type ErrorCode } from '../model/errors.js';
import type { ServiceInfo, WorkerInfo } from '../model/jobs.js';
import type { FerryStats } from '../model/stats.js';
import {
  decodeReply,
  encodeRequest,
  errorFromReply,
  splitMessages,
  type Command,
  type DeliveredSpec,
  type Json,
  type MessageSpec,
  type Reply,
} from '../protocol/codec.js';
import { connectDealer } from '../transport/zmq-dealer.js';
import {
  JobHandle,
  JobWorker,
  jobInfoOf,
  updateOf,
  type CallOptions,
  type JobHandler,
  type JobOptions,
  type JobWire,
  type SubmitOptions,
  type Worker,
  type WorkerOptions,
} from './job-client.js';
import { type JobInfo, type JobStatus } from '../model/jobs.js';
import { toFrames } from '../model/body.js';
import type { ClientConnection } from '../transport/types.js';

export const DEFAULT_ENDPOINT = 'tcp://127.0.0.1:7400';
export const DEFAULT_CLIENT_HEARTBEAT_MS = 2_000;
export const CLIENT_LIVENESS = 3;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_CLIENT_BATCH = 1_000;
/**
 * Acks queued in one tick go out together, but never more than this many at once: a consumer
 * working through a large prefetched batch returns credit as it goes, so the broker can lease
 * and deliver the next messages while this batch is still being handled.
 */
export const DEFAULT_ACK_FLUSH_AT = 128;
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
const BYE_TIMEOUT_MS = 1_000;

export interface ConnectOptions {
  /** How often the client pings; the broker drops a session silent for 3× this. */
  heartbeatMs?: number;
  /** A request with no answer within this rejects with TIMEOUT. */
  requestTimeoutMs?: number;
  /** Most messages per SEND request when batching. */
  maxBatchMessages?: number;
  /** Send queued acks as soon as this many are waiting, without waiting for the tick to end. */
  ackFlushAt?: number;
  /** Name shown in broker logs. */
  name?: string;
}

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

export interface NackOptions {
  /** Redeliver after this delay (default: the queue's exponential backoff). */
  delayMs?: number;
  /** Send to the dead letters now. */
  dead?: boolean;
}

/** A delivered message. Ack it when done, or nack it to retry. */
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
  ack(): Promise<void>;
  nack(options?: NackOptions): Promise<void>;
  /** Push the ack deadline to at least `ms` from now. */
  extend(ms: number): Promise<void>;
}

export interface Consumer extends AsyncIterable<Message> {
  readonly queue: string;
  /** Stops deliveries; messages received but not yet handed out are returned to the queue. */
  cancel(): Promise<void>;
}

export type ClientStatus =
  | { type: 'connected'; endpoint: string; session: string }
  | { type: 'disconnected'; endpoint: string }
  | { type: 'reconnected'; endpoint: string; session: string; resent: number }
  | { type: 'closed' };

export interface PeekedMessage {
  id: string;
  state: string;
  attempts: number;
  priority: number;
  enqueuedAt: number;
  notBefore: number;
  headers?: Record<string, string>;
  expiresAt?: number;
  dedupKey?: string;
  deadReason?: string;
  body: Buffer;
  frames: Buffer[];
}

interface Pending {
  command: Command;
  frames: Buffer[];
  resolve: (reply: Reply) => void;
  reject: (err: FerryError) => void;
  timer: NodeJS.Timeout | undefined;
  sentAt: number;
}

interface Stream {
  onEvent: (reply: Reply) => void;
  frames: Buffer[];
  answered: boolean;
  /** Send again after a reconnect (watches). */
  resend: boolean;
}

/** The FerryError of an ERROR reply, with the reply's extra fields (e.g. `job`) as details. */
function errorWithDetails(reply: Reply): FerryError {
  const base = errorFromReply(reply);
  const { code: _c, message: _m, ...details } = reply.args;
  if (Object.keys(details).length === 0) return base;
  return new FerryError(base.code, base.message, { details });
}

interface QueuedSend {
  message: OutgoingMessage;
  resolve: (id: string) => void;
  reject: (err: unknown) => void;
}

interface QueuedSettle {
  id: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A simple async queue: push values, iterate them. */
class Channel<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiters: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
  private ended = false;
  private error: unknown;

  push(v: T): void {
    if (this.ended) return;
    const w = this.waiters.shift();
    if (w) w.resolve({ value: v, done: false });
    else this.items.push(v);
  }
  end(): void {
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }
  /** Ends with an error: the next read (after what is buffered) throws it. */
  fail(err: unknown): void {
    this.error = err;
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
  drain(): T[] {
    return this.items.splice(0);
  }
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const v = this.items.shift();
        if (v !== undefined) return Promise.resolve({ value: v, done: false });
        if (this.error !== undefined) {
          const e = this.error;
          this.error = undefined;
          return Promise.reject(e);
        }
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

class ConsumerImpl implements Consumer {
  readonly channel = new Channel<Message>();
  established = false;
  cancelled = false;

  constructor(
    private readonly client: FerryClient,
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
    return this.client.cancelConsumer(this);
  }
}

export class FerryClient {
  private conn: ClientConnection;
  private endpointIndex = 0;
  private readonly endpoints: string[];
  private readonly clientId = randomBytes(8).toString('hex');
  private nextRequest = 1;
  private nextSendSeq = 1;
  private nextConsumer = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly consumers = new Map<string, ConsumerImpl>();
  private readonly jobWorkers = new Map<string, JobWorker>();
  private readonly streams = new Map<string, Stream>();
  private readonly topicSubs = new Map<string, TopicSubscription>();
  private nextSubscription = 1;
  private nextWorker = 1;
  private nextSubmitSeq = 1;
  private readonly sendQueues = new Map<string, QueuedSend[]>();
  private acks: QueuedSettle[] = [];
  private flushScheduled = false;
  private readonly heartbeatMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxBatch: number;
  private readonly ackFlushAt: number;
  private readonly name: string;
  private session: string | undefined;
  private ready: Promise<void>;
  private readyResolve!: () => void;
  private handshaking = false;
  private helloSentAt = 0;
  private handshakeGeneration = 0;
  private lastHeard = Date.now();
  private connected = false;
  private closed = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly statusChannels = new Set<Channel<ClientStatus>>();
  private everConnected = false;

  /** Use {@link connect}. */
  constructor(endpoints: string[], options: ConnectOptions = {}) {
    if (endpoints.length === 0) throw new FerryError('CONFIG_INVALID', 'no broker endpoint given');
    this.endpoints = endpoints;
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_CLIENT_HEARTBEAT_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxBatch = options.maxBatchMessages ?? DEFAULT_CLIENT_BATCH;
    this.ackFlushAt = options.ackFlushAt ?? DEFAULT_ACK_FLUSH_AT;
    this.name = options.name ?? 'ferry-js';
    this.ready = new Promise((r) => (this.readyResolve = r));
    this.conn = this.open(this.endpoints[0]!);
  }

  private open(endpoint: string): ClientConnection {
    return connectDealer(endpoint, {
      onMessage: (frames) => this.onFrames(frames),
      onDisconnect: () => this.onTransportDown(),
    });
  }

  /** The endpoint in use now. */
  get endpoint(): string {
    return this.conn.endpoint;
  }

  /** Starts the handshake and the heartbeat; resolves once the broker answered HELLO. */
  async start(): Promise<void> {
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.heartbeatMs);
    this.heartbeatTimer.unref();
    this.handshake();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new FerryError('TIMEOUT', `no answer from ${this.endpoints.join(', ')}`)),
            this.requestTimeoutMs,
          );
        }),
      ]);
    } catch (err) {
      await this.close({ timeoutMs: 0 });
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Connection events, as an async iterator. */
  status(): AsyncIterable<ClientStatus> {
    const ch = new Channel<ClientStatus>();
    this.statusChannels.add(ch);
    return ch;
  }

  private emit(s: ClientStatus): void {
    for (const ch of this.statusChannels) ch.push(s);
  }

  // -------------------------------------------------------------- wire

  private rawRequest(
    command: Command,
    args: Json,
    payload: Buffer[] = [],
    timeoutMs = this.requestTimeoutMs,
    rid: Buffer = this.newRequestId(),
  ): Promise<Reply> {
    if (this.closed && command !== 'BYE')
      return Promise.reject(new FerryError('CONNECTION_CLOSED'));
    const frames = encodeRequest(command, rid, args, payload);
    return new Promise<Reply>((resolve, reject) => {
      const key = rid.toString('latin1');
      const p: Pending = { command, frames, resolve, reject, timer: undefined, sentAt: Date.now() };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(key);
          reject(new FerryError('TIMEOUT', `${command}: no answer within ${timeoutMs} ms`));
        }, timeoutMs);
        p.timer.unref();
      }
      this.pending.set(key, p);
      // HELLO and PING go out at once; everything else waits for the session.
      if (command === 'HELLO' || command === 'PING' || this.session !== undefined)
        this.conn.send(frames);
    });
  }

  private newRequestId(): Buffer {
    const rid = Buffer.allocUnsafe(4);
    rid.writeUInt32BE(this.nextRequest++ >>> 0);
    return rid;
  }

  private async request(
    command: Command,
    args: Json,
    payload: Buffer[] = [],
    timeoutMs = this.requestTimeoutMs,
  ): Promise<Reply> {
    const reply = await this.rawRequest(command, args, payload, timeoutMs);
    if (reply.kind === 'ERROR') throw errorWithDetails(reply);
    return reply;
  }

  /** A request whose EVENT messages (same request id) go to onEvent until closed. */
  private openStream(
    command: Command,
    args: Json,
    payload: Buffer[],
    onEvent: (reply: Reply) => void,
    timeoutMs = this.requestTimeoutMs,
  ): { reply: Promise<Reply>; close(): void } {
    const rid = this.newRequestId();
    const key = rid.toString('latin1');
    const stream: Stream = {
      onEvent,
      frames: encodeRequest(command, rid, args, payload),
      answered: false,
      resend: command === 'WATCH',
    };
    this.streams.set(key, stream);
    const reply = this.rawRequest(command, args, payload, timeoutMs, rid).then((r) => {
      stream.answered = true;
      if (r.kind === 'ERROR') {
        this.streams.delete(key);
        throw errorWithDetails(r);
      }
      return r;
    });
    return { reply, close: () => this.streams.delete(key) };
  }

  private onFrames(frames: Buffer[]): void {
    let reply: Reply;
    try {
      reply = decodeReply(frames);
    } catch {
      return; // not ours; ignore
    }
    this.lastHeard = Date.now();
    if (!this.connected && this.session !== undefined) {
      this.connected = true;
    }
    if (reply.kind === 'DELIVER') {
      this.onDeliver(reply);
      return;
    }
    if (reply.kind === 'ASSIGN' || reply.kind === 'REVOKE') {
      this.onWorkerMessage(reply);
      return;
    }
    if (reply.kind === 'EVENT') {
      this.streams.get(reply.requestId.toString('latin1'))?.onEvent(reply);
      return;
    }
    if (reply.kind === 'TOPIC' || reply.kind === 'DROPPED') {
      const tag = reply.args['subscription'];
      const sub = typeof tag === 'string' ? this.topicSubs.get(tag) : undefined;
      if (!sub) return;
      if (reply.kind === 'TOPIC') sub.onTopic(reply);
      else {
        this.topicSubs.delete(sub.tag);
        sub.onDropped(reply);
      }
      return;
    }
    const key = reply.requestId.toString('latin1');
    const p = this.pending.get(key);
    if (!p) return;
    if (reply.kind === 'ERROR' && reply.args['code'] === 'NO_SESSION' && p.command !== 'HELLO') {
      // The broker does not know us (it restarted, or dropped us): keep the request, redo HELLO.
      this.session = undefined;
      this.handshake();
      return;
    }
    this.pending.delete(key);
    if (p.timer) clearTimeout(p.timer);
    p.resolve(reply);
  }

  /** Drops the HELLO (and PINGs) waiting for an answer, so a new handshake can start. */
  private abandonHandshake(): void {
    for (const [key, p] of this.pending) {
      if (p.command === 'HELLO' || p.command === 'PING') {
        this.pending.delete(key);
        if (p.timer) clearTimeout(p.timer);
        p.reject(new FerryError('TIMEOUT', `${p.command}: no answer`));
      }
    }
    this.handshaking = false;
  }

  private handshake(): void {
    if (this.handshaking || this.closed) return;
    this.handshaking = true;
    this.helloSentAt = Date.now();
    this.session = undefined;
    const wasConnected = this.everConnected;
    const generation = ++this.handshakeGeneration;
    this.rawRequest('HELLO', { heartbeatMs: this.heartbeatMs, client: this.name }, [], 0).then(
      (reply) => {
        if (generation !== this.handshakeGeneration) return; // superseded
        this.handshaking = false;
        if (reply.kind === 'ERROR') {
          this.emit({ type: 'disconnected', endpoint: this.endpoint });
          return;
        }
        this.session = String(reply.args['session']);
        this.connected = true;
        this.everConnected = true;
        // Resume consumers, then send again every request still waiting for an answer.
        for (const c of this.consumers.values()) {
          if (!c.established || c.cancelled) continue;
          c.channel.drain(); // their leases died with the old session
          this.rawRequest('CONSUME', this.consumeArgs(c)).catch(() => {});
        }
        for (const w of this.jobWorkers.values()) {
          w.abortAll(); // the old session's jobs were requeued by the broker
          if (w.established) this.rawRequest('WORKER', w.registerArgs()).catch(() => {});
        }
        for (const ts of this.topicSubs.values()) {
          if (!ts.established || ts.cancelled) continue;
          ts.resetAfterReconnect();
          ts.start().catch(() => {});
        }
        for (const st of this.streams.values()) {
          // A watch already answered is asked for again (its updates replay from the start).
          if (st.resend && st.answered) this.conn.send(st.frames);
        }
        let resent = 0;
        for (const p of this.pending.values()) {
          if (p.command === 'HELLO') continue;
          this.conn.send(p.frames);
          resent++;
        }
        this.emit(
          wasConnected
            ? { type: 'reconnected', endpoint: this.endpoint, session: this.session, resent }
            : { type: 'connected', endpoint: this.endpoint, session: this.session },
        );
        this.readyResolve();
      },
      () => {
        if (generation === this.handshakeGeneration) this.handshaking = false;
      },
    );
  }

  private heartbeat(): void {
    if (this.closed) return;
    const silentFor = Date.now() - this.lastHeard;
    if (silentFor > this.heartbeatMs * CLIENT_LIVENESS && this.connected) {
      this.connected = false;
      this.emit({ type: 'disconnected', endpoint: this.endpoint });
      if (this.endpoints.length > 1) this.failover();
    }
    if (this.session === undefined) {
      if (!this.handshaking) {
        this.handshake();
      } else if (Date.now() - this.helloSentAt > this.heartbeatMs * CLIENT_LIVENESS) {
        // No answer to HELLO (the broker may have died holding it): try again, or elsewhere.
        if (this.endpoints.length > 1) {
          this.failover();
        } else {
          this.abandonHandshake();
          this.handshake();
        }
      }
      return;
    }
    this.rawRequest('PING', {}, [], this.heartbeatMs * CLIENT_LIVENESS).catch(() => {});
  }

  private onTransportDown(): void {
    // ZeroMQ reconnects by itself; the next PING tells us whether the broker still knows us.
    this.lastHeard = Math.min(this.lastHeard, Date.now() - this.heartbeatMs);
  }

  /** Moves to the next endpoint: the requests in flight are sent again there after HELLO. */
  private failover(): void {
    const old = this.conn;
    this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
    this.conn = this.open(this.endpoints[this.endpointIndex]!);
    void old.close();
    this.session = undefined;
    this.abandonHandshake();
    this.lastHeard = Date.now();
    this.handshake();
  }

  // -------------------------------------------------------------- producing

  /** Sends one message; resolves with its id once the broker has stored it. */
  send(queue: string, body: Body | Body[], options: SendOptions = {}): Promise<string> {
    if (this.closed) return Promise.reject(new FerryError('CONNECTION_CLOSED'));
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

  /** Sends several messages in one request; resolves with their ids once stored. */
  async sendBatch(queue: string, messages: OutgoingMessage[]): Promise<string[]> {
    if (this.closed) throw new FerryError('CONNECTION_CLOSED');
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
    this.flushAcks();
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
    const reply = await this.request(
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

  // -------------------------------------------------------------- consuming

  /** Receives messages from a queue, as an async iterator. Break out of the loop to cancel. */
  consume(queue: string, options: ConsumeOptions = {}): Consumer {
    const tag = `${this.clientId.slice(0, 6)}-${this.nextConsumer++}`;
    const c = new ConsumerImpl(this, tag, queue, options);
    this.consumers.set(tag, c);
    this.request('CONSUME', this.consumeArgs(c)).then(
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

  private onDeliver(reply: Reply): void {
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
      c.channel.push(this.makeMessage(c.queue, spec, frames));
    }
    if (ids.length > 0) {
      // Delivered to a consumer we no longer have: give them straight back.
      this.request('NACK', { ids, requeue: true }).catch(() => {});
    }
  }

  private makeMessage(queue: string, spec: DeliveredSpec, frames: Buffer[]): Message {
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
      ack: () => this.queueAck(id),
      nack: (options: NackOptions = {}) => this.settleOne('NACK', id, { ...options }),
      extend: (ms: number) => this.settleOne('EXTEND', id, { ms }),
    };
  }

  private queueAck(id: string): Promise<void> {
    if (this.closed) return Promise.reject(new FerryError('CONNECTION_CLOSED'));
    return new Promise<void>((resolve, reject) => {
      this.acks.push({ id, resolve, reject });
      if (this.acks.length >= this.ackFlushAt) this.flushAcks();
      else this.scheduleFlush();
    });
  }

  /** Sends the queued acks now, as one ACK request. */
  private flushAcks(): void {
    if (this.acks.length === 0) return;
    const acks = this.acks;
    this.acks = [];
    this.settleRequest('ACK', acks, {});
  }

  private settleOne(command: 'NACK' | 'EXTEND', id: string, args: Json): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.settleRequest(command, [{ id, resolve, reject }], args),
    );
  }

  private settleRequest(
    command: 'ACK' | 'NACK' | 'EXTEND',
    items: QueuedSettle[],
    args: Json,
  ): void {
    this.request(command, { ...args, ids: items.map((i) => i.id) }).then(
      (reply) => {
        const failed = new Map<string, ErrorCode>();
        const list = reply.args['failed'];
        if (Array.isArray(list)) {
          for (const f of list as { id: string; code: ErrorCode }[]) failed.set(f.id, f.code);
        }
        for (const it of items) {
          const code = failed.get(it.id);
          if (code === undefined) it.resolve();
          else it.reject(new FerryError(code, `${command} ${it.id}: ${code}`));
        }
      },
      (err: unknown) => items.forEach((it) => it.reject(err)),
    );
  }

  /** @internal */
  async cancelConsumer(c: ConsumerImpl): Promise<void> {
    if (c.cancelled) return;
    c.cancelled = true;
    this.consumers.delete(c.tag);
    const unhanded = c.channel.drain();
    c.channel.end();
    if (this.closed) return;
    try {
      await this.request('CANCEL', { consumer: c.tag });
    } catch (err) {
      if (!(err instanceof FerryError && err.code === 'CONSUMER_NOT_FOUND')) throw err;
    }
    if (unhanded.length > 0) {
      await this.request('NACK', { ids: unhanded.map((m) => m.id), requeue: true }).catch(() => {});
    }
  }

  // -------------------------------------------------------------- jobs

  /** What job handles and workers use to reach the broker. */
  private get wire(): JobWire {
    return {
      request: (command, args, payload, timeoutMs) =>
        this.request(command, args, payload ?? [], timeoutMs ?? this.requestTimeoutMs),
      stream: (command, args, payload, onEvent, timeoutMs) =>
        this.openStream(command, args, payload, onEvent, timeoutMs),
      isClosed: () => this.closed,
    };
  }

  private jobArgs(service: string, options: JobOptions): Json {
    const args: Json = { service };
    if (options.priority !== undefined) args['priority'] = options.priority;
    if (options.ttlMs !== undefined) args['ttlMs'] = options.ttlMs;
    if (options.maxAttempts !== undefined) args['maxAttempts'] = options.maxAttempts;
    if (options.headers !== undefined) args['headers'] = options.headers;
    return args;
  }

  /**
   * Submits a job; resolves with its handle once the broker has stored it. It runs when a
   * worker for the service is free — now, later, or after a broker restart.
   */
  async submit(
    service: string,
    params: Body | Body[],
    options: SubmitOptions = {},
  ): Promise<JobHandle> {
    const args = this.jobArgs(service, options);
    if (options.delayMs !== undefined) args['delayMs'] = options.delayMs;
    if (options.durable !== undefined) args['durable'] = options.durable;
    // A dedup key on every durable submit, so a re-send after a reconnect is stored once.
    if (options.durable !== false) {
      args['dedupKey'] = options.dedupKey ?? `~${this.clientId}:${this.nextSubmitSeq++}`;
    }
    const reply = await this.request('SUBMIT', args, toFrames(params));
    return new JobHandle(this.wire, String(reply.args['id']));
  }

  /** Runs a job and resolves with its result (the first frame). */
  async call(service: string, params: Body | Body[], options: CallOptions = {}): Promise<Buffer> {
    const frames = await this.callFrames(service, params, options);
    return frames[0] ?? Buffer.alloc(0);
  }

  /**
   * Runs a job and resolves with every result frame. Rejects JOB_FAILED, JOB_CANCELLED,
   * JOB_EXPIRED (with the job in `err.details.job`) or TIMEOUT.
   */
  async callFrames(
    service: string,
    params: Body | Body[],
    options: CallOptions = {},
  ): Promise<Buffer[]> {
    const args = this.jobArgs(service, options);
    if (options.durable !== undefined) args['durable'] = options.durable;
    if (options.timeoutMs !== undefined) args['timeoutMs'] = options.timeoutMs;
    const { signal, onProgress, onPartial } = options;
    if (signal?.aborted) throw new FerryError('JOB_CANCELLED', 'aborted before the call');
    // The broker enforces timeoutMs; the request itself waits a little longer for its answer.
    const timeoutMs =
      options.timeoutMs === undefined ? 0 : options.timeoutMs + this.requestTimeoutMs;
    const streamed = onProgress !== undefined || onPartial !== undefined || signal !== undefined;
    if (!streamed) {
      const reply = await this.request('CALL', args, toFrames(params), timeoutMs);
      return reply.payload;
    }
    args['stream'] = true;
    let jobId: string | undefined;
    let lastSeq = 0;
    const s = this.openStream(
      'CALL',
      args,
      toFrames(params),
      (reply) => {
        if (typeof reply.args['id'] === 'string' && reply.args['id'] !== '') {
          jobId = reply.args['id'];
          if (signal?.aborted) void this.request('JOB_CANCEL', { id: jobId }).catch(() => {});
        }
        const u = updateOf(reply);
        if (u?.type === 'progress') onProgress?.(u.progress);
        if (u?.type === 'partial' && u.seq > lastSeq) {
          lastSeq = u.seq;
          onPartial?.(u.frames, u.seq);
        }
      },
      timeoutMs,
    );
    const onAbort = (): void => {
      if (jobId !== undefined) void this.request('JOB_CANCEL', { id: jobId }).catch(() => {});
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const reply = await s.reply;
      return reply.payload;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      s.close();
    }
  }

  /** Runs one job on several services; the handle's job ends when every service's has. */
  async multicast(
    services: string[],
    params: Body | Body[],
    options: JobOptions & { durable?: boolean } = {},
  ): Promise<JobHandle> {
    const { service: _s, ...args } = this.jobArgs('', options);
    if (options.durable !== undefined) args['durable'] = options.durable;
    const reply = await this.request('MULTICAST', { ...args, services }, toFrames(params));
    return new JobHandle(this.wire, String(reply.args['id']));
  }

  /** A handle on a job by id. */
  job(id: string): JobHandle {
    return new JobHandle(this.wire, id);
  }

  /**
   * Serves a service (or several): the handler's return value is the result; a throw fails
   * the attempt. Registration happens in the background; errors surface through onError.
   */
  worker(services: string | string[], handler: JobHandler, options: WorkerOptions = {}): Worker {
    if (this.closed) throw new FerryError('CONNECTION_CLOSED');
    const list = Array.isArray(services) ? services : [services];
    const tag = `${this.clientId.slice(0, 6)}-w${this.nextWorker++}`;
    const w = new JobWorker(this.wire, tag, list, handler, options, () =>
      this.jobWorkers.delete(tag),
    );
    this.jobWorkers.set(tag, w);
    w.ready = this.request('WORKER', w.registerArgs()).then(
      () => {
        w.established = true;
      },
      (err: unknown) => {
        this.jobWorkers.delete(tag);
        throw err;
      },
    );
    w.ready.catch(() => {});
    return w;
  }

  private onWorkerMessage(reply: Reply): void {
    const tag = reply.args['worker'];
    const w = typeof tag === 'string' ? this.jobWorkers.get(tag) : undefined;
    const id = reply.args['id'];
    if (typeof id !== 'string') return;
    if (reply.kind === 'REVOKE') {
      w?.onRevoke(id);
      return;
    }
    if (!w) {
      // Assigned to a worker we no longer have: give it back.
      this.request('FAIL', { id, code: 'WORKER_GONE', message: 'worker closed' }).catch(() => {});
      return;
    }
    w.onAssign(reply.args, reply.payload);
  }

  /** Services the broker knows, with their workers and job counts. */
  async services(): Promise<ServiceInfo[]> {
    const reply = await this.request('SERVICES', {});
    return reply.args['services'] as ServiceInfo[];
  }

  /** Workers connected to the broker, over every protocol. */
  async workers(): Promise<WorkerInfo[]> {
    const reply = await this.request('WORKERS', {});
    return reply.args['workers'] as WorkerInfo[];
  }

  /** Recent durable jobs, newest first. */
  async jobs(
    options: { service?: string; status?: JobStatus; limit?: number } = {},
  ): Promise<JobInfo[]> {
    const reply = await this.request('JOBS', { ...options });
    return (reply.args['jobs'] as Json[]).map((j) => jobInfoOf(j, []));
  }

  /**
   * Sends one message to several queues, stored in one commit. With `wait`, resolves once
   * every copy has been acked (or dead-lettered), or after `timeoutMs`: see `complete`.
   */
  async sendMulticast(
    queues: string[],
    body: Body | Body[],
    options: SendOptions & { wait?: boolean; timeoutMs?: number } = {},
  ): Promise<QueueMulticastOutcome> {
    const args: Json = { queues };
    if (options.headers !== undefined) args['headers'] = options.headers;
    if (options.priority !== undefined) args['priority'] = options.priority;
    if (options.ttlMs !== undefined) args['ttlMs'] = options.ttlMs;
    if (options.wait !== undefined) args['wait'] = options.wait;
    if (options.timeoutMs !== undefined) args['timeoutMs'] = options.timeoutMs;
    const wait = options.wait ? (options.timeoutMs ?? 30_000) + this.requestTimeoutMs : undefined;
    const reply = await this.request('SEND_MULTICAST', args, toFrames(body), wait);
    return reply.args as unknown as QueueMulticastOutcome;
  }

  // -------------------------------------------------------------- topics

  private get topicWire(): TopicWire {
    return {
      request: (command, args) => this.request(command, args),
      ack: (id) => this.queueAck(id),
      isClosed: () => this.closed,
    };
  }

  /** Publishes to a topic; resolves with its sequence number once the broker has stored it. */
  async publish(topic: string, body: Body | Body[], options: PublishOptions = {}): Promise<number> {
    const args: Json = { topic };
    if (options.retain !== undefined) args['retain'] = options.retain;
    if (options.ttlMs !== undefined) args['ttlMs'] = options.ttlMs;
    if (options.headers !== undefined) args['headers'] = options.headers;
    const reply = await this.request('PUBLISH', args, toFrames(body));
    return Number(reply.args['seq']);
  }

  /**
   * Subscribes to a pattern (`a/b`, `a/`, `a/* /c` without the space, `a/**`), as an async
   * iterator. Live by default; `durable` (or `group`) for a stored, acked subscription;
   * `snapshot` for the retained state first. `await sub.ready` to know it is in place.
   */
  subscribe(pattern: string, options: SubscribeOptions = {}): TopicSubscription {
    if (this.closed) throw new FerryError('CONNECTION_CLOSED');
    const tag = `${this.clientId.slice(0, 6)}-t${this.nextSubscription++}`;
    const sub = new TopicSubscription(this.topicWire, tag, pattern, options);
    this.topicSubs.set(tag, sub);
    sub.start().catch(() => this.topicSubs.delete(tag));
    return sub;
  }

  /** The retained values matching a pattern, and the sequence number they reflect. */
  async retained(pattern: string): Promise<RetainedState> {
    const reply = await this.request('RETAINED', { pattern });
    return {
      seq: Number(reply.args['seq']),
      messages: topicMessagesOf(reply, true, () => Promise.resolve()),
    };
  }

  /**
   * Publishes a retained value and waits until the nodes (default: every durable subscription
   * whose pattern matches) have confirmed it, or the timeout. Never rejects for a timeout:
   * look at `complete` and `pending`.
   */
  async rollout(
    topic: string,
    body: Body | Body[],
    options: RolloutOptions = {},
  ): Promise<RolloutOutcome> {
    const args: Json = { topic };
    if (options.nodes !== undefined) args['nodes'] = options.nodes;
    if (options.timeoutMs !== undefined) args['timeoutMs'] = options.timeoutMs;
    if (options.ttlMs !== undefined) args['ttlMs'] = options.ttlMs;
    if (options.headers !== undefined) args['headers'] = options.headers;
    const wait = (options.timeoutMs ?? 30_000) + this.requestTimeoutMs;
    const reply = await this.request('ROLLOUT', args, toFrames(body), wait);
    return reply.args as unknown as RolloutOutcome;
  }

  /** Confirms that `node` holds these versions (subscriptions with a node do it on ack). */
  async confirm(node: string, items: { topic: string; seq: number }[]): Promise<void> {
    await this.request('CONFIRM', { node, items });
  }

  /** Per retained topic matching a pattern: its version and the version each node holds. */
  async topicStatus(pattern: string): Promise<TopicStatus[]> {
    const reply = await this.request('TOPIC_STATUS', { pattern });
    return reply.args['topics'] as TopicStatus[];
  }

  /** Deletes a durable subscription and what it holds. */
  async deleteSubscription(name: string): Promise<void> {
    await this.request('UNSUBSCRIBE', { durable: name, delete: true });
  }

  // -------------------------------------------------------------- admin

  async stats(queue?: string): Promise<FerryStats> {
    const reply = await this.request('STATS', queue === undefined ? {} : { queue });
    return reply.args as unknown as FerryStats;
  }

  async queues(): Promise<string[]> {
    const reply = await this.request('QUEUES', {});
    return reply.args['queues'] as string[];
  }

  async peek(
    queue: string,
    options: {
      limit?: number;
      state?: 'ready' | 'leased' | 'scheduled' | 'dead';
      afterId?: string;
    } = {},
  ): Promise<PeekedMessage[]> {
    return this.browse('PEEK', { queue, ...options });
  }

  async deadLetters(
    queue: string,
    options: { limit?: number; afterId?: string } = {},
  ): Promise<PeekedMessage[]> {
    return this.browse('DLQ_LIST', { queue, ...options });
  }

  private async browse(command: 'PEEK' | 'DLQ_LIST', args: Json): Promise<PeekedMessage[]> {
    const reply = await this.request(command, args);
    const specs = reply.args['messages'] as Json[];
    const decoded = splitMessages(specs, reply.payload);
    return decoded.map((d, i) => {
      const { frames: _n, ...meta } = specs[i]! as Json & { frames: number };
      return { ...(meta as unknown as PeekedMessage), body: d.frames[0]!, frames: d.frames };
    });
  }

  async purge(queue: string, options: { dead?: boolean } = {}): Promise<number> {
    const reply = await this.request('PURGE', { queue, ...options });
    return Number(reply.args['purged']);
  }

  async redrive(queue: string, options: { ids?: string[]; limit?: number } = {}): Promise<number> {
    const reply = await this.request('DLQ_REDRIVE', { queue, ...options });
    return Number(reply.args['redriven']);
  }

  // -------------------------------------------------------------- closing

  /** Drains: waits for unconfirmed sends and acks (up to timeoutMs), cancels consumers, says BYE. */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    const timeoutMs = options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if (this.flushScheduled) this.flush();
    for (const ts of this.topicSubs.values()) ts.flush();
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0 && Date.now() < deadline && this.session !== undefined) {
      const inflight = [...this.pending.values()].filter((p) => p.command !== 'PING');
      if (inflight.length === 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const w of [...this.jobWorkers.values()]) {
      if (timeoutMs > 0 && this.session !== undefined) {
        await w.close({ timeoutMs: Math.max(0, deadline - Date.now()) }).catch(() => {});
      }
    }
    this.jobWorkers.clear();
    this.streams.clear();
    for (const ts of [...this.topicSubs.values()]) {
      if (timeoutMs > 0 && this.session !== undefined) await ts.close().catch(() => {});
      else ts.endLocally();
    }
    this.topicSubs.clear();
    for (const c of [...this.consumers.values()]) {
      if (timeoutMs > 0 && this.session !== undefined) await c.cancel().catch(() => {});
      else c.channel.end();
    }
    if (this.session !== undefined && timeoutMs > 0) {
      // BYE has its own 1 s timeout; the broker releases our leases either way.
      await this.rawRequest('BYE', {}, [], BYE_TIMEOUT_MS).catch(() => {});
    }
    this.closed = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new FerryError('CONNECTION_CLOSED'));
    }
    this.pending.clear();
    for (const list of this.sendQueues.values()) {
      for (const s of list) s.reject(new FerryError('CONNECTION_CLOSED'));
    }
    this.sendQueues.clear();
    for (const a of this.acks) a.reject(new FerryError('CONNECTION_CLOSED'));
    this.acks = [];
    this.emit({ type: 'closed' });
    for (const ch of this.statusChannels) ch.end();
    await this.conn.close();
  }
}

/** Connects to a broker (or the first reachable of several) and completes the handshake. */
export async function connect(
  endpoints: string | string[] = DEFAULT_ENDPOINT,
  options: ConnectOptions = {},
): Promise<FerryClient> {
  const client = new FerryClient(Array.isArray(endpoints) ? endpoints : [endpoints], options);
  await client.start();
  return client;
}
