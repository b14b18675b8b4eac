/**
 * Multicast: one message stored into several queues in one commit (a copy each), answered
 * once durable — or, with `waitForAcks`, once every copy was acked or dead-lettered, or the
 * timeout passed. Used by QueueEnqueue (queue-enqueue.ts).
 */
import { FerryError, isValidQueueName, toFerryError, type NewMessage } from 'ferrymq/model';
import {
  DEFAULT_MULTICAST_TIMEOUT_MS,
  MAX_MULTICAST_QUEUES,
  MAX_MULTICAST_TIMEOUT_MS,
  type MulticastOptions,
  type MulticastOutcome,
  type QueueCopies,
} from './broker-types.js';
import { checkKey, copyKeyOf } from './checks.js';
import type { Clock } from './clock.js';

/** What multicast needs of the queue engine. */
export interface MulticastDeps {
  /** Stores the copies in one commit and hands them out; resolves at the commit. */
  storeCopies(copies: QueueCopies[]): Promise<string[][]>;
  /** Resolves once every commit so far is durable. */
  durable(): Promise<void>;
  clock: Clock;
  /** Per message id: told when that message is acked or dead-lettered. */
  settleWatchers: Map<string, (outcome: 'acked' | 'dead') => void>;
}

export function multicastToQueues(
  deps: MulticastDeps,
  queues: string[],
  message: NewMessage,
  options: MulticastOptions,
): Promise<MulticastOutcome> {
  if (
    !Array.isArray(queues) ||
    queues.length === 0 ||
    queues.length > MAX_MULTICAST_QUEUES ||
    new Set(queues).size !== queues.length
  ) {
    return Promise.reject(
      new FerryError(
        'BAD_ARGUMENTS',
        `queues must be 1–${MAX_MULTICAST_QUEUES} distinct queue names`,
      ),
    );
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_MULTICAST_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_MULTICAST_TIMEOUT_MS) {
    return Promise.reject(
      new FerryError('BAD_ARGUMENTS', `timeoutMs must be in (0, ${MAX_MULTICAST_TIMEOUT_MS}]`),
    );
  }
  for (const q of queues) {
    if (!isValidQueueName(q)) {
      return Promise.reject(
        new FerryError('INVALID_QUEUE_NAME', `invalid queue name: ${JSON.stringify(q)}`),
      );
    }
  }
  let copy = message;
  if (options.requestKey !== undefined) {
    try {
      checkKey(options.requestKey, 'requestKey');
    } catch (err) {
      return Promise.reject(toFerryError(err));
    }
    copy = { ...message, dedupKey: copyKeyOf(options.requestKey) };
  }
  // Every copy's storage call is made in this turn: one transaction, one fsync.
  const committed = deps.storeCopies([{ queues, message: copy }]).then((lists) => {
    const list = lists[0]!;
    const ids: Record<string, string> = {};
    queues.forEach((q, i) => (ids[q] = list[i]!));
    return ids;
  });
  if (!options.waitForAcks) {
    return committed.then((ids) => deps.durable().then(() => ({ ids })));
  }
  // The copies are handed out at the commit: watch for their acks from then on.
  return committed.then(
    (ids) =>
      new Promise<MulticastOutcome>((resolve, reject) => {
        const acked: string[] = [];
        const dead: string[] = [];
        const pending = new Set(queues);
        const byId = new Map(queues.map((q) => [ids[q]!, q]));
        const finish = (): void => {
          cancel();
          for (const id of byId.keys()) deps.settleWatchers.delete(id);
          resolve({
            ids,
            complete: pending.size === 0 && dead.length === 0,
            acked: acked.sort(),
            dead: dead.sort(),
            pending: [...pending].sort(),
          });
        };
        let durable = false;
        let settled = false;
        const cancel = deps.clock.setTimer(() => {
          settled = true;
          if (durable) finish();
        }, timeoutMs);
        for (const [id, q] of byId) {
          deps.settleWatchers.set(id, (outcome) => {
            if (!pending.delete(q)) return;
            (outcome === 'acked' ? acked : dead).push(q);
            if (pending.size === 0) {
              settled = true;
              if (durable) finish();
            }
          });
        }
        // The answer also waits for the copies to be durable.
        deps.durable().then(
          () => {
            durable = true;
            if (settled) finish();
          },
          (err: unknown) => {
            cancel();
            for (const id of byId.keys()) deps.settleWatchers.delete(id);
            reject(toFerryError(err));
          },
        );
      }),
  );
}
