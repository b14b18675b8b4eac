/**
 * What the pub/sub modules share: the topic message as the core passes it around (built from a
 * retained row), a checked publish and its outcome, and the checks of node names and durations.
 */
import { FerryError, isValidQueueName, type Headers } from 'ferrymq/model';
import type { RetainedRow } from '../storage/types.js';

const NODE_NAME_MAX_LENGTH = 190;

/** A published message as subscribers see it. */
export interface TopicMessage {
  topic: string;
  seq: number;
  frames: Buffer[];
  headers: Headers | undefined;
  /** Published with retain (a change of the topic's retained value). */
  retained: boolean;
  /** A retained delete (empty value, or TTL expiry). */
  deleted: boolean;
  publishedAt: number;
}

/** A publish that passed its checks. */
export interface CheckedPublish {
  retain: boolean;
  deleted: boolean;
  ttlMs: number | undefined;
  headers: Headers | undefined;
  /** The dedup key of its durable copies (from its request key). */
  copyKey: string | undefined;
}

/** A checked publish about to be committed. */
export interface PendingPublish {
  topic: string;
  frames: Buffer[];
  o: CheckedPublish;
}

/** What a publish's caller learns once it is stored. */
export interface PublishOutcome {
  seq: number;
  /** Durable subscriptions the message was stored for. */
  durable: number;
}

export function checkNodeName(name: unknown, what = 'node'): string {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > NODE_NAME_MAX_LENGTH ||
    !isValidQueueName(name)
  ) {
    throw new FerryError(
      'BAD_ARGUMENTS',
      `${what} must be 1–${NODE_NAME_MAX_LENGTH} characters of [A-Za-z0-9._:-]`,
    );
  }
  return name;
}

export function positiveMs(v: number | undefined, what: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isFinite(v) || v <= 0 || v > max) {
    throw new FerryError('BAD_ARGUMENTS', `${what} must be a number of ms in (0, ${max}]`);
  }
  return Math.round(v);
}

export function toTopicMessage(r: RetainedRow): TopicMessage {
  return {
    topic: r.topic,
    seq: r.seq,
    frames: r.frames,
    headers: r.headers,
    retained: true,
    deleted: false,
    publishedAt: r.publishedAt,
  };
}
