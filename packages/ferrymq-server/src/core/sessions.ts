/**
 * A client's session: the {@link Session} a dialect holds per connected peer. Each call goes
 * straight to the part of the engine that does it.
 */
import type { NewMessage } from 'ferrymq/model';
import type {
  ConsumeOptions,
  MulticastOptions,
  MulticastOutcome,
  NackOptions,
  QueueCopies,
  SendCopiesOptions,
  SendOptions,
  SendOutcome,
  Session,
  SessionSink,
  SettleResult,
} from './broker-types.js';
import type { QueueDispatch } from './queue-dispatch.js';
import type { QueueEnqueue } from './queue-enqueue.js';
import type { QueueSettle } from './queue-settle.js';
import { SessionState } from './queue-state.js';

/** The parts of the engine a session calls. */
export interface SessionParts {
  enqueue: QueueEnqueue;
  dispatch: QueueDispatch;
  settle: QueueSettle;
}

export class SessionImpl extends SessionState implements Session {
  private readonly enqueue: QueueEnqueue;
  private readonly dispatch: QueueDispatch;
  private readonly settle: QueueSettle;

  constructor(id: string, sink: SessionSink, parts: SessionParts) {
    super(id, sink);
    this.enqueue = parts.enqueue;
    this.dispatch = parts.dispatch;
    this.settle = parts.settle;
  }

  send(queue: string, messages: NewMessage[], options?: SendOptions): Promise<SendOutcome> {
    return this.enqueue.send(this, queue, messages, options);
  }
  multicast(
    queues: string[],
    message: NewMessage,
    options?: MulticastOptions,
  ): Promise<MulticastOutcome> {
    return this.enqueue.multicast(this, queues, message, options ?? {});
  }
  sendToQueues(queues: string[], message: NewMessage): Promise<string[]> {
    return this.enqueue.sendToQueues(this, queues, message);
  }
  sendCopies(copies: QueueCopies[], options?: SendCopiesOptions): Promise<string[][]> {
    return this.enqueue.sendCopies(this, copies, options);
  }
  consume(queue: string, options?: ConsumeOptions): string {
    return this.dispatch.consume(this, queue, options ?? {});
  }
  cancel(tag: string): void {
    this.dispatch.cancel(this, tag);
  }
  ack(ids: string[]): Promise<SettleResult[]> {
    return this.settle.ack(this, ids);
  }
  nack(ids: string[], options?: NackOptions): Promise<SettleResult[]> {
    return this.settle.nack(this, ids, options ?? {});
  }
  extend(ids: string[], ms: number): SettleResult[] {
    return this.settle.extend(this, ids, ms);
  }
  close(): void {
    this.settle.closeSession(this);
  }
}
