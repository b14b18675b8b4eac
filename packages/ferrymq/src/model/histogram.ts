/**
 * A fixed-bucket histogram: counts of observations at or under each upper bound, their sum and
 * their count. Cheap to record on a hot path (one loop over a few bounds), and its snapshot is
 * plain data, so stats replies, `ferry stats` and `/metrics` all read the same numbers.
 */

/** Plain-data view of a histogram. `counts[i]` is cumulative: observations ≤ `bounds[i]`. */
export interface HistogramSnapshot {
  bounds: number[];
  counts: number[];
  sum: number;
  count: number;
}

/** Upper bounds for durations in ms, from a tenth of a millisecond to ten seconds. */
export const DURATION_MS_BOUNDS: readonly number[] = [
  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10_000,
];

/** Upper bounds for batch sizes (calls or messages per commit). */
export const BATCH_SIZE_BOUNDS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export class Histogram {
  private readonly bounds: readonly number[];
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    // Stored per bucket; made cumulative in the snapshot.
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= this.bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  snapshot(): HistogramSnapshot {
    let running = 0;
    const counts = this.counts.map((c) => (running += c));
    return { bounds: [...this.bounds], counts, sum: this.sum, count: this.count };
  }
}

/** The value under which a fraction `q` (0–1) of observations fall, by bucket upper bound. */
export function quantileOf(h: HistogramSnapshot, q: number): number | null {
  if (h.count === 0) return null;
  const rank = q * h.count;
  for (let i = 0; i < h.bounds.length; i++) if (h.counts[i]! >= rank) return h.bounds[i]!;
  return Infinity;
}
