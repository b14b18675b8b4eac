/**
 * Expiry of retained values: remembers the earliest expiry known, and a periodic sweep turns
 * every value past its TTL into a retained delete with a sequence number of its own (published
 * through the callback {@link PubSub} gives). Used by PubSub (pubsub.ts).
 */
import type { PubSubStorage } from '../storage/types.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/** Most expired retained values removed per sweep. */
const RETAINED_SWEEP_BATCH_MAX = 1_000;
/** How often the earliest retained expiry is checked. */
const RETAINED_SWEEP_INTERVAL_MS = 100;

export interface RetainedExpiryOptions {
  storage: PubSubStorage;
  clock: Clock;
  logger: Logger;
  /** Publishes the retained delete of an expired topic. */
  deleteRetained: (topic: string) => Promise<unknown>;
}

export class RetainedExpiry {
  private readonly storage: PubSubStorage;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly deleteRetained: (topic: string) => Promise<unknown>;
  /** Earliest known expiry of a retained value (null: none known). */
  private nextExpiryAt: number | null = null;
  /** Topics published to since the running sweep read the expired ones. */
  private touchedDuringSweep: Set<string> | undefined;
  private cancelSweepTimer: (() => void) | undefined;
  private closed = false;

  constructor(options: RetainedExpiryOptions) {
    this.storage = options.storage;
    this.clock = options.clock;
    this.log = options.logger;
    this.deleteRetained = options.deleteRetained;
  }

  /** Reads the earliest stored expiry and starts sweeping. */
  async start(): Promise<void> {
    this.nextExpiryAt = await this.storage.nextExpiry();
    this.armSweep();
  }

  /** A retained publish (set or delete) of this topic; `expiresAt` for a set with a TTL. */
  retainedChanged(topic: string, expiresAt: number | null): void {
    this.touchedDuringSweep?.add(topic);
    if (expiresAt !== null) {
      if (this.nextExpiryAt === null || expiresAt < this.nextExpiryAt) {
        this.nextExpiryAt = expiresAt;
      }
    }
  }

  private armSweep(): void {
    if (this.closed) return;
    this.cancelSweepTimer = this.clock.setTimer(() => {
      void this.sweep().finally(() => this.armSweep()); // sweep() catches and logs its errors
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
        deletes.push(this.deleteRetained(t));
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

  /** Stops sweeping. */
  close(): void {
    this.closed = true;
    this.cancelSweepTimer?.();
  }
}
