/**
 * A message's row as both stores keep it (the same columns and state codes in SQLite and
 * PostgreSQL), and how it reads as a {@link StoredMessage}.
 */
import type { Headers, MessageState, StoredMessage } from 'ferrymq/model';
import { unpackFrames } from './frames-codec.js';

export const STATE_READY = 0;
export const STATE_LEASED = 1;
export const STATE_SCHEDULED = 2;
export const STATE_DEAD = 3;
export const STATE_CODES: Record<MessageState, number> = {
  ready: STATE_READY,
  leased: STATE_LEASED,
  scheduled: STATE_SCHEDULED,
  dead: STATE_DEAD,
};
export const STATE_NAMES: MessageState[] = ['ready', 'leased', 'scheduled', 'dead'];

/** The columns of a message row that make a StoredMessage. */
export interface StoredRowColumns {
  id: number;
  state: number;
  priority: number;
  not_before: number;
  expires_at: number | null;
  attempts: number;
  enqueued_at: number;
  size: number;
  nframes: number;
  headers: string | null;
  dedup_key: string | null;
  dead_reason: string | null;
  body: Buffer;
}

export function parseHeaders(text: string | null): Headers | undefined {
  if (text === null) return undefined;
  return JSON.parse(text) as Headers;
}

export function rowToStored(r: StoredRowColumns, queue: string): StoredMessage {
  return {
    id: String(r.id),
    queue,
    frames: unpackFrames(r.body, r.nframes),
    headers: parseHeaders(r.headers),
    priority: r.priority,
    attempts: r.attempts,
    enqueuedAt: r.enqueued_at,
    notBefore: r.not_before,
    expiresAt: r.expires_at,
    dedupKey: r.dedup_key,
    size: r.size,
    state: STATE_NAMES[r.state] ?? 'ready',
    deadReason: r.dead_reason,
  };
}
