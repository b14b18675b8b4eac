/**
 * The configuration's schema and defaults: every key of FerryConfig with its flag, its
 * environment variable, its bounds and its help line (CONFIG_SCHEMA), and the value it has
 * when no layer sets it (DEFAULT_CONFIG).
 */
import {
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_DEDUP_WINDOW_MS,
  DEFAULT_JOB_MAX_ATTEMPTS,
  DEFAULT_JOB_MAX_QUEUED,
  DEFAULT_JOB_RETENTION_MS,
  DEFAULT_JOB_RUN_TIMEOUT_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_RETRY_BASE_MS,
  DEFAULT_RETRY_MAX_MS,
  type QueuePolicy,
} from 'ferrymq/model';
import {
  DEFAULT_CONSUMER_MAX_BYTES,
  DEFAULT_FLOW_BACKLOG_FACTOR,
  DEFAULT_MAX_INFLIGHT_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PREFETCH,
  DEFAULT_MAX_QUEUES,
} from '../core/broker.js';
import type { SyncPolicy } from '../storage/types.js';
import { DEFAULT_LIVE_WINDOW, DEFAULT_LIVE_WINDOW_BYTES, MAX_LIVE_WINDOW } from '../core/pubsub.js';
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_BATCH_MESSAGES,
  DEFAULT_MAX_REQUEST_BYTES,
  MAX_HEARTBEAT_MS,
  MIN_HEARTBEAT_MS,
} from '../dialects/ferry/ferry-dialect.js';
import { ZMWS_HEARTBEAT_INTERVAL_MS } from '../dialects/zmws/zmws-dialect.js';
import { SECURITY_DEFAULTS, SECURITY_SCHEMA, type SecurityConfig } from './config-security.js';
import { STORE_DEFAULTS, STORE_SCHEMA, type StoreConfig } from './config-store.js';
import {
  DEFAULT_HTTP_SECURITY,
  HTTP_SECURITY_SCHEMA,
  type HttpSecurityConfig,
} from './config-http-security.js';

/** @public (the broker package exports it) */
export const DEFAULT_BIND = 'tcp://127.0.0.1:7400';
const DEFAULT_DATA_DIR = './data';
/** Highest Clone base port: the collector binds P + 2. */
const CLONE_MAX_BASE_PORT = 65_533;
/** Below this much free disk space in the data folder, sends are refused (STORAGE_FULL). */
const DEFAULT_MIN_FREE_DISK_BYTES = 64 * 1024 * 1024;
/** PZQ's own default ports, bound on loopback. */
const DEFAULT_PZQ_RECEIVE = 'tcp://127.0.0.1:11131';
const DEFAULT_PZQ_SEND = 'tcp://127.0.0.1:11132';
const DEFAULT_PZQ_QUEUE = 'pzq';
/** PZQ's own default: 5 s. */
const DEFAULT_PZQ_ACK_TIMEOUT_US = 5_000_000;
/** ZMWS defaults moved off 5555/5556, which MDP and Clone use. */
const DEFAULT_ZMWS_CLIENT = 'tcp://127.0.0.1:5565';
const DEFAULT_ZMWS_WORKER = 'tcp://127.0.0.1:5566';
/** Where the HTTP gateway (REST, dashboard, /metrics) listens unless told otherwise. */
const DEFAULT_HTTP_HOST = '127.0.0.1';
const DEFAULT_HTTP_PORT = 7480;
export const DEFAULT_HTTP = `${DEFAULT_HTTP_HOST}:${DEFAULT_HTTP_PORT}`;
/** The value of `http` (and what `--no-http` sets) that turns the gateway off. */
export const HTTP_OFF = 'off';
/** Largest HTTP request body: room for a largest message in base64 plus its JSON. */
const DEFAULT_HTTP_BODY_LIMIT_BYTES = 16 * 1024 * 1024;
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** How log lines are written: `text` for people, `json` (pino, one object a line) for machines. */
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface FerryConfig extends SecurityConfig, HttpSecurityConfig, StoreConfig {
  dataDir: string;
  bind: string;
  sync: SyncPolicy;
  ackTimeoutMs: number;
  maxAttempts: number;
  maxDepth: number;
  maxBytes: number;
  dedupWindowMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  heartbeatMs: number;
  maxMessageBytes: number;
  maxBatchMessages: number;
  maxRequestBytes: number;
  maxQueues: number;
  maxPrefetch: number;
  /** Bytes delivered to one consumer and not yet settled before it gets no more. */
  consumerMaxBytes: number;
  /** Bytes delivered to all consumers and not yet settled before deliveries wait. */
  maxInflightBytes: number;
  flowBacklogFactor: number;
  minFreeDiskBytes: number;
  maxStoreBytes: number;
  jobTimeoutMs: number;
  jobMaxAttempts: number;
  jobRetentionMs: number;
  jobMaxQueued: number;
  logLevel: LogLevel;
  /** Log line format on stderr. */
  logFormat: LogFormat;
  /** Majordomo endpoint (MDP/0.1 + MMI, MDP/0.2, Titanic); off when undefined. */
  mdp: string | undefined;
  /** Messages a live subscriber may be behind before the broker drops it (0 = unbounded). */
  liveWindow: number;
  /** Bytes a live subscriber may be behind before the broker drops it (0 = unbounded). */
  liveWindowBytes: number;
  /** Clone (12/CHP) base port P: snapshot P, publisher P+1, collector P+2; off when undefined. */
  clone: number | undefined;
  /** PZQ dialect on (producers, consumers, monitor). */
  pzq: boolean;
  /** PZQ producer ROUTER endpoint. */
  pzqReceive: string;
  /** PZQ consumer DEALER endpoint (PZQ consumers are ROUTERs that connect to it). */
  pzqSend: string;
  /** PZQ monitor ROUTER endpoint; `ipc://<data folder>/pzq-monitor` when undefined. */
  pzqMonitor: string | undefined;
  /** The Ferry queue every PZQ producer feeds and every PZQ consumer drains. */
  pzqQueue: string;
  /** PZQ ack timeout, microseconds (as PZQ's own --ack-timeout). */
  pzqAckTimeoutUs: number;
  /** ZMWS 1.0 dialect on (clients and workers). */
  zmws: boolean;
  /** ZMWS client ROUTER endpoint. */
  zmwsClient: string;
  /** ZMWS worker ROUTER endpoint. */
  zmwsWorker: string;
  /** ZMWS heartbeat interval, ms (a worker silent for 3 of them is purged). */
  zmwsHeartbeatMs: number;
  /** HTTP gateway `host:port` (REST, dashboard, /metrics); off when undefined. */
  http: string | undefined;
  /** Largest HTTP request body, bytes. */
  httpBodyLimitBytes: number;
  /** Per-queue overrides of the queue policy (config file only). */
  queues: Record<string, Partial<QueuePolicy>>;
}

/** How a key's value is read and checked (config-values.ts). */
type Kind =
  | 'string'
  | 'int'
  | 'bool'
  | 'queue'
  | 'sync'
  | 'level'
  | 'format'
  | 'queues'
  | 'http'
  | 'curve'
  | 'cidrs'
  | 'hosts'
  | 'origins'
  | 'token-hash'
  | 'store'
  | 'store-schema'
  | 'node-id';

export interface KeySpec {
  kind: Kind;
  flag: string;
  env: string;
  min?: number;
  max?: number;
  help: string;
}

/** Upper bound of integer keys that have no tighter one. */
export const INT_MAX = Number.MAX_SAFE_INTEGER;

/** The schema: every key, its flag, its environment variable, its bounds. */
export const CONFIG_SCHEMA: Record<keyof FerryConfig, KeySpec> = {
  dataDir: { kind: 'string', flag: 'data', env: 'FERRY_DATA_DIR', help: 'data folder' },
  bind: { kind: 'string', flag: 'bind', env: 'FERRY_BIND', help: 'ZeroMQ endpoint to bind' },
  sync: { kind: 'sync', flag: 'sync', env: 'FERRY_SYNC', help: 'always, batch:<ms> or off' },
  ...STORE_SCHEMA,
  ackTimeoutMs: {
    kind: 'int',
    flag: 'ack-timeout',
    env: 'FERRY_ACK_TIMEOUT_MS',
    min: 1,
    max: INT_MAX,
    help: 'default ack timeout, ms',
  },
  maxAttempts: {
    kind: 'int',
    flag: 'max-attempts',
    env: 'FERRY_MAX_ATTEMPTS',
    min: 1,
    max: 1_000_000,
    help: 'deliveries before dead-lettering',
  },
  maxDepth: {
    kind: 'int',
    flag: 'max-depth',
    env: 'FERRY_MAX_DEPTH',
    min: 0,
    max: INT_MAX,
    help: 'max live messages per queue (0 = unlimited)',
  },
  maxBytes: {
    kind: 'int',
    flag: 'max-bytes',
    env: 'FERRY_MAX_BYTES',
    min: 0,
    max: INT_MAX,
    help: 'max live bytes per queue (0 = unlimited)',
  },
  dedupWindowMs: {
    kind: 'int',
    flag: 'dedup-window',
    env: 'FERRY_DEDUP_WINDOW_MS',
    min: 1,
    max: INT_MAX,
    help: 'dedup window, ms',
  },
  retryBaseMs: {
    kind: 'int',
    flag: 'retry-base',
    env: 'FERRY_RETRY_BASE_MS',
    min: 0,
    max: INT_MAX,
    help: 'first retry delay after a nack, ms',
  },
  retryMaxMs: {
    kind: 'int',
    flag: 'retry-max',
    env: 'FERRY_RETRY_MAX_MS',
    min: 0,
    max: INT_MAX,
    help: 'cap on the retry delay, ms',
  },
  heartbeatMs: {
    kind: 'int',
    flag: 'heartbeat',
    env: 'FERRY_HEARTBEAT_MS',
    min: MIN_HEARTBEAT_MS,
    max: MAX_HEARTBEAT_MS,
    help: 'session heartbeat, ms',
  },
  maxMessageBytes: {
    kind: 'int',
    flag: 'max-message-bytes',
    env: 'FERRY_MAX_MESSAGE_BYTES',
    min: 1,
    max: 1024 * 1024 * 1024,
    help: 'largest message, bytes',
  },
  maxBatchMessages: {
    kind: 'int',
    flag: 'max-batch',
    env: 'FERRY_MAX_BATCH',
    min: 1,
    max: 1_000_000,
    help: 'most messages in one request',
  },
  maxRequestBytes: {
    kind: 'int',
    flag: 'max-request-bytes',
    env: 'FERRY_MAX_REQUEST_BYTES',
    min: 1,
    max: 1024 * 1024 * 1024,
    help: 'largest request, bytes',
  },
  maxQueues: {
    kind: 'int',
    flag: 'max-queues',
    env: 'FERRY_MAX_QUEUES',
    min: 1,
    max: 10_000_000,
    help: 'most queues',
  },
  maxPrefetch: {
    kind: 'int',
    flag: 'max-prefetch',
    env: 'FERRY_MAX_PREFETCH',
    min: 1,
    max: 1_000_000,
    help: 'largest prefetch a consumer may ask',
  },
  consumerMaxBytes: {
    kind: 'int',
    flag: 'consumer-max-bytes',
    env: 'FERRY_CONSUMER_MAX_BYTES',
    min: 1,
    max: INT_MAX,
    help: 'bytes delivered to one consumer and not yet settled (its credit in bytes)',
  },
  maxInflightBytes: {
    kind: 'int',
    flag: 'max-inflight-bytes',
    env: 'FERRY_MAX_INFLIGHT_BYTES',
    min: 1,
    max: INT_MAX,
    help: 'bytes delivered to all consumers and not yet settled, broker-wide',
  },
  flowBacklogFactor: {
    kind: 'int',
    flag: 'flow-backlog-factor',
    env: 'FERRY_FLOW_BACKLOG_FACTOR',
    min: 0,
    max: 1_000_000,
    help: "ready backlog per message of consumers' prefetch above which producers' confirms wait (0 = off)",
  },
  minFreeDiskBytes: {
    kind: 'int',
    flag: 'min-free-disk',
    env: 'FERRY_MIN_FREE_DISK_BYTES',
    min: 0,
    max: INT_MAX,
    help: 'refuse sends below this free disk, bytes',
  },
  maxStoreBytes: {
    kind: 'int',
    flag: 'max-store-bytes',
    env: 'FERRY_MAX_STORE_BYTES',
    min: 0,
    max: INT_MAX,
    help: 'cap on the store size; past it sends get STORAGE_FULL (0 = none), bytes',
  },
  jobTimeoutMs: {
    kind: 'int',
    flag: 'job-timeout',
    env: 'FERRY_JOB_TIMEOUT_MS',
    min: 1,
    max: INT_MAX,
    help: 'a running job not finished or extended within this is requeued, ms',
  },
  jobMaxAttempts: {
    kind: 'int',
    flag: 'job-max-attempts',
    env: 'FERRY_JOB_MAX_ATTEMPTS',
    min: 1,
    max: 1000,
    help: 'runs of a job before it is failed',
  },
  jobRetentionMs: {
    kind: 'int',
    flag: 'job-retention',
    env: 'FERRY_JOB_RETENTION_MS',
    min: 1,
    max: INT_MAX,
    help: 'how long finished jobs (results, failures) are kept, ms',
  },
  jobMaxQueued: {
    kind: 'int',
    flag: 'job-max-queued',
    env: 'FERRY_JOB_MAX_QUEUED',
    min: 1,
    max: INT_MAX,
    help: 'most queued jobs per service; more are refused with QUEUE_FULL',
  },
  logLevel: {
    kind: 'level',
    flag: 'log-level',
    env: 'FERRY_LOG_LEVEL',
    help: LOG_LEVELS.join(', '),
  },
  logFormat: {
    kind: 'format',
    flag: 'log-format',
    env: 'FERRY_LOG_FORMAT',
    help: `log lines: ${LOG_FORMATS.join(' or ')} (json: one pino object a line)`,
  },
  mdp: {
    kind: 'string',
    flag: 'mdp',
    env: 'FERRY_MDP',
    help: 'Majordomo endpoint to bind (MDP/0.1 + MMI, MDP/0.2, Titanic); off when unset',
  },
  liveWindow: {
    kind: 'int',
    flag: 'live-window',
    env: 'FERRY_LIVE_WINDOW',
    min: 0,
    max: MAX_LIVE_WINDOW,
    help: 'messages a live subscriber may be behind before it is dropped (0 = unbounded)',
  },
  liveWindowBytes: {
    kind: 'int',
    flag: 'live-window-bytes',
    env: 'FERRY_LIVE_WINDOW_BYTES',
    min: 0,
    max: INT_MAX,
    help: 'bytes a live subscriber may be behind before it is dropped (0 = unbounded)',
  },
  clone: {
    kind: 'int',
    flag: 'clone',
    env: 'FERRY_CLONE',
    min: 1,
    max: CLONE_MAX_BASE_PORT,
    help: 'Clone (12/CHP) base port P on 127.0.0.1: snapshot P, publisher P+1, collector P+2; off when unset',
  },
  pzq: {
    kind: 'bool',
    flag: 'pzq',
    env: 'FERRY_PZQ',
    help: 'serve PZQ producers, consumers and monitor',
  },
  pzqReceive: {
    kind: 'string',
    flag: 'pzq-receive',
    env: 'FERRY_PZQ_RECEIVE',
    help: 'PZQ producer endpoint (ROUTER bound)',
  },
  pzqSend: {
    kind: 'string',
    flag: 'pzq-send',
    env: 'FERRY_PZQ_SEND',
    help: 'PZQ consumer endpoint (DEALER bound; consumers connect ROUTERs)',
  },
  pzqMonitor: {
    kind: 'string',
    flag: 'pzq-monitor',
    env: 'FERRY_PZQ_MONITOR',
    help: 'PZQ monitor endpoint (ROUTER bound); default ipc://<data>/pzq-monitor',
  },
  pzqQueue: {
    kind: 'queue',
    flag: 'pzq-queue',
    env: 'FERRY_PZQ_QUEUE',
    help: 'the Ferry queue PZQ producers and consumers use',
  },
  pzqAckTimeoutUs: {
    kind: 'int',
    flag: 'pzq-ack-timeout',
    env: 'FERRY_PZQ_ACK_TIMEOUT_US',
    min: 1_000,
    max: INT_MAX,
    help: 'PZQ ack timeout, microseconds',
  },
  zmws: {
    kind: 'bool',
    flag: 'zmws',
    env: 'FERRY_ZMWS',
    help: 'serve ZMWS 1.0 clients and workers',
  },
  zmwsClient: {
    kind: 'string',
    flag: 'zmws-client',
    env: 'FERRY_ZMWS_CLIENT',
    help: 'ZMWS client endpoint (ROUTER bound)',
  },
  zmwsWorker: {
    kind: 'string',
    flag: 'zmws-worker',
    env: 'FERRY_ZMWS_WORKER',
    help: 'ZMWS worker endpoint (ROUTER bound)',
  },
  zmwsHeartbeatMs: {
    kind: 'int',
    flag: 'zmws-heartbeat',
    env: 'FERRY_ZMWS_HEARTBEAT_MS',
    min: 10,
    max: 600_000,
    help: 'ZMWS heartbeat interval, ms; a worker silent for 3 is purged',
  },
  http: {
    kind: 'http',
    flag: 'http',
    env: 'FERRY_HTTP',
    help: `HTTP gateway host:port (REST, dashboard, /metrics), or ${HTTP_OFF} (--no-http)`,
  },
  httpBodyLimitBytes: {
    kind: 'int',
    flag: 'http-body-limit',
    env: 'FERRY_HTTP_BODY_LIMIT_BYTES',
    min: 1024,
    max: 1024 * 1024 * 1024,
    help: 'largest HTTP request body, bytes',
  },
  ...HTTP_SECURITY_SCHEMA,
  queues: { kind: 'queues', flag: '', env: '', help: 'per-queue policy (file only)' },
  ...SECURITY_SCHEMA,
};

export const DEFAULT_CONFIG: Readonly<FerryConfig> = Object.freeze({
  dataDir: DEFAULT_DATA_DIR,
  bind: DEFAULT_BIND,
  sync: { mode: 'always' },
  ...STORE_DEFAULTS,
  ackTimeoutMs: DEFAULT_ACK_TIMEOUT_MS,
  maxAttempts: DEFAULT_MAX_ATTEMPTS,
  maxDepth: 0,
  maxBytes: 0,
  dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS,
  retryBaseMs: DEFAULT_RETRY_BASE_MS,
  retryMaxMs: DEFAULT_RETRY_MAX_MS,
  heartbeatMs: DEFAULT_HEARTBEAT_MS,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  maxBatchMessages: DEFAULT_MAX_BATCH_MESSAGES,
  maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
  maxQueues: DEFAULT_MAX_QUEUES,
  maxPrefetch: DEFAULT_MAX_PREFETCH,
  consumerMaxBytes: DEFAULT_CONSUMER_MAX_BYTES,
  maxInflightBytes: DEFAULT_MAX_INFLIGHT_BYTES,
  flowBacklogFactor: DEFAULT_FLOW_BACKLOG_FACTOR,
  minFreeDiskBytes: DEFAULT_MIN_FREE_DISK_BYTES,
  maxStoreBytes: 0,
  jobTimeoutMs: DEFAULT_JOB_RUN_TIMEOUT_MS,
  jobMaxAttempts: DEFAULT_JOB_MAX_ATTEMPTS,
  jobRetentionMs: DEFAULT_JOB_RETENTION_MS,
  jobMaxQueued: DEFAULT_JOB_MAX_QUEUED,
  logLevel: 'info',
  logFormat: 'text',
  mdp: undefined,
  liveWindow: DEFAULT_LIVE_WINDOW,
  liveWindowBytes: DEFAULT_LIVE_WINDOW_BYTES,
  clone: undefined,
  pzq: false,
  pzqReceive: DEFAULT_PZQ_RECEIVE,
  pzqSend: DEFAULT_PZQ_SEND,
  pzqMonitor: undefined,
  pzqQueue: DEFAULT_PZQ_QUEUE,
  pzqAckTimeoutUs: DEFAULT_PZQ_ACK_TIMEOUT_US,
  zmws: false,
  zmwsClient: DEFAULT_ZMWS_CLIENT,
  zmwsWorker: DEFAULT_ZMWS_WORKER,
  zmwsHeartbeatMs: ZMWS_HEARTBEAT_INTERVAL_MS,
  http: DEFAULT_HTTP,
  httpBodyLimitBytes: DEFAULT_HTTP_BODY_LIMIT_BYTES,
  ...DEFAULT_HTTP_SECURITY,
  queues: {},
  ...SECURITY_DEFAULTS,
}) as FerryConfig;
