/**
 * The storage contract, in queue terms. No connection, statement or transaction type appears
 * here: a backend owns its connections and decides how calls become transactions.
 *
 * Group commit is part of the contract: every call made during one event-loop turn is applied
 * in call order within one transaction, and every returned promise resolves only after that
 * transaction is committed under the backend's sync policy. A failing call rejects alone; the
 * others in the same turn still commit. A failed commit rejects every call of the turn.
 */
import type { Headers, MessageState, QueueCounts, StoredMessage } from '../core/types.js';

/** How hard a commit is pushed to disk before it counts as done. */
export type SyncPolicy =
  { mode: 'always' } | { mode: 'batch'; intervalMs: number } | { mode: 'off' };

export interface EnqueueItem {
  queue: string;
  frames: Buffer[];
  headers: Headers | undefined;
  priority: number;
  enqueuedAt: number;
  /** When not in the future, the message is ready at once; otherwise scheduled. */
  notBefore: number;
  expiresAt: number | null;
  dedupKey: string | null;
  /** Until when the dedup key holds (ignored without a key). */
  dedupUntil: number;
  /**
   * Store it already leased (attempt 1) instead of ready: the core hands it straight to a
   * waiting consumer after the commit. Ignored for scheduled messages.
   */
  leased?: boolean | undefined;
}

export interface EnqueueRequestKey {
  /** Producer-chosen idempotency key of the whole request. */
  key: string;
  /** Until when a replay of the same key returns the first outcome. */
  until: number;
}

export interface EnqueueOutcome {
  /** Message ids, one per item, in order (the first message's id for a duplicate). */
  ids: string[];
  /** Per item: true when its dedup key matched a message stored earlier (nothing stored). */
  duplicate: boolean[];
  /** The whole request was a replay of an earlier request key: nothing was stored. */
  replayed: boolean;
}

/** A message leased to a consumer: state leased, attempts already incremented. */
export interface LeasedMessage {
  id: string;
  frames: Buffer[];
  headers: Headers | undefined;
  priority: number;
  attempts: number;
  enqueuedAt: number;
  size: number;
}

export interface LeaseOutcome {
  messages: LeasedMessage[];
  /** Messages found past their TTL while leasing; removed. */
  expired: { count: number; bytes: number };
}

/** Identifies one lease: the message and the delivery attempt it was leased at. */
export interface LeaseRef {
  id: string;
  attempts: number;
}

export interface ReleaseItem extends LeaseRef {
  /** Back to ready (notBefore <= now), scheduled (later), or dead with a reason. */
  notBefore: number;
  deadReason?: string | undefined;
  /** Undo the attempt count of this lease (the message never reached a consumer). */
  uncount?: boolean | undefined;
}

export interface QueueDelta {
  queue: string;
  count: number;
  bytes: number;
}

export interface ExpiryDelta {
  queue: string;
  ready: number;
  scheduled: number;
  bytes: number;
}

export interface BrowseOptions {
  state?: MessageState | undefined;
  limit: number;
  /** Only ids greater than this (for paging). */
  afterId?: string | undefined;
}

export interface RedriveOptions {
  ids?: string[] | undefined;
  limit?: number | undefined;
}

export interface PurgeOutcome {
  ready: number;
  scheduled: number;
  dead: number;
  /** Bytes of the live (ready and scheduled) messages removed. */
  bytes: number;
}

export interface StorageRecovery {
  /** Counters of every queue the store knows, after releasing leases of the previous run. */
  queues: Map<string, QueueCounts>;
  /** Leases of the previous run that were released (their consumers are gone). */
  releasedLeases: number;
  /** Earliest time a scheduled message becomes due, if any. */
  nextDueAt: number | null;
}

export interface StorageMetrics {
  backend: string;
  path: string;
  sync: string;
  /** Bytes on disk (database and log files). */
  sizeBytes: number;
  commits: number;
  /** Calls applied in those commits. */
  operations: number;
  /** Messages written by enqueue. */
  messagesWritten: number;
  fsyncs: number;
  /** Sum of commit durations (including fsync under `always`), ms. */
  commitMsTotal: number;
  commitMsMax: number;
}

export interface Storage {
  /** Opens the store, applies pending migrations, releases leases left by a previous run. */
  open(): Promise<StorageRecovery>;
  /** Commits what is pending, syncs, and closes. */
  close(): Promise<void>;

  /** Ensures a queue exists (created on first use). */
  ensureQueue(queue: string): Promise<void>;
  /** Stores a batch of messages for one or more queues, honouring dedup keys and request key. */
  enqueue(items: EnqueueItem[], request?: EnqueueRequestKey): Promise<EnqueueOutcome>;
  /** Leases up to `max` ready messages of a queue, highest priority then oldest first. */
  lease(queue: string, max: number, now: number): Promise<LeaseOutcome>;
  /** Deletes leased messages; per ref, whether it was still leased at that attempt. */
  ack(refs: LeaseRef[]): Promise<boolean[]>;
  /** Returns leased messages to ready/scheduled, or moves them to the dead letters. */
  release(items: ReleaseItem[], now: number): Promise<boolean[]>;
  /** Moves scheduled messages whose time has come to ready. */
  promoteDue(now: number): Promise<QueueDelta[]>;
  /** Earliest not-before among scheduled messages. */
  nextDueAt(): Promise<number | null>;
  /** Removes messages past their TTL (ready or scheduled) and expired dedup keys. */
  sweepExpired(now: number, max: number): Promise<ExpiryDelta[]>;

  /** Counters per queue, read from the store. */
  counts(): Promise<Map<string, QueueCounts>>;
  /** Messages of a queue in id order, without changing them. */
  browse(queue: string, options: BrowseOptions): Promise<StoredMessage[]>;
  /** Enqueue time of the oldest live message of a queue. */
  oldestEnqueuedAt(queue: string): Promise<number | null>;
  /** Deletes the ready and scheduled messages (or, with state 'dead', the dead letters). */
  purge(queue: string, state: 'ready' | 'dead'): Promise<PurgeOutcome>;
  /** Moves dead letters back to ready with attempts reset. */
  redrive(queue: string, options: RedriveOptions): Promise<{ count: number; bytes: number }>;

  metrics(): StorageMetrics;
}
