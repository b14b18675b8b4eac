/**
 * A store's rows in a form neither backend owns: what the SQLite export (sqlite/sqlite-export.ts)
 * reads out of a data folder and the PostgreSQL import (postgres/pg-import.ts) writes into a
 * schema, for `ferry migrate` (migrate-sqlite-to-postgres.ts). Times are ms since the epoch;
 * text columns (headers, policy, progress, error, children) keep the JSON both stores write.
 */
import type { JobStatus, MessageState } from 'ferrymq/model';

export interface QueueRecord {
  id: number;
  name: string;
  createdAt: number;
}

export interface QueueSettingsRecord {
  queueId: number;
  paused: boolean;
  /** JSON object of policy key → number. */
  policy: string;
  updatedAt: number;
}

export interface MessageRecord {
  id: number;
  queueId: number;
  state: MessageState;
  priority: number;
  notBefore: number;
  expiresAt: number | null;
  attempts: number;
  enqueuedAt: number;
  size: number;
  nframes: number;
  headers: string | null;
  dedupKey: string | null;
  deadReason: string | null;
  /** The frames packed as frames-codec.ts packs them (whole, however the source kept it). */
  body: Buffer;
  /** The source kept the body in chunks (a large body). */
  chunked: boolean;
}

/** Whose key an idempotency row is, in terms of the model (each store spells scopes its way). */
export type KeyOwner =
  { kind: 'queue'; queue: string } | { kind: 'service'; service: string } | { kind: 'request' };

export interface KeyRecord {
  owner: KeyOwner;
  key: string;
  /** The message id (queue dedup), job id (service dedup) or comma-separated ids (request). */
  ids: string;
  expiresAt: number;
}

export interface JobRecord {
  seq: number;
  id: string;
  service: string;
  status: JobStatus;
  priority: number;
  attempts: number;
  maxAttempts: number;
  createdAt: number;
  notBefore: number;
  expiresAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  retainUntil: number | null;
  nframes: number;
  params: Buffer;
  headers: string | null;
  progress: string | null;
  partials: number;
  resultNframes: number | null;
  result: Buffer | null;
  error: string | null;
  dedupKey: string | null;
  parentId: string | null;
  children: string | null;
}

export interface PartialRecord {
  jobId: string;
  seq: number;
  nframes: number;
  body: Buffer;
}

export interface RetainedRecord {
  topic: string;
  seq: number;
  publishedAt: number;
  expiresAt: number | null;
  nframes: number;
  body: Buffer;
  headers: string | null;
}

export interface SubscriptionRecord {
  name: string;
  pattern: string;
  createdAt: number;
}

export interface ConfirmationRecord {
  topic: string;
  node: string;
  seq: number;
  at: number;
}

/** The highest ids ever handed out: the target's sequences continue above them. */
export interface IdHighWater {
  queues: number;
  messages: number;
  jobs: number;
}

/** A row of pub/sub's counters (`seq`: the last publish sequence number). */
export interface PubSubMetaRecord {
  key: string;
  value: number;
}
