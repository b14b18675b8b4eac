/**
 * The in-process ZAP handler (ZeroMQ RFC 27): libzmq asks it, over `inproc://zeromq.zap.01` of
 * the process's context, whether each new connection of a socket with a ZAP domain may go on.
 * One handler serves the whole process; every bound socket that wants checks registers a
 * policy under its own unique domain (two brokers in one process never share a policy), and a
 * request for an unknown domain is refused. The answer is given at the handshake: a refused
 * CURVE client sees `handshake:error:auth` and nothing else.
 *
 * libzmq asks for CURVE connections always, and for NULL (plain) connections only of sockets
 * with a ZAP domain set, which is how the address allowlists of the dialects work.
 */
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import { bindWithRetry } from 'ferrymq/transport';

const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
const ZAP_VERSION = '1.0';
const STATUS_OK = '200';
const STATUS_DENIED = '400';
const DOMAIN_TAG_BYTES = 6;

/** What a ZAP request says about a connecting peer. */
interface ZapRequest {
  /** The peer's IP address, without port. */
  address: string;
  /** `NULL`, `PLAIN` or `CURVE`. */
  mechanism: string;
  /** For CURVE: the client's public key, 32 raw bytes. */
  publicKey: Buffer | undefined;
}

/** Allows (true) or refuses (false) one connection. */
type ZapPolicy = (request: ZapRequest) => boolean;

/** A policy registered under its own domain; release() when its socket closes. */
interface ZapRegistration {
  readonly domain: string;
  release(): void;
}

class ZapHandler {
  private readonly policies = new Map<string, ZapPolicy>();
  private sock: zmq.Reply | undefined;
  /** Binding the socket: registrations made meanwhile wait for it. */
  private binding: Promise<void> | undefined;

  async register(name: string, policy: ZapPolicy): Promise<ZapRegistration> {
    const domain = `${name}-${randomBytes(DOMAIN_TAG_BYTES).toString('hex')}`;
    this.policies.set(domain, policy);
    if (!this.sock) {
      this.binding ??= this.start().finally(() => (this.binding = undefined));
      try {
        await this.binding;
      } catch (err) {
        this.policies.delete(domain);
        throw err;
      }
    }
    return { domain, release: () => this.release(domain) };
  }

  private async start(): Promise<void> {
    const sock = new zmq.Reply({ linger: 0 });
    // A handler just closed may hold the inproc name for a moment: bindWithRetry waits it out.
    await bindWithRetry(sock, ZAP_ENDPOINT);
    this.sock = sock;
    void this.serve(sock);
  }

  private release(domain: string): void {
    this.policies.delete(domain);
    if (this.policies.size === 0 && this.sock) {
      this.sock.close();
      this.sock = undefined;
    }
  }

  private async serve(sock: zmq.Reply): Promise<void> {
    try {
      for await (const frames of sock) await sock.send(this.answer(frames));
    } catch {
      // Socket closed (the last policy was released).
    }
  }

  private answer(frames: Buffer[]): string[] {
    const [version, requestId, domain, address, , mechanism, credential] = frames;
    const id = requestId?.toString() ?? '';
    const deny = (why: string) => [ZAP_VERSION, id, STATUS_DENIED, why, '', ''];
    if (version?.toString() !== ZAP_VERSION) return deny('unsupported ZAP version');
    const policy = this.policies.get(domain?.toString() ?? '');
    if (!policy) return deny('unknown domain');
    let allowed = false;
    try {
      allowed = policy({
        address: address?.toString() ?? '',
        mechanism: mechanism?.toString() ?? '',
        publicKey: mechanism?.toString() === 'CURVE' ? credential : undefined,
      });
    } catch {
      allowed = false;
    }
    return allowed ? [ZAP_VERSION, id, STATUS_OK, 'OK', '', ''] : deny('not allowed');
  }
}

const handler = new ZapHandler();

/**
 * Registers a policy for one socket; set the returned domain as the socket's `zapDomain`
 * before it binds. The process's ZAP handler starts with the first registration.
 */
function registerZapPolicy(name: string, policy: ZapPolicy): Promise<ZapRegistration> {
  return handler.register(name, policy);
}

/** How a bound socket is protected: CURVE, a ZAP check of each connection, or both. */
export interface EndpointSecurity {
  /** The server's CURVE secret key (Z85): the endpoint then speaks CURVE only. */
  curveSecretKey?: string | undefined;
  /** Checks each connection at its handshake; every CURVE connection is checked anyway. */
  zap?: ZapPolicy | undefined;
  /** Names the ZAP domain (a tag is added), for logs. */
  name?: string | undefined;
}

/**
 * Applies `security` to a socket before it binds; returns what undoes it when the socket
 * closes. A CURVE socket without a policy still gets one that allows every key, so the
 * process's ZAP handler (which answers every CURVE handshake) never refuses it by mistake.
 */
async function secureSocket(
  sock: zmq.Socket,
  security: EndpointSecurity | undefined,
): Promise<() => void> {
  if (!security || (security.curveSecretKey === undefined && security.zap === undefined))
    return () => {};
  const policy = security.zap ?? (() => true);
  const registration = await registerZapPolicy(security.name ?? 'ferry', policy);
  sock.zapDomain = registration.domain;
  if (security.curveSecretKey !== undefined) {
    sock.curveServer = true;
    sock.curveSecretKey = security.curveSecretKey;
  }
  return () => registration.release();
}

/** Binds `sock` after applying `security`; returns what undoes it, and undoes it if the bind fails. */
export async function bindSecured(
  sock: zmq.Socket,
  endpoint: string,
  security: EndpointSecurity | undefined,
): Promise<() => void> {
  const unsecure = await secureSocket(sock, security);
  await bindWithRetry(sock, endpoint).catch((err: unknown) => {
    unsecure();
    throw err;
  });
  return unsecure;
}
