/**
 * Each peer's name, npm client and port, and loading its adapter only when it answers. The
 * adapters (adapters/<id>.ts) are the only code that imports a peer's client; they are compiled
 * by bench/peers/tsconfig.json after `npm run bench:peers` installed bench/peers' own package.
 * Here, compiled with the rest of the bench, a peer is first checked with a plain TCP connect
 * to the port its URL names; only then is its adapter imported, by a computed path, and probed.
 * So a run in which no peer answers needs neither the clients nor the compiled adapters.
 */
import net from 'node:net';
import type { PeerId, PeersConfig } from './config.js';
import type { Peer, PeerAdapter, ServerInfo } from './peer.js';

export interface PeerEndpoint {
  /** As printed and in the tables' rows. */
  name: string;
  /** The npm client its adapter measures through (its version is reported). */
  client: string;
  url(cfg: PeersConfig): string;
  /** The port when the URL names none. */
  defaultPort: number;
}

export const PEER_ENDPOINTS: Record<PeerId, PeerEndpoint> = {
  rabbitmq: { name: 'RabbitMQ', client: 'amqplib', url: (c) => c.amqpUrl, defaultPort: 5672 },
  jetstream: {
    name: 'NATS JetStream',
    client: 'nats',
    url: (c) => c.natsUrl,
    defaultPort: 4222,
  },
  bullmq: { name: 'BullMQ', client: 'bullmq', url: (c) => c.redisUrl, defaultPort: 6379 },
};

/** The TCP check gives up after this long, ms. */
const CONNECT_TIMEOUT_MS = 3_000;

/**
 * The host and port a peer's URL points at: `amqp://user:pass@host:port`,
 * `redis://host:port`, and NATS' `host:port` (with or without `nats://`; of a comma list of
 * servers, the first).
 */
export function endpointOf(url: string, defaultPort: number): { host: string; port: number } {
  const first = url.split(',')[0]!.trim();
  let u: URL;
  try {
    u = new URL(first.includes('://') ? first : `tcp://${first}`);
  } catch {
    throw new Error(`${url} is not a URL`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new Error(`${url} names no host`);
  return { host, port: u.port === '' ? defaultPort : Number(u.port) };
}

/** Resolves once a TCP connection to host:port opened (then closes it); rejects otherwise. */
export function checkListening(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error(`no answer from ${host}:${port} in ${timeoutMs} ms`)),
    );
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

export interface PeerReady {
  peer: Peer;
  info: ServerInfo;
}

export interface PeerSkipped {
  /** Why, in full, for the printed line (e.g. "not reachable (connect ECONNREFUSED …)"). */
  why: string;
  /** The underlying error's message, for the JSON lines. */
  reason: string;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The compiled adapter of a peer: dist/bench/peers/adapters/<id>.js. */
function adapterUrl(id: PeerId): string {
  return new URL(`./adapters/${id}.js`, import.meta.url).href;
}

/** Checks the peer's port, loads its adapter and probes the server; or says why not. */
export async function connectPeer(id: PeerId, cfg: PeersConfig): Promise<PeerReady | PeerSkipped> {
  const e = PEER_ENDPOINTS[id];
  const unreachable = (err: unknown): PeerSkipped => ({
    why: `not reachable (${messageOf(err)})`,
    reason: messageOf(err),
  });
  try {
    const { host, port } = endpointOf(e.url(cfg), e.defaultPort);
    await checkListening(host, port, CONNECT_TIMEOUT_MS);
  } catch (err) {
    return unreachable(err);
  }
  let adapter: PeerAdapter;
  try {
    adapter = (await import(adapterUrl(id))) as PeerAdapter;
  } catch (err) {
    return {
      why:
        `its adapter did not load (${messageOf(err)}); \`npm run bench:peers\` installs ` +
        "bench/peers' clients and compiles the adapters",
      reason: messageOf(err),
    };
  }
  const peer: Peer = { id, name: e.name, ...adapter.createPeer(cfg) };
  try {
    return { peer, info: await peer.probe() };
  } catch (err) {
    return unreachable(err);
  }
}
