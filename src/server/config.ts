/**
 * Broker configuration: one schema, four layers. defaults < config file < environment
 * (FERRY_*) < command-line flags. Unknown keys, bad values and bad flags are refused with
 * CONFIG_INVALID and a message naming the key and the layer it came from.
 */
import fs from 'node:fs';
import { FerryError } from '../errors.js';
import {
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_DEDUP_WINDOW_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_RETRY_BASE_MS,
  DEFAULT_RETRY_MAX_MS,
  isValidQueueName,
  type QueuePolicy,
} from '../core/types.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PREFETCH,
  DEFAULT_MAX_QUEUES,
} from '../core/broker.js';
import type { SyncPolicy } from '../storage/types.js';
import { DEFAULT_LIVE_WINDOW, MAX_LIVE_WINDOW } from '../core/pubsub.js';
import {
  DEFAULT_JOB_MAX_ATTEMPTS,
  DEFAULT_JOB_MAX_QUEUED,
  DEFAULT_JOB_RETENTION_MS,
  DEFAULT_JOB_RUN_TIMEOUT_MS,
  type JobPolicy,
} from '../core/job-types.js';
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_BATCH_MESSAGES,
  DEFAULT_MAX_REQUEST_BYTES,
  MAX_HEARTBEAT_MS,
  MIN_HEARTBEAT_MS,
} from '../dialects/ferry/ferry-dialect.js';

export const DEFAULT_BIND = 'tcp://127.0.0.1:7400';
export const DEFAULT_DATA_DIR = './data';
/** Highest Clone base port: the collector binds P + 2. */
export const CLONE_MAX_BASE_PORT = 65_533;
/** Below this much free disk space in the data folder, sends are refused (STORAGE_FULL). */
export const DEFAULT_MIN_FREE_DISK_BYTES = 64 * 1024 * 1024;
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface FerryConfig {
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
  minFreeDiskBytes: number;
  maxStoreBytes: number;
  jobTimeoutMs: number;
  jobMaxAttempts: number;
  jobRetentionMs: number;
  jobMaxQueued: number;
  logLevel: LogLevel;
  /** Majordomo endpoint (MDP/0.1 + MMI, MDP/0.2, Titanic); off when undefined. */
  mdp: string | undefined;
  /** Messages a live subscriber may be behind before the broker drops it (0 = unbounded). */
  liveWindow: number;
  /** Clone (12/CHP) base port P: snapshot P, publisher P+1, collector P+2; off when undefined. */
  clone: number | undefined;
  /** Per-queue overrides of the queue policy (config file only). */
  queues: Record<string, Partial<QueuePolicy>>;
}

type Kind = 'string' | 'int' | 'sync' | 'level' | 'queues';

interface KeySpec {
  kind: Kind;
  flag: string;
  env: string;
  min?: number;
  max?: number;
  help: string;
}

const INT_MAX = Number.MAX_SAFE_INTEGER;

/** The schema: every key, its flag, its environment variable, its bounds. */
export const CONFIG_SCHEMA: Record<keyof FerryConfig, KeySpec> = {
  dataDir: { kind: 'string', flag: 'data', env: 'FERRY_DATA_DIR', help: 'data folder' },
  bind: { kind: 'string', flag: 'bind', env: 'FERRY_BIND', help: 'ZeroMQ endpoint to bind' },
  sync: { kind: 'sync', flag: 'sync', env: 'FERRY_SYNC', help: 'always, batch:<ms> or off' },
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
  clone: {
    kind: 'int',
    flag: 'clone',
    env: 'FERRY_CLONE',
    min: 1,
    max: CLONE_MAX_BASE_PORT,
    help: 'Clone (12/CHP) base port P on 127.0.0.1: snapshot P, publisher P+1, collector P+2; off when unset',
  },
  queues: { kind: 'queues', flag: '', env: '', help: 'per-queue policy (file only)' },
};

export const DEFAULT_CONFIG: Readonly<FerryConfig> = Object.freeze({
  dataDir: DEFAULT_DATA_DIR,
  bind: DEFAULT_BIND,
  sync: { mode: 'always' },
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
  minFreeDiskBytes: DEFAULT_MIN_FREE_DISK_BYTES,
  maxStoreBytes: 0,
  jobTimeoutMs: DEFAULT_JOB_RUN_TIMEOUT_MS,
  jobMaxAttempts: DEFAULT_JOB_MAX_ATTEMPTS,
  jobRetentionMs: DEFAULT_JOB_RETENTION_MS,
  jobMaxQueued: DEFAULT_JOB_MAX_QUEUED,
  logLevel: 'info',
  mdp: undefined,
  liveWindow: DEFAULT_LIVE_WINDOW,
  clone: undefined,
  queues: {},
}) as FerryConfig;

const POLICY_KEYS: ReadonlySet<string> = new Set([
  'ackTimeoutMs',
  'maxAttempts',
  'maxDepth',
  'maxBytes',
  'dedupWindowMs',
  'retryBaseMs',
  'retryMaxMs',
]);

function invalid(where: string, msg: string): FerryError {
  return new FerryError('CONFIG_INVALID', `${where}: ${msg}`);
}

export function parseSync(value: string, where = 'sync'): SyncPolicy {
  if (value === 'always' || value === 'off') return { mode: value };
  const m = /^batch:(\d+)$/.exec(value);
  if (m) {
    const intervalMs = Number(m[1]);
    if (intervalMs >= 1 && intervalMs <= 60_000) return { mode: 'batch', intervalMs };
  }
  throw invalid(
    where,
    `expected always, batch:<ms> (1–60000) or off; got ${JSON.stringify(value)}`,
  );
}

export function formatSync(s: SyncPolicy): string {
  return s.mode === 'batch' ? `batch:${s.intervalMs}` : s.mode;
}

function coerce(key: keyof FerryConfig, raw: unknown, where: string, fromText: boolean): unknown {
  const spec = CONFIG_SCHEMA[key];
  switch (spec.kind) {
    case 'string':
      if (typeof raw !== 'string' || raw.length === 0)
        throw invalid(where, 'expected a non-empty string');
      return raw;
    case 'int': {
      let n: unknown = raw;
      if (fromText && typeof raw === 'string') n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (typeof n !== 'number' || !Number.isInteger(n))
        throw invalid(where, `expected an integer; got ${JSON.stringify(raw)}`);
      if (n < (spec.min ?? 0) || n > (spec.max ?? INT_MAX)) {
        throw invalid(
          where,
          `must be between ${spec.min ?? 0} and ${spec.max ?? INT_MAX}; got ${n}`,
        );
      }
      return n;
    }
    case 'sync':
      if (typeof raw !== 'string') throw invalid(where, 'expected always, batch:<ms> or off');
      return parseSync(raw, where);
    case 'level':
      if (typeof raw !== 'string' || !(LOG_LEVELS as readonly string[]).includes(raw)) {
        throw invalid(where, `expected one of ${LOG_LEVELS.join(', ')}`);
      }
      return raw;
    case 'queues':
      return coerceQueues(raw, where);
  }
}

function coerceQueues(raw: unknown, where: string): Record<string, Partial<QueuePolicy>> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalid(where, 'expected an object of queue name → policy');
  }
  const out: Record<string, Partial<QueuePolicy>> = {};
  for (const [name, policy] of Object.entries(raw)) {
    if (!isValidQueueName(name)) throw invalid(`${where}.${name}`, 'invalid queue name');
    if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
      throw invalid(`${where}.${name}`, 'expected an object');
    }
    const p: Partial<QueuePolicy> = {};
    for (const [k, v] of Object.entries(policy)) {
      if (!POLICY_KEYS.has(k)) throw invalid(`${where}.${name}.${k}`, 'unknown key');
      p[k as keyof QueuePolicy] = coerce(
        k as keyof FerryConfig,
        v,
        `${where}.${name}.${k}`,
        false,
      ) as number;
    }
    out[name] = p;
  }
  return out;
}

function isKey(k: string): k is keyof FerryConfig {
  return Object.hasOwn(CONFIG_SCHEMA, k);
}

export interface ConfigSources {
  /** Path of a JSON config file. */
  file?: string | undefined;
  /** Environment variables (FERRY_* are read). */
  env?: Record<string, string | undefined>;
  /** Flags already parsed: flag name (as in CONFIG_SCHEMA) → text value. */
  flags?: Record<string, string | undefined>;
}

/** Builds the configuration from its layers. Throws CONFIG_INVALID naming the bad input. */
export function loadConfig(sources: ConfigSources = {}): FerryConfig {
  const cfg: Record<string, unknown> = { ...DEFAULT_CONFIG, sync: { ...DEFAULT_CONFIG.sync } };
  if (sources.file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(sources.file, 'utf8');
    } catch (err) {
      throw invalid(sources.file, `cannot read config file (${(err as Error).message})`);
    }
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (err) {
      throw invalid(sources.file, `not valid JSON (${(err as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw invalid(sources.file, 'expected a JSON object');
    }
    for (const [k, v] of Object.entries(obj)) {
      if (!isKey(k)) throw invalid(`${sources.file}: ${k}`, 'unknown key');
      const value = k === 'sync' && typeof v === 'string' ? v : v;
      cfg[k] = coerce(k, value, `${sources.file}: ${k}`, false);
    }
  }
  const env = sources.env ?? {};
  const known = new Set(
    Object.values(CONFIG_SCHEMA)
      .map((s) => s.env)
      .filter((e) => e !== ''),
  );
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('FERRY_') || value === undefined) continue;
    if (name === 'FERRY_CONFIG' || name === 'FERRY_BROKER') continue;
    if (!known.has(name)) throw invalid(`environment ${name}`, 'unknown FERRY_ variable');
  }
  for (const key of Object.keys(CONFIG_SCHEMA) as (keyof FerryConfig)[]) {
    const spec = CONFIG_SCHEMA[key];
    if (spec.env !== '' && env[spec.env] !== undefined) {
      cfg[key] = coerce(key, env[spec.env], `environment ${spec.env}`, true);
    }
  }
  const flags = sources.flags ?? {};
  for (const key of Object.keys(CONFIG_SCHEMA) as (keyof FerryConfig)[]) {
    const spec = CONFIG_SCHEMA[key];
    if (spec.flag !== '' && flags[spec.flag] !== undefined) {
      cfg[key] = coerce(key, flags[spec.flag], `--${spec.flag}`, true);
    }
  }
  return cfg as unknown as FerryConfig;
}

/** The queue policy defaults that the broker-wide keys set. */
export function defaultPolicyOf(cfg: FerryConfig): QueuePolicy {
  return {
    ackTimeoutMs: cfg.ackTimeoutMs,
    maxAttempts: cfg.maxAttempts,
    maxDepth: cfg.maxDepth,
    maxBytes: cfg.maxBytes,
    dedupWindowMs: cfg.dedupWindowMs,
    retryBaseMs: cfg.retryBaseMs,
    retryMaxMs: cfg.retryMaxMs,
  };
}

/** The job policy defaults that the broker-wide keys set. */
export function jobPolicyOf(cfg: FerryConfig): Partial<JobPolicy> {
  return {
    runTimeoutMs: cfg.jobTimeoutMs,
    maxAttempts: cfg.jobMaxAttempts,
    retentionMs: cfg.jobRetentionMs,
    maxQueued: cfg.jobMaxQueued,
    retryBaseMs: cfg.retryBaseMs,
    retryMaxMs: cfg.retryMaxMs,
  };
}
