/**
 * Timers over an injected {@link Clock}: periodic scans (lease and deadline expiry, sweeps),
 * one-shot timers cancelled together at shutdown, and a due timer armed for the earliest of
 * the times asked for (when the next delayed message becomes ready).
 */
import type { Clock } from './clock.js';

/** Periodic and one-shot timers that stop together. */
export class Scheduler {
  private stopped = false;
  /** Cancels of the periodic timers' current runs. */
  private readonly periodic: { cancel: () => void }[] = [];
  /** Cancels of one-shot timers that have not fired. */
  private readonly oneShots = new Set<() => void>();

  constructor(private readonly clock: Clock) {}

  /** True once stop() was called. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Runs `fn` every `ms` (each run re-arms after `fn` returns) until stop(). */
  every(ms: number, fn: () => void): void {
    const slot = { cancel: (): void => {} };
    const arm = (): void => {
      slot.cancel = this.clock.setTimer(() => {
        fn();
        if (!this.stopped) arm();
      }, ms);
    };
    arm();
    this.periodic.push(slot);
  }

  /** Runs `fn` once after `ms`, unless stop() comes first. */
  after(ms: number, fn: () => void): void {
    const cancel = this.clock.setTimer(() => {
      this.oneShots.delete(cancel);
      fn();
    }, ms);
    this.oneShots.add(cancel);
  }

  /** Cancels every timer; periodic ones are not re-armed. */
  stop(): void {
    this.stopped = true;
    for (const p of this.periodic) p.cancel();
    for (const cancel of this.oneShots) cancel();
    this.oneShots.clear();
  }
}

/**
 * One timer for the earliest due time asked for: schedule(at) re-arms only when `at` is
 * earlier than the time already set. It fires no sooner than `minIntervalMs` after being
 * armed; when it fires, the next schedule() arms it afresh.
 */
export class DueTimer {
  private dueAt: number | null = null;
  private cancelTimer: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly minIntervalMs: number,
    private readonly onDue: () => void,
  ) {}

  /** The time the timer is armed for, or null. */
  get nextAt(): number | null {
    return this.dueAt;
  }

  schedule(at: number): void {
    if (this.stopped) return;
    if (this.dueAt !== null && this.dueAt <= at) return;
    this.cancelTimer?.();
    this.dueAt = at;
    const wait = Math.max(this.minIntervalMs, at - this.clock.now());
    this.cancelTimer = this.clock.setTimer(() => {
      this.dueAt = null;
      this.cancelTimer = undefined;
      this.onDue();
    }, wait);
  }

  /** Cancels the timer; later schedule() calls do nothing. */
  stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
  }
}
