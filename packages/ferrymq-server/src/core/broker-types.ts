/**
 * The queue engine's public types and limits: broker options, what a session can do, what a
 * consumer is handed, and the outcomes of sends and settles. The logic is in broker.ts and the
 * queue-*.ts modules it composes.
 */
import type {
  ErrorCode,
  FerryError,
  Headers,
  MessageState,
  NewMessage,
  QueuePolicy,
} from 'ferrymq/model';
import type { EnqueueItem, EnqueueOutcome, Storage } from '../storage/types.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

export const DEFAULT_PREFETCH = 100;
export const DEFAULT_MAX_PREFETCH = 10_000;
export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_QUEUES = 10_000;
/** Bytes delivered to one consumer and not yet settled before it gets no more. */
export const DEFAULT_CONSUMER_MAX_BYTES = 16 * 1024 * 1024;
/** Bytes delivered to all consumers together and not yet settled before deliveries wait. */
export const DEFAULT_MAX_INFLIGHT_BYTES = 256 * 1024 * 1024;
const DEFAULT_MAX_CONSUMERS_PER_SESSION = 1_000;
/** Most messages leased from the store in one call. */
export const LEASE_BATCH_MAX = 1_000;
/** How often leases are checked for an expired ack timeout. */
export const LEASE_SCAN_INTERVAL_MS = 100;
/** How often TTLs and dedup windows are swept, and idle consumers re-probe their queue. */
export const MAINTENANCE_INTERVAL_MS = 1_000;
/** Most expired messages removed per sweep. */
export const SWEEP_BATCH_MAX = 10_000;
/** Earliest a due-message timer fires after the last one. */
export const DUE_MIN_INTERVAL_MS = 5;

/** Ready backlog allowed per message of the consumers' total prefetch (0 = no flow control). */
export const DEFAULT_FLOW_BACKLOG_FACTOR = 4;
/** Most producers' confirms held per queue by flow control. */
const DEFAULT_MAX_HELD_CONFIRMS = 100_000;

export interface BrokerLimits {
  maxQueues: number;
  maxConsumersPerSession: number;
  maxPrefetch: number;
  maxMessageBytes: number;
  /** A consumer's credit in bytes (as well as its prefetch in messages). */
  consumerMaxBytes: number;
  /** Broker-wide cap on bytes delivered and not yet settled. */
  maxInflightBytes: number;
  /**
   * Producer flow control: a queue's ready backlog allowed, per message of its consumers'
   * total prefetch, before producers' confirms are held (0 = off). See flow-control.ts.
   */
  flowBacklogFactor: number;
  /**
   * Most confirms one queue holds under flow control; past it, confirms are answered at once
   * (a producer that does not wait for them is not paced by holding them, and each costs
   * memory). Not a config key.
   */
  maxHeldConfirms: number;
}

export const DEFAULT_BROKER_LIMITS: Readonly<BrokerLimits> = Object.freeze({
  maxQueues: DEFAULT_MAX_QUEUES,
  maxConsumersPerSession: DEFAULT_MAX_CONSUMERS_PER_SESSION,
  maxPrefetch: DEFAULT_MAX_PREFETCH,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  consumerMaxBytes: DEFAULT_CONSUMER_MAX_BYTES,
  maxInflightBytes: DEFAULT_MAX_INFLIGHT_BYTES,
  flowBacklogFactor: DEFAULT_FLOW_BACKLOG_FACTOR,
  maxHeldConfirms: DEFAULT_MAX_HELD_CONFIRMS,
});

export interface BrokerOptions {
  storage: Storage;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
  /** Policy for every queue, over the built-in defaults. */
  defaultPolicy?: Partial<QueuePolicy>;
  /** Policy per queue name, over defaultPolicy. */
  queuePolicies?: Record<string, Partial<QueuePolicy>>;
  limits?: Partial<BrokerLimits>;
  /** True while free disk space is below the floor: sends are refused with STORAGE_FULL. */
  isStorageLow?: () => boolean;
}

/** A message handed to a consumer. */
export interface Delivery {
  id: string;
  queue: string;
  attempt: number;
  frames: Buffer[];
  headers: Headers | undefined;
  priority: number;
  enqueuedAt: number;
}

/** How the core reaches the peer behind a session. Implemented by dialects. */
export interface SessionSink {
  deliver(consumerTag: string, messages: Delivery[]): void;
  /**
   * The broker ended a consumer (its queue was deleted: QUEUE_DELETED). Nothing more comes
   * for the tag. Dialects without a way to say so leave it out: their consumer just stops.
   */
  cancelled?(consumerTag: string, reason: FerryError): void;
}

export interface ConsumeOptions {
  /** Client-chosen tag; generated when absent. */
  tag?: string | undefined;
  /** Most unacked deliveries at once. */
  prefetch?: number | undefined;
  /** Overrides the queue's ack timeout for this consumer. */
  ackTimeoutMs?: number | undefined;
}

export interface SendOptions {
  /** Idempotency key of the whole request: a replay within the dedup window stores nothing. */
  requestKey?: string | undefined;
}

export interface SendOutcome {
  ids: string[];
  /** Indexes of messages that matched an earlier dedup key (stored once, earlier). */
  duplicates: number[];
  replayed: boolean;
}

export interface MulticastOptions {
  /** Answer only once every copy is acked (or dead-lettered), or after timeoutMs. */
  waitForAcks?: boolean | undefined;
  timeoutMs?: number | undefined;
  /**
   * Idempotency key of the request: a re-send with the same key within a queue's dedup window
   * stores no second copy there, and answers with the first copies' ids.
   */
  requestKey?: string | undefined;
}

export interface MulticastOutcome {
  /** The id of the copy in each queue. */
  ids: Record<string, string>;
  /** With waitForAcks: every copy acked in time. */
  complete?: boolean;
  acked?: string[];
  dead?: string[];
  pending?: string[];
}

/** One message and the queues that each get a copy of it. */
export interface QueueCopies {
  queues: string[];
  message: NewMessage;
}

/**
 * Stores the enqueue items of sendCopies in place of Storage.enqueue (the same outcome):
 * pub/sub with a shared store, whose one call also numbers the publishes the copies carry.
 * `copyOf[i]` is the index, in the copies passed to sendCopies, of item `i`'s message; the
 * call may set item `i`'s headers (what it stored), which a consumer handed it directly gets.
 */
export type CopyStore = (items: EnqueueItem[], copyOf: number[]) => Promise<EnqueueOutcome>;

export interface SendCopiesOptions {
  store?: CopyStore | undefined;
}

export const MAX_MULTICAST_QUEUES = 100;
export const DEFAULT_MULTICAST_TIMEOUT_MS = 30_000;
export const MAX_MULTICAST_TIMEOUT_MS = 24 * 3_600_000;

/** Per id: null when done, or the code of why not. */
export type SettleResult = ErrorCode | null;

export interface NackOptions {
  /** Redeliver after this delay; default: the queue's exponential backoff. */
  delayMs?: number | undefined;
  /** Send straight to the dead letters. */
  dead?: boolean | undefined;
  /**
   * The message never reached the application (it was prefetched, then the consumer stopped):
   * back to the queue at once, and this delivery does not count toward max attempts.
   */
  requeue?: boolean | undefined;
}

export interface DeleteQueueOptions {
  /** Delete even when it holds messages (they are lost); otherwise QUEUE_NOT_EMPTY. */
  force?: boolean | undefined;
}

/** A queue's runtime policy as an operator sees it. */
export interface QueuePolicyInfo {
  queue: string;
  /** In force: defaults, then the config file, then the runtime values. */
  policy: QueuePolicy;
  /** The runtime values (stored; they win over the config file until reset). */
  overrides: Partial<QueuePolicy>;
}

export interface PeekOptions {
  state?: MessageState | undefined;
  limit?: number | undefined;
  afterId?: string | undefined;
}

/** One client's view of the broker. Created by a dialect per connected peer. */
export interface Session {
  readonly id: string;
  send(queue: string, messages: NewMessage[], options?: SendOptions): Promise<SendOutcome>;
  /** One message to several queues, stored in one commit; optionally waits for every ack. */
  multicast(
    queues: string[],
    message: NewMessage,
    options?: MulticastOptions,
  ): Promise<MulticastOutcome>;
  /** One message into several queues in one storage call: all copies or none. */
  sendToQueues(queues: string[], message: NewMessage): Promise<string[]>;
  /**
   * Several messages, each into several queues, in one storage call: all copies or none; a
   * queue's copies reach a consumer in one delivery. Per message, its copies' ids.
   */
  sendCopies(copies: QueueCopies[], options?: SendCopiesOptions): Promise<string[][]>;
  consume(queue: string, options?: ConsumeOptions): string;
  cancel(tag: string): void;
  ack(ids: string[]): Promise<SettleResult[]>;
  nack(ids: string[], options?: NackOptions): Promise<SettleResult[]>;
  extend(ids: string[], ms: number): SettleResult[];
  /** Ends the session: its leases are released for redelivery at once. */
  close(): void;
  readonly closed: boolean;
}

/** A consumer as listings show it. */
interface ConsumerInfo {
  tag: string;
  queue: string;
  /** Most unacked deliveries at once. */
  prefetch: number;
  /** Deliveries not yet settled (and credit reserved for ones on their way). */
  inflight: number;
  ackTimeoutMs: number;
}

/** An open session (one per connected client of any dialect, plus the gateway's own). */
export interface SessionInfo {
  id: string;
  /** Leases the session holds. */
  leases: number;
  consumers: ConsumerInfo[];
}
