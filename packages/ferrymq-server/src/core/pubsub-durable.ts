/**
 * Durable subscriptions of the pub/sub core: each a stored name and pattern with a queue of
 * its own, into which every matching publish is copied. With a shared store, refresh() takes in
 * those other brokers created or deleted. Used by {@link PubSub} (pubsub.ts).
 */
import { FerryError, SUBSCRIPTION_QUEUE_PREFIX, toFerryError } from 'ferrymq/model';
import type { PubSubStorage, DurableSubscriptionRow } from '../storage/types.js';
import type { Broker } from './broker.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import { checkNodeName } from './pubsub-types.js';
import { matches, parsePattern, type TopicPattern } from './topics.js';

export const DEFAULT_MAX_SUBSCRIPTIONS = 10_000;

export interface DurableSubscriptionInfo {
  name: string;
  pattern: string;
  queue: string;
  createdAt: number;
}

export interface DurableSubscriptionsOptions {
  storage: PubSubStorage;
  broker: Broker;
  clock: Clock;
  logger: Logger;
  maxSubscriptions: number;
}

interface Durable {
  name: string;
  pattern: TopicPattern;
  queue: string;
  createdAt: number;
}

function durableQueueOf(name: string): string {
  return SUBSCRIPTION_QUEUE_PREFIX + name;
}

function infoOf(d: Durable): DurableSubscriptionInfo {
  return { name: d.name, pattern: d.pattern.source, queue: d.queue, createdAt: d.createdAt };
}

export class DurableSubscriptions {
  private readonly storage: PubSubStorage;
  private readonly broker: Broker;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly maxSubscriptions: number;
  private readonly durable = new Map<string, Durable>();
  /** While refresh() reads the store: names created or removed here meanwhile. */
  private touched: Set<string> | undefined;

  constructor(options: DurableSubscriptionsOptions) {
    this.storage = options.storage;
    this.broker = options.broker;
    this.clock = options.clock;
    this.log = options.logger;
    this.maxSubscriptions = options.maxSubscriptions;
  }

  get size(): number {
    return this.durable.size;
  }

  /** The subscriptions stored (at start); one with a bad pattern is logged and skipped. */
  load(rows: DurableSubscriptionRow[]): void {
    for (const row of rows) this.loadRow(row);
  }

  private loadRow(row: DurableSubscriptionRow): void {
    try {
      this.durable.set(row.name, {
        name: row.name,
        pattern: parsePattern(row.pattern),
        queue: durableQueueOf(row.name),
        createdAt: row.createdAt,
      });
    } catch (err) {
      this.log.error('stored subscription has a bad pattern', {
        name: row.name,
        err: String(err),
      });
    }
  }

  /**
   * A shared store: takes in the subscriptions other brokers created or deleted since. Names
   * this broker created or removed while the store was read are left as they are here (the
   * read may predate the change).
   */
  async refresh(): Promise<void> {
    const touched = new Set<string>();
    this.touched = touched;
    let rows: DurableSubscriptionRow[];
    try {
      rows = (await this.storage.load()).subscriptions;
    } finally {
      if (this.touched === touched) this.touched = undefined;
    }
    const stored = new Set<string>();
    for (const row of rows) {
      stored.add(row.name);
      if (touched.has(row.name)) continue;
      const d = this.durable.get(row.name);
      if (!d || d.pattern.source !== row.pattern) this.loadRow(row);
    }
    for (const name of [...this.durable.keys()]) {
      if (!stored.has(name) && !touched.has(name)) this.durable.delete(name);
    }
  }

  /** The queues of the subscriptions whose pattern matches the topic. */
  queuesFor(topic: string): string[] {
    const queues: string[] = [];
    for (const d of this.durable.values()) if (matches(d.pattern, topic)) queues.push(d.queue);
    return queues;
  }

  /** The names of the subscriptions whose pattern matches the topic. */
  namesFor(topic: string): string[] {
    return [...this.durable.values()].filter((d) => matches(d.pattern, topic)).map((d) => d.name);
  }

  /**
   * Creates a durable subscription (or finds it, when its pattern is the same). Its queue
   * receives every matching publish from the moment this resolves.
   */
  async ensure(name: string, pattern: string): Promise<DurableSubscriptionInfo> {
    checkNodeName(name, 'durable');
    const p = parsePattern(pattern);
    const existing = this.durable.get(name);
    if (existing) {
      if (existing.pattern.source !== p.source) {
        throw new FerryError(
          'SUBSCRIPTION_CONFLICT',
          `durable subscription ${name} exists with pattern ${existing.pattern.source}`,
        );
      }
      return infoOf(existing);
    }
    if (this.durable.size >= this.maxSubscriptions) {
      throw new FerryError('TOO_MANY_SUBSCRIPTIONS', `the broker holds ${this.durable.size}`);
    }
    const d: Durable = {
      name,
      pattern: p,
      queue: durableQueueOf(name),
      createdAt: this.clock.now(),
    };
    // Matching publishes from now on are copied into its queue, even before the row commits.
    this.durable.set(name, d);
    this.touched?.add(name);
    try {
      await this.storage.saveSubscription({ name, pattern: p.source, createdAt: d.createdAt });
    } catch (err) {
      if (this.durable.get(name) === d) this.durable.delete(name);
      throw toFerryError(err);
    }
    return infoOf(d);
  }

  queue(name: string): string {
    const d = this.durable.get(name);
    if (!d) throw new FerryError('SUBSCRIPTION_NOT_FOUND', `no durable subscription ${name}`);
    return d.queue;
  }

  /**
   * Deletes a durable subscription and its queue with what it holds (its consumers are
   * cancelled with QUEUE_DELETED).
   */
  async remove(name: string): Promise<void> {
    const d = this.durable.get(name);
    if (!d) throw new FerryError('SUBSCRIPTION_NOT_FOUND', `no durable subscription ${name}`);
    this.durable.delete(name);
    this.touched?.add(name);
    await this.storage.deleteSubscription(name);
    await this.broker.deleteQueue(d.queue, { force: true }).catch((err: unknown) => {
      // Never created (nothing matched yet): nothing to delete.
      if (toFerryError(err).code !== 'QUEUE_NOT_FOUND') throw err;
    });
  }

  list(): DurableSubscriptionInfo[] {
    return [...this.durable.values()].map(infoOf);
  }
}
