/**
 * The client's connection to a broker: requests matched to their answers by request id (with
 * timeouts), streams of EVENT messages, the HELLO handshake, the heartbeat, failover between
 * endpoints, and sending again after a reconnect what was not answered. Messages the broker
 * pushes (deliveries, job assignments, topic messages) go to {@link ConnectionHandlers}.
 *
 * It is the JobWire of job-client.ts as it stands; FerryClient owns it and the APIs use it.
 */
import { FerryError } from '../model/errors.js';
import {
  decodeReply,
  encodeRequest,
  errorFromReply,
  type Command,
  type Json,
  type Reply,
} from '../protocol/codec.js';
import { connectDealer } from '../transport/zmq-dealer.js';
import type { ClientConnection } from '../transport/types.js';
import { Channel } from './channel.js';
import type { JobWire } from './job-client.js';

export const DEFAULT_CLIENT_HEARTBEAT_MS = 2_000;
const CLIENT_LIVENESS = 3;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export type ClientStatus =
  | { type: 'connected'; endpoint: string; session: string }
  | { type: 'disconnected'; endpoint: string }
  | { type: 'reconnected'; endpoint: string; session: string; resent: number }
  | { type: 'closed' };

export interface ConnectionOptions {
  heartbeatMs: number;
  requestTimeoutMs: number;
  /** Name shown in broker logs. */
  name: string;
}

/** Where the messages the broker pushes go. */
export interface ConnectionHandlers {
  /** DELIVER: queue messages for a consumer or a durable subscription. */
  onDeliver(reply: Reply): void;
  /** ASSIGN or REVOKE: a job for (or taken back from) a worker. */
  onWorkerMessage(reply: Reply): void;
  /** TOPIC or DROPPED: for a subscription. */
  onTopicMessage(reply: Reply): void;
  /** CANCELLED: the broker ended a consumer (its queue was deleted). */
  onCancelled(reply: Reply): void;
  /** A session started: resume consumers, workers, subscriptions (before requests are resent). */
  onSession(): void;
}

interface Pending {
  command: Command;
  frames: Buffer[];
  resolve: (reply: Reply) => void;
  reject: (err: FerryError) => void;
  timer: NodeJS.Timeout | undefined;
  sentAt: number;
}

interface Stream {
  onEvent: (reply: Reply) => void;
  frames: Buffer[];
  answered: boolean;
  /** Send again after a reconnect (watches). */
  resend: boolean;
}

/** The FerryError of an ERROR reply, with the reply's extra fields (e.g. `job`) as details. */
function errorWithDetails(reply: Reply): FerryError {
  const base = errorFromReply(reply);
  const { code: _c, message: _m, ...details } = reply.args;
  if (Object.keys(details).length === 0) return base;
  return new FerryError(base.code, base.message, { details });
}

export class Connection implements JobWire {
  private transport: ClientConnection;
  private endpointIndex = 0;
  private nextRequest = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly streams = new Map<string, Stream>();
  readonly heartbeatMs: number;
  readonly requestTimeoutMs: number;
  private readonly name: string;
  private sessionId: string | undefined;
  private ready: Promise<void>;
  private readyResolve!: () => void;
  private handshaking = false;
  private helloSentAt = 0;
  private handshakeGeneration = 0;
  private lastHeard = Date.now();
  private connected = false;
  private stopped = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly statusChannels = new Set<Channel<ClientStatus>>();
  private everConnected = false;

  constructor(
    private readonly endpoints: string[],
    options: ConnectionOptions,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.heartbeatMs = options.heartbeatMs;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.name = options.name;
    this.ready = new Promise((r) => (this.readyResolve = r));
    this.transport = this.open(this.endpoints[0]!);
  }

  private open(endpoint: string): ClientConnection {
    return connectDealer(endpoint, {
      onMessage: (frames) => this.onFrames(frames),
      onDisconnect: () => this.onTransportDown(),
    });
  }

  /** The endpoint in use now. */
  get endpoint(): string {
    return this.transport.endpoint;
  }

  /** The broker's session id, once HELLO was answered (undefined while there is none). */
  get session(): string | undefined {
    return this.sessionId;
  }

  /** Set by {@link stop}: no request but BYE goes out any more. */
  get closed(): boolean {
    return this.stopped;
  }

  isClosed(): boolean {
    return this.stopped;
  }

  /** Starts the handshake and the heartbeat; resolves once the broker answered HELLO. */
  async start(): Promise<void> {
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.heartbeatMs);
    this.heartbeatTimer.unref();
    this.handshake();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new FerryError('TIMEOUT', `no answer from ${this.endpoints.join(', ')}`)),
            this.requestTimeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Connection events, as an async iterator. */
  status(): AsyncIterable<ClientStatus> {
    const ch = new Channel<ClientStatus>();
    this.statusChannels.add(ch);
    return ch;
  }

  private emit(s: ClientStatus): void {
    for (const ch of this.statusChannels) ch.push(s);
  }

  // -------------------------------------------------------------- requests

  /** Sends a request; resolves with its answer, ERROR included. */
  rawRequest(
    command: Command,
    args: Json,
    payload: Buffer[] = [],
    timeoutMs = this.requestTimeoutMs,
    rid: Buffer = this.newRequestId(),
  ): Promise<Reply> {
    if (this.stopped && command !== 'BYE')
      return Promise.reject(new FerryError('CONNECTION_CLOSED'));
    const frames = encodeRequest(command, rid, args, payload);
    return new Promise<Reply>((resolve, reject) => {
      const key = rid.toString('latin1');
      const p: Pending = { command, frames, resolve, reject, timer: undefined, sentAt: Date.now() };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(key);
          reject(new FerryError('TIMEOUT', `${command}: no answer within ${timeoutMs} ms`));
        }, timeoutMs);
        p.timer.unref();
      }
      this.pending.set(key, p);
      // HELLO and PING go out at once; everything else waits for the session.
      if (command === 'HELLO' || command === 'PING' || this.sessionId !== undefined)
        this.transport.send(frames);
    });
  }

  private newRequestId(): Buffer {
    const rid = Buffer.allocUnsafe(4);
    rid.writeUInt32BE(this.nextRequest++ >>> 0);
    return rid;
  }

  /** Sends a request; resolves with its answer, rejects with the FerryError of an ERROR. */
  async request(
    command: Command,
    args: Json,
    payload: Buffer[] = [],
    timeoutMs = this.requestTimeoutMs,
  ): Promise<Reply> {
    const reply = await this.rawRequest(command, args, payload, timeoutMs);
    if (reply.kind === 'ERROR') throw errorWithDetails(reply);
    return reply;
  }

  /** A request whose EVENT messages (same request id) go to onEvent until closed. */
  stream(
    command: Command,
    args: Json,
    payload: Buffer[],
    onEvent: (reply: Reply) => void,
    timeoutMs = this.requestTimeoutMs,
  ): { reply: Promise<Reply>; close(): void } {
    const rid = this.newRequestId();
    const key = rid.toString('latin1');
    const stream: Stream = {
      onEvent,
      frames: encodeRequest(command, rid, args, payload),
      answered: false,
      resend: command === 'WATCH',
    };
    this.streams.set(key, stream);
    const reply = this.rawRequest(command, args, payload, timeoutMs, rid).then((r) => {
      stream.answered = true;
      if (r.kind === 'ERROR') {
        this.streams.delete(key);
        throw errorWithDetails(r);
      }
      return r;
    });
    return { reply, close: () => this.streams.delete(key) };
  }

  private onFrames(frames: Buffer[]): void {
    let reply: Reply;
    try {
      reply = decodeReply(frames);
    } catch {
      return; // not ours; ignore
    }
    this.lastHeard = Date.now();
    if (!this.connected && this.sessionId !== undefined) {
      this.connected = true;
    }
    if (reply.kind === 'DELIVER') {
      this.handlers.onDeliver(reply);
      return;
    }
    if (reply.kind === 'ASSIGN' || reply.kind === 'REVOKE') {
      this.handlers.onWorkerMessage(reply);
      return;
    }
    if (reply.kind === 'EVENT') {
      this.streams.get(reply.requestId.toString('latin1'))?.onEvent(reply);
      return;
    }
    if (reply.kind === 'TOPIC' || reply.kind === 'DROPPED') {
      this.handlers.onTopicMessage(reply);
      return;
    }
    if (reply.kind === 'CANCELLED') {
      this.handlers.onCancelled(reply);
      return;
    }
    const key = reply.requestId.toString('latin1');
    const p = this.pending.get(key);
    if (!p) return;
    if (reply.kind === 'ERROR' && reply.args['code'] === 'NO_SESSION' && p.command !== 'HELLO') {
      // The broker does not know us (it restarted, or dropped us): keep the request, redo HELLO.
      this.sessionId = undefined;
      this.handshake();
      return;
    }
    this.pending.delete(key);
    if (p.timer) clearTimeout(p.timer);
    p.resolve(reply);
  }

  // -------------------------------------------------------------- session

  /** Drops the HELLO (and PINGs) waiting for an answer, so a new handshake can start. */
  private abandonHandshake(): void {
    for (const [key, p] of this.pending) {
      if (p.command === 'HELLO' || p.command === 'PING') {
        this.pending.delete(key);
        if (p.timer) clearTimeout(p.timer);
        p.reject(new FerryError('TIMEOUT', `${p.command}: no answer`));
      }
    }
    this.handshaking = false;
  }

  private handshake(): void {
    if (this.handshaking || this.stopped) return;
    this.handshaking = true;
    this.helloSentAt = Date.now();
    this.sessionId = undefined;
    const wasConnected = this.everConnected;
    const generation = ++this.handshakeGeneration;
    this.rawRequest('HELLO', { heartbeatMs: this.heartbeatMs, client: this.name }, [], 0).then(
      (reply) => {
        if (generation !== this.handshakeGeneration) return; // superseded
        this.handshaking = false;
        if (reply.kind === 'ERROR') {
          this.emit({ type: 'disconnected', endpoint: this.endpoint });
          return;
        }
        this.sessionId = String(reply.args['session']);
        this.connected = true;
        this.everConnected = true;
        // Resume consumers, then send again every request still waiting for an answer.
        this.handlers.onSession();
        for (const st of this.streams.values()) {
          // A watch already answered is asked for again (its updates replay from the start).
          if (st.resend && st.answered) this.transport.send(st.frames);
        }
        let resent = 0;
        for (const p of this.pending.values()) {
          if (p.command === 'HELLO') continue;
          this.transport.send(p.frames);
          resent++;
        }
        this.emit(
          wasConnected
            ? { type: 'reconnected', endpoint: this.endpoint, session: this.sessionId, resent }
            : { type: 'connected', endpoint: this.endpoint, session: this.sessionId },
        );
        this.readyResolve();
      },
      () => {
        if (generation === this.handshakeGeneration) this.handshaking = false;
      },
    );
  }

  private heartbeat(): void {
    if (this.stopped) return;
    const silentFor = Date.now() - this.lastHeard;
    if (silentFor > this.heartbeatMs * CLIENT_LIVENESS && this.connected) {
      this.connected = false;
      this.emit({ type: 'disconnected', endpoint: this.endpoint });
      if (this.endpoints.length > 1) this.failover();
    }
    if (this.sessionId === undefined) {
      if (!this.handshaking) {
        this.handshake();
      } else if (Date.now() - this.helloSentAt > this.heartbeatMs * CLIENT_LIVENESS) {
        // No answer to HELLO (the broker may have died holding it): try again, or elsewhere.
        if (this.endpoints.length > 1) {
          this.failover();
        } else {
          this.abandonHandshake();
          this.handshake();
        }
      }
      return;
    }
    this.rawRequest('PING', {}, [], this.heartbeatMs * CLIENT_LIVENESS).catch(() => {});
  }

  private onTransportDown(): void {
    // ZeroMQ reconnects by itself; the next PING tells us whether the broker still knows us.
    this.lastHeard = Math.min(this.lastHeard, Date.now() - this.heartbeatMs);
  }

  /** Moves to the next endpoint: the requests in flight are sent again there after HELLO. */
  private failover(): void {
    const old = this.transport;
    this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
    this.transport = this.open(this.endpoints[this.endpointIndex]!);
    void old.close();
    this.sessionId = undefined;
    this.abandonHandshake();
    this.lastHeard = Date.now();
    this.handshake();
  }

  // -------------------------------------------------------------- closing

  /** Waits (polling every 5 ms) until no request but PINGs awaits an answer, or the deadline. */
  async drain(deadline: number): Promise<void> {
    while (this.pending.size > 0 && Date.now() < deadline && this.sessionId !== undefined) {
      const inflight = [...this.pending.values()].filter((p) => p.command !== 'PING');
      if (inflight.length === 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Forgets every stream (their callers are told by their requests). */
  dropStreams(): void {
    this.streams.clear();
  }

  /** Closed for requests: stops the heartbeat and rejects what waits for an answer. */
  stop(): void {
    this.stopped = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new FerryError('CONNECTION_CLOSED'));
    }
    this.pending.clear();
  }

  /** Tells status iterators the client closed, and ends them. */
  endStatus(): void {
    this.emit({ type: 'closed' });
    for (const ch of this.statusChannels) ch.end();
  }

  /** Closes the socket (no BYE: FerryClient.close says it first). */
  close(): Promise<void> {
    return this.transport.close();
  }
}
