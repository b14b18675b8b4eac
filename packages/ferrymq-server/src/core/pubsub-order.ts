/**
 * Publishes of every broker sharing the store, handed to this broker's live subscribers in one
 * order: the store's numbers (a shared store numbers publishes, PubSubStorage.publish). A
 * reorder buffer: this broker's own commits and the publishes read from the store go in, the
 * consecutive numbers come out. Used by {@link PubSub} (pubsub.ts) with a shared store only.
 *
 * Waiting for a missing number is safe: the store's numbers are gap-free and in commit order,
 * so every number below one committed is committed too, and a read of the store finds it. A
 * number the store no longer holds (kept a few seconds) is skipped, and counted.
 */
import type { PublishedRow } from '../storage/types.js';
import type { Logger } from './logger.js';
import type { TopicMessage } from './pubsub-types.js';

/** Publishes read from the store per call. */
const PUBLISHED_READ_MAX = 1_000;
/**
 * A number still missing below a later one this long after it was first missed, and not found
 * by a read of the store, is skipped (the store no longer holds it).
 */
const PUBLISH_GAP_SKIP_MS = 1_000;

export interface PublishOrderOptions {
  /** The last number handed out before this broker started (or the store's counter). */
  lastSeq: number;
  /** Hands consecutive publishes out (to live subscribers), in order. */
  deliver: (batch: TopicMessage[]) => void;
  /** Reads the store's publishes numbered `fromSeq` and up (PubSubStorage.published). */
  read: (fromSeq: number, max: number) => Promise<PublishedRow[]>;
  logger: Logger;
  now: () => number;
}

export class PublishOrder {
  private next: number;
  private readonly held = new Map<number, TopicMessage>();
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private closed = false;
  /** Since when the next number has been missing below a later one (0: not missing). */
  private gapSince = 0;
  /** Numbers skipped because the store no longer held them (a broker stalled for seconds). */
  skipped = 0;

  constructor(private readonly options: PublishOrderOptions) {
    this.next = options.lastSeq + 1;
  }

  /** The last number handed out. */
  get lastSeq(): number {
    return this.next - 1;
  }

  /** Publishes committed (this broker's, or read from the store); any order, repeats ignored. */
  add(messages: TopicMessage[]): void {
    for (const m of messages) if (m.seq >= this.next) this.held.set(m.seq, m);
    this.drain();
  }

  private drain(): void {
    if (this.closed) return;
    const out: TopicMessage[] = [];
    for (let m = this.held.get(this.next); m !== undefined; m = this.held.get(this.next)) {
      this.held.delete(this.next);
      out.push(m);
      this.next++;
    }
    if (this.held.size === 0) this.gapSince = 0;
    else if (out.length > 0 || this.gapSince === 0) this.gapSince = this.options.now();
    if (out.length > 0) this.options.deliver(out);
  }

  /**
   * Reads the store from the next number on (told of other brokers' publishes, or the periodic
   * floor). Calls made while one read runs share one more read after it.
   */
  read(): Promise<void> {
    if (this.reading) {
      this.readAgain = true;
      return this.reading;
    }
    this.reading = this.readLoop().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async readLoop(): Promise<void> {
    do {
      this.readAgain = false;
      let full = true;
      while (full && !this.closed) {
        const from = this.next;
        const rows = await this.options.read(from, PUBLISHED_READ_MAX);
        full = rows.length === PUBLISHED_READ_MAX;
        this.add(rows.map(toMessage));
        // What is still missing below a number that was read (or committed here) is no
        // longer in the store: skip it rather than wait forever.
        const missed =
          this.gapSince > 0 && this.options.now() - this.gapSince >= PUBLISH_GAP_SKIP_MS;
        if (this.next === from && missed && !this.held.has(this.next)) {
          this.skipGap(rows.length > 0 ? rows[0]!.seq : Math.min(...this.held.keys()));
        }
      }
    } while (this.readAgain && !this.closed);
  }

  private skipGap(to: number): void {
    if (to <= this.next) return;
    this.options.logger.warn('publishes no longer in the store were skipped', {
      from: this.next,
      to: to - 1,
    });
    this.skipped += to - this.next;
    this.next = to;
    this.drain();
  }

  close(): void {
    this.closed = true;
    this.held.clear();
  }
}

function toMessage(r: PublishedRow): TopicMessage {
  return {
    topic: r.topic,
    seq: r.seq,
    frames: r.frames,
    headers: r.headers,
    retained: r.retained,
    deleted: r.deleted,
    publishedAt: r.publishedAt,
  };
}
