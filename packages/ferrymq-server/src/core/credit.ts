/**
 * Credit: how much more work a taker may have in flight. A queue consumer's credit is its
 * prefetch less its unacked deliveries; a job worker's is its concurrency less the jobs it
 * holds. Dispatch hands work only to takers with credit, chosen round robin (queues) or least
 * recently used (jobs).
 */

/** A taker of work with a limit on what it holds at once. */
export interface CreditHolder {
  /** How much more it may take now: 0 when full, paused or gone. */
  readonly credit: number;
}

/** The sum of the holders' credit. */
export function totalCredit(holders: readonly CreditHolder[]): number {
  let n = 0;
  for (const h of holders) n += h.credit;
  return n;
}

/**
 * Round robin: the index of the first holder with credit, looking from `cursor` on and
 * wrapping around; -1 when none has credit. The next search starts one past the result.
 */
export function nextWithCredit(holders: readonly CreditHolder[], cursor: number): number {
  const n = holders.length;
  for (let k = 0; k < n; k++) {
    const i = (cursor + k) % n;
    if (holders[i]!.credit > 0) return i;
  }
  return -1;
}

/** A holder that remembers the order of its last assignment (lower: longer ago). */
export interface LruCreditHolder extends CreditHolder {
  readonly lastAssignSeq: number;
}

/** The holder with credit whose last assignment is the oldest (the first one on ties). */
export function leastRecentlyUsed<H extends LruCreditHolder>(holders: readonly H[]): H | undefined {
  let best: H | undefined;
  for (const h of holders) {
    if (h.credit <= 0) continue;
    if (!best || h.lastAssignSeq < best.lastAssignSeq) best = h;
  }
  return best;
}
