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
 * queues) and an injected {@link Clock}: no sockets, no SQL.
 */
import type { PubSubStats } from 'ferrymq/model';
import {
  PUBLISHED_AT_HEADER,
  RESERVED_HEADER_PREFIX,
  RETAIN_HEADER,
  SEQ_HEADER,
  SUBSCRIPTION_QUEUE_PREFIX,
  TOPIC_HEADER,
  type RolloutOutcome,
  type TopicStatus,
} from 'ferrymq/model';
import { FerryError, toFerryError } from 'ferrymq/model';
import type {
  ConfirmationRow,
  PubSubStorage,
  RetainedChange,
  RetainedRow,
} from '../storage/types.js';
import { checkHeaders, type Broker, type Session } from './broker.js';
import { systemClock, type Clock } from './clock.js';
import { silentLogger, type Logger } from './logger.js';
import { checkTopic, matches, parsePattern, scanPrefix, type TopicPattern } from './topics.js';
import { isValidQueueName, messageSize, type Headers, type NewMessage } from 'ferrymq/model';

/** Messages a live subscriber may be behind (sent, not yet consumed) before it is dropped. */
export const DEFAULT_LIVE_WINDOW = 10_000;
export const MAX_LIVE_WINDOW = 1_000_000;
/** Retained values per snapshot batch sent to a subscriber. */
export const SNAPSHOT_BATCH_MAX = 1_000;
/** Most expired retained values removed per sweep. */
export const RETAINED_SWEEP_BATCH_MAX = 1_000;
/** How often the earliest retained expiry is checked. */
export const RETAINED_SWEEP_INTERVAL_MS = 100;
export const DEFAULT_ROLLOUT_TIMEOUT_MS = 30_000;
export const MAX_ROLLOUT_TIMEOUT_MS = 24 * 3_600_000;
export const MAX_ROLLOUT_NODES = 10_000;
export const NODE_NAME_MAX_LENGTH = 190;
export const DEFAULT_MAX_SUBSCRIPTIONS = 10_000;

/** A published message as subscribers see it. */
export interface TopicMessage {
  topic: string;
  seq: number;
  frames: Buffer[];
  headers: Headers | undefined;
  /** Published with retain (a change of the topic's retained value). */
  retained: boolean;
  /** A retained delete (empty value, or TTL expiry). */
  deleted: boolean;
  publishedAt: number;
}

export interface PublishOptions {
  /** Keep as the topic's last value; an empty body deletes it. */
  retain?: boolean | undefined;
  /** Retained value (and durable copies) expire after this many ms. */
  ttlMs?: number | undefined;
  headers?: Headers | undefined;
}

export interface PublishOutcome {
  seq: number;
  /** Durable subscriptions the message was stored for. */
  durable: number;
}

/** How the core reaches a live subscriber. Implemented by dialects. */
export interface LiveSink {
  /** New messages, in publish order. */
  messages(batch: TopicMessage[]): void;
  /** Part of the snapshot (retained values as of `seq`); `last` ends it. */
  snapshot(batch: TopicMessage[], seq: number, last: boolean): void;
  /** The subscription was dropped by the broker (it fell behind its window). */
  dropped(err: FerryError): void;
}

export interface LiveOptions {
  /** Send the matching retained values first, then only messages after their sequence. */
  snapshot?: boolean | undefined;
  /** Messages sent and not yet consumed before the subscriber is dropped; 0 = unbounded. */
  window?: number | undefined;
}

export interface LiveSubscription {
  readonly id: number;
  readonly pattern: string;
  /** The subscriber consumed this many messages: they no longer count against its window. */
  consumed(n: number): void;
  close(): void;
}

export interface DurableSubscriptionInfo {
  name: string;
  pattern: string;
  queue: string;
  createdAt: number;
}

export interface RolloutOptions {
  /** Nodes that must confirm; default: every durable subscription whose pattern matches. */
  nodes?: string[] | undefined;
  timeoutMs?: number | undefined;
  ttlMs?: number | undefined;
  headers?: Headers | undefined;
}

export interface PubSubOptions {
  storage: PubSubStorage;
  broker: Broker;
  clock?: Clock;
  logger?: Logger;
  /** Default window of live subscribers (DEFAULT_LIVE_WINDOW). */
  liveWindow?: number;
  maxSubscriptions?: number;
}

interface Live {
  id: number;
  pattern: TopicPattern;
  sink: LiveSink;
  window: number;
  pending: number;
  /** Until its snapshot is sent: messages held back, and the snapshot's sequence. */
  holding: TopicMessage[] | undefined;
  snapshotSeq: number;
  closed: boolean;
}

interface Durable {
  name: string;
  pattern: TopicPattern;
  queue: string;
  createdAt: number;
}

interface InFlight {
  message: TopicMessage;
  done: boolean;
  failed: boolean;
}

interface RolloutWaiter {
  topic: string;
  seq: number;
  pending: Set<string>;
  confirmed: string[];
  finish: () => void;
}

function durableQueueOf(name: string): string {
  return SUBSCRIPTION_QUEUE_PREFIX + name;
}

export function checkNodeName(name: unknown, what = 'node'): string {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > NODE_NAME_MAX_LENGTH ||
    !isValidQueueName(name)
  ) {
    throw new FerryError(
      'BAD_ARGUMENTS',
      `${what} must be 1–${NODE_NAME_MAX_LENGTH} characters of [A-Za-z0-9._:-]`,
    );
  }
  return name;
}

function positiveMs(v: number | undefined, what: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isFinite(v) || v <= 0 || v > max) {
    throw new FerryError('BAD_ARGUMENTS', `${what} must be a number of ms in (0, ${max}]`);
  }
  return Math.round(v);
}

export class PubSub {
  private readonly storage: PubSubStorage;
  private readonly broker: Broker;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly liveWindow: number;
  private readonly maxSubscriptions: number;
  private session!: Session;
  private seq = 0;
  private published = 0;
  private droppedSubscribers = 0;
  private nextLiveId = 1;
  private readonly live = new Map<number, Live>();
  private readonly durable = new Map<string, Durable>();
  private readonly inflight: InFlight[] = [];
  /** A hand-out to live subscribers is scheduled for the end of this microtask run. */
  private liveFlushScheduled = false;
  private readonly waiters = new Map<string, Set<RolloutWaiter>>();
  /** Earliest known expiry of a retained value (null: none known). */
  private nextExpiryAt: number | null = null;
  /** Topics published to since the running sweep read the expired ones. */
  private touchedDuringSweep: Set<string> | undefined;
  private cancelSweepTimer: (() => void) | undefined;
  private closed = false;

  private constructor(options: PubSubOptions) {
    this.storage = options.storage;
    this.broker = options.broker;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
    this.liveWindow = options.liveWindow ?? DEFAULT_LIVE_WINDOW;
    this.maxSubscriptions = options.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS;
  }

  static async open(options: PubSubOptions): Promise<PubSub> {
    const ps = new PubSub(options);
    ps.session = ps.broker.openSession({ deliver: () => {} });
    const state = await ps.storage.load();
    ps.seq = state.lastSeq;
    for (const row of state.subscriptions) {
      try {
        ps.durable.set(row.name, {
          name: row.name,
          pattern: parsePattern(row.pattern),
          queue: durableQueueOf(row.name),
          createdAt: row.createdAt,
        });
      } catch (err) {
        ps.log.error('stored subscription has a bad pattern', { name: row.name, err: String(err) });
      }
    }
    ps.nextExpiryAt = await ps.storage.nextExpiry();
    ps.armSweep();
    return ps;
  }

  get lastSeq(): number {
    return this.seq;
  }

  // ---------------------------------------------------------------- publishing

  publish(topic: string, frames: Buffer[], options: PublishOptions = {}): Promise<PublishOutcome> {
    try {
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
      const retain = options.retain === true;
      const deleted = retain && size === 0;
      // Refused by a durable subscription's limit: refuse the whole publish before writing.
      const queues = this.durableQueuesFor(topic);
      if (queues.length > 0) this.broker.checkSendToQueues(queues, { frames, ttlMs });
      return this.commitPublish(topic, frames, {
        retain,
        deleted,
        ttlMs,
        headers: headers && Object.keys(headers).length > 0 ? headers : undefined,
      });
    } catch (err) {
      return Promise.reject(toFerryError(err));
    }
  }

  private commitPublish(
    topic: string,
    frames: Buffer[],
    o: { retain: boolean; deleted: boolean; ttlMs: number | undefined; headers?: Headers },
  ): Promise<PublishOutcome> {
    const now = this.clock.now();
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
    const expiresAt = o.ttlMs === undefined ? null : now + o.ttlMs;
    const writes: Promise<unknown>[] = [];
    const queued: NewMessage = {
      frames: message.frames,
      headers: {
        ...o.headers,
        [TOPIC_HEADER]: topic,
        [SEQ_HEADER]: String(seq),
        [PUBLISHED_AT_HEADER]: String(now),
        ...(o.retain ? { [RETAIN_HEADER]: '1' } : {}),
      },
      ...(o.ttlMs !== undefined ? { ttlMs: o.ttlMs } : {}),
    };
    const queues = this.durableQueuesFor(topic);
    const durableCount = queues.length;
    // One storage call for every copy: all subscriptions' limits are checked first.
    if (queues.length > 0) writes.push(this.session.sendToQueues(queues, queued));
    let change: RetainedChange = { op: 'none' };
    if (o.retain) {
      this.touchedDuringSweep?.add(topic);
      change = o.deleted
        ? { op: 'delete', topic }
        : {
            op: 'set',
            row: { topic, seq, frames, headers: o.headers, publishedAt: now, expiresAt },
          };
      if (expiresAt !== null && !o.deleted) {
        if (this.nextExpiryAt === null || expiresAt < this.nextExpiryAt) {
          this.nextExpiryAt = expiresAt;
        }
      }
    }
    writes.push(this.storage.record(seq, change));
    const entry: InFlight = { message, done: false, failed: false };
    this.inflight.push(entry);
    return Promise.all(writes).then(
      () => {
        entry.done = true;
        this.published++;
        this.scheduleLiveFlush();
        return { seq, durable: durableCount };
      },
      (err: unknown) => {
        entry.done = true;
        entry.failed = true;
        this.scheduleLiveFlush();
        throw toFerryError(err);
      },
    );
  }

  private durableQueuesFor(topic: string): string[] {
    const queues: string[] = [];
    for (const d of this.durable.values()) if (matches(d.pattern, topic)) queues.push(d.queue);
    return queues;
  }

  /**
   * Every publish of one group commit settles in the same microtask run; handing them out once
   * that run is over gives each live subscriber one TOPIC message per commit, not one per
   * publish (a burst of 300 publishes to 10 subscribers: 10 sends instead of 3,000).
   */
  private scheduleLiveFlush(): void {
    if (this.liveFlushScheduled) return;
    this.liveFlushScheduled = true;
    queueMicrotask(() => {
      this.liveFlushScheduled = false;
      this.flushInflight();
    });
  }

  /** Hands committed publishes to live subscribers strictly in publish order. */
  private flushInflight(): void {
    const ready: TopicMessage[] = [];
    while (this.inflight.length > 0 && this.inflight[0]!.done) {
      const e = this.inflight.shift()!;
      if (!e.failed) ready.push(e.message);
    }
    if (ready.length === 0) return;
    for (const sub of [...this.live.values()]) {
      const batch = ready.filter((m) => m.seq > sub.snapshotSeq && matches(sub.pattern, m.topic));
      if (batch.length === 0) continue;
      if (sub.holding) {
        sub.holding.push(...batch);
        continue;
      }
      this.sendLive(sub, batch);
    }
  }

  private sendLive(sub: Live, batch: TopicMessage[]): void {
    if (sub.closed) return;
    sub.pending += batch.length;
    if (sub.window > 0 && sub.pending > sub.window) {
      this.droppedSubscribers++;
      this.removeLive(sub);
      sub.sink.dropped(
        new FerryError(
          'SUBSCRIBER_DROPPED',
          `subscription to ${sub.pattern.source} fell ${sub.pending} messages behind (window ${sub.window}); dropped`,
        ),
      );
      return;
    }
    sub.sink.messages(batch);
  }

  // ---------------------------------------------------------------- live subscriptions

  subscribeLive(pattern: string, sink: LiveSink, options: LiveOptions = {}): LiveSubscription {
    if (this.closed) throw new FerryError('SHUTTING_DOWN');
    const p = parsePattern(pattern);
    return this.attachLive(p, sink, options);
  }

  /** A live subscription on an already parsed pattern (dialects with their own matching). */
  attachLive(p: TopicPattern, sink: LiveSink, options: LiveOptions = {}): LiveSubscription {
    if (this.live.size >= this.maxSubscriptions) {
      throw new FerryError('TOO_MANY_SUBSCRIPTIONS', `the broker holds ${this.live.size}`);
    }
    const window = options.window ?? this.liveWindow;
    if (!Number.isInteger(window) || window < 0 || window > MAX_LIVE_WINDOW) {
      throw new FerryError('BAD_ARGUMENTS', `window must be an integer 0–${MAX_LIVE_WINDOW}`);
    }
    const sub: Live = {
      id: this.nextLiveId++,
      pattern: p,
      sink,
      window,
      pending: 0,
      holding: undefined,
      snapshotSeq: 0,
      closed: false,
    };
    this.live.set(sub.id, sub);
    if (options.snapshot === true) {
      sub.holding = [];
      // Every publish queued before this read has seq <= snapshotSeq and is in the snapshot;
      // every later one has a higher seq and reaches the subscriber after it.
      sub.snapshotSeq = this.seq;
      this.storage.retained(scanPrefix(p), this.clock.now()).then(
        (rows) => {
          if (sub.closed) return;
          this.sendSnapshot(sub, rows);
          const held = sub.holding ?? [];
          sub.holding = undefined;
          if (held.length > 0) this.sendLive(sub, held);
        },
        (err: unknown) => {
          this.removeLive(sub);
          sub.sink.dropped(toFerryError(err));
        },
      );
    } else {
      sub.snapshotSeq = this.seq;
    }
    return {
      id: sub.id,
      pattern: p.source,
      consumed: (n: number) => {
        if (Number.isFinite(n) && n > 0) sub.pending = Math.max(0, sub.pending - n);
      },
      close: () => this.removeLive(sub),
    };
  }

  private sendSnapshot(sub: Live, rows: RetainedRow[]): void {
    const items = rows.filter((r) => matches(sub.pattern, r.topic)).map(toTopicMessage);
    if (items.length === 0) {
      sub.sink.snapshot([], sub.snapshotSeq, true);
      return;
    }
    for (let i = 0; i < items.length; i += SNAPSHOT_BATCH_MAX) {
      const end = Math.min(items.length, i + SNAPSHOT_BATCH_MAX);
      sub.sink.snapshot(items.slice(i, end), sub.snapshotSeq, end === items.length);
    }
  }

  private removeLive(sub: Live): void {
    sub.closed = true;
    this.live.delete(sub.id);
  }

  // ---------------------------------------------------------------- retained state

  /** The retained values matching a pattern and the sequence number they reflect. */
  async retained(pattern: string | TopicPattern): Promise<{ seq: number; items: TopicMessage[] }> {
    const p = typeof pattern === 'string' ? parsePattern(pattern) : pattern;
    const seq = this.seq;
    const rows = await this.storage.retained(scanPrefix(p), this.clock.now());
    return { seq, items: rows.filter((r) => matches(p, r.topic)).map(toTopicMessage) };
  }

  private armSweep(): void {
    if (this.closed) return;
    this.cancelSweepTimer = this.clock.setTimer(() => {
      this.sweep().finally(() => this.armSweep());
    }, RETAINED_SWEEP_INTERVAL_MS);
  }

  /** Deletes retained values past their TTL, each as a retained delete with its own seq. */
  private async sweep(): Promise<void> {
    const now = this.clock.now();
    if (this.closed || this.nextExpiryAt === null || this.nextExpiryAt > now) return;
    try {
      this.touchedDuringSweep = new Set();
      const topics = await this.storage.expired(now, RETAINED_SWEEP_BATCH_MAX);
      const touched = this.touchedDuringSweep;
      this.touchedDuringSweep = undefined;
      const deletes: Promise<unknown>[] = [];
      for (const t of topics) {
        if (touched.has(t)) continue; // set again since: not expired any more
        deletes.push(
          this.commitPublish(t, [Buffer.alloc(0)], {
            retain: true,
            deleted: true,
            ttlMs: undefined,
          }),
        );
      }
      await Promise.allSettled(deletes);
      if (topics.length < RETAINED_SWEEP_BATCH_MAX) {
        const next = await this.storage.nextExpiry();
        // A publish with a TTL during the sweep may have set an earlier one.
        if (this.nextExpiryAt === null || this.nextExpiryAt <= now || next === null) {
          this.nextExpiryAt = next;
        } else if (next < this.nextExpiryAt) {
          this.nextExpiryAt = next;
        }
      }
    } catch (err) {
      this.touchedDuringSweep = undefined;
      if (!this.closed) this.log.error('retained sweep failed', { err: String(err) });
    }
  }

  // ---------------------------------------------------------------- durable subscriptions

  /**
   * Creates a durable subscription (or finds it, when its pattern is the same). Its queue
   * receives every matching publish from the moment this resolves.
   */
  async ensureDurable(name: string, pattern: string): Promise<DurableSubscriptionInfo> {
    if (this.closed) throw new FerryError('SHUTTING_DOWN');
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
    try {
      await this.storage.saveSubscription({ name, pattern: p.source, createdAt: d.createdAt });
    } catch (err) {
      if (this.durable.get(name) === d) this.durable.delete(name);
      throw toFerryError(err);
    }
    return infoOf(d);
  }

  durableQueue(name: string): string {
    const d = this.durable.get(name);
    if (!d) throw new FerryError('SUBSCRIPTION_NOT_FOUND', `no durable subscription ${name}`);
    return d.queue;
  }

  /** Deletes a durable subscription and what its queue holds. */
  async removeDurable(name: string): Promise<void> {
    const d = this.durable.get(name);
    if (!d) throw new FerryError('SUBSCRIPTION_NOT_FOUND', `no durable subscription ${name}`);
    this.durable.delete(name);
    await this.storage.deleteSubscription(name);
    await this.broker.purge(d.queue).catch(() => 0);
  }

  durableSubscriptions(): DurableSubscriptionInfo[] {
    return [...this.durable.values()].map(infoOf);
  }

  // ---------------------------------------------------------------- confirmations, rollout

  /** Records that `node` holds these topics at these versions. */
  async confirm(node: string, items: { topic: string; seq: number }[]): Promise<void> {
    checkNodeName(node);
    const now = this.clock.now();
    const rows: ConfirmationRow[] = items.map((it) => {
      checkTopic(it.topic);
      if (!Number.isInteger(it.seq) || it.seq < 1) {
        throw new FerryError('BAD_ARGUMENTS', 'seq must be an integer ≥ 1');
      }
      return { node, topic: it.topic, seq: it.seq, at: now };
    });
    if (rows.length === 0) return;
    await this.storage.confirm(rows);
    for (const r of rows) {
      const set = this.waiters.get(r.topic);
      if (!set) continue;
      for (const w of [...set]) {
        if (r.seq >= w.seq && w.pending.delete(node)) {
          w.confirmed.push(node);
          if (w.pending.size === 0) w.finish();
        }
      }
    }
  }

  /**
   * Publishes a retained update and waits until every node has confirmed it (or the timeout):
   * resolves with who has and who has not.
   */
  async rollout(
    topic: string,
    frames: Buffer[],
    options: RolloutOptions = {},
  ): Promise<RolloutOutcome> {
    checkTopic(topic);
    const timeoutMs =
      positiveMs(options.timeoutMs, 'timeoutMs', MAX_ROLLOUT_TIMEOUT_MS) ??
      DEFAULT_ROLLOUT_TIMEOUT_MS;
    let nodes: string[];
    if (options.nodes !== undefined) {
      if (!Array.isArray(options.nodes) || options.nodes.length > MAX_ROLLOUT_NODES) {
        throw new FerryError('BAD_ARGUMENTS', `nodes must be an array of ≤ ${MAX_ROLLOUT_NODES}`);
      }
      nodes = [...new Set(options.nodes.map((n) => checkNodeName(n)))];
    } else {
      nodes = [...this.durable.values()]
        .filter((d) => matches(d.pattern, topic))
        .map((d) => d.name);
    }
    const waiter: RolloutWaiter = {
      topic,
      seq: Number.MAX_SAFE_INTEGER, // set once the publish has its number
      pending: new Set(nodes),
      confirmed: [],
      finish: () => {},
    };
    let set = this.waiters.get(topic);
    if (!set) this.waiters.set(topic, (set = new Set()));
    set.add(waiter);
    const unregister = (): void => {
      set.delete(waiter);
      if (set.size === 0 && this.waiters.get(topic) === set) this.waiters.delete(topic);
    };
    try {
      const { seq } = await this.publish(topic, frames, {
        retain: true,
        ttlMs: options.ttlMs,
        headers: options.headers,
      });
      waiter.seq = seq;
      // A node may have confirmed between the commit and now: read what is stored.
      if (waiter.pending.size > 0) {
        for (const c of await this.storage.confirmations(topic)) {
          if (c.topic === topic && c.seq >= seq && waiter.pending.delete(c.node)) {
            waiter.confirmed.push(c.node);
          }
        }
      }
      if (waiter.pending.size > 0) {
        await new Promise<void>((resolve) => {
          const cancel = this.clock.setTimer(resolve, timeoutMs);
          waiter.finish = () => {
            cancel();
            resolve();
          };
        });
      }
      return {
        topic,
        seq,
        complete: waiter.pending.size === 0,
        confirmed: [...waiter.confirmed].sort(),
        pending: [...waiter.pending].sort(),
      };
    } finally {
      unregister();
    }
  }

  /** Per retained topic matching the pattern: its version and the version each node holds. */
  async status(pattern: string): Promise<TopicStatus[]> {
    const p = parsePattern(pattern);
    const prefix = scanPrefix(p);
    const [rows, confirms] = await Promise.all([
      this.storage.retained(prefix, this.clock.now()),
      this.storage.confirmations(prefix),
    ]);
    const byTopic = new Map<string, TopicStatus>();
    for (const r of rows) {
      if (matches(p, r.topic)) byTopic.set(r.topic, { topic: r.topic, seq: r.seq, nodes: [] });
    }
    for (const c of confirms) {
      if (!matches(p, c.topic)) continue;
      let t = byTopic.get(c.topic);
      if (!t) byTopic.set(c.topic, (t = { topic: c.topic, seq: null, nodes: [] }));
      t.nodes.push({
        node: c.node,
        seq: c.seq,
        at: c.at,
        current: t.seq !== null && c.seq >= t.seq,
      });
    }
    return [...byTopic.values()].sort((a, b) => (a.topic < b.topic ? -1 : 1));
  }

  stats(): PubSubStats {
    return {
      lastSeq: this.seq,
      published: this.published,
      liveSubscriptions: this.live.size,
      durableSubscriptions: this.durable.size,
      droppedSubscribers: this.droppedSubscribers,
    };
  }

  /** Stops the sweep, ends rollouts waiting and live subscriptions. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelSweepTimer?.();
    for (const set of this.waiters.values()) for (const w of set) w.finish();
    for (const sub of [...this.live.values()]) this.removeLive(sub);
    this.session.close();
  }
}

function infoOf(d: Durable): DurableSubscriptionInfo {
  return { name: d.name, pattern: d.pattern.source, queue: d.queue, createdAt: d.createdAt };
}

function toTopicMessage(r: RetainedRow): TopicMessage {
  return {
    topic: r.topic,
    seq: r.seq,
    frames: r.frames,
    headers: r.headers,
    retained: true,
    deleted: false,
    publishedAt: r.publishedAt,
  };
}

/** Reads a durable queue message's topic fields back (inverse of the headers set on publish). */
export function topicFieldsOf(headers: Headers | undefined): {
  topic: string;
  seq: number;
  retained: boolean;
  publishedAt: number;
  userHeaders: Headers | undefined;
} | null {
  if (!headers) return null;
  const topic = headers[TOPIC_HEADER];
  const seq = Number(headers[SEQ_HEADER]);
  if (topic === undefined || !Number.isInteger(seq)) return null;
  const user: Headers = {};
  for (const [k, v] of Object.entries(headers)) {
    if (!k.startsWith(RESERVED_HEADER_PREFIX)) user[k] = v;
  }
  return {
    topic,
    seq,
    retained: headers[RETAIN_HEADER] === '1',
    publishedAt: Number(headers[PUBLISHED_AT_HEADER] ?? 0),
    userHeaders: Object.keys(user).length > 0 ? user : undefined,
  };
}
