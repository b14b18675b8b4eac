/**
 * Broker configuration: one schema, four layers. defaults < config file < environment
 * (FERRY_*) < command-line flags. This module is the way in: the schema and defaults live in
 * config-schema.ts, value parsing in config-values.ts, the layers in config-sources.ts; here
 * are the queue and job policies the broker-wide keys set.
 */
import type { JobPolicy, QueuePolicy } from 'ferrymq/model';
import type { FerryConfig } from './config-schema.js';

export {
  CLONE_MAX_BASE_PORT,
  CONFIG_SCHEMA,
  DEFAULT_BIND,
  DEFAULT_CONFIG,
  DEFAULT_DATA_DIR,
  DEFAULT_HTTP,
  DEFAULT_HTTP_BODY_LIMIT_BYTES,
  DEFAULT_HTTP_HOST,
  DEFAULT_HTTP_PORT,
  DEFAULT_MIN_FREE_DISK_BYTES,
  DEFAULT_PZQ_ACK_TIMEOUT_US,
  DEFAULT_PZQ_QUEUE,
  DEFAULT_PZQ_RECEIVE,
  DEFAULT_PZQ_SEND,
  DEFAULT_ZMWS_CLIENT,
  DEFAULT_ZMWS_WORKER,
  HTTP_OFF,
  LOG_LEVELS,
  type FerryConfig,
  type LogLevel,
} from './config-schema.js';
export { formatSync, parseHttpAddress, parseSync, splitHttpAddress } from './config-values.js';
export { loadConfig, type ConfigSources } from './config-sources.js';

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
