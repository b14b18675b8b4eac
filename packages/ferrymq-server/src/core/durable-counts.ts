/**
 * Durable jobs per service and status, as the store holds them: read once at open, then moved
 * along with every change the job server commits. Listings and the maxQueued limit read them
 * without a query.
 */
import type { JobStatus } from 'ferrymq/model';
import type { JobCounts } from '../storage/types.js';

export class DurableCounts {
  private readonly byService = new Map<string, JobCounts>();

  /** Sets a service's counts (at open). */
  set(service: string, counts: JobCounts): void {
    this.byService.set(service, { ...counts });
  }

  get(service: string): JobCounts | undefined {
    return this.byService.get(service);
  }

  /** Services with counts. */
  services(): IterableIterator<string> {
    return this.byService.keys();
  }

  /** Moves `n` durable jobs of a service from one status to another (null: none). */
  move(service: string, from: JobStatus | null, to: JobStatus | null, n = 1): void {
    let c = this.byService.get(service);
    if (!c) {
      c = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0, expired: 0 };
      this.byService.set(service, c);
    }
    if (from) c[from] = Math.max(0, c[from] - n);
    if (to) c[to] += n;
  }

  /** Durable jobs of a service queued in the store (due or not). */
  queued(service: string): number {
    return this.byService.get(service)?.queued ?? 0;
  }
}
