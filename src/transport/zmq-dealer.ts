/** A ZeroMQ DEALER connected to one broker endpoint, with an ordered send queue. */
import * as zmq from 'zeromq';
import type { ClientConnection, ClientConnectionEvents } from './types.js';

export const DEALER_RECONNECT_MS = 100;
export const DEALER_RECONNECT_MAX_MS = 2_000;
export const DEALER_HWM = 100_000;

class DealerConnection implements ClientConnection {
  private readonly queue: Buffer[][] = [];
  private sending = false;
  private closed = false;

  constructor(
    private readonly sock: zmq.Dealer,
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
        // Closed underneath us, or the pipe is full: the request times out and is retried.
      }
    }
    this.sending = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (let i = 0; i < 50 && this.queue.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.closed = true;
    this.sock.close();
  }
}

export function connectDealer(endpoint: string, events: ClientConnectionEvents): ClientConnection {
  const sock = new zmq.Dealer({
    linger: 0,
    sendHighWaterMark: DEALER_HWM,
    receiveHighWaterMark: DEALER_HWM,
    reconnectInterval: DEALER_RECONNECT_MS,
    reconnectMaxInterval: DEALER_RECONNECT_MAX_MS,
  });
  sock.connect(endpoint);
  const conn = new DealerConnection(sock, endpoint);
  void (async () => {
    try {
      for await (const frames of sock) events.onMessage(frames);
    } catch {
      // Socket closed.
    }
  })();
  if (events.onConnect || events.onDisconnect) {
    void (async () => {
      try {
        for await (const ev of sock.events) {
          if (ev.type === 'connect') events.onConnect?.();
          else if (ev.type === 'disconnect') events.onDisconnect?.();
        }
      } catch {
        // Socket closed.
      }
    })();
  }
  return conn;
}
