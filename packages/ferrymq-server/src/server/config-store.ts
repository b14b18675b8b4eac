/**
 * Where the broker keeps its data: the embedded SQLite store in the data folder (the default),
 * or a PostgreSQL database shared with other brokers (`store`), with its schema, this broker's
 * node id among them and the liveness timeout after which a silent broker's leases and running
 * jobs go to the others. Their schema entries join CONFIG_SCHEMA (config-schema.ts); the
 * values of the store kinds are checked here.
 */
import { FerryError } from 'ferrymq/model';
import { DEFAULT_PG_SCHEMA } from '../storage/postgres/pg-schema.js';

/** CONFIG_INVALID naming where the bad value came from (as config-values.ts words it). */
function invalid(where: string, msg: string): FerryError {
  return new FerryError('CONFIG_INVALID', `${where}: ${msg}`);
}

export interface StoreConfig {
  /** `postgres://user[:password]@host[:port]/database`; the embedded SQLite store when undefined. */
  store: string | undefined;
  /** PostgreSQL schema of the store's tables. */
  storeSchema: string;
  /** This broker's id among brokers sharing a PostgreSQL store; `<hostname>:<port>` when undefined. */
  nodeId: string | undefined;
  /** A broker silent this long is dead to the others: its leases and running jobs are released. */
  nodeTimeoutMs: number;
}

/** Default liveness timeout: several heartbeats (the store heartbeats every second or so). */
const DEFAULT_NODE_TIMEOUT_MS = 15_000;
/** Shortest liveness timeout (a few heartbeats). */
const MIN_NODE_TIMEOUT_MS = 3_000;
/** Longest liveness timeout: one day. */
const MAX_NODE_TIMEOUT_MS = 24 * 60 * 60 * 1000;
/** Longest node id. */
const MAX_NODE_ID_LENGTH = 128;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const NODE_ID = /^[A-Za-z0-9._:@-]+$/;

export const STORE_SCHEMA = {
  store: {
    kind: 'store',
    flag: 'store',
    env: 'FERRY_STORE',
    help: 'postgres://user@host:port/db to share a PostgreSQL store (default: SQLite in --data)',
  },
  storeSchema: {
    kind: 'store-schema',
    flag: 'store-schema',
    env: 'FERRY_STORE_SCHEMA',
    help: 'PostgreSQL schema of the store (created at start)',
  },
  nodeId: {
    kind: 'node-id',
    flag: 'node-id',
    env: 'FERRY_NODE_ID',
    help: "this broker's id among brokers sharing a store (default <hostname>:<port>)",
  },
  nodeTimeoutMs: {
    kind: 'int',
    flag: 'node-timeout',
    env: 'FERRY_NODE_TIMEOUT_MS',
    min: MIN_NODE_TIMEOUT_MS,
    max: MAX_NODE_TIMEOUT_MS,
    help: "ms without a broker's heartbeat before its leases and running jobs are released",
  },
} as const;

export const STORE_DEFAULTS: Readonly<StoreConfig> = Object.freeze({
  store: undefined,
  storeSchema: DEFAULT_PG_SCHEMA,
  nodeId: undefined,
  nodeTimeoutMs: DEFAULT_NODE_TIMEOUT_MS,
});

/** `store`: a postgres:// (or postgresql://) URL naming a database. */
export function coerceStore(raw: unknown, where: string): string {
  if (typeof raw !== 'string' || raw.length === 0) {
    throw invalid(where, 'expected a postgres://user@host:port/database URL');
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(where, 'expected a postgres://user@host:port/database URL; not a URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw invalid(where, `only postgres:// stores are supported; got ${url.protocol}//`);
  }
  if (url.hostname === '' || url.pathname.length <= 1) {
    throw invalid(where, 'the URL must name a host and a database (postgres://host/db)');
  }
  return raw;
}

/** `storeSchema`: a plain lower-case SQL identifier. */
export function coerceStoreSchema(raw: unknown, where: string): string {
  if (typeof raw !== 'string' || !SCHEMA_NAME.test(raw)) {
    throw invalid(where, 'expected a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63)');
  }
  return raw;
}

/** `nodeId`: letters, digits and . _ : @ -, at most 128. */
export function coerceNodeId(raw: unknown, where: string): string {
  if (typeof raw !== 'string' || raw.length > MAX_NODE_ID_LENGTH || !NODE_ID.test(raw)) {
    throw invalid(
      where,
      `expected letters, digits and . _ : @ - (at most ${MAX_NODE_ID_LENGTH} characters)`,
    );
  }
  return raw;
}
