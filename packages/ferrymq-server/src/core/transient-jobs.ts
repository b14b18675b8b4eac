/**
 * Transient jobs: held in memory only, like a Majordomo request. Live ones until final, then
 * the most recent finished ones (oldest evicted first) so `get` and late watchers still see a
 * call's outcome right after it.
 */
import type { Job } from './job-state.js';

/** Finished transient jobs kept in memory so `get` still answers right after a call. */
export const RECENT_TRANSIENT_MAX = 10_000;

export class TransientJobs {
  /** Transient jobs that are not final. */
  private readonly live = new Map<string, Job>();
  /** Transient jobs recently finished (insertion order = age). */
  private readonly recent = new Map<string, Job>();

  add(job: Job): void {
    this.live.set(job.id, job);
  }

  /** A live (not final) transient job. */
  getLive(id: string): Job | undefined {
    return this.live.get(id);
  }

  isLive(id: string): boolean {
    return this.live.has(id);
  }

  /** A recently finished transient job. */
  getRecent(id: string): Job | undefined {
    return this.recent.get(id);
  }

  /** A live or recently finished transient job. */
  get(id: string): Job | undefined {
    return this.live.get(id) ?? this.recent.get(id);
  }

  /** The job became final: kept among the recent ones, the oldest of which may go. */
  retire(job: Job): void {
    this.live.delete(job.id);
    this.recent.set(job.id, job);
    if (this.recent.size > RECENT_TRANSIENT_MAX) {
      const oldest = this.recent.keys().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
  }

  /** Forgets a finished job; true if it was among the recent ones. */
  forgetRecent(id: string): boolean {
    return this.recent.delete(id);
  }

  /** The live jobs, as a copy (finalizing them changes the map). */
  liveJobs(): Job[] {
    return [...this.live.values()];
  }
}
