/**
 * The Ferry dialect: Ferry's own protocol (docs/protocol.md) mapped onto core calls.
 * One session per peer, opened by HELLO, kept alive by any traffic, closed by BYE or by
 * silence longer than heartbeat × liveness (its leases are then redelivered at once).
 * This file holds the sessions and the routing; the commands are in groups: queues
 * (ferry-queues.ts), queue life cycle (ferry-queue-lifecycle.ts), jobs (ferry-jobs.ts) and
 * pub/sub (ferry-topics.ts).
 */
import type { Broker, Session } from '../../core/broker.js';
import type { JobApi } from '../../core/job-types.js';
import type { PubSub } from '../../core/pubsub.js';
import type { StatsSource } from '../../core/stats.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { FerryError, toFerryError } from 'ferrymq/model';
import {
  JOB_COMMAND_NAMES,
  QUEUE_LIFECYCLE_COMMAND_NAMES,
  TOPIC_COMMAND_NAMES,
  PROTOCOL_VERSION,
  ProtocolError,
  REQUEST_ID_MAX_BYTES,
  decodeRequest,
  encodeError,
  encodeReply,
  type Json,
  type Request,
} from 'ferrymq/protocol';
import { optInt } from './args.js';
import type { FerryAccess } from './ferry-access.js';
import { FerryJobCommands } from './ferry-jobs.js';
import { FerryQueueLifecycleCommands } from './ferry-queue-lifecycle.js';
import { FerryQueueCommands } from './ferry-queues.js';
import { FerryTopicCommands } from './ferry-topics.js';

/** Commands handled by the job part of the dialect (ferry-jobs.ts). */
const JOB_COMMANDS: ReadonlySet<string> = new Set(JOB_COMMAND_NAMES);
/** Commands handled by the queue life-cycle part (ferry-queue-lifecycle.ts). */
const LIFECYCLE_COMMANDS: ReadonlySet<string> = new Set(QUEUE_LIFECYCLE_COMMAND_NAMES);
/** Commands handled by the pub/sub part of the dialect (ferry-topics.ts). */
const TOPIC_COMMANDS: ReadonlySet<string> = new Set(TOPIC_COMMAND_NAMES);

export const DEFAULT_HEARTBEAT_MS = 2_000;
export const MIN_HEARTBEAT_MS = 100;
export const MAX_HEARTBEAT_MS = 60_000;
const HEARTBEAT_LIVENESS = 3;
export const DEFAULT_MAX_BATCH_MESSAGES = 10_000;
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024;
const BROKER_VERSION = '0.1.0';

export interface FerryDialectOptions {
  clock?: Clock;
  logger?: Logger;
  /** Heartbeat the broker proposes; clients may ask for another within bounds. */
  heartbeatMs?: number;
  maxBatchMessages?: number;
  maxRequestBytes?: number;
  /** The job server; without it the job commands answer UNKNOWN_COMMAND. */
  jobs?: JobApi;
  /** Pub/sub; without it the topic commands answer UNKNOWN_COMMAND. */
  pubsub?: PubSub;
  /**
   * Where STATS reads its numbers (the same snapshot the HTTP gateway and /metrics read);
   * without it, STATS reports this dialect's own view of the broker.
   */
  stats?: StatsSource;
  /** Who sessions are and what they may do (CURVE endpoints); everyone may do anything without. */
  access?: FerryAccess | undefined;
}

/** Sends frames to one peer. */
export type PeerSend = (peer: Buffer, frames: Buffer[]) => void;

interface Peer {
  id: Buffer;
  session: Session;
  heartbeatMs: number;
  lastSeen: number;
  /** The CURVE key the session proved at HELLO (ferry-access.ts). */
  clientKey: string | undefined;
}

/**
 * What this broker does beyond protocol 1 as first published, announced in HELLO's reply so
 * clients use it only where it is there: `quiet-reports` = COMPLETE and FAIL take
 * `"quiet": true` and are then answered only when they fail; `publish-batch` = PUBLISH takes
 * `{"messages": [...]}`; `request-keys` = PUBLISH and SEND_MULTICAST take `requestKey`, CALL
 * and MULTICAST take `dedupKey`.
 */
const BROKER_FEATURES = ['quiet-reports', 'publish-batch', 'request-keys'];

export class FerryDialect {
  private readonly peers = new Map<string, Peer>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly heartbeatMs: number;
  private readonly maxBatchMessages: number;
  private readonly maxRequestBytes: number;
  private cancelLiveness: (() => void) | undefined;
  private closed = false;
  private readonly jobCommands: FerryJobCommands | undefined;
  private readonly topicCommands: FerryTopicCommands | undefined;
  private readonly queueCommands: FerryQueueCommands;
  private readonly lifecycleCommands: FerryQueueLifecycleCommands;
  private readonly access: FerryAccess | undefined;
  /** Requests answered with an error, by code: for stats and tests. */
  readonly errorCounts = new Map<string, number>();

  constructor(
    private readonly broker: Broker,
    private readonly sendTo: PeerSend,
    options: FerryDialectOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.maxBatchMessages = options.maxBatchMessages ?? DEFAULT_MAX_BATCH_MESSAGES;
    this.maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    this.access = options.access;
    this.queueCommands = new FerryQueueCommands(broker, sendTo, {
      maxBatchMessages: this.maxBatchMessages,
      maxRequestBytes: this.maxRequestBytes,
      stats: options.stats,
      connections: () => this.peers.size,
      replyError: (peer, requestId, err) => this.replyError(peer, requestId, err),
    });
    this.lifecycleCommands = new FerryQueueLifecycleCommands(broker, sendTo, (peer, id, err) =>
      this.replyError(peer, id, toFerryError(err)),
    );
    this.jobCommands = options.jobs
      ? new FerryJobCommands(options.jobs, (peer, frames) => this.sendTo(peer, frames))
      : undefined;
    this.topicCommands = options.pubsub
      ? new FerryTopicCommands(options.pubsub, (peer, frames) => this.sendTo(peer, frames))
      : undefined;
    this.armLiveness();
  }

  get connections(): number {
    return this.peers.size;
  }

  private armLiveness(): void {
    const interval = Math.max(MIN_HEARTBEAT_MS / 2, Math.min(this.heartbeatMs, 1000) / 2);
    this.cancelLiveness = this.clock.setTimer(() => {
      this.checkLiveness();
      if (!this.closed) this.armLiveness();
    }, interval);
  }

  private checkLiveness(): void {
    const now = this.clock.now();
    for (const [key, p] of this.peers) {
      if (now - p.lastSeen > p.heartbeatMs * HEARTBEAT_LIVENESS) {
        this.log.info('peer went silent; closing its session', { session: p.session.id });
        p.session.close();
        this.jobCommands?.closePeer(key);
        this.topicCommands?.closePeer(key);
        this.peers.delete(key);
      }
    }
  }

  /**
   * Entry point for every message a peer sends. Never throws. Returns false when the message
   * was not a valid request (answered with a coded error): the transport counts those per peer.
   */
  handle(peerId: Buffer, frames: Buffer[]): boolean {
    let bytes = 0;
    for (const f of frames) bytes += f.length;
    if (bytes > this.maxRequestBytes) {
      // Checked before decoding: the id is echoed when frame 2 looks like one.
      const id = frames[2];
      const requestId = id && id.length <= REQUEST_ID_MAX_BYTES ? id : Buffer.alloc(0);
      this.replyError(
        peerId,
        requestId,
        new FerryError(
          'MESSAGE_TOO_LARGE',
          `request is ${bytes} bytes; the limit is ${this.maxRequestBytes}`,
        ),
      );
      return true;
    }
    let request: Request;
    try {
      request = decodeRequest(frames);
    } catch (err) {
      const e = err instanceof ProtocolError ? err : new ProtocolError('BAD_FRAME', String(err));
      this.replyError(peerId, e.requestId, e);
      return false;
    }
    const key = peerId.toString('latin1');
    const peer = this.peers.get(key);
    if (peer) peer.lastSeen = this.clock.now();
    try {
      if (request.command === 'HELLO') {
        this.hello(peerId, key, request);
        return true;
      }
      if (request.command === 'CHALLENGE') {
        this.ok(peerId, request.requestId, this.access?.challenge(key) ?? {});
        return true;
      }
      if (!peer) {
        throw new FerryError('NO_SESSION', 'no session for this peer: send HELLO first');
      }
      const checking = this.access?.check(peer.clientKey, request);
      if (checking) {
        checking.then(
          () => this.dispatch(peer, key, request),
          (err: unknown) => this.replyError(peerId, request.requestId, toFerryError(err)),
        );
        return true;
      }
      this.dispatch(peer, key, request);
    } catch (err) {
      this.replyError(peerId, request.requestId, toFerryError(err));
    }
    return true;
  }

  private replyError(peer: Buffer, requestId: Buffer, err: FerryError): void {
    this.errorCounts.set(err.code, (this.errorCounts.get(err.code) ?? 0) + 1);
    if (err.code === 'INTERNAL') this.log.error('internal error', { err: err.message });
    this.sendTo(peer, encodeError(requestId, err.code, err.message));
  }

  private ok(peer: Peer | Buffer, requestId: Buffer, args?: Json, payload?: Buffer[]): void {
    const id = Buffer.isBuffer(peer) ? peer : peer.id;
    this.sendTo(id, encodeReply('OK', requestId, args ?? {}, payload));
  }

  private hello(peerId: Buffer, key: string, req: Request): void {
    const hb = optInt(req.args, 'heartbeatMs') ?? this.heartbeatMs;
    if (hb < MIN_HEARTBEAT_MS || hb > MAX_HEARTBEAT_MS) {
      throw new FerryError(
        'BAD_ARGUMENTS',
        `heartbeatMs must be ${MIN_HEARTBEAT_MS}–${MAX_HEARTBEAT_MS}`,
      );
    }
    const clientKey = this.access?.hello(key, req.args);
    const old = this.peers.get(key);
    if (old) {
      old.session.close();
      this.jobCommands?.closePeer(key);
      this.topicCommands?.closePeer(key);
    }
    const session = this.broker.openSession({
      deliver: (tag, messages) => this.queueCommands.deliver(peerId, tag, messages),
      cancelled: (tag, reason) => this.lifecycleCommands.cancelled(peerId, tag, reason),
    });
    this.peers.set(key, {
      id: peerId,
      session,
      heartbeatMs: hb,
      lastSeen: this.clock.now(),
      clientKey,
    });
    this.ok(peerId, req.requestId, {
      broker: 'ferry',
      version: BROKER_VERSION,
      protocol: PROTOCOL_VERSION,
      session: session.id,
      heartbeatMs: hb,
      liveness: HEARTBEAT_LIVENESS,
      features: BROKER_FEATURES,
      limits: {
        maxMessageBytes: this.broker.limits.maxMessageBytes,
        maxBatchMessages: this.maxBatchMessages,
        maxRequestBytes: this.maxRequestBytes,
        maxPrefetch: this.broker.limits.maxPrefetch,
        consumerMaxBytes: this.broker.limits.consumerMaxBytes,
      },
    });
  }

  private dispatch(peer: Peer, key: string, req: Request): void {
    if (JOB_COMMANDS.has(req.command)) {
      if (!this.jobCommands) {
        throw new FerryError('UNKNOWN_COMMAND', `${req.command}: this broker runs no job server`);
      }
      this.jobCommands.handle(peer.id, key, req);
      return;
    }
    if (LIFECYCLE_COMMANDS.has(req.command)) {
      this.lifecycleCommands.handle(peer.id, req);
      return;
    }
    if (TOPIC_COMMANDS.has(req.command)) {
      if (!this.topicCommands) {
        throw new FerryError('UNKNOWN_COMMAND', `${req.command}: this broker runs no pub/sub`);
      }
      this.topicCommands.handle(peer.id, key, peer.session, req);
      return;
    }
    switch (req.command) {
      case 'PING':
        this.sendTo(peer.id, encodeReply('PONG', req.requestId, {}));
        return;
      case 'BYE':
        peer.session.close();
        this.jobCommands?.closePeer(key);
        this.topicCommands?.closePeer(key);
        this.peers.delete(key);
        this.ok(peer, req.requestId);
        return;
      case 'HELLO':
        return;
      default:
        this.queueCommands.handle(peer.id, peer.session, req);
    }
  }

  /** Closes every session (their leases are released) and stops the liveness timer. */
  close(): void {
    this.closed = true;
    this.cancelLiveness?.();
    for (const p of this.peers.values()) p.session.close();
    this.jobCommands?.close();
    this.topicCommands?.close();
    this.peers.clear();
  }
}
