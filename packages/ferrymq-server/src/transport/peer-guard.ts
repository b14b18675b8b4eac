/**
 * The peer guard of a ROUTER endpoint: counts the invalid frames each peer sends and drops a
 * peer that keeps sending them. A ZeroMQ ROUTER cannot close one peer's connection, so a
 * dropped peer is ignored instead: for a cool-down, everything it sends is discarded unread
 * and nothing is answered (its Ferry session then ends by heartbeat silence, which releases
 * its leases). After the cool-down it is a new peer again. docs/protocol.md "Dropped peers".
 */
import type { PeerGuardStats } from 'ferrymq/model';

/** Invalid frames a peer may send within the window before it is dropped. */
const PEER_INVALID_FRAMES_LIMIT = 5;
/** The window in which invalid frames are counted, ms. */
const PEER_INVALID_WINDOW_MS = 10_000;
/** How long a dropped peer is ignored, ms. */
const PEER_COOL_DOWN_MS = 30_000;
/** Peers remembered before stale entries are swept (bounds the guard's memory). */
const PEER_GUARD_SWEEP_AT = 10_000;

interface PeerRecord {
  /** Invalid frames in the current window. */
  invalid: number;
  windowStart: number;
  /** Ignored until then (0: not dropped). */
  droppedUntil: number;
}

export interface PeerGuardOptions {
  invalidLimit?: number;
  windowMs?: number;
  coolDownMs?: number;
  now?: () => number;
}

export class PeerGuard {
  private readonly records = new Map<string, PeerRecord>();
  private readonly invalidLimit: number;
  private readonly windowMs: number;
  private readonly coolDownMs: number;
  private readonly now: () => number;
  readonly stats: PeerGuardStats = {
    invalidFrames: 0,
    peersDropped: 0,
    ignoredFrames: 0,
    droppedNow: 0,
    messagesIn: 0,
    messagesOut: 0,
  };

  constructor(options: PeerGuardOptions = {}) {
    this.invalidLimit = options.invalidLimit ?? PEER_INVALID_FRAMES_LIMIT;
    this.windowMs = options.windowMs ?? PEER_INVALID_WINDOW_MS;
    this.coolDownMs = options.coolDownMs ?? PEER_COOL_DOWN_MS;
    this.now = options.now ?? Date.now;
  }

  /** Whether a message from `key` is ignored now (counted when it is). */
  ignores(key: string): boolean {
    const r = this.records.get(key);
    if (!r || r.droppedUntil === 0) return false;
    if (this.now() < r.droppedUntil) {
      this.stats.ignoredFrames++;
      return true;
    }
    // Cool-down over: a fresh start.
    this.records.delete(key);
    this.stats.droppedNow--;
    return false;
  }

  /** Whether anything may be sent to `key` (nothing is, while it is dropped). */
  answers(key: string): boolean {
    const r = this.records.get(key);
    return !r || r.droppedUntil === 0 || this.now() >= r.droppedUntil;
  }

  /** `key` sent an invalid frame (already answered with a coded error, or dropped). */
  invalid(key: string): void {
    this.stats.invalidFrames++;
    const now = this.now();
    let r = this.records.get(key);
    if (!r || now - r.windowStart > this.windowMs) {
      if (!r && this.records.size >= PEER_GUARD_SWEEP_AT) this.sweep(now);
      r = { invalid: 0, windowStart: now, droppedUntil: 0 };
      this.records.set(key, r);
    }
    if (r.droppedUntil !== 0) return;
    r.invalid++;
    if (r.invalid >= this.invalidLimit) {
      r.droppedUntil = now + this.coolDownMs;
      this.stats.peersDropped++;
      this.stats.droppedNow++;
    }
  }

  /** Forgets peers whose window and cool-down are over. */
  private sweep(now: number): void {
    for (const [key, r] of this.records) {
      if (r.droppedUntil === 0 ? now - r.windowStart > this.windowMs : now >= r.droppedUntil) {
        if (r.droppedUntil !== 0) this.stats.droppedNow--;
        this.records.delete(key);
      }
    }
  }
}
