/**
 * Broker configuration: one schema, four layers. defaults < config file < environment
 * (FERRY_*) < command-line flags. This module is the way in: the schema and defaults live in
 * config-schema.ts, value parsing in config-values.ts, the layers in config-sources.ts; here
 * are the queue and job policies the broker-wide keys set.
 */
import type { JobPolicy, QueuePolicy } from 'ferrymq/model';
import type { FerryConfig } from './config-schema.js';

export {
  CONFIG_SCHEMA,
  DEFAULT_CONFIG,
  HTTP_OFF,
  type FerryConfig,
  type LogFormat,
  type LogLevel,
} from './config-schema.js';
export { formatSync, parseSync, splitHttpAddress } from './config-values.js';
export { loadConfig, unknownFerryVariables } from './config-sources.js';

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
