/**
 * The Ferry dialect: Ferry's own protocol (docs/protocol.md) mapped onto core calls.
 * One session per peer, opened by HELLO, kept alive by any traffic, closed by BYE or by
 * silence longer than heartbeat × liveness (its leases are then redelivered at once).
 */
import type { Broker, Delivery, Session } from '../../core/broker.js';
import type { JobApi } from '../../core/job-types.js';
import type { PubSub } from '../../core/pubsub.js';
import type { StatsSource } from '../../core/stats.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { MessageState, NewMessage } from 'ferrymq/model';
import { MESSAGE_STATES } from 'ferrymq/model';
import { FerryError, toFerryError } from 'ferrymq/model';
import {
  JOB_COMMAND_NAMES,
  TOPIC_COMMAND_NAMES,
  PROTOCOL_VERSION,
  ProtocolError,
  decodeRequest,
  encodeError,
  encodeReply,
  joinMessages,
  splitMessages,
  type Json,
  type Request,
} from 'ferrymq/protocol';
import { optBool, optInt, optNumber, optString, reqIds, reqString, settled } from './args.js';
import { FerryJobCommands } from './ferry-jobs.js';
import { FerryTopicCommands } from './ferry-topics.js';

/** Commands handled by the job part of the dialect (ferry-jobs.ts). */
const JOB_COMMANDS: ReadonlySet<string> = new Set(JOB_COMMAND_NAMES);
/** Commands handled by the pub/sub part of the dialect (ferry-topics.ts). */
const TOPIC_COMMANDS: ReadonlySet<string> = new Set(TOPIC_COMMAND_NAMES);

export const DEFAULT_HEARTBEAT_MS = 2_000;
export const MIN_HEARTBEAT_MS = 100;
export const MAX_HEARTBEAT_MS = 60_000;
export const HEARTBEAT_LIVENESS = 3;
export const DEFAULT_MAX_BATCH_MESSAGES = 10_000;
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024;
export const BROKER_VERSION = '0.1.0';

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
}

/** Sends frames to one peer. */
export type PeerSend = (peer: Buffer, frames: Buffer[]) => void;

interface Peer {
  id: Buffer;
  session: Session;
  heartbeatMs: number;
  lastSeen: number;
}

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
  private readonly statsSource: StatsSource | undefined;
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
    this.statsSource = options.stats;
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

  /** Entry point for every message a peer sends. Never throws. */
  handle(peerId: Buffer, frames: Buffer[]): void {
    let request: Request;
    try {
      request = decodeRequest(frames);
    } catch (err) {
      const e = err instanceof ProtocolError ? err : new ProtocolError('BAD_FRAME', String(err));
      this.replyError(peerId, e.requestId, e);
      return;
    }
    const key = peerId.toString('latin1');
    const peer = this.peers.get(key);
    if (peer) peer.lastSeen = this.clock.now();
    try {
      if (request.command === 'HELLO') {
        this.hello(peerId, key, request);
        return;
      }
      if (!peer) {
        throw new FerryError('NO_SESSION', 'no session for this peer: send HELLO first');
      }
      this.dispatch(peer, key, request);
    } catch (err) {
      this.replyError(peerId, request.requestId, toFerryError(err));
    }
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

  /** Runs an async core call and answers with its result or its error. */
  private answer(peer: Peer, requestId: Buffer, work: () => Promise<Json>): void {
    let p: Promise<Json>;
    try {
      p = work();
    } catch (err) {
      this.replyError(peer.id, requestId, toFerryError(err));
      return;
    }
    p.then(
      (args) => this.ok(peer, requestId, args),
      (err: unknown) => this.replyError(peer.id, requestId, toFerryError(err)),
    );
  }

  private hello(peerId: Buffer, key: string, req: Request): void {
    const hb = optInt(req.args, 'heartbeatMs') ?? this.heartbeatMs;
    if (hb < MIN_HEARTBEAT_MS || hb > MAX_HEARTBEAT_MS) {
      throw new FerryError(
        'BAD_ARGUMENTS',
        `heartbeatMs must be ${MIN_HEARTBEAT_MS}–${MAX_HEARTBEAT_MS}`,
      );
    }
    const old = this.peers.get(key);
    if (old) {
      old.session.close();
      this.jobCommands?.closePeer(key);
      this.topicCommands?.closePeer(key);
    }
    const session = this.broker.openSession({
      deliver: (tag, messages) => this.deliver(peerId, tag, messages),
    });
    this.peers.set(key, { id: peerId, session, heartbeatMs: hb, lastSeen: this.clock.now() });
    this.ok(peerId, req.requestId, {
      broker: 'ferry',
      version: BROKER_VERSION,
      protocol: PROTOCOL_VERSION,
      session: session.id,
      heartbeatMs: hb,
      liveness: HEARTBEAT_LIVENESS,
      limits: {
        maxMessageBytes: this.broker.limits.maxMessageBytes,
        maxBatchMessages: this.maxBatchMessages,
        maxRequestBytes: this.maxRequestBytes,
        maxPrefetch: this.broker.limits.maxPrefetch,
      },
    });
  }

  private deliver(peerId: Buffer, tag: string, messages: Delivery[]): void {
    const { specs, payload } = joinMessages(messages, (m) => {
      const d: Json = { id: m.id, attempt: m.attempt, enqueuedAt: m.enqueuedAt };
      if (m.priority !== 0) d['priority'] = m.priority;
      if (m.headers) d['headers'] = m.headers;
      return d;
    });
    this.sendTo(
      peerId,
      encodeReply('DELIVER', Buffer.alloc(0), { consumer: tag, messages: specs }, payload),
    );
  }

  private dispatch(peer: Peer, key: string, req: Request): void {
    const { args, requestId } = req;
    if (JOB_COMMANDS.has(req.command)) {
      if (!this.jobCommands) {
        throw new FerryError('UNKNOWN_COMMAND', `${req.command}: this broker runs no job server`);
      }
      this.jobCommands.handle(peer.id, key, req);
      return;
    }
    if (TOPIC_COMMANDS.has(req.command)) {
      if (!this.topicCommands) {
        throw new FerryError('UNKNOWN_COMMAND', `${req.command}: this broker runs no pub/sub`);
      }
      this.topicCommands.handle(peer.id, key, peer.session, req);
      return;
    }
    const s = peer.session;
    switch (req.command) {
      case 'PING':
        this.sendTo(peer.id, encodeReply('PONG', requestId, {}));
        return;
      case 'BYE':
        s.close();
        this.jobCommands?.closePeer(key);
        this.topicCommands?.closePeer(key);
        this.peers.delete(key);
        this.ok(peer, requestId);
        return;
      case 'SEND': {
        const queue = reqString(args, 'queue');
        const requestKey = optString(args, 'requestKey');
        if (req.payload.length > this.maxBatchMessages * 16) {
          throw new FerryError('BATCH_TOO_LARGE', `too many frames in one request`);
        }
        let bytes = 0;
        for (const f of req.payload) bytes += f.length;
        if (bytes > this.maxRequestBytes) {
          throw new FerryError(
            'BATCH_TOO_LARGE',
            `request is ${bytes} bytes; the limit is ${this.maxRequestBytes}`,
          );
        }
        const decoded = splitMessages(args['messages'], req.payload, requestId, true);
        if (decoded.length > this.maxBatchMessages) {
          throw new FerryError(
            'BATCH_TOO_LARGE',
            `${decoded.length} messages in one request; the limit is ${this.maxBatchMessages}`,
          );
        }
        const messages: NewMessage[] = decoded.map((d) => ({ ...d.spec, frames: d.frames }));
        this.answer(peer, requestId, async () => {
          const out = await s.send(queue, messages, { requestKey });
          const reply: Json = { ids: out.ids };
          if (out.replayed) reply['replayed'] = true;
          else if (out.duplicates.length > 0) reply['duplicates'] = out.duplicates;
          return reply;
        });
        return;
      }
      case 'SEND_MULTICAST': {
        const queues = args['queues'];
        if (!Array.isArray(queues) || !queues.every((q) => typeof q === 'string')) {
          throw new FerryError('BAD_ARGUMENTS', 'queues must be an array of queue names');
        }
        if (req.payload.length === 0) {
          throw new FerryError('BAD_FRAME', 'SEND_MULTICAST carries one message as payload frames');
        }
        let bytes = 0;
        for (const f of req.payload) bytes += f.length;
        if (bytes > this.maxRequestBytes) {
          throw new FerryError('BATCH_TOO_LARGE', `request is ${bytes} bytes`);
        }
        const headers = args['headers'];
        if (headers !== undefined && (typeof headers !== 'object' || headers === null)) {
          throw new FerryError('BAD_ARGUMENTS', 'headers must be an object of strings');
        }
        const message: NewMessage = {
          frames: req.payload,
          headers: headers as Record<string, string> | undefined,
          priority: optInt(args, 'priority'),
          ttlMs: optNumber(args, 'ttlMs'),
        };
        const wait = optBool(args, 'wait') ?? false;
        const timeoutMs = optNumber(args, 'timeoutMs');
        this.answer(peer, requestId, async () => ({
          ...(await s.multicast(queues as string[], message, { waitForAcks: wait, timeoutMs })),
        }));
        return;
      }
      case 'CONSUME': {
        const queue = reqString(args, 'queue');
        const tag = s.consume(queue, {
          tag: optString(args, 'consumer'),
          prefetch: optInt(args, 'prefetch'),
          ackTimeoutMs: optInt(args, 'ackTimeoutMs'),
        });
        this.ok(peer, requestId, { consumer: tag });
        return;
      }
      case 'CANCEL':
        s.cancel(reqString(args, 'consumer'));
        this.ok(peer, requestId);
        return;
      case 'ACK': {
        const ids = reqIds(args);
        this.answer(peer, requestId, async () => settled(ids, await s.ack(ids)));
        return;
      }
      case 'NACK': {
        const ids = reqIds(args);
        const delayMs = optNumber(args, 'delayMs');
        const dead = optBool(args, 'dead');
        const requeue = optBool(args, 'requeue');
        this.answer(peer, requestId, async () =>
          settled(ids, await s.nack(ids, { delayMs, dead, requeue })),
        );
        return;
      }
      case 'EXTEND': {
        const ids = reqIds(args);
        const ms = optNumber(args, 'ms');
        if (ms === undefined) throw new FerryError('BAD_ARGUMENTS', 'EXTEND needs ms');
        this.ok(peer, requestId, settled(ids, s.extend(ids, ms)));
        return;
      }
      case 'STATS': {
        const queue = optString(args, 'queue');
        this.answer(peer, requestId, async () => {
          if (this.statsSource) return (await this.statsSource.snapshot(queue)) as unknown as Json;
          const broker: Json = { ...this.broker.stats(), connections: this.peers.size };
          const queues =
            queue === undefined
              ? await this.broker.allQueueStats()
              : [await this.broker.queueStats(queue)];
          return { broker, queues };
        });
        return;
      }
      case 'QUEUES':
        this.ok(peer, requestId, { queues: this.broker.listQueues() });
        return;
      case 'PEEK':
      case 'DLQ_LIST': {
        const queue = reqString(args, 'queue');
        let state = optString(args, 'state') as MessageState | undefined;
        if (state !== undefined && !MESSAGE_STATES.includes(state)) {
          throw new FerryError(
            'BAD_ARGUMENTS',
            `state must be one of ${MESSAGE_STATES.join(', ')}`,
          );
        }
        if (req.command === 'DLQ_LIST') state = 'dead';
        const limit = optInt(args, 'limit');
        const afterId = optString(args, 'afterId');
        void this.broker.peek(queue, { state, limit, afterId }).then(
          (msgs) => {
            const { specs, payload } = joinMessages(msgs, (m) => {
              const d: Json = {
                id: m.id,
                state: m.state,
                attempts: m.attempts,
                priority: m.priority,
                enqueuedAt: m.enqueuedAt,
                notBefore: m.notBefore,
              };
              if (m.headers) d['headers'] = m.headers;
              if (m.expiresAt !== null) d['expiresAt'] = m.expiresAt;
              if (m.dedupKey !== null) d['dedupKey'] = m.dedupKey;
              if (m.deadReason !== null) d['deadReason'] = m.deadReason;
              return d;
            });
            this.ok(peer, requestId, { messages: specs }, payload);
          },
          (err: unknown) => this.replyError(peer.id, requestId, toFerryError(err)),
        );
        return;
      }
      case 'PURGE': {
        const queue = reqString(args, 'queue');
        const dead = optBool(args, 'dead');
        this.answer(peer, requestId, async () => ({
          purged: await this.broker.purge(queue, { dead }),
        }));
        return;
      }
      case 'DLQ_REDRIVE': {
        const queue = reqString(args, 'queue');
        const ids = args['ids'] === undefined ? undefined : reqIds(args);
        const limit = optInt(args, 'limit');
        this.answer(peer, requestId, async () => ({
          redriven: await this.broker.redrive(queue, { ids, limit }),
        }));
        return;
      }
      case 'HELLO':
        return;
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
