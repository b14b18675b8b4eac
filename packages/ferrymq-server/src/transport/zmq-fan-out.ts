/** A ZeroMQ DEALER bound on an endpoint: sends go round-robin to the peers connected to it. */
import * as zmq from 'zeromq';
import { type FanOutEndpoint, type FanOutEvents, SendQueue } from 'ferrymq/transport';
import { bindSecured, type EndpointSecurity } from './zap-handler.js';

/** Messages queued per peer inside ZeroMQ (credit in the core bounds what is in flight). */
const FAN_OUT_SEND_HWM = 1_000;
const FAN_OUT_RECEIVE_HWM = 100_000;

export interface FanOutOptions {
  /** Largest single frame accepted, bytes (ZMQ_MAXMSGSIZE). */
  maxFrameBytes?: number;
  /** A ZAP check of each connection (zap-handler.ts). */
  security?: EndpointSecurity;
}

class DealerFanOut implements FanOutEndpoint {
  // No send timeout: with no peer connected a send waits for one. A send that fails (closed
  // underneath us) is redelivered by the core after its ack timeout.
  private readonly out: SendQueue;
  private closed = false;
  peers = 0;

  constructor(
    private readonly sock: zmq.Dealer,
    readonly endpoint: string,
    private readonly unsecure: () => void,
  ) {
    this.out = new SendQueue(sock);
  }

  send(frames: Buffer[]): void {
    if (!this.closed) this.out.push(frames);
  }

  takeQueued(): Buffer[][] {
    return this.out.take();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.out.stop(0);
    this.sock.close();
    this.unsecure();
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
  const unsecure = await bindSecured(sock, endpoint, options.security);
  const ep = new DealerFanOut(sock, sock.lastEndpoint ?? endpoint, unsecure);
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
