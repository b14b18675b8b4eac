/**
 * Live subscribers of the pub/sub core: their windows (dropped when too far behind), their
 * snapshots of the retained state, and the hand-out of committed publishes to them strictly in
 * publish order, one batch per group commit. Used by {@link PubSub} (pubsub.ts).
 */
import { FerryError, toFerryError } from 'ferrymq/model';
import type { PubSubStorage, RetainedRow } from '../storage/types.js';
import type { Clock } from './clock.js';
import { toTopicMessage, type TopicMessage } from './pubsub-types.js';
import { matches, scanPrefix, type TopicPattern } from './topics.js';

/** Messages a live subscriber may be behind (sent, not yet consumed) before it is dropped. */
export const DEFAULT_LIVE_WINDOW = 10_000;
export const MAX_LIVE_WINDOW = 1_000_000;
/** Bytes a live subscriber may be behind (sent, not yet consumed) before it is dropped. */
export const DEFAULT_LIVE_WINDOW_BYTES = 16 * 1024 * 1024;
/** Retained values per snapshot batch sent to a subscriber. */
export const SNAPSHOT_BATCH_MAX = 1_000;

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

export interface LiveSubscribersOptions {
  storage: PubSubStorage;
  clock: Clock;
  /** Default window. */
  window: number;
  /** Window in bytes of every live subscriber (0 = unbounded). */
  windowBytes: number;
  maxSubscriptions: number;
}

interface Live {
  id: number;
  pattern: TopicPattern;
  sink: LiveSink;
  window: number;
  pending: number;
  /** Bytes of the pending messages, and each one's size in send order (from `sizesHead`). */
  pendingBytes: number;
  sizes: number[];
  sizesHead: number;
  /** Until its snapshot is sent: messages held back, and the snapshot's sequence. */
  holding: TopicMessage[] | undefined;
  snapshotSeq: number;
  closed: boolean;
}

/** A publish whose commit is under way. */
export interface InFlight {
  message: TopicMessage;
  done: boolean;
  failed: boolean;
}

export class LiveSubscribers {
  private readonly storage: PubSubStorage;
  private readonly clock: Clock;
  private readonly window: number;
  private readonly windowBytes: number;
  private readonly maxSubscriptions: number;
  private nextLiveId = 1;
  private readonly live = new Map<number, Live>();
  private readonly inflight: InFlight[] = [];
  /** A hand-out to live subscribers is scheduled for the end of this microtask run. */
  private liveFlushScheduled = false;
  /** Subscribers dropped for falling behind their window. */
  droppedSubscribers = 0;

  constructor(options: LiveSubscribersOptions) {
    this.storage = options.storage;
    this.clock = options.clock;
    this.window = options.window;
    this.windowBytes = options.windowBytes;
    this.maxSubscriptions = options.maxSubscriptions;
  }

  get size(): number {
    return this.live.size;
  }

  // ---------------------------------------------------------------- hand-out

  /** A publish being committed: handed out once it and every earlier one has settled. */
  track(message: TopicMessage): InFlight {
    const entry: InFlight = { message, done: false, failed: false };
    this.inflight.push(entry);
    return entry;
  }

  /** The publish's commit settled (stored, or failed and never handed out). */
  settled(entry: InFlight, failed: boolean): void {
    entry.done = true;
    if (failed) entry.failed = true;
    this.scheduleLiveFlush();
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
    this.deliver(ready);
  }

  /** Hands committed publishes, in publish order, to the live subscribers they match. */
  deliver(ready: TopicMessage[]): void {
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
    if (this.windowBytes > 0) {
      for (const m of batch) {
        let size = 0;
        for (const f of m.frames) size += f.length;
        sub.pendingBytes += size;
        sub.sizes.push(size);
      }
    }
    const overCount = sub.window > 0 && sub.pending > sub.window;
    if (overCount || (this.windowBytes > 0 && sub.pendingBytes > this.windowBytes)) {
      this.droppedSubscribers++;
      this.removeLive(sub);
      const behind = overCount
        ? `${sub.pending} messages behind (window ${sub.window})`
        : `${sub.pendingBytes} bytes behind (window ${this.windowBytes} bytes)`;
      sub.sink.dropped(
        new FerryError(
          'SUBSCRIBER_DROPPED',
          `subscription to ${sub.pattern.source} fell ${behind}; dropped`,
        ),
      );
      return;
    }
    sub.sink.messages(batch);
  }

  // ---------------------------------------------------------------- subscribing

  /** A live subscription; `seq` is the last publish numbered so far (the snapshot's). */
  attach(p: TopicPattern, sink: LiveSink, options: LiveOptions, seq: number): LiveSubscription {
    if (this.live.size >= this.maxSubscriptions) {
      throw new FerryError('TOO_MANY_SUBSCRIPTIONS', `the broker holds ${this.live.size}`);
    }
    const window = options.window ?? this.window;
    if (!Number.isInteger(window) || window < 0 || window > MAX_LIVE_WINDOW) {
      throw new FerryError('BAD_ARGUMENTS', `window must be an integer 0–${MAX_LIVE_WINDOW}`);
    }
    const sub: Live = {
      id: this.nextLiveId++,
      pattern: p,
      sink,
      window,
      pending: 0,
      pendingBytes: 0,
      sizes: [],
      sizesHead: 0,
      holding: undefined,
      snapshotSeq: 0,
      closed: false,
    };
    this.live.set(sub.id, sub);
    if (options.snapshot === true) {
      sub.holding = [];
      // Every publish queued before this read has seq <= snapshotSeq and is in the snapshot;
      // every later one has a higher seq and reaches the subscriber after it.
      sub.snapshotSeq = seq;
      this.readSnapshot(scanPrefix(p), seq).then(
        (snap) => {
          if (sub.closed) return;
          // A shared store's snapshot may reflect publishes not handed out here yet: they
          // are in it, and only those after it follow.
          sub.snapshotSeq = Math.max(sub.snapshotSeq, snap.seq);
          this.sendSnapshot(sub, snap.rows);
          const held = (sub.holding ?? []).filter((m) => m.seq > sub.snapshotSeq);
          sub.holding = undefined;
          if (held.length > 0) this.sendLive(sub, held);
        },
        (err: unknown) => {
          this.removeLive(sub);
          sub.sink.dropped(toFerryError(err));
        },
      );
    } else {
      sub.snapshotSeq = seq;
    }
    return {
      id: sub.id,
      pattern: p.source,
      consumed: (n: number) => {
        if (!Number.isFinite(n) || n <= 0) return;
        sub.pending = Math.max(0, sub.pending - n);
        const end = Math.min(sub.sizes.length, sub.sizesHead + Math.floor(n));
        for (let i = sub.sizesHead; i < end; i++) sub.pendingBytes -= sub.sizes[i]!;
        sub.sizesHead = end;
        if (sub.sizesHead > 1024 && sub.sizesHead * 2 > sub.sizes.length) {
          sub.sizes = sub.sizes.slice(sub.sizesHead);
          sub.sizesHead = 0;
        }
      },
      close: () => this.removeLive(sub),
    };
  }

  /**
   * Retained values and the number they reflect: a shared store reads both together (other
   * brokers commit between any two reads); otherwise the last number given here, `seq`.
   */
  private readSnapshot(prefix: string, seq: number): Promise<{ seq: number; rows: RetainedRow[] }> {
    const now = this.clock.now();
    if (this.storage.snapshot) return this.storage.snapshot(prefix, now);
    return this.storage.retained(prefix, now).then((rows) => ({ seq, rows }));
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

  /** Ends every live subscription (the broker is closing). */
  closeAll(): void {
    for (const sub of [...this.live.values()]) this.removeLive(sub);
  }
}
