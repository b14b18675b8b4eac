/**
 * The pub/sub side of FerryClient: publish, subscriptions and the TOPIC/DROPPED messages routed
 * to them, retained state, rollouts and confirmations. Subscriptions themselves are in
 * topic-client.ts; this file glues them to the {@link Connection}.
 */
import { toFrames, type Body } from '../model/body.js';
import { FerryError } from '../model/errors.js';
import type { RolloutOutcome, TopicStatus } from '../model/topics.js';
import { errorFromReply, type Json, type Reply } from '../protocol/codec.js';
import type { Connection } from './connection.js';
import {
  TopicSubscription,
  topicMessagesOf,
  type PublishOptions,
  type RetainedState,
  type RolloutOptions,
  type SubscribeOptions,
  type TopicWire,
} from './topic-client.js';

interface QueuedPublish {
  topic: string;
  frames: Buffer[];
  options: PublishOptions;
  resolve: (seq: number) => void;
  reject: (err: unknown) => void;
}

/** The arguments of one publish (PUBLISH's, or a descriptor of a batched PUBLISH). */
function publishArgs(options: PublishOptions): Json {
  const args: Json = {};
  if (options.retain !== undefined) args['retain'] = options.retain;
  if (options.ttlMs !== undefined) args['ttlMs'] = options.ttlMs;
  if (options.headers !== undefined) args['headers'] = options.headers;
  return args;
}

/** Topics and subscriptions over a {@link Connection}. @internal */
export class TopicApi {
  private readonly subs = new Map<string, TopicSubscription>();
  private nextSubscription = 1;
  private readonly wire: TopicWire;
  /** Publishes of this tick, not yet sent. */
  private publishes: QueuedPublish[] = [];
  private publishFlushScheduled = false;
  private nextPublishSeq = 1;

  constructor(
    private readonly conn: Connection,
    private readonly clientId: string,
    /** Acks a durable delivery, batched with the client's other acks. */
    ack: (id: string) => Promise<unknown>,
    /** Most publishes in one PUBLISH (the client's maxBatchMessages). */
    private readonly maxBatch: number,
  ) {
    this.wire = {
      request: (command, args) => conn.request(command, args),
      ack,
      isClosed: () => conn.closed,
    };
  }

  /** The subscriptions by tag (durable ones get their messages as DELIVERs). */
  get subscriptions(): ReadonlyMap<string, TopicSubscription> {
    return this.subs;
  }

  /**
   * Queues a publish: those of one tick go to the broker together, as one PUBLISH (a lone one
   * in the single-message form), each answered with its own sequence number or error.
   */
  publish(topic: string, body: Body | Body[], options: PublishOptions): Promise<number> {
    if (this.conn.closed) return Promise.reject(new FerryError('CONNECTION_CLOSED'));
    return new Promise<number>((resolve, reject) => {
      this.publishes.push({ topic, frames: toFrames(body), options, resolve, reject });
      if (this.publishes.length >= this.maxBatch) this.flushPublishes();
      else if (!this.publishFlushScheduled) {
        this.publishFlushScheduled = true;
        setImmediate(() => this.flushPublishes());
      }
    });
  }

  private nextRequestKey(): string {
    return `${this.clientId}:p${this.nextPublishSeq++}`;
  }

  /** Sends the publishes queued so far. */
  flushPublishes(): void {
    this.publishFlushScheduled = false;
    const list = this.publishes;
    if (list.length === 0) return;
    this.publishes = [];
    // A key per request, so a re-send after a reconnect stores no second durable copy.
    const keyed = this.conn.supports('request-keys');
    // One at a time when alone, or when the broker does not take batches (feature absent).
    if (list.length === 1 || !this.conn.supports('publish-batch')) {
      for (const p of list) {
        const args: Json = { topic: p.topic, ...publishArgs(p.options) };
        if (keyed) args['requestKey'] = this.nextRequestKey();
        this.conn
          .request('PUBLISH', args, p.frames)
          .then((reply) => p.resolve(Number(reply.args['seq'])), p.reject);
      }
      return;
    }
    const specs: Json[] = [];
    const payload: Buffer[] = [];
    for (const p of list) {
      const spec: Json = { topic: p.topic, ...publishArgs(p.options) };
      if (p.frames.length !== 1) spec['frames'] = p.frames.length;
      specs.push(spec);
      payload.push(...p.frames);
    }
    const args: Json = { messages: specs };
    if (keyed) args['requestKey'] = this.nextRequestKey();
    this.conn.request('PUBLISH', args, payload).then(
      (reply) => {
        const results = reply.args['results'];
        list.forEach((p, i) => {
          const r = Array.isArray(results) ? (results[i] as Json | undefined) : undefined;
          if (r === undefined || typeof r !== 'object' || r === null) {
            p.reject(new FerryError('INTERNAL', 'the broker answered PUBLISH without a result'));
          } else if (typeof r['seq'] === 'number') p.resolve(r['seq']);
          else p.reject(errorFromReply({ ...reply, args: r }));
        });
      },
      (err: unknown) => list.forEach((p) => p.reject(err)),
    );
  }

  subscribe(pattern: string, options: SubscribeOptions): TopicSubscription {
    if (this.conn.closed) throw new FerryError('CONNECTION_CLOSED');
    const tag = `${this.clientId.slice(0, 6)}-t${this.nextSubscription++}`;
    const sub = new TopicSubscription(this.wire, tag, pattern, options);
    this.subs.set(tag, sub);
    sub.start().catch(() => this.subs.delete(tag));
    return sub;
  }

  /** A TOPIC or DROPPED message for one of our subscriptions. */
  onTopicMessage(reply: Reply): void {
    const tag = reply.args['subscription'];
    const sub = typeof tag === 'string' ? this.subs.get(tag) : undefined;
    if (!sub) return;
    if (reply.kind === 'TOPIC') sub.onTopic(reply);
    else {
      this.subs.delete(sub.tag);
      sub.onDropped(reply);
    }
  }

  /** CANCELLED for a durable subscription's consumer: its queue was deleted. */
  onCancelled(reply: Reply): void {
    const tag = reply.args['consumer'];
    const sub = typeof tag === 'string' ? this.subs.get(tag) : undefined;
    // A subscription the application closed (or deleted) itself ends quietly.
    if (!sub || sub.cancelled) return;
    this.subs.delete(sub.tag);
    sub.cancelled = true;
    sub.fail(errorFromReply(reply));
  }

  /** A new session: subscriptions subscribe again. */
  resume(): void {
    for (const ts of this.subs.values()) {
      if (!ts.established || ts.cancelled) continue;
      ts.resetAfterReconnect();
      ts.start().catch(() => {});
    }
  }

  async retained(pattern: string): Promise<RetainedState> {
    const reply = await this.conn.request('RETAINED', { pattern });
    return {
      seq: Number(reply.args['seq']),
      messages: topicMessagesOf(reply, true, () => Promise.resolve()),
    };
  }

  async rollout(
    topic: string,
    body: Body | Body[],
    options: RolloutOptions,
  ): Promise<RolloutOutcome> {
    const args: Json = { topic };
    if (options.nodes !== undefined) args['nodes'] = options.nodes;
    if (options.timeoutMs !== undefined) args['timeoutMs'] = options.timeoutMs;
    if (options.ttlMs !== undefined) args['ttlMs'] = options.ttlMs;
    if (options.headers !== undefined) args['headers'] = options.headers;
    const wait = (options.timeoutMs ?? 30_000) + this.conn.requestTimeoutMs;
    const reply = await this.conn.request('ROLLOUT', args, toFrames(body), wait);
    return reply.args as unknown as RolloutOutcome;
  }

  async confirm(node: string, items: { topic: string; seq: number }[]): Promise<void> {
    await this.conn.request('CONFIRM', { node, items });
  }

  async topicStatus(pattern: string): Promise<TopicStatus[]> {
    const reply = await this.conn.request('TOPIC_STATUS', { pattern });
    return reply.args['topics'] as TopicStatus[];
  }

  async deleteSubscription(name: string): Promise<void> {
    await this.conn.request('UNSUBSCRIBE', { durable: name, delete: true });
  }

  /** Sends every subscription's pending window acks and confirmations now. */
  flushAll(): void {
    this.flushPublishes();
    for (const ts of this.subs.values()) ts.flush();
  }

  /** Closes every subscription: with the broker if there is time and a session, else locally. */
  async closeAll(timeoutMs: number): Promise<void> {
    for (const ts of [...this.subs.values()]) {
      if (timeoutMs > 0 && this.conn.session !== undefined) await ts.close().catch(() => {});
      else ts.endLocally();
    }
    this.subs.clear();
  }
}
