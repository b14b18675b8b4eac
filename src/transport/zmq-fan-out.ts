/** A ZeroMQ DEALER bound on an endpoint: sends go round-robin to the peers connected to it. */
import * as zmq from 'zeromq';
import { FerryError } from '../errors.js';
import type { FanOutEndpoint, FanOutEvents } from './types.js';
import { BIND_IN_USE_RETRY_INTERVAL_MS, BIND_IN_USE_RETRY_MS } from './zmq-router.js';

/** Messages queued per peer inside ZeroMQ (credit in the core bounds what is in flight). */
export const FAN_OUT_SEND_HWM = 1_000;
export const FAN_OUT_RECEIVE_HWM = 100_000;

export interface FanOutOptions {
  /** Largest single frame accepted, bytes (ZMQ_MAXMSGSIZE). */
  maxFrameBytes?: number;
}

class DealerFanOut implements FanOutEndpoint {
  private queue: Buffer[][] = [];
  private sending = false;
  private closed = false;
  peers = 0;

  constructor(
    private readonly sock: zmq.Dealer,
    readonly endpoint: string,
  ) {}

  send(frames: Buffer[]): void {
    if (this.closed) return;
    this.queue.push(frames);
    if (!this.sending) void this.drain();
  }

  takeQueued(): Buffer[][] {
    const out = this.queue;
    this.queue = [];
    return out;
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0 && !this.closed) {
      const msg = this.queue.shift()!;
      try {
        // No send timeout: with no peer connected this waits for one.
        await this.sock.send(msg);
      } catch {
        // Closed underneath us: what was sent and not acked is redelivered after its timeout.
      }
    }
    this.sending = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }
}

export async function bindFanOut(
  endpoint: string,
  events: FanOutEvents,
  options: FanOutOptions = {},
): Promise<FanOutEndpoint> {
  const sock = new zmq.Dealer({
    sendHighWaterMark: FAN_OUT_SEND_HWM,
    receiveHighWaterMark: FAN_OUT_RECEIVE_HWM,
    linger: 1000,
    ...(options.maxFrameBytes !== undefined ? { maxMessageSize: options.maxFrameBytes } : {}),
  });
  // Watch connections before binding, so no early peer is missed.
  const observer = sock.events;
  try {
    // As bindRouter: a port still held by a listener closed a moment ago is retried briefly.
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
  const ep = new DealerFanOut(sock, sock.lastEndpoint ?? endpoint);
  void (async () => {
    try {
      for await (const frames of sock) events.onMessage(frames);
    } catch {
      // Socket closed.
    }
  })();
  void (async () => {
    try {
      for await (const ev of observer) {
        if (ev.type === 'accept') ep.peers++;
        else if (ev.type === 'disconnect') ep.peers = Math.max(0, ep.peers - 1);
        else continue;
        events.onPeers?.(ep.peers);
      }
    } catch {
      // Socket closed.
    }
  })();
  return ep;
}
