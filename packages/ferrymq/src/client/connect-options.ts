/**
 * What `connect()` is given, checked before any socket opens: the broker endpoints and the
 * client options. Anything malformed is refused with CONFIG_INVALID naming the expected form,
 * never left to ZeroMQ's bare "Invalid argument".
 */
import { FerryError } from '../model/errors.js';
import { checkCurveOptions, type CurveOptions } from './curve-auth.js';

export const DEFAULT_ENDPOINT = 'tcp://127.0.0.1:7400';
/** The form a broker endpoint takes (ipc://path also works, for a broker bound to one). */
export const ENDPOINT_FORM = 'tcp://host:port';
const DEFAULT_CLIENT_HEARTBEAT_MS = 2_000;
/** The broker's bounds on the heartbeat a client asks for. */
const MIN_CLIENT_HEARTBEAT_MS = 100;
const MAX_CLIENT_HEARTBEAT_MS = 60_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * Before the first session: how long the socket gets to reach an endpoint (TCP connected)
 * before it counts as unreachable. A refused connection counts at once.
 */
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const MAX_NAME_LENGTH = 200;
const MAX_PORT = 65_535;

export interface ConnectOptions {
  /** How often the client pings; the broker drops a session silent for 3× this (100–60000). */
  heartbeatMs?: number;
  /** A request with no answer within this rejects with TIMEOUT (0: no limit). */
  requestTimeoutMs?: number;
  /**
   * connect() rejects UNREACHABLE when no endpoint accepts a connection within this long;
   * a refused connection fails at once. Later disconnects are retried, whatever this is.
   */
  connectTimeoutMs?: number;
  /** Most messages per SEND request when batching. */
  maxBatchMessages?: number;
  /** Send queued acks as soon as this many are waiting, without waiting for the tick to end. */
  ackFlushAt?: number;
  /** Name shown in broker logs. */
  name?: string;
  /**
   * Connect with CURVE (encrypted, and the broker knows this client's key): the broker's
   * public key and this client's key pair, Z85 each (docs/security.md). A refused key
   * rejects connect() and every pending request with AUTH_FAILED.
   */
  curve?: CurveOptions;
}

/** Every option, with its default (CURVE stays off unless given). */
export type ResolvedConnectOptions = Required<Omit<ConnectOptions, 'curve'>> & {
  curve: CurveOptions | undefined;
};

const TCP_ENDPOINT = /^tcp:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;
const IPC_ENDPOINT = /^ipc:\/\/\S+$/;

function invalid(message: string): FerryError {
  return new FerryError('CONFIG_INVALID', message);
}

/** The endpoints as a list, each checked; throws CONFIG_INVALID naming the expected form. */
export function checkEndpoints(endpoints: unknown): string[] {
  const list: unknown[] = Array.isArray(endpoints) ? endpoints : [endpoints];
  if (list.length === 0) throw invalid(`no broker endpoint given (expected ${ENDPOINT_FORM})`);
  return list.map((e) => {
    if (typeof e !== 'string') {
      throw invalid(`a broker endpoint must be a string like ${ENDPOINT_FORM}, not ${typeof e}`);
    }
    const tcp = TCP_ENDPOINT.exec(e);
    const port = tcp ? Number(tcp[2]) : 0;
    if ((tcp && port >= 1 && port <= MAX_PORT) || IPC_ENDPOINT.test(e)) return e;
    throw invalid(
      `${JSON.stringify(e)} is not a broker endpoint: expected ${ENDPOINT_FORM} ` +
        `(e.g. ${DEFAULT_ENDPOINT}), port 1–${MAX_PORT}`,
    );
  });
}

function intOption(
  options: Record<string, unknown>,
  key: keyof ConnectOptions,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `${min}–${max}`;
    throw invalid(`option ${key} must be an integer ${range}, not ${JSON.stringify(v)}`);
  }
  return v;
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'heartbeatMs',
  'requestTimeoutMs',
  'connectTimeoutMs',
  'maxBatchMessages',
  'ackFlushAt',
  'name',
  'curve',
]);

/** The options with their defaults; throws CONFIG_INVALID for an unknown key or a bad value. */
export function resolveConnectOptions(
  options: ConnectOptions,
  defaults: { maxBatchMessages: number; ackFlushAt: number },
): ResolvedConnectOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid('the client options must be an object');
  }
  const bag = options as Record<string, unknown>;
  for (const key of Object.keys(bag)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw invalid(
        `unknown client option ${JSON.stringify(key)} (known: ${[...KNOWN_OPTIONS].join(', ')})`,
      );
    }
  }
  const name = bag['name'] ?? 'ferry-js';
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw invalid(`option name must be a string of 1–${MAX_NAME_LENGTH} characters`);
  }
  return {
    heartbeatMs: intOption(
      bag,
      'heartbeatMs',
      DEFAULT_CLIENT_HEARTBEAT_MS,
      MIN_CLIENT_HEARTBEAT_MS,
      MAX_CLIENT_HEARTBEAT_MS,
    ),
    requestTimeoutMs: intOption(bag, 'requestTimeoutMs', DEFAULT_REQUEST_TIMEOUT_MS, 0),
    connectTimeoutMs: intOption(bag, 'connectTimeoutMs', DEFAULT_CONNECT_TIMEOUT_MS, 1),
    maxBatchMessages: intOption(bag, 'maxBatchMessages', defaults.maxBatchMessages, 1),
    ackFlushAt: intOption(bag, 'ackFlushAt', defaults.ackFlushAt, 1),
    name,
    curve: checkCurveOptions(bag['curve']),
  };
}
