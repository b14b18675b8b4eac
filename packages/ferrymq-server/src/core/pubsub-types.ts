/**
 * What the pub/sub modules share: the topic message as the core passes it around (built from a
 * retained row, read back from a durable copy's headers) and the checks of node names and
 * durations. Re-exported by pubsub.ts.
 */
import {
  PUBLISHED_AT_HEADER,
  RESERVED_HEADER_PREFIX,
  RETAIN_HEADER,
  SEQ_HEADER,
  TOPIC_HEADER,
} from 'ferrymq/model';
import { FerryError } from 'ferrymq/model';
import { isValidQueueName, type Headers } from 'ferrymq/model';
import type { RetainedRow } from '../storage/types.js';

export const NODE_NAME_MAX_LENGTH = 190;

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

/** Reads a durable queue message's topic fields back (inverse of the headers set on publish). */
export function topicFieldsOf(headers: Headers | undefined): {
  topic: string;
  seq: number;
  retained: boolean;
  publishedAt: number;
  userHeaders: Headers | undefined;
} | null {
  if (!headers) return null;
  const topic = headers[TOPIC_HEADER];
  const seq = Number(headers[SEQ_HEADER]);
  if (topic === undefined || !Number.isInteger(seq)) return null;
  const user: Headers = {};
  for (const [k, v] of Object.entries(headers)) {
    if (!k.startsWith(RESERVED_HEADER_PREFIX)) user[k] = v;
  }
  return {
    topic,
    seq,
    retained: headers[RETAIN_HEADER] === '1',
    publishedAt: Number(headers[PUBLISHED_AT_HEADER] ?? 0),
    userHeaders: Object.keys(user).length > 0 ? user : undefined,
  };
}
