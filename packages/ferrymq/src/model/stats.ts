/**
 * Statistics as every layer speaks them: per-queue and broker counters, the store's metrics,
 * worker counts and pub/sub counters, and the one snapshot that the Ferry protocol's STATS reply,
 * the HTTP gateway's `/v1/stats`, the dashboard, `/metrics` and the SDK's `stats()` all share.
 */
import type { HistogramSnapshot } from './histogram.js';
import type { ServiceInfo } from './jobs.js';
import type { QueueCounts, QueuePolicy } from './queues.js';

export interface QueueStats extends QueueCounts {
  name: string;
  depth: number;
  consumers: number;
  enqueued: number;
  acked: number;
  expired: number;
  deadLettered: number;
  /** Bytes of the messages leased now. */
  leasedBytes: number;
  /** Leases released because their ack timeout passed, since the broker started. */
  ackTimeouts: number;
  /** Deliveries given back for another try (nack, ack timeout, consumer gone). */
  redelivered: number;
  /** Producers' confirms held now by flow control (the backlog is over its bound). */
  confirmsHeld: number;
  /** Confirms ever held by flow control, since the broker started. */
  confirmsHeldTotal: number;
  enqueueRate: number;
  ackRate: number;
  oldestAgeMs: number | null;
  /** Deliveries stopped by an operator (sends are still accepted). */
  paused: boolean;
  /** The policy in force: defaults, then the config file, then runtime values. */
  policy: QueuePolicy;
  /** The policy values set at runtime (they win over the config file until reset). */
  overrides: Partial<QueuePolicy>;
}

export interface BrokerStats {
  uptimeMs: number;
  sessions: number;
  consumers: number;
  queues: number;
  leases: number;
  storageLow: boolean;
  storage: StorageMetrics & { avgBatchOps: number; avgCommitMs: number };
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
  /** SQL statements that do work (reads and writes), since start. */
  sqlStatements: number;
  /**
   * Transaction statements around them (BEGIN, COMMIT, SAVEPOINT, RELEASE): with work
   * statements, what the store executed.
   */
  sqlControlStatements: number;
  /** Sum of commit durations (including fsync under `always`), ms. */
  commitMsTotal: number;
  commitMsMax: number;
  /** Duration of each commit (including fsync under `always`), ms. */
  commitMs: HistogramSnapshot;
  /** Calls applied per commit (the group-commit batch size). */
  commitBatchOps: HistogramSnapshot;
  /** Duration of each separate WAL fsync (under `batch:<ms>`), ms. */
  fsyncMs: HistogramSnapshot;
}

export interface PubSubStats {
  lastSeq: number;
  published: number;
  liveSubscriptions: number;
  durableSubscriptions: number;
  droppedSubscribers: number;
}

export interface WorkerCounts {
  total: number;
  /** Workers per dialect that registered them (ferry, mdp, …). */
  byProtocol: Record<string, number>;
  /** Workers per service (a worker serving two services counts in both). */
  byService: Record<string, number>;
}

/** What a ZeroMQ endpoint's peer guard counted (docs/protocol.md "Dropped peers"). */
export interface PeerGuardStats {
  /** Frames that were not a valid message of the dialect, since start. */
  invalidFrames: number;
  /** Times a peer was dropped (ignored for a cool-down) for sending invalid frames. */
  peersDropped: number;
  /** Messages discarded unread because their peer was dropped. */
  ignoredFrames: number;
  /** Peers being ignored now. */
  droppedNow: number;
  /** ZeroMQ messages read from peers (all of them, ignored ones included), since start. */
  messagesIn: number;
  /** ZeroMQ messages sent to peers, since start. */
  messagesOut: number;
}

export interface FerryStats {
  /** Broker counters; `connections` is the sum over every dialect. */
  broker: BrokerStats & { connections: number };
  /** Open connections (peers, HTTP sockets) per dialect. */
  connections: Record<string, number>;
  queues: QueueStats[];
  services: ServiceInfo[];
  workers: WorkerCounts;
  /** Pub/sub counters (sequence, live and durable subscriptions, dropped subscribers). */
  pubsub?: PubSubStats;
  /** Peer guard counters per dialect (summed over its ROUTER endpoints). */
  peers?: Record<string, PeerGuardStats>;
  /**
   * Brokers sharing this broker's store (a PostgreSQL store): this one first. Queue and job
   * counters above are then the whole cluster's; connections and workers are this broker's.
   */
  cluster?: ClusterStats;
}

/** The brokers sharing one store, by their heartbeat rows. */
export interface ClusterStats {
  nodes: ClusterNode[];
}

export interface ClusterNode {
  id: string;
  startedAt: number;
  /** Latest heartbeat, by the database's clock (ms since the epoch). */
  heartbeatAt: number;
  /** The broker that answered. */
  self: boolean;
}
