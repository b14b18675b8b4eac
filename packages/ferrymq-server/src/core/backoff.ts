/**
 * Retry delay for a nack without an explicit delay: exponential in the attempt number, capped,
 * with "equal jitter" (half fixed, half random) so retries of many messages spread out while
 * each still waits at least half the nominal delay.
 */
export function retryDelayMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  const half = exp / 2;
  return Math.round(half + random() * half);
}
