/**
 * The queue engine's timers: the ack-timeout scan, the periodic sweep of expired messages and
 * dedup windows (with a probe of idle consumers' queues, so counters that drifted heal), and
 * promoting delayed messages to ready when they come due.
 */
import type { Storage } from '../storage/types.js';
import type { BrokerState } from './broker-state.js';
import {
  LEASE_SCAN_INTERVAL_MS,
  MAINTENANCE_INTERVAL_MS,
  SWEEP_BATCH_MAX,
} from './broker-types.js';
import type { Clock } from './clock.js';
import type { PendingCalls } from './pending-calls.js';
import type { QueueDispatch } from './queue-dispatch.js';
import type { QueueSettle } from './queue-settle.js';
import { addReady } from './queue-state.js';
import type { DueTimer, Scheduler } from './scheduler.js';
import { releaseIfUnder } from './flow-control.js';

export class QueueMaintenance {
  private readonly storage: Storage;
  private readonly clock: Clock;
  private readonly calls: PendingCalls;

  constructor(
    private readonly state: BrokerState,
    private readonly dispatch: QueueDispatch,
    private readonly settle: QueueSettle,
    private readonly due: DueTimer,
  ) {
    this.storage = state.storage;
    this.clock = state.clock;
    this.calls = state.calls;
  }

  /** Arms the periodic timers: the lease scan, then the sweep. */
  start(scheduler: Scheduler): void {
    scheduler.every(LEASE_SCAN_INTERVAL_MS, () => this.settle.expireLeases());
    scheduler.every(MAINTENANCE_INTERVAL_MS, () => this.maintain());
  }

  private maintain(): void {
    if (this.storage.shared) this.refreshShared();
    this.calls.track(this.storage.sweepExpired(this.clock.now(), SWEEP_BATCH_MAX)).then(
      (deltas) => {
        for (const d of deltas) {
          const q = this.state.queues.get(d.queue);
          if (!q) continue;
          q.counts.ready = Math.max(0, q.counts.ready - d.ready);
          q.counts.scheduled = Math.max(0, q.counts.scheduled - d.scheduled);
          q.counts.bytes -= d.bytes;
          q.expired += d.ready + d.scheduled;
        }
      },
      (err: unknown) => this.state.log.error('sweep failed', { err: String(err) }),
    );
    // Self-healing: a queue whose counters say empty but whose consumers wait gets a probe;
    // held confirms of a queue back under its bound (consumers left, pause) are answered.
    for (const q of this.state.queues.values()) {
      releaseIfUnder(q, this.state.limits.flowBacklogFactor);
      if (q.consumers.length > 0 && q.counts.ready <= 0) {
        q.probe = true;
        this.dispatch.pump(q);
      }
    }
  }

  /**
   * A shared store: every broker's counters are the store's (other brokers send, lease and
   * ack too), queues other brokers made become known here, and the due timer follows the
   * earliest delayed message whoever stored it.
   */
  private refreshShared(): void {
    this.calls.track(this.storage.counts()).then(
      (all) => {
        for (const [name, counts] of all) {
          const q = this.state.queues.get(name);
          if (!q) {
            this.state.recoverQueue(name, counts);
            continue;
          }
          q.counts = { ...counts };
          // Ready messages other brokers stored, for consumers here.
          if (counts.ready > 0 && q.consumers.length > 0) this.dispatch.pump(q);
        }
      },
      (err: unknown) => this.state.log.error('counts refresh failed', { err: String(err) }),
    );
    this.calls.track(this.storage.nextDueAt()).then(
      (next) => {
        if (next !== null) this.due.schedule(next);
      },
      () => {},
    );
  }

  /** The due timer fired: delayed messages due by now become ready; re-arm for the next. */
  promoteDue(): void {
    const now = this.clock.now();
    this.calls.track(this.storage.promoteDue(now)).then(
      (deltas) => {
        for (const d of deltas) {
          const q = this.state.queues.get(d.queue);
          if (!q) continue;
          q.counts.scheduled = Math.max(0, q.counts.scheduled - d.count);
          addReady(q, d.count);
          this.dispatch.pump(q);
        }
      },
      (err: unknown) => this.state.log.error('promote failed', { err: String(err) }),
    );
    this.calls.track(this.storage.nextDueAt()).then(
      (next) => {
        if (next !== null) this.due.schedule(next);
      },
      () => {},
    );
  }
}
