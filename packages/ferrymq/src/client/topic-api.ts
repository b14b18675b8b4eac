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

/** Topics and subscriptions over a {@link Connection}. @internal */
export class TopicApi {
  private readonly subs = new Map<string, TopicSubscription>();
  private nextSubscription = 1;
  private readonly wire: TopicWire;

  constructor(
    private readonly conn: Connection,
    private readonly clientId: string,
    /** Acks a durable delivery, batched with the client's other acks. */
    ack: (id: string) => Promise<unknown>,
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

  async publish(topic: string, body: Body | Body[], options: PublishOptions): Promise<number> {
    const args: Json = { topic };
    if (options.retain !== undefined) args['retain'] = options.retain;
    if (options.ttlMs !== undefined) args['ttlMs'] = options.ttlMs;
    if (options.headers !== undefined) args['headers'] = options.headers;
    const reply = await this.conn.request('PUBLISH', args, toFrames(body));
    return Number(reply.args['seq']);
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
