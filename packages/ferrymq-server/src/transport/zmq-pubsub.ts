/**
 * ZeroMQ PUB and SUB sockets bound on an endpoint (the Clone dialect's publisher and
 * collector). A PUB never blocks: a subscriber that cannot keep up loses messages at its
 * high-water mark, which is PUB/SUB's contract (Clone clients resynchronise by snapshot).
 */
import * as zmq from 'zeromq';
import { bindWithRetry, CLOSE_FLUSH_MAX_MS, SendQueue } from 'ferrymq/transport';

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
  }
}

export async function bindPublisher(endpoint: string): Promise<PublisherEndpoint> {
  const sock = new zmq.Publisher({ sendHighWaterMark: PUB_SEND_HWM, linger: 1000 });
  await bindWithRetry(sock, endpoint);
  return new Publisher(sock, sock.lastEndpoint ?? endpoint);
}

export async function bindCollector(
  endpoint: string,
  onMessage: (frames: Buffer[]) => void,
  options: { maxFrameBytes?: number } = {},
): Promise<CollectorEndpoint> {
  const sock = new zmq.Subscriber({
    receiveHighWaterMark: SUB_RECEIVE_HWM,
    linger: 0,
    ...(options.maxFrameBytes !== undefined ? { maxMessageSize: options.maxFrameBytes } : {}),
  });
  sock.subscribe();
  await bindWithRetry(sock, endpoint);
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
      }
      return Promise.resolve();
    },
  };
}
