/**
 * The broker core: queues, sessions, consumers with credit, leases with ack timeouts,
 * redelivery, retries with backoff, dead letters, delays, TTLs, dedup and limits.
 *
 * Pure logic over the {@link Storage} contract and an injected {@link Clock}: no sockets, no
 * SQL. Memory is bounded by what is in flight (leases ≤ the sum of consumer prefetch), never by
 * queue depth: backlogs stay in the store and are leased in batches as credit allows.
 *
 * {@link Broker} is the facade: it builds the shared {@link BrokerState} and the parts that
 * work on it (queue-enqueue: sending; queue-dispatch: consumers and leasing; queue-settle:
 * acks, nacks and redelivery; queue-maintenance: timers and sweeps; queue-admin: stats and
 * operations), and re-exports the public types of broker-types.ts and checks.ts.
 */
import { randomBytes } from 'node:crypto';
import {
  type BrokerStats,
  FerryError,
  type MessageState,
  type NewMessage,
  type QueuePolicy,
  type QueuePolicyChanges,
  type QueueStats,
  type StoredMessage,
} from 'ferrymq/model';
import type { RecoveredJob, RemoteChanges, Storage } from '../storage/types.js';
import { BrokerState } from './broker-state.js';
import {
  DUE_MIN_INTERVAL_MS,
  type BrokerLimits,
  type BrokerOptions,
  type ConsumeOptions,
  type DeleteQueueOptions,
  type MulticastOptions,
  type MulticastOutcome,
  type NackOptions,
  type PeekOptions,
  type QueueCopies,
  type QueuePolicyInfo,
  type SendOptions,
  type SendOutcome,
  type Session,
  type SessionInfo,
  type SessionSink,
  type SettleResult,
} from './broker-types.js';
import { QueueAdmin } from './queue-admin.js';
import { QueueLifecycle } from './queue-lifecycle.js';
import { QueueDispatch } from './queue-dispatch.js';
import { QueueEnqueue } from './queue-enqueue.js';
import { QueueMaintenance } from './queue-maintenance.js';
import { QueueSettle } from './queue-settle.js';
import type { SessionState } from './queue-state.js';
import { DueTimer, Scheduler } from './scheduler.js';
import { SessionImpl, type SessionParts } from './sessions.js';

export {
  DEFAULT_FLOW_BACKLOG_FACTOR,
  DEFAULT_CONSUMER_MAX_BYTES,
  DEFAULT_MAX_INFLIGHT_BYTES,
  DEFAULT_MAX_PREFETCH,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_QUEUES,
  type BrokerLimits,
  type BrokerOptions,
  type Delivery,
  type SessionSink,
  type ConsumeOptions,
  type SendOptions,
  type SendOutcome,
  type MulticastOptions,
  type MulticastOutcome,
  type SettleResult,
  type NackOptions,
  type PeekOptions,
  type DeleteQueueOptions,
  type QueuePolicyInfo,
  type Session,
  type SessionInfo,
} from './broker-types.js';
export { DEDUP_KEY_MAX_LENGTH, checkHeaders } from './checks.js';

/** Random bytes in a session id's run tag (8 hex characters). */
const RUN_TAG_BYTES = 4;

export class Broker {
  readonly limits: BrokerLimits;
  /**
   * The previous run's running jobs the store held for the recovery grace, and until when:
   * for the job server, which opens on the same store after the broker (JobServer.open).
   */
  recoveredJobs: { jobs: readonly RecoveredJob[]; until: number } | undefined;
  private readonly state: BrokerState;
  private readonly storage: Storage;
  private readonly scheduler: Scheduler;
  private readonly due: DueTimer;
  private readonly enqueue: QueueEnqueue;
  private readonly dispatch: QueueDispatch;
  private readonly settle: QueueSettle;
  private readonly maintenance: QueueMaintenance;
  private readonly admin: QueueAdmin;
  private readonly lifecycle: QueueLifecycle;
  private readonly sessionParts: SessionParts;
  private nextSessionId = 1;
  /**
   * Tags this run's session ids, so that a session id never repeats across restarts: a client
   * can tell its old session from a new run's (the SDK does, for settles of lost leases).
   */
  private readonly runTag = randomBytes(RUN_TAG_BYTES).toString('hex');

  private constructor(options: BrokerOptions) {
    const state = new BrokerState(options);
    this.state = state;
    this.limits = state.limits;
    this.storage = state.storage;
    this.scheduler = new Scheduler(state.clock);
    this.due = new DueTimer(state.clock, DUE_MIN_INTERVAL_MS, () => this.maintenance.promoteDue());
    this.dispatch = new QueueDispatch(state);
    this.settle = new QueueSettle(state, this.dispatch, this.due);
    this.enqueue = new QueueEnqueue(state, this.dispatch, this.due);
    this.maintenance = new QueueMaintenance(state, this.dispatch, this.settle, this.due);
    this.admin = new QueueAdmin(state, this.dispatch);
    this.lifecycle = new QueueLifecycle(state, this.dispatch);
    this.sessionParts = { enqueue: this.enqueue, dispatch: this.dispatch, settle: this.settle };
    state.pumpQueues = (queues) => {
      for (const q of queues) this.dispatch.pump(q);
    };
  }

  /** Opens the store, recovers counters, starts the timers. */
  static async open(options: BrokerOptions): Promise<Broker> {
    const broker = new Broker(options);
    const recovery = await broker.storage.open();
    for (const [name, counts] of recovery.queues) {
      broker.state.recoverQueue(name, counts, recovery.settings.get(name));
    }
    if (recovery.releasedLeases > 0) {
      broker.state.log.info('released leases of the previous run', {
        count: recovery.releasedLeases,
      });
    }
    if (recovery.recoveryUntil !== null) {
      const recovered = broker.state.recovered;
      for (const r of recovery.recoveredLeases) recovered.set(r.id, r);
      // Past the grace the rows are ready again; their old acks answer LEASE_LOST.
      broker.state.clock.setTimer(
        () => recovered.clear(),
        recovery.recoveryUntil - broker.state.clock.now(),
      );
    }
    if (recovery.recoveryUntil !== null && (recovery.recoveredJobs?.length ?? 0) > 0) {
      broker.recoveredJobs = { jobs: recovery.recoveredJobs!, until: recovery.recoveryUntil };
    }
    if (recovery.nextDueAt !== null) broker.due.schedule(recovery.nextDueAt);
    broker.maintenance.start(broker.scheduler);
    return broker;
  }

  /**
   * Other brokers sharing the store made messages ready in these queues: consumers here that
   * have credit lease from the store now rather than at the next probe.
   */
  onRemote(changes: RemoteChanges): void {
    for (const name of changes.queues) {
      const q = this.state.queues.get(name);
      if (!q || q.consumers.length === 0) continue;
      q.probe = true;
      this.dispatch.pump(q);
    }
  }

  /** The policy in force for a queue (runtime values included), or what a new one would get. */
  policyOf(queue: string): QueuePolicy {
    return this.state.queues.get(queue)?.policy ?? this.state.policyOf(queue);
  }

  openSession(sink: SessionSink): Session {
    if (this.state.closing) throw new FerryError('SHUTTING_DOWN');
    const s = new SessionImpl(`s${this.nextSessionId++}-${this.runTag}`, sink, this.sessionParts);
    this.state.sessions.add(s);
    return s;
  }

  // ------------------------------------------------- the session calls, by session

  send(
    session: SessionState,
    queueName: string,
    messages: NewMessage[],
    options: SendOptions = {},
  ): Promise<SendOutcome> {
    return this.enqueue.send(session, queueName, messages, options);
  }

  multicast(
    session: SessionState,
    queues: string[],
    message: NewMessage,
    options: MulticastOptions,
  ): Promise<MulticastOutcome> {
    return this.enqueue.multicast(session, queues, message, options);
  }

  /**
   * Throws what sendToQueues would refuse for (bad names, limits, message checks) without
   * storing anything: a caller that must not write anything else on refusal checks first.
   */
  checkSendToQueues(queueNames: string[], message: NewMessage): void {
    this.enqueue.checkSendToQueues(queueNames, message);
  }

  /** checkSendToQueues for several messages at once (limits counted over all of them). */
  checkCopies(copies: QueueCopies[]): void {
    this.enqueue.checkCopies(copies);
  }

  /** One message into several queues in one storage call: all copies or none. */
  sendToQueues(
    session: SessionState,
    queueNames: string[],
    message: NewMessage,
  ): Promise<string[]> {
    return this.enqueue.sendToQueues(session, queueNames, message);
  }

  consume(session: SessionState, queueName: string, options: ConsumeOptions): string {
    return this.dispatch.consume(session, queueName, options);
  }

  /** Stops deliveries to a consumer. Its leases stay valid until acked or the session ends. */
  cancel(session: SessionState, tag: string): void {
    this.dispatch.cancel(session, tag);
  }

  ack(session: SessionState, ids: string[]): Promise<SettleResult[]> {
    return this.settle.ack(session, ids);
  }

  nack(session: SessionState, ids: string[], options: NackOptions): Promise<SettleResult[]> {
    return this.settle.nack(session, ids, options);
  }

  extend(session: SessionState, ids: string[], ms: number): SettleResult[] {
    return this.settle.extend(session, ids, ms);
  }

  closeSession(session: SessionState): void {
    this.settle.closeSession(session);
  }

  // ------------------------------------------------- admin

  listQueues(): string[] {
    return this.admin.listQueues();
  }

  queueStats(name: string): Promise<QueueStats> {
    return this.admin.queueStats(name);
  }

  allQueueStats(): Promise<QueueStats[]> {
    return this.admin.allQueueStats();
  }

  stats(): BrokerStats {
    return this.admin.stats();
  }

  peek(name: string, options: PeekOptions = {}): Promise<StoredMessage[]> {
    return this.admin.peek(name, options);
  }

  /** Open sessions with their consumers and prefetch. */
  sessions(): SessionInfo[] {
    return this.admin.sessions();
  }

  /** One stored message by id (MESSAGE_NOT_FOUND if none). */
  message(name: string, id: string): Promise<StoredMessage> {
    return this.admin.message(name, id);
  }

  /** Deletes one message that is not leased; the state it was in. */
  deleteMessage(name: string, id: string): Promise<MessageState> {
    return this.admin.deleteMessage(name, id);
  }

  /** Deletes a queue's ready and scheduled messages (or its dead letters). Leased ones stay. */
  purge(name: string, options: { dead?: boolean } = {}): Promise<number> {
    return this.admin.purge(name, options);
  }

  /** Moves dead letters back to ready, attempts reset. */
  redrive(name: string, options: { ids?: string[]; limit?: number } = {}): Promise<number> {
    return this.admin.redrive(name, options);
  }

  /**
   * Deletes a queue: QUEUE_NOT_EMPTY while it holds messages unless `force` (they are lost).
   * Its consumers are cancelled with QUEUE_DELETED. See docs/semantics.md.
   */
  deleteQueue(name: string, options: DeleteQueueOptions = {}): Promise<{ messages: number }> {
    return this.lifecycle.deleteQueue(name, options);
  }

  /** Stops a queue's deliveries (sends are still stored); kept across restarts. */
  pauseQueue(name: string): Promise<void> {
    return this.lifecycle.pause(name);
  }

  /** Starts a paused queue's deliveries again. */
  resumeQueue(name: string): Promise<void> {
    return this.lifecycle.resume(name);
  }

  /** Changes a queue's runtime policy (stored, applied at once); see QueueLifecycle.setPolicy. */
  setQueuePolicy(
    name: string,
    changes: QueuePolicyChanges = {},
    options: { reset?: boolean | undefined } = {},
  ): Promise<QueuePolicyInfo> {
    return this.lifecycle.setPolicy(name, changes, options);
  }

  /** A queue's policy in force and its runtime values. */
  queuePolicy(name: string): QueuePolicyInfo {
    return this.lifecycle.policyInfo(name);
  }

  // ------------------------------------------------- shutdown

  get isClosing(): boolean {
    return this.state.closing;
  }

  /** Refuses new work, waits for store calls in flight, closes the store. */
  async close(): Promise<void> {
    if (this.state.closing) return;
    this.state.closing = true;
    this.due.stop();
    this.scheduler.stop();
    // Held confirms are of stored, durable sends: answer them before the sessions go.
    for (const q of this.state.queues.values()) q.held.releaseAll();
    for (const s of [...this.state.sessions]) this.settle.closeSession(s);
    if (this.state.calls.pending > 0) await this.state.calls.idle();
    await this.storage.close();
  }
}
