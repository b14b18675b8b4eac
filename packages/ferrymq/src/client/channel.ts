/** A simple async queue (push values, iterate them): consumers' messages and status events. */

/** A simple async queue: push values, iterate them. */
export class Channel<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiters: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
  private ended = false;
  private error: unknown;

  push(v: T): void {
    if (this.ended) return;
    const w = this.waiters.shift();
    if (w) w.resolve({ value: v, done: false });
    else this.items.push(v);
  }
  end(): void {
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }
  /** Ends with an error: the next read (after what is buffered) throws it. */
  fail(err: unknown): void {
    this.error = err;
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
  drain(): T[] {
    return this.items.splice(0);
  }
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const v = this.items.shift();
        if (v !== undefined) return Promise.resolve({ value: v, done: false });
        if (this.error !== undefined) {
          const e: unknown = this.error;
          this.error = undefined;
          return Promise.reject(e);
        }
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
