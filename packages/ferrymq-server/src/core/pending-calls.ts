/**
 * Storage calls in flight, counted so that a closing broker or job server can wait for the
 * last one to settle before it closes the store.
 */
export class PendingCalls {
  private count = 0;
  private idleWaiters: (() => void)[] = [];

  /** Storage calls not yet settled. */
  get pending(): number {
    return this.count;
  }

  /** Counts `p` until it settles; returns `p` itself (no extra promise for the caller). */
  track<T>(p: Promise<T>): Promise<T> {
    this.count++;
    const done = (): void => {
      this.count--;
      if (this.count === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    };
    p.then(done, done);
    return p;
  }

  /** Resolves once no call is pending (callers check `pending > 0` first). */
  idle(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}
