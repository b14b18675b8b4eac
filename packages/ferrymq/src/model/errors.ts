/**
 * The error registry: every error Ferry reports, with a stable code, the HTTP status the
 * gateway maps it to, and a one-line description. Codes travel over the wire in ERROR frames;
 * clients rebuild a typed {@link FerryError} from them. `docs/errors.md` lists the same table
 * and a test fails when the two disagree. Codes are never reused or renamed.
 */
export const ERROR_REGISTRY = {
  BAD_FRAME: {
    status: 400,
    description: 'A message did not have the frame layout of the protocol.',
  },
  UNSUPPORTED_VERSION: {
    status: 400,
    description: 'The header frame named a protocol or version this broker does not speak.',
  },
  UNKNOWN_COMMAND: { status: 400, description: 'The command frame named no known command.' },
  BAD_ARGUMENTS: {
    status: 400,
    description: 'The arguments frame was not a JSON object of the shape the command takes.',
  },
  INVALID_QUEUE_NAME: {
    status: 400,
    description:
      'A queue name was empty, too long, `.` or `..`, or used characters outside [A-Za-z0-9._:-].',
  },
  MESSAGE_TOO_LARGE: { status: 413, description: 'A message exceeded the broker limit on bytes.' },
  BATCH_TOO_LARGE: {
    status: 413,
    description: 'A request carried more messages or frames than the broker limit.',
  },
  QUEUE_FULL: {
    status: 429,
    description: 'The queue is at its max depth or max bytes; the message was not stored.',
  },
  TOO_MANY_QUEUES: {
    status: 429,
    description: 'The broker is at its limit on the number of queues.',
  },
  TOO_MANY_CONSUMERS: {
    status: 429,
    description: 'The session is at its limit on the number of consumers.',
  },
  NO_SESSION: {
    status: 401,
    description: 'The peer has no session (send HELLO first; the broker may have restarted).',
  },
  LEASE_LOST: {
    status: 409,
    description: 'The message is not leased to this session any more (acked, expired or released).',
  },
  CONSUMER_EXISTS: {
    status: 409,
    description: 'A consumer with that tag already exists in the session.',
  },
  CONSUMER_NOT_FOUND: {
    status: 404,
    description: 'No consumer with that tag exists in the session.',
  },
  QUEUE_NOT_FOUND: { status: 404, description: 'The queue does not exist.' },
  QUEUE_NOT_EMPTY: {
    status: 409,
    description:
      'The queue still holds messages (ready, leased, scheduled or dead); delete it with force.',
  },
  QUEUE_DELETED: {
    status: 410,
    description: 'The queue was deleted: its consumers were cancelled and its messages removed.',
  },
  INVALID_POLICY: {
    status: 400,
    description: 'A runtime queue policy named an unknown key or a value out of its bounds.',
  },
  MESSAGE_NOT_FOUND: {
    status: 404,
    description: 'The queue holds no message with that id (acked, deleted, expired or never sent).',
  },
  MESSAGE_LEASED: {
    status: 409,
    description: 'The message is leased to a consumer; it cannot be deleted until settled.',
  },
  MESSAGE_NOT_DEAD: {
    status: 409,
    description: 'The message is not a dead letter, so it cannot be redriven.',
  },
  STORAGE_FULL: {
    status: 507,
    description: 'The disk is full; new messages are refused, stored ones are kept.',
  },
  STORAGE_ERROR: {
    status: 500,
    description: 'The store failed a write; nothing in the request was stored.',
  },
  NODE_ID_IN_USE: {
    status: 409,
    description:
      'Another live broker sharing the store uses this node id; each broker needs its own.',
  },
  SHUTTING_DOWN: {
    status: 503,
    description: 'The broker is shutting down and accepts no new work.',
  },
  TIMEOUT: { status: 504, description: 'No answer from the broker within the request timeout.' },
  CONNECTION_CLOSED: {
    status: 503,
    description: 'The client was closed before the request completed.',
  },
  CONFIG_INVALID: { status: 400, description: 'A configuration key, flag or value was not valid.' },
  UNREACHABLE: {
    status: 503,
    description:
      'Nothing answers at the broker endpoint: no broker runs there, or it cannot be reached.',
  },
  DATA_DIR_LOCKED: {
    status: 409,
    description: 'Another running broker holds the lock on the data folder.',
  },
  DATA_DIR_UNWRITABLE: {
    status: 500,
    description: 'The data folder cannot be created or written.',
  },
  DATA_DIR_NOT_FOUND: {
    status: 404,
    description: 'The data folder does not exist or holds no Ferry store (ferry.db).',
  },
  STORE_NOT_EMPTY: {
    status: 409,
    description:
      'The PostgreSQL schema to migrate into already holds Ferry data, or a broker runs on it.',
  },
  ADDRESS_IN_USE: { status: 409, description: 'The endpoint to bind is already in use.' },
  INVALID_SERVICE_NAME: {
    status: 400,
    description:
      'A service name was empty, too long, `.` or `..`, or used characters outside [A-Za-z0-9._:-].',
  },
  JOB_NOT_FOUND: {
    status: 404,
    description: 'No job with that id (never submitted, or forgotten after its retention).',
  },
  JOB_FAILED: {
    status: 502,
    description: 'The job failed: its worker reported an error on its last attempt.',
  },
  JOB_CANCELLED: { status: 409, description: 'The job was cancelled before it finished.' },
  JOB_EXPIRED: {
    status: 504,
    description: 'The job expired: no worker started it within its time to live.',
  },
  JOB_NOT_RETRYABLE: {
    status: 409,
    description:
      'Only a durable failed, cancelled or expired job (not a multicast one) can be retried.',
  },
  WORKER_EXISTS: {
    status: 409,
    description: 'A worker with that tag already exists in the session.',
  },
  WORKER_NOT_FOUND: { status: 404, description: 'No worker with that tag exists in the session.' },
  INVALID_TOPIC: {
    status: 400,
    description:
      'A topic or subscription pattern was empty, too long, had control characters or a `.` or `..` segment, or misused * and **.',
  },
  SUBSCRIPTION_CONFLICT: {
    status: 409,
    description: 'A durable subscription of that name exists with another pattern.',
  },
  SUBSCRIPTION_NOT_FOUND: {
    status: 404,
    description: 'No subscription with that tag in the session, or no durable one of that name.',
  },
  SUBSCRIBER_DROPPED: {
    status: 409,
    description:
      'A live subscriber fell further behind than its window; the broker dropped the subscription.',
  },
  TOO_MANY_SUBSCRIPTIONS: {
    status: 429,
    description: 'The session or the broker is at its limit on the number of subscriptions.',
  },
  ROUTE_NOT_FOUND: { status: 404, description: 'No HTTP route has that path.' },
  BAD_JSON: { status: 400, description: 'The HTTP request body was not valid JSON.' },
  BODY_TOO_LARGE: {
    status: 413,
    description: 'The HTTP request body exceeded the gateway limit on bytes.',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    description: 'The HTTP request body had a content type the route does not take.',
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    description:
      'The HTTP path exists but not with that method; the Allow header lists those it takes.',
  },
  JSON_TOO_DEEP: {
    status: 400,
    description: 'The HTTP request body nested arrays and objects deeper than the gateway allows.',
  },
  JSON_FORBIDDEN_KEY: {
    status: 400,
    description: 'The HTTP request body had a __proto__ key, which the gateway refuses anywhere.',
  },
  FORBIDDEN_HOST: {
    status: 403,
    description:
      'The HTTP request named a Host the gateway does not answer for (DNS rebinding guard).',
  },
  UNAUTHENTICATED: {
    status: 401,
    description: 'The HTTP request had no valid bearer token, and the gateway asks for one.',
  },
  RATE_LIMITED: {
    status: 429,
    description: 'The token (or address) sent more HTTP requests than its limit per minute.',
  },
  FORBIDDEN_ORIGIN: {
    status: 403,
    description:
      'A browser page of another origin sent a request that could change something; the gateway refuses it.',
  },
  NOT_READY: {
    status: 503,
    description:
      'The broker is not ready: starting, draining, or its store cannot take writes (GET /readyz).',
  },
  AUTH_FAILED: {
    status: 401,
    description:
      'Who the client claims to be was not accepted: unknown CURVE key, bad proof or token.',
  },
  FORBIDDEN: {
    status: 403,
    description: 'The user may not do that verb on that resource; the message names both.',
  },
  AUTH_FILE_INVALID: {
    status: 400,
    description: 'The auth file was not JSON of the documented shape; the message names the path.',
  },
  KEY_INVALID: {
    status: 400,
    description: 'A CURVE key or key file was not a key of 40 characters of Z85.',
  },
  INSECURE_BIND: {
    status: 400,
    description: 'A bind beyond loopback had no CURVE, auth file or allowlist to protect it.',
  },
  INTERNAL: { status: 500, description: 'An unexpected error inside the broker; it was logged.' },
} as const satisfies Record<string, { status: number; description: string }>;

export type ErrorCode = keyof typeof ERROR_REGISTRY;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_REGISTRY, value);
}

/** HTTP status for a code, as the gateway reports it. */
export function statusOf(code: ErrorCode): number {
  return ERROR_REGISTRY[code].status;
}

/** Every error Ferry raises or reports. Compare `code`, never `message`. */
export class FerryError extends Error {
  override readonly name = 'FerryError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message ?? ERROR_REGISTRY[code].description, { cause: options?.cause });
    this.code = code;
    this.details = options?.details;
  }

  get status(): number {
    return statusOf(this.code);
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Wrap anything thrown into a FerryError, keeping FerryErrors as they are. */
export function toFerryError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new FerryError('INTERNAL', message, { cause: err });
}
