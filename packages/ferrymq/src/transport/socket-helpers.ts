/**
 * What every bound or connected socket of the transport shares: an ordered send queue (callers
 * never wait; zeromq.js allows one send in progress per socket, so messages go out one at a time
 * in call order) and a bind that retries while a just-closed listener still holds the port.
 */
import type * as zmq from 'zeromq';
import { FerryError } from '../model/errors.js';

/**
 * libzmq releases a closed listener's port asynchronously, so a broker restarted on the same
 * endpoint can find it still taken for a few milliseconds: such a bind is retried for this
 * long before ADDRESS_IN_USE is reported.
 */
const BIND_IN_USE_RETRY_MS = 1_000;
const BIND_IN_USE_RETRY_INTERVAL_MS = 20;
/** On close, how long queued messages get to go out before the socket closes. */
export const CLOSE_FLUSH_MAX_MS = 1_000;
const CLOSE_FLUSH_POLL_MS = 10;

/** Sends messages on one socket in call order, never blocking the caller. */
export class SendQueue {
  private queue: Buffer[][] = [];
  private sending = false;
  private stopped = false;
  /** Messages a send refused (peer gone, pipe full, socket closed underneath). */
  dropped = 0;

  constructor(private readonly sock: { send(msg: Buffer[]): Promise<void> }) {}

  push(msg: Buffer[]): void {
    if (this.stopped) return;
    this.queue.push(msg);
    if (!this.sending) void this.drain();
  }

  get length(): number {
    return this.queue.length;
  }

  /** Removes and returns what has not been sent yet. */
  take(): Buffer[][] {
    const out = this.queue;
    this.queue = [];
    return out;
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0 && !this.stopped) {
      const msg = this.queue.shift()!;
      try {
        await this.sock.send(msg);
      } catch {
        this.dropped++;
      }
    }
    this.sending = false;
  }

  /** Waits up to `maxMs` for the queue to empty, then refuses further messages. */
  async stop(maxMs: number): Promise<void> {
    const until = Date.now() + maxMs;
    while (this.queue.length > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, CLOSE_FLUSH_POLL_MS));
    }
    this.stopped = true;
  }
}

/** Binds `sock`, retrying briefly while the port is still held; coded errors otherwise. */
export async function bindWithRetry(sock: zmq.Socket, endpoint: string): Promise<void> {
  const giveUpAt = Date.now() + BIND_IN_USE_RETRY_MS;
  try {
    for (;;) {
      try {
        await sock.bind(endpoint);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== 'EADDRINUSE' || Date.now() >= giveUpAt) throw err;
        await new Promise((r) => setTimeout(r, BIND_IN_USE_RETRY_INTERVAL_MS));
      }
    }
  } catch (err) {
    sock.close();
    if ((err as { code?: string }).code === 'EADDRINUSE') {
      throw new FerryError('ADDRESS_IN_USE', `cannot bind ${endpoint}: address already in use`, {
        cause: err,
      });
    }
    throw new FerryError('CONFIG_INVALID', `cannot bind ${endpoint}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
