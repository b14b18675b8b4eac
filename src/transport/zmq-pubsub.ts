/**
 * ZeroMQ PUB and SUB sockets bound on an endpoint (the Clone dialect's publisher and
 * collector). A PUB never blocks: a subscriber that cannot keep up loses messages at its
 * high-water mark, which is PUB/SUB's contract (Clone clients resynchronise by snapshot).
 */
import * as zmq from 'zeromq';
import { FerryError } from '../errors.js';
import { BIND_IN_USE_RETRY_INTERVAL_MS, BIND_IN_USE_RETRY_MS } from './zmq-router.js';

export const PUB_SEND_HWM = 100_000;
export const SUB_RECEIVE_HWM = 100_000;

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

function bindError(endpoint: string, err: unknown): FerryError {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE') {
    return new FerryError('ADDRESS_IN_USE', `cannot bind ${endpoint}: address already in use`, {
      cause: err,
    });
  }
  return new FerryError('CONFIG_INVALID', `cannot bind ${endpoint}: ${(err as Error).message}`, {
    cause: err,
  });
}

/** Binds, retrying for a moment while the port is still held by a listener closing. */
async function bindRetrying(sock: zmq.Socket, endpoint: string): Promise<void> {
  const giveUpAt = Date.now() + BIND_IN_USE_RETRY_MS;
  for (;;) {
    try {
      await sock.bind(endpoint);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || Date.now() >= giveUpAt) throw err;
      await new Promise((r) => setTimeout(r, BIND_IN_USE_RETRY_INTERVAL_MS));
    }
  }
}

class Publisher implements PublisherEndpoint {
  private readonly queue: Buffer[][] = [];
  private sending = false;
  private closed = false;

  constructor(
    private readonly sock: zmq.Publisher,
    readonly endpoint: string,
  ) {}

  send(frames: Buffer[]): void {
    if (this.closed) return;
    this.queue.push(frames);
    if (!this.sending) void this.drain();
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0 && !this.closed) {
      const msg = this.queue.shift()!;
      try {
        await this.sock.send(msg);
      } catch {
        // Closed while sending.
      }
    }
    this.sending = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (let i = 0; i < 100 && this.queue.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.closed = true;
    this.sock.close();
  }
}

export async function bindPublisher(endpoint: string): Promise<PublisherEndpoint> {
  const sock = new zmq.Publisher({ sendHighWaterMark: PUB_SEND_HWM, linger: 1000 });
  try {
    await bindRetrying(sock, endpoint);
  } catch (err) {
    sock.close();
    throw bindError(endpoint, err);
  }
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
  try {
    await bindRetrying(sock, endpoint);
  } catch (err) {
    sock.close();
    throw bindError(endpoint, err);
  }
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
