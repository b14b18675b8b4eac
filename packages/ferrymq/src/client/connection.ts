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
  type Command,
  type Json,
  type Reply,
} from '../protocol/codec.js';
import type { ClientConnection } from '../transport/types.js';
import { Channel } from './channel.js';
import { helloAuth, type CurveOptions } from './curve-auth.js';
import { Endpoints } from './endpoints.js';
import {
  errorWithDetails,
  retriesAfterShutdown,
  sessionGone,
  stoppedUnder,
  type Pending,
  type Stream,
} from './requests.js';
import type { JobWire } from './job-client.js';
import { RecentReports } from './recent-reports.js';
import type { ClientCounters, ClientStatus, SettleCommand } from './status.js';

const CLIENT_LIVENESS = 3;
/**
 * Quiet reports remembered for their possible ERROR (the broker answers them only when they
 * fail, at once): the most recent this many; older ones are forgotten.
 */
const QUIET_TRACKED_MAX = 10_000;
/** Quiet reports sent this many heartbeats before the broker was last heard are kept. */
const REPORT_WINDOW_HEARTBEATS = 2;

export interface ConnectionOptions {
  heartbeatMs: number;
  requestTimeoutMs: number;
  /** Before the first session: how long an endpoint gets to accept a TCP connection. */
  connectTimeoutMs: number;
  /** Name shown in broker logs. */
  name: string;
  /** CURVE keys: the socket encrypts, and HELLO proves this client's key. */
  curve?: CurveOptions | undefined;
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

export class Connection implements JobWire {
  private transport: ClientConnection;
  private readonly endpoints: Endpoints;
  private nextRequest = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly streams = new Map<string, Stream>();
  /** What the broker announced in HELLO beyond protocol 1 (docs/protocol.md, HELLO). */
  private features = new Set<string>();
  /** Quiet reports sent, by request id: what to call if the broker answers ERROR. */
  private readonly quiet = new Map<string, (err: FerryError) => void>();
  /** Quiet reports kept to be sent again after a new HELLO. */
  private readonly reports: RecentReports;
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
  private failStart: ((err: FerryError) => void) | undefined;
  /** Every endpoint was found unreachable (before start() listened). */
  private unreachableError: FerryError | undefined;
  /** The broker refused who this client is: every request rejects with it from then on. */
  private authError: FerryError | undefined;
  private readonly curve: CurveOptions | undefined;
  readonly counters: ClientCounters = { leasesLost: 0, reconnects: 0, retriedAfterShutdown: 0 };

  constructor(
    endpoints: readonly string[],
    options: ConnectionOptions,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.heartbeatMs = options.heartbeatMs;
    this.reports = new RecentReports(options.heartbeatMs * REPORT_WINDOW_HEARTBEATS);
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.name = options.name;
    this.curve = options.curve;
    this.ready = new Promise((r) => (this.readyResolve = r));
    this.endpoints = new Endpoints(
      endpoints,
      options.connectTimeoutMs,
      {
        onMessage: (frames) => this.onFrames(frames),
        onDisconnect: () => this.onTransportDown(),
        onAuthFailed: (reason) =>
          this.failAuth(new FerryError('AUTH_FAILED', `${this.endpoint}: ${reason}`)),
        onUnreachable: (all) => {
          if (this.stopped) return;
          if (!all) {
            this.failover();
            return;
          }
          this.unreachableError = this.endpoints.unreachableError();
          this.failStart?.(this.unreachableError);
        },
      },
      { curve: options.curve },
    );
    this.transport = this.endpoints.open();
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
          this.failStart = reject;
          if (this.unreachableError) reject(this.unreachableError);
          if (this.authError) reject(this.authError);
          if (this.requestTimeoutMs > 0) {
            timer = setTimeout(
              () => reject(new FerryError('TIMEOUT', `no answer from ${this.endpoints.all}`)),
              this.requestTimeoutMs,
            );
          }
        }),
      ]);
    } finally {
      this.failStart = undefined;
      clearTimeout(timer);
      this.endpoints.stopProbing();
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

  /** A settle found its lease gone: counted, and told to status iterators. */
  reportLeaseLost(command: SettleCommand, id: string): void {
    this.counters.leasesLost++;
    this.emit({ type: 'lease-lost', command, id });
  }

  // -------------------------------------------------------------- requests

  /**
   * Sends a request; resolves with its answer, ERROR included. With `scope` (a session id),
   * the request belongs to that session: it rejects LEASE_LOST, unsent, once that session is
   * gone (settles of leases the session held).
   */
  rawRequest(
    command: Command,
    args: Json,
    payload: Buffer[] = [],
    timeoutMs = this.requestTimeoutMs,
    rid: Buffer = this.newRequestId(),
    scope?: string,
  ): Promise<Reply> {
    if (this.authError) return Promise.reject(this.authError);
    if (this.stopped && command !== 'BYE') return Promise.reject(this.closedError());
    if (scope !== undefined && scope !== this.sessionId) return Promise.reject(sessionGone());
    const frames = encodeRequest(command, rid, args, payload);
    return new Promise<Reply>((resolve, reject) => {
      const key = rid.toString('latin1');
      const p: Pending = {
        command,
        frames,
        retryAfterShutdown: retriesAfterShutdown(command),
        scope,
        resolve,
        reject,
        timer: undefined,
        sentAt: Date.now(),
      };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(key);
          reject(new FerryError('TIMEOUT', `${command}: no answer within ${timeoutMs} ms`));
        }, timeoutMs);
        p.timer.unref();
      }
      this.pending.set(key, p);
      // HELLO and PING go out at once; everything else waits for the session.
      if (
        command === 'HELLO' ||
        command === 'CHALLENGE' ||
        command === 'PING' ||
        this.sessionId !== undefined
      )
        this.transport.send(frames);
    });
  }

  private newRequestId(): Buffer {
    const rid = Buffer.allocUnsafe(4);
    rid.writeUInt32BE(this.nextRequest++ >>> 0);
    return rid;
  }

  /** Whether the broker of the current session announced `feature` in HELLO. */
  supports(feature: string): boolean {
    return this.features.has(feature);
  }

  /**
   * Sends a quiet report (`"quiet": true`: COMPLETE, FAIL): the broker answers only if it
   * fails, and then `onError` gets the error. Like a scoped request, it belongs to session
   * `scope`: once that session is gone it is not sent and `onError` gets LEASE_LOST.
   */
  notify(
    command: Command,
    args: Json,
    payload: Buffer[],
    onError: (err: FerryError) => void,
  ): void {
    if (this.stopped) {
      onError(new FerryError('CONNECTION_CLOSED'));
      return;
    }
    // Bound to no session: a report in flight when the broker went down is sent again.
    const sent = this.sessionId !== undefined;
    this.reports.add({ command, args, payload, onError, sent, sentAt: Date.now() }, this.lastHeard);
    if (sent) this.sendQuiet(command, args, payload, onError);
  }

  private sendQuiet(
    command: Command,
    args: Json,
    payload: Buffer[],
    onError: ((err: FerryError) => void) | undefined,
  ): void {
    const rid = this.newRequestId();
    if (onError) {
      this.quiet.set(rid.toString('latin1'), onError);
      if (this.quiet.size > QUIET_TRACKED_MAX) {
        this.quiet.delete(this.quiet.keys().next().value!);
      }
    }
    this.transport.send(encodeRequest(command, rid, { ...args, quiet: true }, payload));
  }

  /** Sends a request; resolves with its answer, rejects with the FerryError of an ERROR. */
  async request(
    command: Command,
    args: Json,
    payload: Buffer[] = [],
    timeoutMs = this.requestTimeoutMs,
    scope?: string,
  ): Promise<Reply> {
    const rid = this.newRequestId();
    const reply = await this.rawRequest(command, args, payload, timeoutMs, rid, scope);
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
    if (!p) {
      const onError = this.quiet.get(key);
      if (onError) {
        this.quiet.delete(key);
        if (reply.kind === 'ERROR') onError(errorWithDetails(reply));
      }
      return;
    }
    if (reply.kind === 'ERROR' && reply.args['code'] === 'NO_SESSION' && p.command !== 'HELLO') {
      // The broker does not know us (it restarted, or dropped us): keep the request, redo HELLO.
      this.sessionId = undefined;
      this.handshake();
      return;
    }
    if (p.retryAfterShutdown && stoppedUnder(p.command, reply)) {
      // A graceful stop refused it (so did not do it): hold it for the broker that comes back.
      // The heartbeat redoes HELLO at its pace until one answers; the request goes out then.
      this.counters.retriedAfterShutdown++;
      this.sessionId = undefined;
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
      if (p.command === 'HELLO' || p.command === 'CHALLENGE' || p.command === 'PING') {
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
    this.hello().then(
      (reply) => {
        if (generation !== this.handshakeGeneration) return; // superseded
        this.handshaking = false;
        if (reply.kind === 'ERROR' && reply.args['code'] === 'AUTH_FAILED') {
          this.failAuth(errorWithDetails(reply));
          return;
        }
        if (reply.kind === 'ERROR') {
          this.emit({ type: 'disconnected', endpoint: this.endpoint });
          return;
        }
        this.sessionId = String(reply.args['session']);
        const features = reply.args['features'];
        this.features = new Set(Array.isArray(features) ? features.map(String) : []);
        this.connected = true;
        this.everConnected = true;
        this.endpoints.stopProbing();
        if (wasConnected) this.counters.reconnects++;
        this.dropScopedTo(this.sessionId);
        // Resume consumers, then send again every request still waiting for an answer.
        this.handlers.onSession();
        for (const st of this.streams.values()) {
          // A watch already answered is asked for again (its updates replay from the start).
          if (st.resend && st.answered) this.transport.send(st.frames);
        }
        let resent = 0;
        // Quiet reports that may not have reached the old session's broker; a repeat of one
        // that did is answered LEASE_LOST, ignored (recent-reports.ts).
        for (const r of this.reports.take()) {
          this.sendQuiet(r.command, r.args, r.payload, r.sent ? undefined : r.onError);
          resent++;
        }
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

  /** HELLO, after a CHALLENGE whose answer proves the client's key when CURVE is on. */
  private async hello(): Promise<Reply> {
    const args = { heartbeatMs: this.heartbeatMs, client: this.name };
    if (!this.curve) return this.rawRequest('HELLO', args, [], 0);
    const challenge = await this.rawRequest('CHALLENGE', {}, [], 0);
    if (challenge.kind === 'ERROR') return challenge;
    return this.rawRequest('HELLO', { ...args, auth: helloAuth(this.curve, challenge) }, [], 0);
  }

  /**
   * The broker refused this client (its key at the CURVE handshake, or its HELLO): connect()
   * and every request waiting reject with AUTH_FAILED, later ones too, and the socket closes
   * (a refused client is never answered, and a wrong server key would reconnect forever).
   */
  private failAuth(err: FerryError): void {
    if (this.authError || this.stopped) return;
    this.authError = err;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.endpoints.stopProbing();
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.failStart?.(err);
    this.emit({ type: 'disconnected', endpoint: this.endpoint });
    void this.transport.close();
  }

  /** Rejects LEASE_LOST, unsent, the requests that belonged to a session other than `session`. */
  private dropScopedTo(session: string): void {
    for (const [key, p] of this.pending) {
      if (p.scope === undefined || p.scope === session) continue;
      this.pending.delete(key);
      if (p.timer) clearTimeout(p.timer);
      p.reject(sessionGone());
    }
  }

  private heartbeat(): void {
    if (this.stopped) return;
    const silentFor = Date.now() - this.lastHeard;
    if (silentFor > this.heartbeatMs * CLIENT_LIVENESS && this.connected) {
      this.connected = false;
      this.emit({ type: 'disconnected', endpoint: this.endpoint });
      if (this.endpoints.count > 1) this.failover();
    }
    if (this.sessionId === undefined) {
      if (!this.handshaking) {
        this.handshake();
      } else if (Date.now() - this.helloSentAt > this.heartbeatMs * CLIENT_LIVENESS) {
        // No answer to HELLO (the broker may have died holding it): try again, or elsewhere.
        if (this.endpoints.count > 1) {
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
    this.endpoints.advance();
    this.transport = this.endpoints.open();
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
    this.endpoints.stopProbing();
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(this.closedError());
    }
    this.pending.clear();
  }

  /** What a request made after the end rejects with: AUTH_FAILED if that was the end. */
  closedError(): FerryError {
    return this.authError ?? new FerryError('CONNECTION_CLOSED');
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
