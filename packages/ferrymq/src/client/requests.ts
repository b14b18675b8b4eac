/**
 * What the connection keeps of each request in flight, and which requests may be sent again:
 * the request table's entries, streams (requests with EVENT messages), the retry rule of a
 * graceful broker stop, and the errors requests end with.
 */
import { FerryError } from '../model/errors.js';
import { errorFromReply, type Command, type Json, type Reply } from '../protocol/codec.js';

/**
 * Requests sent again after a reconnect when the broker refused them with SHUTTING_DOWN
 * (a graceful stop): refused means not done, and each is safe to repeat — reads, SENDs (their
 * request key stores them once), settles (answered lease-lost if the lease died with the
 * session), registrations. CALL, MULTICAST, PUBLISH, PURGE… are not: their caller decides.
 */
const RETRY_AFTER_SHUTDOWN: ReadonlySet<Command> = new Set<Command>([
  'SEND',
  'CONSUME',
  'CANCEL',
  'ACK',
  'NACK',
  'EXTEND',
  'STATS',
  'QUEUES',
  'PEEK',
  'DLQ_LIST',
  'JOB',
  'JOBS',
  'WATCH',
  'UNWATCH',
  'WORKER',
  'WORKER_STOP',
  'COMPLETE',
  'FAIL',
  'PROGRESS',
  'JOB_EXTEND',
  'SERVICES',
  'WORKERS',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'TOPIC_ACK',
  'RETAINED',
  'CONFIRM',
  'TOPIC_STATUS',
]);

/** Whether a request refused with SHUTTING_DOWN is held and sent again after the reconnect. */
export function retriesAfterShutdown(command: Command, args: Json): boolean {
  // A SUBMIT with a dedup key is stored once, whatever the number of tries.
  return (
    RETRY_AFTER_SHUTDOWN.has(command) ||
    (command === 'SUBMIT' && typeof args['dedupKey'] === 'string')
  );
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
