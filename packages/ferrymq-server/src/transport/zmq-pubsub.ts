/**
 * ZeroMQ PUB and SUB sockets bound on an endpoint (the Clone dialect's publisher and
 * collector). A PUB never blocks: a subscriber that cannot keep up loses messages at its
 * high-water mark, which is PUB/SUB's contract (Clone clients resynchronise by snapshot).
 */
import * as zmq from 'zeromq';
import { CLOSE_FLUSH_MAX_MS, SendQueue } from 'ferrymq/transport';
import { bindSecured, type EndpointSecurity } from './zap-handler.js';

const PUB_SEND_HWM = 100_000;
const SUB_RECEIVE_HWM = 100_000;

/** A bound PUB socket. */
export interface PublisherEndpoint {
  readonly endpoint: string;
  /** Queues a message for every subscriber whose subscription prefixes its first frame. */
  send(frames: Buffer[]): void;
  close(): Promise<void>;
}

/** A bound SUB socket subscribed to everything. */
export interface CollectorEndpoint {
  readonly endpoint: string;
  close(): Promise<void>;
}

class Publisher implements PublisherEndpoint {
  private readonly out: SendQueue;
  private closed = false;

  constructor(
    private readonly sock: zmq.Publisher,
    readonly endpoint: string,
    private readonly unsecure: () => void,
  ) {
    this.out = new SendQueue(sock);
  }

  send(frames: Buffer[]): void {
    this.out.push(frames);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Let queued messages go out before closing (sends made meanwhile still queue).
    await this.out.stop(CLOSE_FLUSH_MAX_MS);
    this.sock.close();
    this.unsecure();
  }
}

export async function bindPublisher(
  endpoint: string,
  security?: EndpointSecurity,
): Promise<PublisherEndpoint> {
  const sock = new zmq.Publisher({ sendHighWaterMark: PUB_SEND_HWM, linger: 1000 });
  const unsecure = await bindSecured(sock, endpoint, security);
  return new Publisher(sock, sock.lastEndpoint ?? endpoint, unsecure);
}

export async function bindCollector(
  endpoint: string,
  onMessage: (frames: Buffer[]) => void,
  options: { maxFrameBytes?: number; security?: EndpointSecurity } = {},
): Promise<CollectorEndpoint> {
  const sock = new zmq.Subscriber({
    receiveHighWaterMark: SUB_RECEIVE_HWM,
    linger: 0,
    ...(options.maxFrameBytes !== undefined ? { maxMessageSize: options.maxFrameBytes } : {}),
  });
  sock.subscribe();
  const unsecure = await bindSecured(sock, endpoint, options.security);
  void (async () => {
    try {
      for await (const frames of sock) onMessage(frames);
    } catch {
      // Socket closed.
    }
  })();
  let closed = false;
  return {
    endpoint: sock.lastEndpoint ?? endpoint,
    close: () => {
      if (!closed) {
        closed = true;
        sock.close();
        unsecure();
      }
      return Promise.resolve();
    },
  };
}
