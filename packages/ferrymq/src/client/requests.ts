/**
 * What the connection keeps of each request in flight, and which requests may be sent again:
 * the request table's entries, streams (requests with EVENT messages), the retry rule of a
 * graceful broker stop, and the errors requests end with.
 */
import { FerryError } from '../model/errors.js';
import { errorFromReply, type Command, type Reply } from '../protocol/codec.js';

/**
 * The broker answers SHUTTING_DOWN (a graceful stop) only for a request it refused before
 * doing any of it: a check before the work, or a store that refused the whole write. So such a
 * request is held and sent again once a broker answers HELLO — SENDs are stored once anyway
 * (their request key), SUBMITs too (their dedup key), settles of leases the old session held
 * resolve lease-lost, reads and registrations are repeatable. Not the session's own traffic.
 */
const NOT_RETRIED_AFTER_SHUTDOWN: ReadonlySet<Command> = new Set<Command>(['HELLO', 'PING', 'BYE']);

/** Whether a request refused with SHUTTING_DOWN is held and sent again after the reconnect. */
export function retriesAfterShutdown(command: Command): boolean {
  return !NOT_RETRIED_AFTER_SHUTDOWN.has(command);
}

/**
 * Whether a reply says the broker stopped gracefully under the request: SHUTTING_DOWN, or — for
 * a CALL — its in-memory job failed because the broker shut down. Such a call is sent again
 * after the reconnect, as it is when the broker dies under it (a call runs at least once).
 */
export function stoppedUnder(command: Command, reply: Reply): boolean {
  if (reply.kind !== 'ERROR') return false;
  const code = reply.args['code'];
  if (code === 'SHUTTING_DOWN') return true;
  if (command !== 'CALL' || code !== 'JOB_FAILED') return false;
  const job = reply.args['job'] as { error?: { code?: unknown } } | undefined;
  return job?.error?.code === 'SHUTTING_DOWN';
}

export interface Pending {
  command: Command;
  frames: Buffer[];
  /** Sent again after a reconnect if the broker answered SHUTTING_DOWN. */
  retryAfterShutdown: boolean;
  /** Means something only in this session (a settle): LEASE_LOST once that session is gone. */
  scope: string | undefined;
  resolve: (reply: Reply) => void;
  reject: (err: FerryError) => void;
  timer: NodeJS.Timeout | undefined;
  sentAt: number;
}

export interface Stream {
  onEvent: (reply: Reply) => void;
  frames: Buffer[];
  answered: boolean;
  /** Send again after a reconnect (watches). */
  resend: boolean;
}

/** What a request of a session that is gone rejects with. */
export function sessionGone(): FerryError {
  return new FerryError('LEASE_LOST', 'the session that held the lease ended (reconnected)');
}

/** The FerryError of an ERROR reply, with the reply's extra fields (e.g. `job`) as details. */
export function errorWithDetails(reply: Reply): FerryError {
  const base = errorFromReply(reply);
  const { code: _c, message: _m, ...details } = reply.args;
  if (Object.keys(details).length === 0) return base;
  return new FerryError(base.code, base.message, { details });
}
