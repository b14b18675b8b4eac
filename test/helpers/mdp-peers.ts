/**
 * Raw Majordomo peers for tests, written from 7/MDP and 18/MDP: a DEALER that sends and
 * receives whole messages, a worker loop on top of it, and frame builders. No MDP library:
 * every frame is spelled out, so the tests check the wire format itself.
 */
import * as zmq from 'zeromq';

export const E = Buffer.alloc(0);
export const MDPC01 = 'MDPC01';
export const MDPW01 = 'MDPW01';
export const MDPC02 = 'MDPC02';
export const MDPW02 = 'MDPW02';

/** How often a raw worker sends HEARTBEAT (7/MDP leaves the number to us; zguide uses 2.5 s). */
export const RAW_WORKER_HEARTBEAT_MS = 2_500;

export type Frame = Buffer | string | number;

/** Strings as UTF-8, numbers as one command byte. */
export function frames(...parts: Frame[]): Buffer[] {
  return parts.map((p) =>
    Buffer.isBuffer(p) ? p : typeof p === 'number' ? Buffer.from([p]) : Buffer.from(p),
  );
}

export function texts(msg: Buffer[]): string[] {
  return msg.map((f) => f.toString('latin1'));
}

/** One DEALER connected to the broker, with a buffered receive that can time out. */
export class RawPeer {
  private readonly inbox: Buffer[][] = [];
  private waiter: ((msg: Buffer[] | undefined) => void) | undefined;
  private closed = false;

  private constructor(readonly sock: zmq.Dealer) {
    void this.pump();
  }

  static async connect(endpoint: string): Promise<RawPeer> {
    const sock = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    sock.connect(endpoint);
    return Promise.resolve(new RawPeer(sock));
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

  async send(msg: Frame[]): Promise<void> {
    await this.sock.send(frames(...msg));
  }

  /** The next message, or undefined after `timeoutMs`. */
  tryReceive(timeoutMs: number): Promise<Buffer[] | undefined> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.resolve(undefined);
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

  /** The next message; throws naming `what` after `timeoutMs`. */
  async receive(what: string, timeoutMs = 5_000): Promise<Buffer[]> {
    const msg = await this.tryReceive(timeoutMs);
    if (!msg) throw new Error(`no message within ${timeoutMs} ms: expected ${what}`);
    return msg;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.waiter?.(undefined);
    this.waiter = undefined;
    this.sock.close();
  }
}

export interface RawWorkerOptions {
  version?: 1 | 2;
  /** Leave out the empty frame after the address in REPLY, as the zguide PHP worker API does. */
  omitDelimiter?: boolean;
  /** The reply body for a request body (default: echo). */
  handler?: (body: Buffer[]) => Buffer[];
  /** MDP/0.2: partial replies sent before FINAL. */
  partials?: (body: Buffer[]) => Buffer[][];
}

/** A Majordomo worker from the RFC: READY, then REQUEST → REPLY (or PARTIAL* FINAL). */
export class RawWorker {
  served = 0;
  heartbeatsReceived = 0;
  disconnected = false;
  private readonly timer: NodeJS.Timeout;
  private readonly done: Promise<void>;

  private constructor(
    readonly peer: RawPeer,
    readonly service: string,
    private readonly options: RawWorkerOptions,
  ) {
    this.timer = setInterval(() => {
      void this.peer.send(this.header(this.v1 ? 0x04 : 0x05)).catch(() => {});
    }, RAW_WORKER_HEARTBEAT_MS);
    this.done = this.loop();
  }

  static async start(
    endpoint: string,
    service: string,
    options: RawWorkerOptions = {},
  ): Promise<RawWorker> {
    const peer = await RawPeer.connect(endpoint);
    const w = new RawWorker(peer, service, options);
    await peer.send([...w.header(0x01), service]);
    return w;
  }

  private get v1(): boolean {
    return (this.options.version ?? 1) === 1;
  }

  private header(command: number): Frame[] {
    return this.v1 ? [E, MDPW01, command] : [MDPW02, command];
  }

  private async loop(): Promise<void> {
    for (;;) {
      const msg = await this.peer.tryReceive(60_000);
      if (!msg) return;
      const at = this.v1 ? 2 : 1;
      const cmd = msg[at]?.[0];
      if ((this.v1 && cmd === 0x05) || (!this.v1 && cmd === 0x06)) {
        this.disconnected = true;
        return;
      }
      if ((this.v1 && cmd === 0x04) || (!this.v1 && cmd === 0x05)) {
        this.heartbeatsReceived++;
        continue;
      }
      if (cmd !== 0x02) throw new Error(`worker got an unexpected command ${texts(msg).join('|')}`);
      const address = msg[at + 1]!;
      if (msg[at + 2]?.length !== 0) throw new Error('REQUEST without the empty delimiter');
      const body = msg.slice(at + 3);
      const reply = (this.options.handler ?? ((b: Buffer[]) => b))(body);
      const delimiter = this.options.omitDelimiter ? [] : [E];
      if (!this.v1) {
        for (const p of this.options.partials?.(body) ?? []) {
          await this.peer.send([MDPW02, 0x03, address, ...delimiter, ...p]);
        }
      }
      await this.peer.send([
        ...this.header(this.v1 ? 0x03 : 0x04),
        address,
        ...delimiter,
        ...reply,
      ]);
      this.served++;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    if (!this.disconnected)
      await this.peer.send(this.header(this.v1 ? 0x05 : 0x06)).catch(() => {});
    this.peer.close();
    await this.done.catch(() => {});
  }
}

/** An MDP/0.1 client request as a REQ socket would put it on the wire (DEALER adds the empty frame). */
export function clientRequestV1(service: string, ...body: Frame[]): Frame[] {
  return [E, MDPC01, service, ...body];
}

/** An MDP/0.2 client REQUEST. */
export function clientRequestV2(service: string, ...body: Frame[]): Frame[] {
  return [MDPC02, 0x01, service, ...body];
}
