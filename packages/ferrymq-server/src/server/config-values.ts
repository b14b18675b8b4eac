/**
 * Reading one configuration value: the sync policy (`always`, `batch:<ms>`, `off`), the HTTP
 * address (`host:port` or `off`), and coerce(), which checks any key's value against its
 * CONFIG_SCHEMA entry (text from the environment and flags, JSON from a file).
 */
import { FerryError, isValidQueueName, type QueuePolicy } from 'ferrymq/model';
import type { SyncPolicy } from '../storage/types.js';
import {
  CONFIG_SCHEMA,
  DEFAULT_HTTP,
  HTTP_OFF,
  INT_MAX,
  LOG_FORMATS,
  LOG_LEVELS,
  type FerryConfig,
} from './config-schema.js';
import { coerceCidrs, coerceCurve } from './config-security.js';
import { coerceHosts, coerceOrigins, coerceTokenHash } from './config-http-security.js';
import { coerceNodeId, coerceStore, coerceStoreSchema } from './config-store.js';

const POLICY_KEYS: ReadonlySet<string> = new Set([
  'ackTimeoutMs',
  'maxAttempts',
  'maxDepth',
  'maxBytes',
  'dedupWindowMs',
  'retryBaseMs',
  'retryMaxMs',
]);

/** CONFIG_INVALID naming where the bad value came from (key, file, variable or flag). */
export function invalid(where: string, msg: string): FerryError {
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

/** `host:port` (port 0 = any free port) or `off`; returns undefined for off. */
function parseHttpAddress(raw: unknown, where = 'http'): string | undefined {
  if (raw === null || raw === HTTP_OFF || raw === false) return undefined;
  const m =
    typeof raw === 'string' ? /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw) : null;
  if (!m || Number(m[2]) > 65_535) {
    throw invalid(
      where,
      `expected host:port (e.g. ${DEFAULT_HTTP}) or ${HTTP_OFF}; got ${JSON.stringify(raw)}`,
    );
  }
  return raw as string;
}

/** Splits a `host:port` checked by {@link parseHttpAddress}. */
export function splitHttpAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

export function formatSync(s: SyncPolicy): string {
  return s.mode === 'batch' ? `batch:${s.intervalMs}` : s.mode;
}

/** Checks `raw` for `key` (`fromText`: from the environment or a flag) and returns its value. */
export function coerce(
  key: keyof FerryConfig,
  raw: unknown,
  where: string,
  fromText: boolean,
): unknown {
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
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (fromText && typeof raw === 'string') {
        const t = raw.trim().toLowerCase();
        if (t === 'true' || t === '1' || t === 'yes' || t === 'on') return true;
        if (t === 'false' || t === '0' || t === 'no' || t === 'off') return false;
      }
      throw invalid(where, `expected true or false; got ${JSON.stringify(raw)}`);
    case 'queue':
      if (!isValidQueueName(raw)) throw invalid(where, `invalid queue name ${JSON.stringify(raw)}`);
      return raw;
    case 'sync':
      if (typeof raw !== 'string') throw invalid(where, 'expected always, batch:<ms> or off');
      return parseSync(raw, where);
    case 'level':
      if (typeof raw !== 'string' || !(LOG_LEVELS as readonly string[]).includes(raw)) {
        throw invalid(where, `expected one of ${LOG_LEVELS.join(', ')}`);
      }
      return raw;
    case 'format':
      if (typeof raw !== 'string' || !(LOG_FORMATS as readonly string[]).includes(raw)) {
        throw invalid(where, `expected one of ${LOG_FORMATS.join(', ')}`);
      }
      return raw;
    case 'queues':
      return coerceQueues(raw, where);
    case 'http':
      return parseHttpAddress(raw, where);
    case 'curve':
      return coerceCurve(raw, where, fromText);
    case 'cidrs':
      return coerceCidrs(raw, where, fromText);
    case 'hosts':
      return coerceHosts(raw, where, fromText);
    case 'origins':
      return coerceOrigins(raw, where, fromText);
    case 'token-hash':
      return coerceTokenHash(raw, where);
    case 'store':
      return coerceStore(raw, where);
    case 'store-schema':
      return coerceStoreSchema(raw, where);
    case 'node-id':
      return coerceNodeId(raw, where);
  }
}

function coerceQueues(raw: unknown, where: string): Record<string, Partial<QueuePolicy>> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalid(where, 'expected an object of queue name → policy');
  }
  const out: Record<string, Partial<QueuePolicy>> = {};
  for (const [name, policy] of Object.entries(raw as Record<string, unknown>)) {
    if (!isValidQueueName(name)) throw invalid(`${where}.${String(name)}`, 'invalid queue name');
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
