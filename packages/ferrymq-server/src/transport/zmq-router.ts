/**
 * A ZeroMQ ROUTER bound on an endpoint that serves its peers fairly. Incoming: ZeroMQ queues
 * what each peer sends in its own pipe and hands the socket one message per peer in turn;
 * each is handled as it is read, and reading yields to the event loop every READ_TURN_BUDGET
 * messages. Outgoing: replies are queued per peer and sent round robin, PEER_SEND_TURN of one
 * peer at a time, so one peer's backlog never delays another's reply, and a peer's queue is
 * capped in bytes. A peer that keeps sending invalid frames is dropped for a cool-down
 * (peer-guard.ts). docs/operations.md "Limits and backpressure".
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as zmq from 'zeromq';
import type { PeerGuardStats } from 'ferrymq/model';
import { CLOSE_FLUSH_MAX_MS, type ServerEndpoint } from 'ferrymq/transport';
import { PeerGuard } from './peer-guard.js';
import { bindSecured, type EndpointSecurity } from './zap-handler.js';

/** Messages queued per peer inside ZeroMQ before it refuses more (credit bounds deliveries). */
const ROUTER_SEND_HWM = 100_000;
/**
 * Messages of one peer ZeroMQ reads ahead of us; past that it stops reading that peer's TCP
 * connection, so a peer sending faster than we read is slowed down by TCP instead of filling
 * memory, and a flooding peer's backlog does not pile up in front of the others' (measured:
 * a healthy client's p99 during a 200,000-frame flood 7.9–9.0 ms at 100,000, 6.3–6.8 ms at
 * 1,000, against 4.4–6.3 ms for the same flood aimed at another process on the same machine).
 */
const ROUTER_RECEIVE_HWM = 1_000;
/** Messages read from the socket (handled or discarded) before reading yields a turn. */
const READ_TURN_BUDGET = 64;
/** Replies of one peer sent per turn before the next peer's. */
const PEER_SEND_TURN = 32;
/** Bytes queued for one peer and not yet handed to ZeroMQ; more is refused (counted dropped). */
const PEER_SEND_QUEUE_MAX_BYTES = 64 * 1024 * 1024;
const CLOSE_FLUSH_POLL_MS = 10;

/**
 * Handles one message of a peer. Returns false when the message was not valid for the
 * dialect (it answered it with a coded error, or dropped it): the peer guard counts it.
 */
export type RouterMessageHandler = (peer: Buffer, frames: Buffer[]) => boolean | void;

export interface RouterOptions {
  /**
   * Largest single frame accepted, bytes (ZMQ_MAXMSGSIZE): ZeroMQ disconnects a peer that
   * sends a larger one, so set it above what the dialect answers MESSAGE_TOO_LARGE.
   */
  maxFrameBytes?: number;
  /** The guard that drops peers sending invalid frames; a fresh one when unset. */
  guard?: PeerGuard;
  /** CURVE and/or a ZAP check of each connection (zap-handler.ts). */
  security?: EndpointSecurity;
}

interface PeerQueue {
  id: Buffer;
  messages: Buffer[][];
  bytes: number;
}

/** Per-peer send queues served round robin: `ring` holds the keys with something queued. */
class FairQueues {
  readonly peers = new Map<string, PeerQueue>();
  readonly ring: string[] = [];
  count = 0;

  push(key: string, id: Buffer, msg: Buffer[], bytes: number): PeerQueue {
    let q = this.peers.get(key);
    if (!q) {
      q = { id, messages: [], bytes: 0 };
      this.peers.set(key, q);
    }
    if (q.messages.length === 0) this.ring.push(key);
    q.messages.push(msg);
    q.bytes += bytes;
    this.count++;
    return q;
  }

  /** Takes up to `max` messages of the next peer in turn; undefined when all are empty. */
  takeTurn(max: number): { key: string; q: PeerQueue; batch: Buffer[][] } | undefined {
    const key = this.ring.shift();
    if (key === undefined) return undefined;
    const q = this.peers.get(key)!;
    const batch = q.messages.splice(0, max);
    this.count -= batch.length;
    if (q.messages.length > 0) this.ring.push(key);
    else this.peers.delete(key);
    return { key, q, batch };
  }
}

function sizeOf(frames: Buffer[]): number {
  let n = 0;
  for (const f of frames) n += f.length;
  return n;
}

class RouterEndpoint implements ServerEndpoint {
  private readonly outbound = new FairQueues();
  private sending = false;
  private stopped = false;
  private closed = false;
  /** Messages a send refused (peer gone, pipe full, its queue over its byte cap). */
  dropped = 0;

  constructor(
    private readonly sock: zmq.Router,
    readonly endpoint: string,
    private readonly onMessage: RouterMessageHandler,
    readonly guard: PeerGuard,
    private readonly unsecure: () => void = () => {},
  ) {}

  get peerStats(): PeerGuardStats {
    return this.guard.stats;
  }

  send(peer: Buffer, frames: Buffer[]): void {
    if (this.stopped) return;
    const key = peer.toString('latin1');
    if (!this.guard.answers(key)) {
      this.dropped++;
      return;
    }
    const bytes = sizeOf(frames);
    const q = this.outbound.peers.get(key);
    if (q && q.bytes + bytes > PEER_SEND_QUEUE_MAX_BYTES) {
      this.dropped++;
      return;
    }
    this.outbound.push(key, peer, frames, bytes);
    if (!this.sending) void this.drainOut();
  }

  private async drainOut(): Promise<void> {
    this.sending = true;
    for (;;) {
      if (this.stopped) break;
      const turn = this.outbound.takeTurn(PEER_SEND_TURN);
      if (!turn) break;
      for (const msg of turn.batch) {
        turn.q.bytes -= sizeOf(msg);
        try {
          // A refused send is EHOSTUNREACH (the peer is gone: mandatory routing) or EAGAIN
          // (its pipe is full).
          await this.sock.send([turn.q.id, ...msg]);
          this.guard.stats.messagesOut++;
        } catch {
          this.dropped++;
        }
      }
    }
    this.sending = false;
  }

  /**
   * Reads the socket and handles each message as it is read. ZeroMQ's ROUTER fair-queues
   * what peers send (one message per peer with messages waiting, in turn), so no peer gets
   * ahead of another; a dropped peer's messages are discarded unread.
   */
  async read(): Promise<void> {
    let read = 0;
    try {
      for await (const [peer, ...frames] of this.sock) {
        this.guard.stats.messagesIn++;
        // Reading alone (a dropped peer's flood is discarded here) must not hold the event
        // loop: timers, storage callbacks and sends get a turn in between.
        if (++read >= READ_TURN_BUDGET) {
          read = 0;
          await nextTurn();
        }
        if (this.closed) break;
        if (peer === undefined) continue;
        const key = peer.toString('latin1');
        if (this.guard.ignores(key)) continue;
        let verdict: boolean | void;
        try {
          verdict = this.onMessage(peer, frames);
        } catch {
          verdict = false; // handlers never throw; count it as invalid if one does
        }
        if (verdict === false) this.guard.invalid(key);
      }
    } catch {
      // Socket closed.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Let queued replies go out before closing (sends made meanwhile still queue).
    const until = Date.now() + CLOSE_FLUSH_MAX_MS;
    while ((this.outbound.count > 0 || this.sending) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, CLOSE_FLUSH_POLL_MS));
    }
    this.stopped = true;
    this.sock.close();
    this.unsecure();
  }
}

/** A bound ROUTER: its endpoint plus what its peer guard counted. */
export interface GuardedEndpoint extends ServerEndpoint {
  readonly peerStats: PeerGuardStats;
}

export async function bindRouter(
  endpoint: string,
  onMessage: RouterMessageHandler,
  options: RouterOptions = {},
): Promise<GuardedEndpoint> {
  const sock = new zmq.Router({
    mandatory: true,
    sendHighWaterMark: ROUTER_SEND_HWM,
    receiveHighWaterMark: ROUTER_RECEIVE_HWM,
    sendTimeout: 0,
    linger: 1000,
    ...(options.maxFrameBytes !== undefined ? { maxMessageSize: options.maxFrameBytes } : {}),
  });
  const unsecure = await bindSecured(sock, endpoint, options.security);
  const ep = new RouterEndpoint(
    sock,
    sock.lastEndpoint ?? endpoint,
    onMessage,
    options.guard ?? new PeerGuard(),
    unsecure,
  );
  void ep.read();
  return ep;
}
