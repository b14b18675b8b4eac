/**
 * The HTTP gateway's security keys: which `Host` names and page origins it answers, TLS, the
 * `/metrics` token and the rate limit. Their schema entries join CONFIG_SCHEMA
 * (config-schema.ts); the values of the list and token kinds are checked here.
 */
import { FerryError } from 'ferrymq/model';

/** CONFIG_INVALID naming where the bad value came from (as config-values.ts words it). */
function invalid(where: string, msg: string): FerryError {
  return new FerryError('CONFIG_INVALID', `${where}: ${msg}`);
}

export interface HttpSecurityConfig {
  /** `Host` names the gateway answers besides loopback names and its own address. */
  httpHosts: string[];
  /** Origins (`https://app.example`) whose pages may call the gateway; CORS for them. */
  httpOrigins: string[];
  /** PEM certificate (chain) file: the gateway speaks HTTPS when set, with tlsKey. */
  tlsCert: string | undefined;
  /** PEM private key file of tlsCert. */
  tlsKey: string | undefined;
  /** `sha256:<hex>` of a token that may read `/metrics` (besides users with `admin`). */
  metricsToken: string | undefined;
  /** Requests per minute per token (per client address without an auth file); 0 = no limit. */
  httpRateLimit: number;
}

/** Most requests per minute a limit may be set to. */
const MAX_HTTP_RATE_LIMIT = 10_000_000;

/** The keys' schema entries, in CONFIG_SCHEMA's shape. */
export const HTTP_SECURITY_SCHEMA = {
  httpHosts: {
    kind: 'hosts',
    flag: 'http-hosts',
    env: 'FERRY_HTTP_HOSTS',
    help: 'Host names the HTTP gateway answers besides loopback ones, comma-separated',
  },
  httpOrigins: {
    kind: 'origins',
    flag: 'http-origins',
    env: 'FERRY_HTTP_ORIGINS',
    help: 'origins whose pages may call the HTTP gateway (CORS), comma-separated',
  },
  tlsCert: {
    kind: 'string',
    flag: 'tls-cert',
    env: 'FERRY_TLS_CERT',
    help: 'PEM certificate file: the HTTP gateway speaks HTTPS (with --tls-key)',
  },
  tlsKey: {
    kind: 'string',
    flag: 'tls-key',
    env: 'FERRY_TLS_KEY',
    help: 'PEM private key file of --tls-cert',
  },
  metricsToken: {
    kind: 'token-hash',
    flag: 'metrics-token',
    env: 'FERRY_METRICS_TOKEN',
    help: 'sha256:<hex> of a bearer token that may read /metrics',
  },
  httpRateLimit: {
    kind: 'int',
    flag: 'http-rate-limit',
    env: 'FERRY_HTTP_RATE_LIMIT',
    min: 0,
    max: MAX_HTTP_RATE_LIMIT,
    help: 'HTTP requests per minute per token (per address without an auth file); 0 = no limit',
  },
} as const;

export const DEFAULT_HTTP_SECURITY: Readonly<HttpSecurityConfig> = Object.freeze({
  httpHosts: [],
  httpOrigins: [],
  tlsCert: undefined,
  tlsKey: undefined,
  metricsToken: undefined,
  httpRateLimit: 0,
});

/** A list from a file (JSON array of strings) or from text (comma-separated). */
function stringList(raw: unknown, where: string, fromText: boolean): string[] {
  let items: unknown[];
  if (fromText && typeof raw === 'string') items = raw.split(',').map((s) => s.trim());
  else if (Array.isArray(raw)) items = raw;
  else throw invalid(where, 'expected a list (a JSON array, or comma-separated text)');
  const out = items.filter((s) => s !== '');
  for (const s of out) {
    if (typeof s !== 'string') throw invalid(where, `expected strings; got ${JSON.stringify(s)}`);
  }
  return out as string[];
}

/** A DNS name or an IP address (IPv6 in brackets), without a port. */
const HOST_NAME =
  /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)$/;

export function coerceHosts(raw: unknown, where: string, fromText: boolean): string[] {
  const hosts = stringList(raw, where, fromText);
  for (const h of hosts) {
    if (h.length > 253 || !HOST_NAME.test(h)) {
      throw invalid(where, `not a host name (no port, no scheme): ${JSON.stringify(h)}`);
    }
  }
  return hosts.map((h) => h.toLowerCase());
}

export function coerceOrigins(raw: unknown, where: string, fromText: boolean): string[] {
  return stringList(raw, where, fromText).map((o) => {
    let url: URL | undefined;
    try {
      url = new URL(o);
    } catch {
      url = undefined;
    }
    // An origin is scheme://host[:port] and nothing more: no path, no query, no credentials.
    if (
      url === undefined ||
      (url.protocol !== 'http:' && url.protocol !== 'https:') ||
      url.origin !== o.replace(/\/$/, '').toLowerCase()
    ) {
      throw invalid(where, `not an origin like https://app.example:8443: ${JSON.stringify(o)}`);
    }
    return url.origin;
  });
}

/** `sha256:` and 64 hex digits, as the auth file stores tokens. */
export function coerceTokenHash(raw: unknown, where: string): string {
  if (typeof raw !== 'string' || !/^sha256:[0-9a-fA-F]{64}$/.test(raw)) {
    throw invalid(where, 'expected sha256:<64 hex digits>, the SHA-256 of the token');
  }
  return raw.toLowerCase();
}
