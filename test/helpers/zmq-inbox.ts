/**
 * A raw ZeroMQ socket of any type with a buffered receive that can time out: for tests that
 * speak a protocol frame by frame (PZQ, ZMWS), with no library of that protocol in between.
 */
import * as zmq from 'zeromq';

export type Frame = Buffer | string;

export function frames(...parts: Frame[]): Buffer[] {
  return parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p)));
}

export function texts(msg: Buffer[]): string[] {
  return msg.map((f) => f.toString('latin1'));
}

type Raw = zmq.Dealer | zmq.Router | zmq.Request;

export class RawSocket {
  private readonly inbox: Buffer[][] = [];
  private waiter: ((msg: Buffer[]) => void) | undefined;

  constructor(readonly sock: Raw) {
    void this.pump();
  }

  /** A DEALER connected to `endpoint`. */
  static dealer(endpoint: string, routingId?: string): RawSocket {
    const sock = new zmq.Dealer({
      linger: 0,
      ...(routingId !== undefined ? { routingId } : {}),
    });
    sock.connect(endpoint);
    return new RawSocket(sock);
  }

  /** A ROUTER that connects to `endpoint` (PZQ's consumer side). */
  static connectingRouter(endpoint: string): RawSocket {
    const sock = new zmq.Router({ linger: 0 });
    sock.connect(endpoint);
    return new RawSocket(sock);
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const msg = await this.sock.receive();
        const w = this.waiter;
        if (w) {
          this.waiter = undefined;
          w(msg);
        } else {
          this.inbox.push(msg);
        }
      }
    } catch {
      // closed
    }
  }

  async send(...parts: Frame[]): Promise<void> {
    await this.sock.send(frames(...parts));
  }

  /** The next message, or undefined after `timeoutMs`. */
  tryReceive(timeoutMs: number): Promise<Buffer[] | undefined> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.waiter = (msg) => {
        clearTimeout(timer);
        resolve(msg);
      };
    });
  }

  async receive(what: string, timeoutMs = 5_000): Promise<Buffer[]> {
    const msg = await this.tryReceive(timeoutMs);
    if (!msg) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    return msg;
  }

  close(): void {
    this.sock.close();
  }
}
