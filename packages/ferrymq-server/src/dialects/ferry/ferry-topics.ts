/**
 * The pub/sub commands of FERRY01 (docs/protocol.md §9) mapped onto the pub/sub core:
 * PUBLISH, SUBSCRIBE (live, with snapshot, durable, queue group), UNSUBSCRIBE, TOPIC_ACK,
 * RETAINED, CONFIRM, ROLLOUT and TOPIC_STATUS. Live subscribers get TOPIC messages and, when
 * dropped, one DROPPED; durable subscribers get DELIVER from their subscription's queue and ack
 * with ACK like any consumer. A peer's live subscriptions end with its session.
 */
import type { Session } from '../../core/broker.js';
import {
  type LiveSubscription,
  type PublishOptions,
  type PubSub,
  SNAPSHOT_BATCH_MAX,
  type TopicMessage,
} from '../../core/pubsub.js';
import { FerryError, type Headers, toFerryError } from 'ferrymq/model';
import {
  encodeReply,
  joinMessages,
  splitMessages,
  type Json,
  type Request,
} from 'ferrymq/protocol';
import { checkKey, copyKeyOf } from '../../core/checks.js';
import { CommandGroup, type PeerSend } from './command-group.js';
import { optBool, optInt, optNumber, optString, reqString } from './args.js';

const EMPTY = Buffer.alloc(0);
const MAX_SUBSCRIPTIONS_PER_SESSION = 1_000;
const MAX_CONFIRM_ITEMS = 10_000;
const SUBSCRIPTION_TAG_MAX_LENGTH = 100;
/** Most publishes in one batched PUBLISH (the SDK's default batch is smaller). */
const PUBLISH_BATCH_MAX = 10_000;
/** The keys of a batched PUBLISH's descriptor. */
const PUBLISH_SPEC_KEYS: ReadonlySet<string> = new Set([
  'topic',
  'retain',
  'ttlMs',
  'headers',
  'frames',
]);

type PeerSubscription =
  { kind: 'live'; live: LiveSubscription } | { kind: 'durable'; name: string; session: Session };

interface PeerTopics {
  id: Buffer;
  subscriptions: Map<string, PeerSubscription>;
}

/** The wire descriptor of one topic message; its frames follow in the payload. */
function topicSpec(m: TopicMessage): Json {
  const d: Json = { topic: m.topic, seq: m.seq, publishedAt: m.publishedAt };
  if (m.retained) d['retained'] = true;
  if (m.deleted) d['deleted'] = true;
  if (m.headers) d['headers'] = m.headers;
  return d;
}

function publishOptions(args: Json, requestKey: string | undefined): PublishOptions {
  return {
    retain: optBool(args, 'retain'),
    ttlMs: optNumber(args, 'ttlMs'),
    headers: optHeaders(args),
    requestKey,
  };
}

function optHeaders(args: Json): Headers | undefined {
  const v = args['headers'];
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new FerryError('BAD_ARGUMENTS', 'headers must be an object of strings');
  }
  return v as Headers;
}

export class FerryTopicCommands extends CommandGroup {
  private readonly peers = new Map<string, PeerTopics>();

  constructor(
    private readonly pubsub: PubSub,
    sendTo: PeerSend,
  ) {
    super(sendTo);
  }

  private peer(peerId: Buffer, key: string): PeerTopics {
    let p = this.peers.get(key);
    if (!p) {
      p = { id: peerId, subscriptions: new Map() };
      this.peers.set(key, p);
    }
    return p;
  }

  private sendTopic(peer: Buffer, args: Json, messages: TopicMessage[]): void {
    const { specs, payload } = joinMessages(messages, topicSpec);
    this.sendTo(peer, encodeReply('TOPIC', EMPTY, { ...args, messages: specs }, payload));
  }

  /** Handles one pub/sub command; throws FerryError for bad arguments (answered by the caller). */
  handle(peerId: Buffer, key: string, session: Session, req: Request): void {
    const { args, requestId, payload } = req;
    switch (req.command) {
      case 'PUBLISH':
        if (args['messages'] !== undefined) this.publishMany(peerId, req);
        else this.publishOne(peerId, req);
        return;
      case 'SUBSCRIBE':
        this.subscribe(peerId, key, session, req);
        return;
      case 'UNSUBSCRIBE': {
        const tag = optString(args, 'subscription');
        const durable = optString(args, 'durable');
        const del = optBool(args, 'delete') ?? false;
        const p = this.peer(peerId, key);
        let name = durable;
        if (tag !== undefined) {
          const sub = p.subscriptions.get(tag);
          if (!sub) throw new FerryError('SUBSCRIPTION_NOT_FOUND', `no subscription ${tag}`);
          p.subscriptions.delete(tag);
          if (sub.kind === 'live') sub.live.close();
          else {
            name ??= sub.name;
            try {
              sub.session.cancel(tag);
            } catch {
              /* the consumer is already gone */
            }
          }
        } else if (durable === undefined) {
          throw new FerryError('BAD_ARGUMENTS', 'UNSUBSCRIBE needs subscription or durable');
        }
        if (del && name !== undefined) {
          this.answer(
            peerId,
            requestId,
            this.pubsub.removeDurable(name).then(() => ({ deleted: name })),
          );
          return;
        }
        this.ok(peerId, requestId);
        return;
      }
      case 'TOPIC_ACK': {
        const tag = reqString(args, 'subscription');
        const count = optInt(args, 'count') ?? 0;
        if (count < 0) throw new FerryError('BAD_ARGUMENTS', 'count must be ≥ 0');
        const sub = this.peer(peerId, key).subscriptions.get(tag);
        if (sub?.kind === 'live') sub.live.consumed(count);
        this.ok(peerId, requestId);
        return;
      }
      case 'RETAINED': {
        const pattern = reqString(args, 'pattern');
        this.pubsub.retained(pattern).then(
          (r) => {
            const { specs, payload: frames } = joinMessages(r.items, topicSpec);
            this.ok(peerId, requestId, { seq: r.seq, messages: specs }, frames);
          },
          (err: unknown) => this.fail(peerId, requestId, err),
        );
        return;
      }
      case 'CONFIRM': {
        const node = reqString(args, 'node');
        const items = args['items'];
        if (
          !Array.isArray(items) ||
          items.length > MAX_CONFIRM_ITEMS ||
          !items.every(
            (it: unknown) =>
              typeof it === 'object' &&
              it !== null &&
              typeof (it as Json)['topic'] === 'string' &&
              typeof (it as Json)['seq'] === 'number',
          )
        ) {
          throw new FerryError(
            'BAD_ARGUMENTS',
            `items must be an array of ≤ ${MAX_CONFIRM_ITEMS} {topic, seq} objects`,
          );
        }
        this.answer(
          peerId,
          requestId,
          this.pubsub
            .confirm(node, items as { topic: string; seq: number }[])
            .then(() => ({ confirmed: items.length })),
        );
        return;
      }
      case 'ROLLOUT': {
        const topic = reqString(args, 'topic');
        const nodes = args['nodes'];
        if (
          nodes !== undefined &&
          (!Array.isArray(nodes) || !nodes.every((n) => typeof n === 'string'))
        ) {
          throw new FerryError('BAD_ARGUMENTS', 'nodes must be an array of node names');
        }
        if (payload.length === 0) {
          throw new FerryError('BAD_FRAME', 'ROLLOUT carries the value as payload frames');
        }
        this.answer(
          peerId,
          requestId,
          this.pubsub
            .rollout(topic, payload, {
              nodes: nodes,
              timeoutMs: optNumber(args, 'timeoutMs'),
              ttlMs: optNumber(args, 'ttlMs'),
              headers: optHeaders(args),
            })
            .then((out) => ({ ...out })),
        );
        return;
      }
      case 'TOPIC_STATUS': {
        const pattern = reqString(args, 'pattern');
        this.answer(
          peerId,
          requestId,
          this.pubsub.status(pattern).then((topics) => ({
            topics,
            subscriptions: this.pubsub.durableSubscriptions(),
            lastSeq: this.pubsub.lastSeq,
          })),
        );
        return;
      }
      default:
        throw new FerryError('UNKNOWN_COMMAND', `${req.command} is not a pub/sub command`);
    }
  }

  private publishOne(peerId: Buffer, req: Request): void {
    const { args, requestId, payload } = req;
    const topic = reqString(args, 'topic');
    if (payload.length === 0) {
      throw new FerryError('BAD_FRAME', 'PUBLISH carries its message as payload frames');
    }
    this.answer(
      peerId,
      requestId,
      this.pubsub
        .publish(topic, payload, publishOptions(args, optString(args, 'requestKey')))
        .then((out) => ({ seq: out.seq, durable: out.durable })),
    );
  }

  /**
   * PUBLISH with `messages` (the SDK's publishes of one tick): one descriptor per publish, its
   * frames in the payload; answered once all are settled, with one result per publish.
   */
  private publishMany(peerId: Buffer, req: Request): void {
    const { args, requestId, payload } = req;
    if (args['topic'] !== undefined) {
      throw new FerryError('BAD_ARGUMENTS', 'PUBLISH takes topic or messages, not both');
    }
    const messages = args['messages'];
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new FerryError('BAD_ARGUMENTS', 'messages must be a non-empty array of descriptors');
    }
    if (messages.length > PUBLISH_BATCH_MAX) {
      throw new FerryError(
        'BATCH_TOO_LARGE',
        `${messages.length} publishes in one request; the limit is ${PUBLISH_BATCH_MAX}`,
      );
    }
    messages.forEach((m: unknown, i) => {
      if (typeof m !== 'object' || m === null || Array.isArray(m)) return; // splitMessages says
      for (const k of Object.keys(m)) {
        if (!PUBLISH_SPEC_KEYS.has(k)) {
          throw new FerryError('BAD_ARGUMENTS', `messages[${i}] has unknown key ${k}`);
        }
      }
    });
    // One key for the request; each publish's own is derived from it and its position (a
    // re-send of the request carries the same publishes in the same order).
    const requestKey = optString(args, 'requestKey');
    if (requestKey !== undefined) checkKey(requestKey, 'requestKey');
    const base = requestKey === undefined ? undefined : copyKeyOf(requestKey);
    const items = splitMessages(messages, payload, requestId).map((d, i) => {
      const spec = d.spec as Json;
      const topic = spec['topic'];
      if (typeof topic !== 'string') {
        throw new FerryError('BAD_ARGUMENTS', `messages[${i}].topic must be a string`);
      }
      const key = base === undefined ? undefined : `${base}#${i}`;
      return { topic, frames: d.frames, options: publishOptions(spec, key) };
    });
    const settled = this.pubsub.publishMany(items).map((p) =>
      p.then(
        (out): Json => ({ seq: out.seq, durable: out.durable }),
        (err: unknown): Json => {
          const e = toFerryError(err);
          return { code: e.code, message: e.message };
        },
      ),
    );
    this.answer(
      peerId,
      requestId,
      Promise.all(settled).then((results) => ({ results })),
    );
  }

  private subscribe(peerId: Buffer, key: string, session: Session, req: Request): void {
    const { args, requestId } = req;
    const pattern = reqString(args, 'pattern');
    const tag = reqString(args, 'subscription');
    if (tag.length === 0 || tag.length > SUBSCRIPTION_TAG_MAX_LENGTH) {
      throw new FerryError(
        'BAD_ARGUMENTS',
        `subscription must be 1–${SUBSCRIPTION_TAG_MAX_LENGTH} characters`,
      );
    }
    const durable = optString(args, 'durable');
    const group = optString(args, 'group');
    if (durable !== undefined && group !== undefined && durable !== group) {
      throw new FerryError(
        'BAD_ARGUMENTS',
        'durable and group name the same shared subscription: give one, or the same name',
      );
    }
    const snapshot = optBool(args, 'snapshot') ?? false;
    const window = optInt(args, 'window');
    const prefetch = optInt(args, 'prefetch');
    const ackTimeoutMs = optInt(args, 'ackTimeoutMs');
    const p = this.peer(peerId, key);
    if (p.subscriptions.has(tag)) {
      // A client re-subscribing after a reconnect reuses its tag: replace the old one.
      const old = p.subscriptions.get(tag)!;
      p.subscriptions.delete(tag);
      if (old.kind === 'live') old.live.close();
    }
    if (p.subscriptions.size >= MAX_SUBSCRIPTIONS_PER_SESSION) {
      throw new FerryError('TOO_MANY_SUBSCRIPTIONS', 'the session is at its subscription limit');
    }
    const name = durable ?? group;
    if (name === undefined) {
      if (prefetch !== undefined || ackTimeoutMs !== undefined) {
        throw new FerryError('BAD_ARGUMENTS', 'prefetch and ackTimeoutMs are for durable ones');
      }
      const live = this.pubsub.subscribeLive(
        pattern,
        {
          messages: (batch) => this.sendTopic(peerId, { subscription: tag }, batch),
          // The snapshot comes from the store on a later turn, after the OK below.
          snapshot: (batch, seq, last) =>
            this.sendTopic(peerId, { subscription: tag, snapshot: { seq, last } }, batch),
          dropped: (err) => {
            p.subscriptions.delete(tag);
            this.sendTo(
              peerId,
              encodeReply('DROPPED', EMPTY, {
                subscription: tag,
                code: err.code,
                message: err.message,
              }),
            );
          },
        },
        { snapshot, window },
      );
      p.subscriptions.set(tag, { kind: 'live', live });
      this.ok(peerId, requestId, { subscription: tag, seq: this.pubsub.lastSeq });
      return;
    }
    // Durable (or queue group): the subscription's queue, consumed like any queue.
    const ensured = this.pubsub.ensureDurable(name, pattern);
    const snap = snapshot ? this.pubsub.retained(pattern) : undefined;
    snap?.catch(() => {});
    ensured
      .then(async (info) => {
        const s = snap ? await snap : undefined;
        if (session.closed) return;
        session.consume(info.queue, { tag, prefetch, ackTimeoutMs });
        p.subscriptions.set(tag, { kind: 'durable', name, session });
        const reply: Json = { subscription: tag, durable: name, queue: info.queue };
        if (s) reply['snapshotSeq'] = s.seq;
        this.ok(peerId, requestId, reply);
        if (s) {
          // Sent before any delivery of the queue can be, since the consumer starts leasing
          // only on a later turn.
          const chunks = Math.max(1, Math.ceil(s.items.length / SNAPSHOT_BATCH_MAX));
          for (let i = 0; i < chunks; i++) {
            const batch = s.items.slice(i * SNAPSHOT_BATCH_MAX, (i + 1) * SNAPSHOT_BATCH_MAX);
            this.sendTopic(
              peerId,
              { subscription: tag, snapshot: { seq: s.seq, last: i === chunks - 1 } },
              batch,
            );
          }
        }
      })
      .catch((err: unknown) => this.fail(peerId, requestId, err));
  }

  /** Ends a peer's live subscriptions (its durable consumers end with its session). */
  closePeer(key: string): void {
    const p = this.peers.get(key);
    if (!p) return;
    for (const sub of p.subscriptions.values()) if (sub.kind === 'live') sub.live.close();
    this.peers.delete(key);
  }

  close(): void {
    for (const key of [...this.peers.keys()]) this.closePeer(key);
  }
}
