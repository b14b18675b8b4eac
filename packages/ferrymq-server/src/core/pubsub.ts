/**
 * Pub/sub: topics, live and durable subscriptions, retained state and confirmed rollouts.
 *
 * A publish gets the next sequence number (strictly increasing, across restarts), is copied
 * into the queue of every durable subscription whose pattern matches (so leases, acks,
 * redelivery and limits are the queue engine's), and, when retained, becomes the topic's
 * stored value — all in the store's one transaction of the turn. Only after that commit is the
 * publisher answered and are live subscribers given the message, in publish order.
 *
 * Pure logic over the {@link PubSubStorage} contract, the {@link Broker} (for the durable
 * queues) and an injected {@link Clock}: no sockets, no SQL. This file holds the publish path
 * and the public class; the parts it delegates to are live subscribers (pubsub-live.ts),
 * durable subscriptions (pubsub-durable.ts), retained expiry (pubsub-expiry.ts), and
 * confirmations and rollouts (pubsub-rollouts.ts).
 */
import {
  FerryError,
  type Headers,
  messageSize,
  PUBLISHED_AT_HEADER,
  type PubSubStats,
  RESERVED_HEADER_PREFIX,
  RETAIN_HEADER,
  type RolloutOutcome,
  SEQ_HEADER,
  toFerryError,
  TOPIC_HEADER,
  type TopicStatus,
} from 'ferrymq/model';
import type { PubSubStorage, RemoteChanges, RetainedChange } from '../storage/types.js';
import { checkHeaders, type Broker, type Session } from './broker.js';
import { checkKey, copyKeyOf } from './checks.js';
import type { QueueCopies } from './broker-types.js';
import { systemClock, type Clock } from './clock.js';
import { silentLogger, type Logger } from './logger.js';
import {
  DEFAULT_MAX_SUBSCRIPTIONS,
  DurableSubscriptions,
  type DurableSubscriptionInfo,
} from './pubsub-durable.js';
import { RetainedExpiry } from './pubsub-expiry.js';
import {
  DEFAULT_LIVE_WINDOW,
  DEFAULT_LIVE_WINDOW_BYTES,
  LiveSubscribers,
  type LiveOptions,
  type LiveSink,
  type LiveSubscription,
} from './pubsub-live.js';
import { Rollouts, type RolloutOptions } from './pubsub-rollouts.js';
import { SharedPublishing } from './pubsub-shared.js';
import {
  positiveMs,
  toTopicMessage,
  type CheckedPublish,
  type PendingPublish,
  type PublishOutcome,
  type TopicMessage,
} from './pubsub-types.js';
import { checkTopic, matches, parsePattern, scanPrefix, type TopicPattern } from './topics.js';

export {
  DEFAULT_LIVE_WINDOW,
  DEFAULT_LIVE_WINDOW_BYTES,
  MAX_LIVE_WINDOW,
  SNAPSHOT_BATCH_MAX,
  type LiveOptions,
  type LiveSink,
  type LiveSubscription,
} from './pubsub-live.js';
export { type DurableSubscriptionInfo } from './pubsub-durable.js';
export { type RolloutOptions } from './pubsub-rollouts.js';
export { type PublishOutcome, type TopicMessage } from './pubsub-types.js';

export interface PublishOptions {
  /** Keep as the topic's last value; an empty body deletes it. */
  retain?: boolean | undefined;
  /** Retained value (and durable copies) expire after this many ms. */
  ttlMs?: number | undefined;
  headers?: Headers | undefined;
  /**
   * Idempotency key of this publish: a re-send with the same key within a durable
   * subscription's dedup window stores no second copy in it (live subscribers see it again).
   */
  requestKey?: string | undefined;
}

/** One publish of a batch (publishMany). */
export interface PublishItem {
  topic: string;
  frames: Buffer[];
  options?: PublishOptions | undefined;
}

export interface PubSubOptions {
  storage: PubSubStorage;
  broker: Broker;
  clock?: Clock;
  logger?: Logger;
  /** Default window of live subscribers (DEFAULT_LIVE_WINDOW). */
  liveWindow?: number;
  /** Bytes a live subscriber may be behind before it is dropped (DEFAULT_LIVE_WINDOW_BYTES; 0 = unbounded). */
  liveWindowBytes?: number;
  maxSubscriptions?: number;
}

export class PubSub {
  private readonly storage: PubSubStorage;
  private readonly broker: Broker;
  private readonly clock: Clock;
  private session!: Session;
  private seq = 0;
  private published = 0;
  private readonly live: LiveSubscribers;
  private readonly durable: DurableSubscriptions;
  private readonly expiry: RetainedExpiry;
  private readonly rollouts: Rollouts;
  /** A shared store (it numbers publishes): the publish path and order across brokers. */
  private shared: SharedPublishing | undefined;
  private readonly logger: Logger;
  private closed = false;

  private constructor(options: PubSubOptions) {
    this.storage = options.storage;
    this.broker = options.broker;
    this.clock = options.clock ?? systemClock;
    const logger = options.logger ?? silentLogger;
    this.logger = logger;
    const maxSubscriptions = options.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS;
    const storage = this.storage;
    const clock = this.clock;
    this.live = new LiveSubscribers({
      storage,
      clock,
      window: options.liveWindow ?? DEFAULT_LIVE_WINDOW,
      windowBytes: options.liveWindowBytes ?? DEFAULT_LIVE_WINDOW_BYTES,
      maxSubscriptions,
    });
    this.durable = new DurableSubscriptions({
      storage,
      broker: this.broker,
      clock,
      logger,
      maxSubscriptions,
    });
    this.expiry = new RetainedExpiry({
      storage,
      clock,
      logger,
      deleteRetained: (topic) =>
        this.commitPublish(topic, [Buffer.alloc(0)], {
          retain: true,
          deleted: true,
          ttlMs: undefined,
          headers: undefined,
          copyKey: undefined,
        }),
    });
    this.rollouts = new Rollouts({
      storage,
      clock,
      publishRetained: (topic, frames, o) =>
        this.publish(topic, frames, { retain: true, ttlMs: o.ttlMs, headers: o.headers }),
      defaultNodes: (topic) => this.durable.namesFor(topic),
    });
  }

  static async open(options: PubSubOptions): Promise<PubSub> {
    const ps = new PubSub(options);
    ps.session = ps.broker.openSession({ deliver: () => {} });
    const state = await ps.storage.load();
    ps.seq = state.lastSeq;
    ps.durable.load(state.subscriptions);
    if (ps.storage.publish) {
      ps.shared = new SharedPublishing({
        storage: ps.storage,
        session: ps.session,
        live: ps.live,
        durable: ps.durable,
        expiry: ps.expiry,
        clock: ps.clock,
        logger: ps.logger,
        lastSeq: state.lastSeq,
        onPublished: () => ps.published++,
      });
      ps.shared.start();
    }
    await ps.expiry.start();
    return ps;
  }

  /** The last sequence number given (with a shared store: handed to live subscribers here). */
  get lastSeq(): number {
    return this.shared ? this.shared.lastSeq : this.seq;
  }

  /** What other brokers sharing the store changed (their publishes, durable subscriptions). */
  onRemote(changes: RemoteChanges): void {
    this.shared?.onRemote(changes);
  }

  // ---------------------------------------------------------------- publishing

  publish(topic: string, frames: Buffer[], options: PublishOptions = {}): Promise<PublishOutcome> {
    try {
      const p = this.check({ topic, frames, options });
      // Refused by a durable subscription's limit: refuse the whole publish before writing.
      const queues = this.durable.queuesFor(topic);
      if (queues.length > 0) {
        this.broker.checkSendToQueues(queues, { frames, ttlMs: p.ttlMs });
      }
      return this.commitPublish(topic, frames, p);
    } catch (err) {
      return Promise.reject(toFerryError(err));
    }
  }

  /**
   * Several publishes (the SDK sends those of one tick together), each answered on its own, in
   * order. When every durable copy fits its subscription's limits they are stored with one
   * storage call, so a durable subscriber gets them in one delivery; otherwise they are
   * published one by one (each refused or stored on its own, as with publish).
   */
  publishMany(items: PublishItem[]): Promise<PublishOutcome>[] {
    const checked = items.map((it) => {
      try {
        return { it, p: this.check(it) };
      } catch (err) {
        return { it, err: toFerryError(err) };
      }
    });
    const ok = checked.filter((c) => c.p !== undefined);
    try {
      const copies = ok.map((c) => ({
        queues: this.durable.queuesFor(c.it.topic),
        message: { frames: c.it.frames, ttlMs: c.p.ttlMs },
      }));
      if (copies.some((c) => c.queues.length > 0)) this.broker.checkCopies(copies);
    } catch {
      // Some limit refuses the batch: one by one, so only the publishes it refuses fail.
      return checked.map((c) =>
        c.p ? this.publish(c.it.topic, c.it.frames, c.it.options) : Promise.reject(c.err),
      );
    }
    const committed = this.commitMany(
      ok.map((c) => ({ topic: c.it.topic, frames: c.it.frames, o: c.p })),
    );
    let next = 0;
    return checked.map((c) => (c.p ? committed[next++]! : Promise.reject(c.err)));
  }

  /** The checks of a publish (throws FerryError); what it will store. */
  private check(it: PublishItem): CheckedPublish {
    const { topic, frames, options = {} } = it;
    if (this.closed || this.broker.isClosing) throw new FerryError('SHUTTING_DOWN');
    checkTopic(topic);
    if (!Array.isArray(frames) || frames.length === 0) {
      throw new FerryError('BAD_ARGUMENTS', 'a publish has at least one frame');
    }
    const size = messageSize(frames);
    if (size > this.broker.limits.maxMessageBytes) {
      throw new FerryError(
        'MESSAGE_TOO_LARGE',
        `the message is ${size} bytes; the limit is ${this.broker.limits.maxMessageBytes}`,
      );
    }
    const ttlMs = positiveMs(options.ttlMs, 'ttlMs', Number.MAX_SAFE_INTEGER / 2);
    const headers = options.headers;
    if (headers !== undefined) {
      checkHeaders(headers, 'publish');
      for (const k of Object.keys(headers)) {
        if (k.startsWith(RESERVED_HEADER_PREFIX)) {
          throw new FerryError(
            'BAD_ARGUMENTS',
            `header ${k}: the prefix ${RESERVED_HEADER_PREFIX} is reserved`,
          );
        }
      }
    }
    if (options.requestKey !== undefined) checkKey(options.requestKey, 'requestKey');
    const retain = options.retain === true;
    return {
      retain,
      deleted: retain && size === 0,
      ttlMs,
      headers: headers && Object.keys(headers).length > 0 ? headers : undefined,
      copyKey: options.requestKey === undefined ? undefined : copyKeyOf(options.requestKey),
    };
  }

  private commitPublish(
    topic: string,
    frames: Buffer[],
    o: CheckedPublish,
  ): Promise<PublishOutcome> {
    return this.commitMany([{ topic, frames, o }])[0]!;
  }

  /**
   * Numbers the publishes, stores every durable copy with one storage call, records the
   * retained changes and the last sequence number — all in this turn's transaction — and
   * hands them to live subscribers once committed.
   */
  private commitMany(list: PendingPublish[]): Promise<PublishOutcome>[] {
    if (this.shared) return this.shared.commit(list);
    const now = this.clock.now();
    const copies: QueueCopies[] = [];
    const publishes = list.map(({ topic, frames, o }) => {
      const seq = ++this.seq;
      const message: TopicMessage = {
        topic,
        seq,
        frames: o.deleted ? [Buffer.alloc(0)] : frames,
        headers: o.headers,
        retained: o.retain,
        deleted: o.deleted,
        publishedAt: now,
      };
      const queues = this.durable.queuesFor(topic);
      if (queues.length > 0) {
        copies.push({
          queues,
          message: {
            frames: message.frames,
            headers: {
              ...o.headers,
              [TOPIC_HEADER]: topic,
              [SEQ_HEADER]: String(seq),
              [PUBLISHED_AT_HEADER]: String(now),
              ...(o.retain ? { [RETAIN_HEADER]: '1' } : {}),
            },
            ...(o.ttlMs !== undefined ? { ttlMs: o.ttlMs } : {}),
            ...(o.copyKey !== undefined ? { dedupKey: o.copyKey } : {}),
          },
        });
      }
      return { topic, frames, o, seq, message, durable: queues.length };
    });
    const writes: Promise<unknown>[] = [];
    // One storage call for every copy of every publish: all subscriptions' limits are checked first.
    if (copies.length > 0) writes.push(this.session.sendCopies(copies));
    let recorded = false;
    for (const { topic, frames, o, seq } of publishes) {
      if (!o.retain) continue;
      const expiresAt = o.ttlMs === undefined ? null : now + o.ttlMs;
      const change: RetainedChange = o.deleted
        ? { op: 'delete', topic }
        : {
            op: 'set',
            row: { topic, seq, frames, headers: o.headers, publishedAt: now, expiresAt },
          };
      this.expiry.retainedChanged(topic, o.deleted ? null : expiresAt);
      writes.push(this.storage.record(seq, change));
      recorded = seq === this.seq;
    }
    // The sequence number is stored once per batch: the highest one covers the others.
    if (!recorded) writes.push(this.storage.record(this.seq, { op: 'none' }));
    const all = Promise.all(writes);
    return publishes.map(({ seq, message, durable }) => {
      const entry = this.live.track(message);
      return all.then(
        () => {
          this.published++;
          this.live.settled(entry, false);
          return { seq, durable };
        },
        (err: unknown) => {
          this.live.settled(entry, true);
          throw toFerryError(err);
        },
      );
    });
  }

  // ---------------------------------------------------------------- live subscriptions

  subscribeLive(pattern: string, sink: LiveSink, options: LiveOptions = {}): LiveSubscription {
    if (this.closed) throw new FerryError('SHUTTING_DOWN');
    const p = parsePattern(pattern);
    return this.attachLive(p, sink, options);
  }

  /** A live subscription on an already parsed pattern (dialects with their own matching). */
  attachLive(p: TopicPattern, sink: LiveSink, options: LiveOptions = {}): LiveSubscription {
    return this.live.attach(p, sink, options, this.lastSeq);
  }

  // ---------------------------------------------------------------- retained state

  /** The retained values matching a pattern and the sequence number they reflect. */
  async retained(pattern: string | TopicPattern): Promise<{ seq: number; items: TopicMessage[] }> {
    const p = typeof pattern === 'string' ? parsePattern(pattern) : pattern;
    // A shared store reads the values and the number they reflect together.
    const { seq, rows } = this.storage.snapshot
      ? await this.storage.snapshot(scanPrefix(p), this.clock.now())
      : { seq: this.seq, rows: await this.storage.retained(scanPrefix(p), this.clock.now()) };
    return { seq, items: rows.filter((r) => matches(p, r.topic)).map(toTopicMessage) };
  }

  // ---------------------------------------------------------------- durable subscriptions

  /**
   * Creates a durable subscription (or finds it, when its pattern is the same). Its queue
   * receives every matching publish from the moment this resolves.
   */
  async ensureDurable(name: string, pattern: string): Promise<DurableSubscriptionInfo> {
    if (this.closed) throw new FerryError('SHUTTING_DOWN');
    return this.durable.ensure(name, pattern);
  }

  durableQueue(name: string): string {
    return this.durable.queue(name);
  }

  /** Deletes a durable subscription and what its queue holds. */
  removeDurable(name: string): Promise<void> {
    return this.durable.remove(name);
  }

  durableSubscriptions(): DurableSubscriptionInfo[] {
    return this.durable.list();
  }

  // ---------------------------------------------------------------- confirmations, rollout

  /** Records that `node` holds these topics at these versions. */
  confirm(node: string, items: { topic: string; seq: number }[]): Promise<void> {
    return this.rollouts.confirm(node, items);
  }

  /**
   * Publishes a retained update and waits until every node has confirmed it (or the timeout):
   * resolves with who has and who has not.
   */
  rollout(topic: string, frames: Buffer[], options: RolloutOptions = {}): Promise<RolloutOutcome> {
    return this.rollouts.rollout(topic, frames, options);
  }

  /** Per retained topic matching the pattern: its version and the version each node holds. */
  status(pattern: string): Promise<TopicStatus[]> {
    return this.rollouts.status(pattern);
  }

  stats(): PubSubStats {
    return {
      lastSeq: this.lastSeq,
      published: this.published,
      liveSubscriptions: this.live.size,
      durableSubscriptions: this.durable.size,
      droppedSubscribers: this.live.droppedSubscribers,
    };
  }

  /** Stops the sweep, ends rollouts waiting and live subscriptions. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.expiry.close();
    this.shared?.close();
    this.rollouts.finishAll();
    this.live.closeAll();
    this.session.close();
  }
}
