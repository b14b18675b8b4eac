/**
 * The queue commands of FERRY01 (docs/protocol.md) mapped onto the broker: producing (SEND,
 * SEND_MULTICAST), consuming (CONSUME, CANCEL, and the DELIVER messages), settling (ACK, NACK,
 * EXTEND) and administration (STATS, QUEUES, PEEK, DLQ_LIST, PURGE, DLQ_REDRIVE). Sessions
 * themselves (HELLO, PING, BYE, liveness) are the dialect's (ferry-dialect.ts).
 */
import type { Broker, Delivery, MulticastOptions, Session } from '../../core/broker.js';
import type { StatsSource } from '../../core/stats.js';
import {
  FerryError,
  MESSAGE_STATES,
  type MessageState,
  type NewMessage,
  toFerryError,
} from 'ferrymq/model';
import {
  encodeReply,
  joinMessages,
  splitMessages,
  type Json,
  type Request,
} from 'ferrymq/protocol';
import { optBool, optInt, optNumber, optString, reqIds, reqString, settled } from './args.js';
import { CommandGroup, type PeerSend } from './command-group.js';

export interface FerryQueueCommandsOptions {
  maxBatchMessages: number;
  maxRequestBytes: number;
  /** Where STATS reads its numbers; without it, the broker's own view. */
  stats: StatsSource | undefined;
  /** Sessions open now (STATS without a stats source reports them). */
  connections: () => number;
  /** Answers a request with an error (the dialect counts and logs them). */
  replyError: (peer: Buffer, requestId: Buffer, err: FerryError) => void;
}

export class FerryQueueCommands extends CommandGroup {
  private readonly maxBatchMessages: number;
  private readonly maxRequestBytes: number;
  private readonly statsSource: StatsSource | undefined;
  private readonly connections: () => number;
  private readonly replyError: (peer: Buffer, requestId: Buffer, err: FerryError) => void;

  constructor(
    private readonly broker: Broker,
    sendTo: PeerSend,
    options: FerryQueueCommandsOptions,
  ) {
    super(sendTo);
    this.maxBatchMessages = options.maxBatchMessages;
    this.maxRequestBytes = options.maxRequestBytes;
    this.statsSource = options.stats;
    this.connections = options.connections;
    this.replyError = options.replyError;
  }

  /** Errors of the queue commands go through the dialect, which counts them. */
  protected override fail(peer: Buffer, requestId: Buffer, err: unknown): void {
    this.replyError(peer, requestId, toFerryError(err));
  }

  /** Sends a consumer its messages (the session's deliver callback). */
  deliver(peerId: Buffer, tag: string, messages: Delivery[]): void {
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

  /** Handles one queue command; throws FerryError for bad arguments (answered by the caller). */
  handle(peerId: Buffer, s: Session, req: Request): void {
    const { args, requestId } = req;
    switch (req.command) {
      case 'SEND':
        this.send(peerId, s, req);
        return;
      case 'SEND_MULTICAST':
        this.sendMulticast(peerId, s, req);
        return;
      case 'CONSUME': {
        const queue = reqString(args, 'queue');
        const tag = s.consume(queue, {
          tag: optString(args, 'consumer'),
          prefetch: optInt(args, 'prefetch'),
          ackTimeoutMs: optInt(args, 'ackTimeoutMs'),
        });
        this.ok(peerId, requestId, { consumer: tag });
        return;
      }
      case 'CANCEL':
        s.cancel(reqString(args, 'consumer'));
        this.ok(peerId, requestId);
        return;
      case 'ACK': {
        const ids = reqIds(args);
        this.answer(peerId, requestId, this.ack(s, ids));
        return;
      }
      case 'NACK': {
        const ids = reqIds(args);
        const delayMs = optNumber(args, 'delayMs');
        const dead = optBool(args, 'dead');
        const requeue = optBool(args, 'requeue');
        this.answer(peerId, requestId, this.nack(s, ids, { delayMs, dead, requeue }));
        return;
      }
      case 'EXTEND': {
        const ids = reqIds(args);
        const ms = optNumber(args, 'ms');
        if (ms === undefined) throw new FerryError('BAD_ARGUMENTS', 'EXTEND needs ms');
        this.ok(peerId, requestId, settled(ids, s.extend(ids, ms)));
        return;
      }
      case 'STATS':
        this.answer(peerId, requestId, this.stats(optString(args, 'queue')));
        return;
      case 'QUEUES':
        this.ok(peerId, requestId, { queues: this.broker.listQueues() });
        return;
      case 'PEEK':
      case 'DLQ_LIST':
        this.peek(peerId, req);
        return;
      case 'PURGE': {
        const queue = reqString(args, 'queue');
        const dead = optBool(args, 'dead');
        this.answer(peerId, requestId, this.purge(queue, dead));
        return;
      }
      case 'DLQ_REDRIVE': {
        const queue = reqString(args, 'queue');
        const ids = args['ids'] === undefined ? undefined : reqIds(args);
        const limit = optInt(args, 'limit');
        this.answer(peerId, requestId, this.redrive(queue, ids, limit));
        return;
      }
    }
  }

  private send(peerId: Buffer, s: Session, req: Request): void {
    const { args, requestId } = req;
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
    this.answer(peerId, requestId, this.store(s, queue, messages, requestKey));
  }

  private async store(
    s: Session,
    queue: string,
    messages: NewMessage[],
    requestKey: string | undefined,
  ): Promise<Json> {
    const out = await s.send(queue, messages, { requestKey });
    const reply: Json = { ids: out.ids };
    if (out.replayed) reply['replayed'] = true;
    else if (out.duplicates.length > 0) reply['duplicates'] = out.duplicates;
    return reply;
  }

  private sendMulticast(peerId: Buffer, s: Session, req: Request): void {
    const { args, requestId } = req;
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
    const options: MulticastOptions = {
      waitForAcks: optBool(args, 'wait') ?? false,
      timeoutMs: optNumber(args, 'timeoutMs'),
      requestKey: optString(args, 'requestKey'),
    };
    this.answer(peerId, requestId, this.multicast(s, queues, message, options));
  }

  private async multicast(
    s: Session,
    queues: string[],
    message: NewMessage,
    options: MulticastOptions,
  ): Promise<Json> {
    return { ...(await s.multicast(queues, message, options)) };
  }

  private async ack(s: Session, ids: string[]): Promise<Json> {
    return settled(ids, await s.ack(ids));
  }

  private async nack(
    s: Session,
    ids: string[],
    options: {
      delayMs: number | undefined;
      dead: boolean | undefined;
      requeue: boolean | undefined;
    },
  ): Promise<Json> {
    return settled(ids, await s.nack(ids, options));
  }

  private async stats(queue: string | undefined): Promise<Json> {
    if (this.statsSource) return (await this.statsSource.snapshot(queue)) as unknown as Json;
    const broker: Json = { ...this.broker.stats(), connections: this.connections() };
    const queues =
      queue === undefined
        ? await this.broker.allQueueStats()
        : [await this.broker.queueStats(queue)];
    return { broker, queues };
  }

  private peek(peerId: Buffer, req: Request): void {
    const { args, requestId } = req;
    const queue = reqString(args, 'queue');
    let state = optString(args, 'state') as MessageState | undefined;
    if (state !== undefined && !MESSAGE_STATES.includes(state)) {
      throw new FerryError('BAD_ARGUMENTS', `state must be one of ${MESSAGE_STATES.join(', ')}`);
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
        this.ok(peerId, requestId, { messages: specs }, payload);
      },
      (err: unknown) => this.fail(peerId, requestId, err),
    );
  }

  private async purge(queue: string, dead: boolean | undefined): Promise<Json> {
    return { purged: await this.broker.purge(queue, { dead }) };
  }

  private async redrive(
    queue: string,
    ids: string[] | undefined,
    limit: number | undefined,
  ): Promise<Json> {
    return { redriven: await this.broker.redrive(queue, { ids, limit }) };
  }
}
