/**
 * Producer flow control: when a queue's ready backlog passes a bound — a multiple of its
 * consumers' total prefetch — the confirms of new sends to it are held (the messages are
 * stored and durable; only the producer's answer waits), and released, oldest first and
 * taking producers in turn, once consumers bring the backlog back under the bound. A producer
 * that keeps a window of unconfirmed sends (the SDK, most clients) then sends at the
 * consumers' rate, so the backlog — and the time a message waits in it — stays bounded
 * instead of growing for as long as producers outrun consumers (RabbitMQ's credit flow, which
 * blocks publishing connections, does the same job).
 *
 * A queue without consumers, or paused, holds nothing: a backlog is then what the operator
 * asked for (W2-style bulk loads), and its limits are maxDepth / maxBytes.
 */
import type { QueueState } from './queue-state.js';

/**
 * The ready backlog above which a queue holds producers' confirms: `factor` × the total
 * prefetch of its active consumers; Infinity when flow control does not apply (factor 0, no
 * consumer, paused).
 */
function flowBound(q: QueueState, factor: number): number {
  if (factor <= 0 || q.paused) return Infinity;
  let prefetch = 0;
  for (const c of q.consumers) if (c.active) prefetch += c.prefetch;
  return prefetch > 0 ? factor * prefetch : Infinity;
}

/** Whether a confirm of a send to `q` is held now. */
export function overBound(q: QueueState, factor: number): boolean {
  return q.counts.ready > flowBound(q, factor);
}

/** Releases the queue's held confirms if its backlog is back within the bound. */
export function releaseIfUnder(q: QueueState, factor: number): void {
  if (q.held.size > 0 && !overBound(q, factor)) q.held.releaseAll();
}
