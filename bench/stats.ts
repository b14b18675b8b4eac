/** Small statistics helpers: percentiles over samples, median with min–max over runs. */

/** Sorts a copy of the samples (ascending). */
function sorted(samples: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(samples);
  out.sort();
  return out;
}

/** Nearest-rank percentile (p in 0–100) of ascending samples; NaN when empty. */
function percentile(ascending: Float64Array, p: number): number {
  if (ascending.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * ascending.length);
  const i = Math.min(ascending.length - 1, Math.max(0, rank - 1));
  return ascending[i]!;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function summarizeLatency(samples: ArrayLike<number>): LatencySummary {
  const s = sorted(samples);
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i]!;
  return {
    count: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    p999: percentile(s, 99.9),
    max: s.length > 0 ? s[s.length - 1]! : NaN,
    mean: s.length > 0 ? sum / s.length : NaN,
  };
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Median (mean of the middle two for an even count), min and max of finite values. */
export function spread(values: readonly number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** A number with thousands separators and a sensible number of decimals. */
export function fmt(x: number, unit = ''): string {
  if (!Number.isFinite(x)) return 'n/a';
  const abs = Math.abs(x);
  // Whole numbers (counts: lost deliveries, duplicates) print without decimals.
  const digits = abs >= 100 || Number.isInteger(x) ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  const s = x.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  return unit === '' ? s : `${s} ${unit}`;
}
