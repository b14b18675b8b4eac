/** Domain types shared by the core, the storage contract and the dialects. Pure data. */

/** Where a message is in its life. See docs/semantics.md for the state diagram. */
export type MessageState = 'ready' | 'leased' | 'scheduled' | 'dead';

export const MESSAGE_STATES: readonly MessageState[] = ['ready', 'leased', 'scheduled', 'dead'];

/** String headers carried with a message, opaque to the broker. */
export type Headers = Record<string, string>;

/** What a producer hands the broker for one message. */
export interface NewMessage {
  /** One or more frames of any bytes. The first is "the body". */
  frames: Buffer[];
  headers?: Headers | undefined;
  /** 0–255, higher first. Default 0. */
  priority?: number | undefined;
  /** Do not deliver before this many ms from now. */
  delayMs?: number | undefined;
  /** Discard if not delivered within this many ms from now. */
  ttlMs?: number | undefined;
  /** A second send with the same key within the queue's dedup window is stored once. */
  dedupKey?: string | undefined;
}

/** A message as the store holds it. */
export interface StoredMessage {
  id: string;
  queue: string;
  frames: Buffer[];
  headers: Headers | undefined;
  priority: number;
  /** Deliveries so far (a lease counts one). */
  attempts: number;
  enqueuedAt: number;
  notBefore: number;
  expiresAt: number | null;
  dedupKey: string | null;
  /** Sum of frame lengths in bytes. */
  size: number;
  state: MessageState;
  deadReason: string | null;
}

/** Per-queue settings. Defaults in DEFAULT_QUEUE_POLICY; overridable per queue in config. */
export interface QueuePolicy {
  /** A lease not acked within this is released for redelivery. */
  ackTimeoutMs: number;
  /** After this many deliveries a failed message goes to the dead letters. */
  maxAttempts: number;
  /** Refuse sends beyond this many live messages (0 = unlimited). */
  maxDepth: number;
  /** Refuse sends beyond this many live bytes (0 = unlimited). */
  maxBytes: number;
  /** Window in which a repeated dedup key is stored once. */
  dedupWindowMs: number;
  /** First retry delay for a nack without an explicit delay. */
  retryBaseMs: number;
  /** Cap for the exponential retry delay. */
  retryMaxMs: number;
}

export const DEFAULT_ACK_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_ATTEMPTS = 10;
export const DEFAULT_DEDUP_WINDOW_MS = 10 * 60_000;
export const DEFAULT_RETRY_BASE_MS = 1_000;
export const DEFAULT_RETRY_MAX_MS = 5 * 60_000;

export const DEFAULT_QUEUE_POLICY: Readonly<QueuePolicy> = Object.freeze({
  ackTimeoutMs: DEFAULT_ACK_TIMEOUT_MS,
  maxAttempts: DEFAULT_MAX_ATTEMPTS,
  maxDepth: 0,
  maxBytes: 0,
  dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS,
  retryBaseMs: DEFAULT_RETRY_BASE_MS,
  retryMaxMs: DEFAULT_RETRY_MAX_MS,
});

/** Bounds of every policy key, inclusive (the same the config file enforces). */
export const QUEUE_POLICY_BOUNDS: Readonly<
  Record<keyof QueuePolicy, { min: number; max: number }>
> = Object.freeze({
  ackTimeoutMs: { min: 1, max: Number.MAX_SAFE_INTEGER },
  maxAttempts: { min: 1, max: 1_000_000 },
  maxDepth: { min: 0, max: Number.MAX_SAFE_INTEGER },
  maxBytes: { min: 0, max: Number.MAX_SAFE_INTEGER },
  dedupWindowMs: { min: 1, max: Number.MAX_SAFE_INTEGER },
  retryBaseMs: { min: 0, max: Number.MAX_SAFE_INTEGER },
  retryMaxMs: { min: 0, max: Number.MAX_SAFE_INTEGER },
});

export const QUEUE_POLICY_KEYS = Object.keys(QUEUE_POLICY_BOUNDS) as (keyof QueuePolicy)[];

/**
 * A runtime policy change: per key, a new value, or null to drop the runtime value (the
 * config file's, or the default, applies again).
 */
export type QueuePolicyChanges = { [K in keyof QueuePolicy]?: number | null };

/** What an operator set on a queue at runtime; kept in the store. */
export interface QueueSettings {
  /** Deliveries stopped (sends still accepted). */
  paused: boolean;
  /** Policy values set at runtime; they win over the config file until reset. */
  overrides: Partial<QueuePolicy>;
}

/**
 * Checks a runtime policy change: known keys, integers within bounds (null clears a key).
 * Returns the problem in words, or undefined when it is valid.
 */
export function policyChangesProblem(changes: unknown): string | undefined {
  if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) {
    return 'policy must be an object of policy key → integer or null';
  }
  for (const [k, v] of Object.entries(changes)) {
    const bounds = (QUEUE_POLICY_BOUNDS as Record<string, { min: number; max: number }>)[k];
    if (!Object.hasOwn(QUEUE_POLICY_BOUNDS, k) || bounds === undefined) {
      return `unknown policy key ${JSON.stringify(k.slice(0, 40))} (keys: ${QUEUE_POLICY_KEYS.join(', ')})`;
    }
    if (v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < bounds.min || v > bounds.max) {
      return `${k} must be an integer ${bounds.min}–${bounds.max} or null; got ${JSON.stringify(v)}`;
    }
  }
  return undefined;
}

/** Live counters of one queue. */
export interface QueueCounts {
  ready: number;
  leased: number;
  scheduled: number;
  dead: number;
  /** Bytes of live (not dead) messages. */
  bytes: number;
}

export const PRIORITY_MIN = 0;
export const PRIORITY_MAX = 255;
export const QUEUE_NAME_MAX_LENGTH = 200;
const QUEUE_NAME_PATTERN = /^[A-Za-z0-9._:-]+$/;

export function isValidQueueName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= QUEUE_NAME_MAX_LENGTH &&
    QUEUE_NAME_PATTERN.test(name)
  );
}

export function messageSize(frames: readonly Buffer[]): number {
  let n = 0;
  for (const f of frames) n += f.length;
  return n;
}
