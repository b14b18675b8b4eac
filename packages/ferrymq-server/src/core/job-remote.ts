/**
 * What other brokers sharing the store did to jobs, applied here (a shared store only): jobs
 * queued for a service whose workers are here are leased now; a job watched here is read
 * again and its new events go out; a job running here that another broker ended (cancelled)
 * is cancelled at its worker. Also the shared counters, probes and watched-job reads of the
 * periodic sweep.
 */
import { isFinalStatus } from 'ferrymq/model';
import type { RemoteChanges } from '../storage/types.js';
import type { JobDispatch } from './job-dispatch.js';
import type { JobRuns } from './job-runs.js';
import type { JobServerState } from './job-server-state.js';
import { markDue } from './job-state.js';
import type { JobWatchers } from './job-watchers.js';

export class JobRemote {
  constructor(
    private readonly state: JobServerState,
    private readonly dispatch: JobDispatch,
    private readonly runs: JobRuns,
    private readonly watchers: JobWatchers,
  ) {}

  onRemote(changes: RemoteChanges): void {
    for (const name of changes.services) {
      const s = this.state.services.get(name);
      if (!s || s.workers.length === 0) continue;
      markDue(s);
      this.dispatch.pump(s);
    }
    for (const id of changes.jobs) {
      this.watchers
        .refresh(id)
        .catch((err: unknown) =>
          this.state.log.warn('job refresh failed', { job: id, err: String(err) }),
        );
      const r = this.state.runs.get(id);
      if (r && !r.cancelled) void this.cancelIfEnded(id);
    }
  }

  /** A job running here that the store says has ended (cancelled elsewhere): tell its worker. */
  private async cancelIfEnded(id: string): Promise<void> {
    const row = await this.state.calls.track(this.state.storage.get(id)).catch(() => null);
    const r = this.state.runs.get(id);
    if (row && isFinalStatus(row.status) && r && !r.cancelled) this.runs.cancelRunning(r);
  }

  /**
   * The periodic sweep's part: counters from the store, and a probe of every service with a
   * free worker slot here (jobs other brokers stored are not in this broker's counters).
   */
  refreshShared(): void {
    this.state.calls.track(this.state.storage.counts()).then(
      (all) => {
        for (const [name, counts] of all) this.state.durable.set(name, counts);
      },
      (err: unknown) => this.state.log.error('job counts refresh failed', { err: String(err) }),
    );
    for (const s of this.state.services.values()) {
      if (s.workers.length > 0 && this.dispatch.freeSlots(s) > 0) {
        markDue(s);
        this.dispatch.pump(s);
      }
    }
    // Watched durable jobs not running here are read again: the floor under the notices
    // another broker's worker sends (one missed must not leave a caller waiting).
    for (const id of this.watchers.watchedIds()) {
      if (this.state.runs.has(id) || this.state.transient.isLive(id)) continue;
      this.watchers
        .refresh(id)
        .catch((err: unknown) =>
          this.state.log.warn('job refresh failed', { job: id, err: String(err) }),
        );
    }
  }
}
