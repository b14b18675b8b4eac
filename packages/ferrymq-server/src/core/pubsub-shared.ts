/**
 * The publish path of pub/sub on a store several brokers share (PubSubStorage.publish): the
 * store numbers each batch of publishes in the transaction that stores its retained changes
 * and durable copies, so every broker's publishes have one order; the copies get their
 * sequence header from the store's numbers. Live subscribers here are handed this broker's
 * and the other brokers' publishes in that order (pubsub-order.ts). Every second, and when the
 * store tells of other brokers' changes, it reads their publishes and the durable
 * subscriptions they created or deleted. Used by {@link PubSub} (pubsub.ts).
 */
import {
  type Headers,
  PUBLISHED_AT_HEADER,
  RETAIN_HEADER,
  SEQ_HEADER,
  toFerryError,
  TOPIC_HEADER,
} from 'ferrymq/model';
import type {
  NewPublish,
  PubSubStorage,
  PublishBatch,
  RemoteChanges,
  StoredPublishes,
} from '../storage/types.js';
import type { QueueCopies, Session } from './broker-types.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { DurableSubscriptions } from './pubsub-durable.js';
import type { RetainedExpiry } from './pubsub-expiry.js';
import type { LiveSubscribers } from './pubsub-live.js';
import { PublishOrder } from './pubsub-order.js';
import type { PendingPublish, PublishOutcome, TopicMessage } from './pubsub-types.js';

/** How often other brokers' publishes and durable subscriptions are read without a notice. */
const SHARED_PUBSUB_POLL_MS = 1_000;

export interface SharedPublishingOptions {
  storage: PubSubStorage;
  session: Session;
  live: LiveSubscribers;
  durable: DurableSubscriptions;
  expiry: RetainedExpiry;
  clock: Clock;
  logger: Logger;
  /** The store's publish counter at start. */
  lastSeq: number;
  /** A publish was stored (for the stats). */
  onPublished: () => void;
}

export class SharedPublishing {
  private readonly storage: PubSubStorage;
  private readonly order: PublishOrder;
  private cancelPoll: (() => void) | undefined;
  private refreshing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: SharedPublishingOptions) {
    this.storage = options.storage;
    const read = options.storage.published?.bind(options.storage);
    this.order = new PublishOrder({
      lastSeq: options.lastSeq,
      deliver: (batch) => options.live.deliver(batch),
      read: read ?? (() => Promise.resolve([])),
      logger: options.logger,
      now: () => options.clock.now(),
    });
  }

  /** The last publish number handed to live subscribers here. */
  get lastSeq(): number {
    return this.order.lastSeq;
  }

  /** Numbers skipped because the store no longer held them. */
  get skipped(): number {
    return this.order.skipped;
  }

  start(): void {
    this.armPoll();
  }

  private armPoll(): void {
    if (this.closed) return;
    this.cancelPoll = this.options.clock.setTimer(() => {
      void Promise.all([this.readPublishes(), this.refreshDurable()]).finally(() => this.armPoll());
    }, SHARED_PUBSUB_POLL_MS);
  }

  /** What other brokers changed: their publishes, their durable subscriptions. */
  onRemote(changes: RemoteChanges): void {
    if (this.closed) return;
    if (changes.publishes) void this.readPublishes();
    if (changes.subscriptions) void this.refreshDurable();
  }

  private readPublishes(): Promise<void> {
    return this.order.read().catch((err: unknown) => {
      if (!this.closed) this.options.logger.warn('reading publishes failed', { err: String(err) });
    });
  }

  private refreshDurable(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.refreshing = this.options.durable
      .refresh()
      .catch((err: unknown) => {
        if (!this.closed) {
          this.options.logger.warn('reading durable subscriptions failed', { err: String(err) });
        }
      })
      .finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /**
   * Stores a batch of publishes with one storage call (numbered by the store) and, once it
   * committed, hands them to the reorder buffer; resolves each with its number.
   */
  commit(list: PendingPublish[]): Promise<PublishOutcome>[] {
    const now = this.options.clock.now();
    const publishes: NewPublish[] = [];
    const copies: QueueCopies[] = [];
    /** Per copy message: the index of its publish in the batch. */
    const copyPublish: number[] = [];
    const durableCounts: number[] = [];
    list.forEach(({ topic, frames, o }, i) => {
      const expiresAt = o.retain && !o.deleted && o.ttlMs !== undefined ? now + o.ttlMs : null;
      publishes.push({
        topic,
        frames: o.deleted ? [Buffer.alloc(0)] : frames,
        headers: o.headers,
        retained: o.retain,
        deleted: o.deleted,
        publishedAt: now,
        expiresAt,
      });
      if (o.retain) this.options.expiry.retainedChanged(topic, o.deleted ? null : expiresAt);
      const queues = this.options.durable.queuesFor(topic);
      durableCounts.push(queues.length);
      if (queues.length === 0) return;
      copies.push({
        queues,
        message: {
          frames: publishes[i]!.frames,
          headers: {
            ...o.headers,
            [TOPIC_HEADER]: topic,
            [PUBLISHED_AT_HEADER]: String(now),
            ...(o.retain ? { [RETAIN_HEADER]: '1' } : {}),
          },
          ...(o.ttlMs !== undefined ? { ttlMs: o.ttlMs } : {}),
          ...(o.copyKey !== undefined ? { dedupKey: o.copyKey } : {}),
        },
      });
      copyPublish.push(i);
    });
    const headersOf = (copy: number, seq: number): Headers => ({
      ...copies[copy]!.message.headers,
      [SEQ_HEADER]: String(seq),
    });
    let stored: Promise<number>;
    if (copies.length === 0) {
      stored = this.storage.publish!({ publishes }).then((r) => r.firstSeq);
    } else {
      let firstSeq = 0;
      stored = this.options.session
        .sendCopies(copies, {
          store: (items, copyOf) => {
            const batch: PublishBatch = {
              publishes,
              copies: {
                items,
                publishOf: copyOf.map((c) => copyPublish[c]!),
                headersFor: (i, seq) => headersOf(copyOf[i]!, seq),
              },
            };
            return this.storage.publish!(batch).then((r: StoredPublishes) => {
              firstSeq = r.firstSeq;
              // What a consumer handed a copy directly gets: the headers stored.
              items.forEach((it, i) => {
                it.headers = headersOf(copyOf[i]!, firstSeq + copyPublish[copyOf[i]!]!);
              });
              return r.copies ?? { ids: [], duplicate: [], replayed: false };
            });
          },
        })
        .then(() => firstSeq);
    }
    const committed = stored.then(
      (firstSeq) => {
        const messages: TopicMessage[] = publishes.map((p, i) => ({
          topic: p.topic,
          seq: firstSeq + i,
          frames: p.frames,
          headers: p.headers,
          retained: p.retained,
          deleted: p.deleted,
          publishedAt: p.publishedAt,
        }));
        this.order.add(messages);
        return firstSeq;
      },
      (err: unknown) => {
        throw toFerryError(err);
      },
    );
    return list.map((_, i) =>
      committed.then((firstSeq) => {
        this.options.onPublished();
        return { seq: firstSeq + i, durable: durableCounts[i]! };
      }),
    );
  }

  close(): void {
    this.closed = true;
    this.cancelPoll?.();
    this.order.close();
  }
}
