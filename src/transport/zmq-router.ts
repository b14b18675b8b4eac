/** A ZeroMQ ROUTER bound on an endpoint, with an ordered, never-blocking send queue. */
import * as zmq from 'zeromq';
import { FerryError } from '../errors.js';
import type { PeerMessageHandler, ServerEndpoint } from './types.js';

/** Messages queued per peer before ZeroMQ refuses more (ample: credit bounds deliveries). */
export const ROUTER_SEND_HWM = 100_000;
export const ROUTER_RECEIVE_HWM = 100_000;

/**
 * libzmq releases a closed listener's port asynchronously, so a broker restarted on the same
 * endpoint can find it still taken for a few milliseconds: such a bind is retried for this
 * long before ADDRESS_IN_USE is reported.
 */
export const BIND_IN_USE_RETRY_MS = 1_000;
export const BIND_IN_USE_RETRY_INTERVAL_MS = 20;

export interface RouterOptions {
  /** Largest single frame accepted, bytes (ZMQ_MAXMSGSIZE); larger peers are disconnected. */
  maxFrameBytes?: number;
}

class RouterEndpoint implements ServerEndpoint {
  private readonly queue: Buffer[][] = [];
  private sending = false;
  private closed = false;
  dropped = 0;

  constructor(
    private readonly sock: zmq.Router,
    readonly endpoint: string,
  ) {}

  send(peer: Buffer, frames: Buffer[]): void {
    if (this.closed) return;
    this.queue.push([peer, ...frames]);
    if (!this.sending) void this.drain();
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0 && !this.closed) {
      const msg = this.queue.shift()!;
      try {
        await this.sock.send(msg);
      } catch {
        // EHOSTUNREACH: the peer is gone (mandatory routing); EAGAIN: its pipe is full.
        this.dropped++;
      }
    }
    this.sending = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Let queued replies go out before closing.
    for (let i = 0; i < 100 && this.queue.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.closed = true;
    this.sock.close();
  }
}

export async function bindRouter(
  endpoint: string,
  onMessage: PeerMessageHandler,
  options: RouterOptions = {},
): Promise<ServerEndpoint> {
  const sock = new zmq.Router({
    mandatory: true,
    sendHighWaterMark: ROUTER_SEND_HWM,
    receiveHighWaterMark: ROUTER_RECEIVE_HWM,
    sendTimeout: 0,
    linger: 1000,
    ...(options.maxFrameBytes !== undefined ? { maxMessageSize: options.maxFrameBytes } : {}),
  });
  try {
    const giveUpAt = Date.now() + BIND_IN_USE_RETRY_MS;
    for (;;) {
      try {
        await sock.bind(endpoint);
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== 'EADDRINUSE' || Date.now() >= giveUpAt) throw err;
        await new Promise((r) => setTimeout(r, BIND_IN_USE_RETRY_INTERVAL_MS));
      }
    }
  } catch (err) {
    sock.close();
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE') {
      throw new FerryError('ADDRESS_IN_USE', `cannot bind ${endpoint}: address already in use`, {
        cause: err,
      });
    }
    throw new FerryError('CONFIG_INVALID', `cannot bind ${endpoint}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const ep = new RouterEndpoint(sock, sock.lastEndpoint ?? endpoint);
  void (async () => {
    try {
      for await (const [peer, ...frames] of sock) {
        if (peer === undefined) continue;
        onMessage(peer, frames);
      }
    } catch {
      // Socket closed.
    }
  })();
  return ep;
}
