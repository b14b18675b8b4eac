/** A ZeroMQ ROUTER bound on an endpoint, with an ordered, never-blocking send queue. */
import * as zmq from 'zeromq';
import {
  bindWithRetry,
  CLOSE_FLUSH_MAX_MS,
  type PeerMessageHandler,
  SendQueue,
  type ServerEndpoint,
} from 'ferrymq/transport';

/** Messages queued per peer before ZeroMQ refuses more (ample: credit bounds deliveries). */
const ROUTER_SEND_HWM = 100_000;
const ROUTER_RECEIVE_HWM = 100_000;

export interface RouterOptions {
  /** Largest single frame accepted, bytes (ZMQ_MAXMSGSIZE); larger peers are disconnected. */
  maxFrameBytes?: number;
}

class RouterEndpoint implements ServerEndpoint {
  private readonly out: SendQueue;
  private closed = false;

  constructor(
    private readonly sock: zmq.Router,
    readonly endpoint: string,
  ) {
    // A refused send is EHOSTUNREACH (the peer is gone: mandatory routing) or EAGAIN (its
    // pipe is full); SendQueue counts it in `dropped`.
    this.out = new SendQueue(sock);
  }

  get dropped(): number {
    return this.out.dropped;
  }

  send(peer: Buffer, frames: Buffer[]): void {
    this.out.push([peer, ...frames]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Let queued replies go out before closing (sends made meanwhile still queue).
    await this.out.stop(CLOSE_FLUSH_MAX_MS);
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
  await bindWithRetry(sock, endpoint);
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
