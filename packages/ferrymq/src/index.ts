/**
 * ferrymq: the client SDK (the package's main export). The broker is the ferrymq-server package;
 * the shared model is also at ferrymq/model.
 */
export {
  connect,
  FerryClient,
  DEFAULT_ENDPOINT,
  type ClientCounters,
  type ClientStatus,
  type ConnectOptions,
  type ConsumeOptions,
  type Consumer,
  type DeleteQueueOutcome,
  type Message,
  type OutgoingMessage,
  type PeekedMessage,
  type QueueMulticastOutcome,
  type QueuePolicyInfo,
  type SendOptions,
} from './client/client.js';
export type { NackOptions } from './client/queue-api.js';
export type { CurveOptions } from './client/curve-auth.js';
// CURVE keys: `generateKeyPair()` makes what `ferry keygen` writes (Z85, docs/security.md).
export { generateKeyPair, type CurveKeyPair } from './protocol/codec.js';
export {
  JobFailure,
  JobHandle,
  type CallOptions,
  type JobContext,
  type JobHandler,
  type JobOptions,
  type JobUpdate,
  type SubmitOptions,
  type Worker,
  type WorkerOptions,
} from './client/job-client.js';
export {
  TopicSubscription,
  type PublishOptions,
  type RetainedState,
  type RolloutOptions,
  type SubscribeOptions,
  type TopicMessage,
} from './client/topic-client.js';
export { FerryError, ERROR_REGISTRY, isErrorCode, type ErrorCode } from './model/errors.js';
// The shared model: the shapes the broker answers with, the same types its own layers use.
export type { Body } from './model/body.js';
export type { HistogramSnapshot } from './model/histogram.js';
export type {
  JobError,
  JobInfo,
  JobProgress,
  JobStatus,
  ServiceInfo,
  WorkerInfo,
} from './model/jobs.js';
export type {
  AckOutcome,
  ExtendOutcome,
  Headers,
  LeaseLost,
  MessageState,
  NackOutcome,
  QueueCounts,
  QueuePolicy,
  QueuePolicyChanges,
} from './model/queues.js';
export type {
  BrokerStats,
  FerryStats,
  PubSubStats,
  ClusterStats,
  ClusterNode,
  QueueStats,
  StorageMetrics,
  WorkerCounts,
} from './model/stats.js';
export type { NodeVersion, RolloutOutcome, TopicStatus } from './model/topics.js';
