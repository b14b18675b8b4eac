/**
 * The heartbeat clock of the worker-facing dialects (MDP, ZMWS): checks liveness several times
 * per heartbeat interval, and says on which tick a heartbeat is due (once per interval).
 */
import type { Clock } from '../core/clock.js';

export interface HeartbeatTick {
  now: number;
  /** A heartbeat is due to the peers on this tick. */
  beat: boolean;
  /** A peer silent for longer than this is gone (interval × liveness). */
  deadAfterMs: number;
}

export class HeartbeatTicker {
  private cancel: (() => void) | undefined;
  private lastBeatAt: number;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly liveness: number,
    private readonly checksPerInterval: number,
    private readonly onTick: (tick: HeartbeatTick) => void,
  ) {
    this.lastBeatAt = clock.now();
    this.arm();
  }

  private arm(): void {
    this.cancel = this.clock.setTimer(
      () => {
        if (this.stopped) return;
        const now = this.clock.now();
        const beat = now - this.lastBeatAt >= this.intervalMs;
        if (beat) this.lastBeatAt = now;
        this.onTick({ now, beat, deadAfterMs: this.intervalMs * this.liveness });
        this.arm();
      },
      Math.max(1, Math.floor(this.intervalMs / this.checksPerInterval)),
    );
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }
}
