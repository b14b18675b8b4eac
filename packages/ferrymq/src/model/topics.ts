/**
 * Pub/sub as every layer speaks it: the reserved headers a durable subscription's messages
 * carry, and the outcome and status of a confirmed rollout. Pure data and constants; the logic
 * is in core/pubsub.ts.
 */

/** Queue of a durable subscription: this prefix, then its name. */
export const SUBSCRIPTION_QUEUE_PREFIX = 'sub:';

/** Headers every message in a durable subscription's queue carries (reserved prefix `ferry-`). */
export const TOPIC_HEADER = 'ferry-topic';
export const SEQ_HEADER = 'ferry-seq';
export const RETAIN_HEADER = 'ferry-retain';
export const PUBLISHED_AT_HEADER = 'ferry-published-at';
export const RESERVED_HEADER_PREFIX = 'ferry-';

export interface RolloutOutcome {
  topic: string;
  seq: number;
  /** Every awaited node confirmed in time. */
  complete: boolean;
  confirmed: string[];
  pending: string[];
}

export interface NodeVersion {
  node: string;
  seq: number;
  at: number;
  /** The node holds the topic's current retained version (or a later one). */
  current: boolean;
}

export interface TopicStatus {
  topic: string;
  /** Sequence number of the retained value (null when none is retained now). */
  seq: number | null;
  nodes: NodeVersion[];
}
