/** Events per second over a sliding window of whole seconds. */
const RATE_WINDOW_S = 10;

export class RateMeter {
  private readonly buckets = new Float64Array(RATE_WINDOW_S);
  private readonly stamps = new Float64Array(RATE_WINDOW_S);
  total = 0;

  mark(now: number, n = 1): void {
    const sec = Math.floor(now / 1000);
    const i = sec % RATE_WINDOW_S;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.buckets[i] = 0;
    }
    this.buckets[i]! += n;
    this.total += n;
  }

  /** Average per second over the last full seconds of the window. */
  perSecond(now: number): number {
    const sec = Math.floor(now / 1000);
    let sum = 0;
    for (let k = 1; k <= RATE_WINDOW_S - 1; k++) {
      const s = sec - k;
      const i = ((s % RATE_WINDOW_S) + RATE_WINDOW_S) % RATE_WINDOW_S;
      if (this.stamps[i] === s) sum += this.buckets[i]!;
    }
    return sum / (RATE_WINDOW_S - 1);
  }
}
