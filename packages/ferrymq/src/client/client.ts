/**
 * The Ferry TypeScript SDK.
 *
 *   const ferry = await connect('tcp://127.0.0.1:7400');
 *   await ferry.send('emails', JSON.stringify({ to: 'a@example.com' }));
 *   for await (const msg of ferry.consume('emails')) { ...; await msg.ack(); }
 *
 * Sends made in the same tick go out as one request; acks too. Every send request carries an
 * idempotency key, so when the connection drops or the broker restarts the SDK sends again what
 * was not confirmed and the broker stores it once. Consumers are resumed after a reconnect.
 */
import { randomBytes } from 'node:crypto';
import type { Body } from '../model/body.js';
import type { JobInfo, JobStatus, ServiceInfo, WorkerInfo } from '../model/jobs.js';
import type { QueuePolicyChanges } from '../model/queues.js';
import type { FerryStats } from '../model/stats.js';
import type { RolloutOutcome, TopicStatus } from '../model/topics.js';
import type { Command, Json, Reply } from '../protocol/codec.js';
import {
  AdminApi,
  type DeleteQueueOutcome,
  type PeekedMessage,
  type QueuePolicyInfo,
} from './admin-api.js';
import {
  checkEndpoints,
  DEFAULT_ENDPOINT,
  resolveConnectOptions,
  type ConnectOptions,
} from './connect-options.js';
import { Connection } from './connection.js';
import { JobApi } from './job-api.js';
import type {
  CallOptions,
  JobHandle,
  JobHandler,
  JobOptions,
  SubmitOptions,
  Worker,
  WorkerOptions,
} from './job-client.js';
import {
  DEFAULT_ACK_FLUSH_AT,
  DEFAULT_CLIENT_BATCH,
  QueueApi,
  type ConsumeOptions,
  type Consumer,
  type ConsumerImpl,
  type OutgoingMessage,
  type QueueMulticastOutcome,
  type SendOptions,
} from './queue-api.js';
import type { ClientCounters, ClientStatus } from './status.js';
import { TopicApi } from './topic-api.js';
import type {
  PublishOptions,
  RetainedState,
  RolloutOptions,
  SubscribeOptions,
  TopicSubscription,
} from './topic-client.js';

export { DEFAULT_ENDPOINT, type ConnectOptions } from './connect-options.js';
export type { ClientCounters, ClientStatus } from './status.js';
export type { DeleteQueueOutcome, PeekedMessage, QueuePolicyInfo } from './admin-api.js';
export {
  type ConsumeOptions,
  type Consumer,
  type Message,
  type OutgoingMessage,
  type QueueMulticastOutcome,
  type SendOptions,
} from './queue-api.js';

const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
const BYE_TIMEOUT_MS = 1_000;

/**
 * A client of one broker. It owns the {@link Connection} and delegates each concern to one
 * internal API: queues (queue-api.ts), jobs (job-api.ts), topics (topic-api.ts), admin
 * (admin-api.ts).
 */
export class FerryClient {
  /** The connection (its `close()` drops the socket without a BYE, as a crash would). */
  private readonly conn: Connection;
  private readonly clientId = randomBytes(8).toString('hex');
  private readonly queueApi: QueueApi;
  private readonly jobApi: JobApi;
  private readonly topicApi: TopicApi;
  private readonly adminApi: AdminApi;

  /** Use {@link connect}. Throws CONFIG_INVALID for a malformed endpoint or option. */
  constructor(endpoints: string | string[], options: ConnectOptions = {}) {
    const list = checkEndpoints(endpoints);
    const resolved = resolveConnectOptions(options, {
      maxBatchMessages: DEFAULT_CLIENT_BATCH,
      ackFlushAt: DEFAULT_ACK_FLUSH_AT,
    });
    this.conn = new Connection(list, resolved, {
      onDeliver: (reply) => this.queueApi.onDeliver(reply),
      onWorkerMessage: (reply) => this.jobApi.onWorkerMessage(reply),
      onTopicMessage: (reply) => this.topicApi.onTopicMessage(reply),
      onCancelled: (reply) => {
        this.queueApi.onCancelled(reply);
        this.topicApi.onCancelled(reply);
      },
      onSession: () => {
        // Consumers first, then workers, then subscriptions; requests are resent after.
        this.queueApi.resume();
        this.jobApi.resume();
        this.topicApi.resume();
      },
    });
    this.topicApi = new TopicApi(
      this.conn,
      this.clientId,
      (id) => this.queueApi.ack(id),
      resolved.maxBatchMessages,
    );
    this.queueApi = new QueueApi(
      this.conn,
      this.clientId,
      { maxBatch: resolved.maxBatchMessages, ackFlushAt: resolved.ackFlushAt },
      this.topicApi.subscriptions,
    );
    this.jobApi = new JobApi(this.conn, this.clientId);
    this.adminApi = new AdminApi(this.conn);
  }

  /** The endpoint in use now. */
  get endpoint(): string {
    return this.conn.endpoint;
  }

  /** Starts the handshake and the heartbeat; resolves once the broker answered HELLO. */
  async start(): Promise<void> {
    try {
      await this.conn.start();
    } catch (err) {
      await this.close({ timeoutMs: 0 });
      throw err;
    }
  }

  /**
   * Connection events (connected, disconnected, reconnected, lease-lost, closed), as an async
   * iterator; read it to the end or it buffers what happens.
   */
  status(): AsyncIterable<ClientStatus> {
    return this.conn.status();
  }

  /** What this client counted so far: leases lost, reconnects, requests held over a restart. */
  get counters(): ClientCounters {
    return { ...this.conn.counters };
  }

  /** One request; rejects with the FerryError of an ERROR answer (tests send raw commands). */
  private request(
    command: Command,
    args: Json,
    payload: Buffer[] = [],
    timeoutMs?: number,
  ): Promise<Reply> {
    return this.conn.request(command, args, payload, timeoutMs);
  }

  // -------------------------------------------------------------- producing

  /** Sends one message; resolves with its id once the broker has stored it. */
  send(queue: string, body: Body | Body[], options: SendOptions = {}): Promise<string> {
    return this.queueApi.send(queue, body, options);
  }

  /** Sends several messages in one request; resolves with their ids once stored. */
  sendBatch(queue: string, messages: OutgoingMessage[]): Promise<string[]> {
    return this.queueApi.sendBatch(queue, messages);
  }

  // -------------------------------------------------------------- consuming

  /** Receives messages from a queue, as an async iterator. Break out of the loop to cancel. */
  consume(queue: string, options: ConsumeOptions = {}): Consumer {
    return this.queueApi.consume(queue, options);
  }

  /** @internal */
  cancelConsumer(c: ConsumerImpl): Promise<void> {
    return this.queueApi.cancelConsumer(c);
  }

  /**
   * Sends one message to several queues, stored in one commit. With `wait`, resolves once
   * every copy has been acked (or dead-lettered), or after `timeoutMs`: see `complete`.
   */
  sendMulticast(
    queues: string[],
    body: Body | Body[],
    options: SendOptions & { wait?: boolean; timeoutMs?: number } = {},
  ): Promise<QueueMulticastOutcome> {
    return this.queueApi.sendMulticast(queues, body, options);
  }

  // -------------------------------------------------------------- jobs

  /**
   * Submits a job; resolves with its handle once the broker has stored it. It runs when a
   * worker for the service is free — now, later, or after a broker restart.
   */
  submit(service: string, params: Body | Body[], options: SubmitOptions = {}): Promise<JobHandle> {
    return this.jobApi.submit(service, params, options);
  }

  /** Runs a job and resolves with its result (the first frame). */
  async call(service: string, params: Body | Body[], options: CallOptions = {}): Promise<Buffer> {
    const frames = await this.jobApi.callFrames(service, params, options);
    return frames[0] ?? Buffer.alloc(0);
  }

  /**
   * Runs a job and resolves with every result frame. Rejects JOB_FAILED, JOB_CANCELLED,
   * JOB_EXPIRED (with the job in `err.details.job`) or TIMEOUT.
   */
  callFrames(service: string, params: Body | Body[], options: CallOptions = {}): Promise<Buffer[]> {
    return this.jobApi.callFrames(service, params, options);
  }

  /** Runs one job on several services; the handle's job ends when every service's has. */
  multicast(
    services: string[],
    params: Body | Body[],
    options: JobOptions & { durable?: boolean } = {},
  ): Promise<JobHandle> {
    return this.jobApi.multicast(services, params, options);
  }

  /** A handle on a job by id. */
  job(id: string): JobHandle {
    return this.jobApi.job(id);
  }

  /**
   * Serves a service (or several): the handler's return value is the result; a throw fails
   * the attempt. Registration happens in the background; errors surface through onError.
   */
  worker(services: string | string[], handler: JobHandler, options: WorkerOptions = {}): Worker {
    return this.jobApi.worker(services, handler, options);
  }

  /** Services the broker knows, with their workers and job counts. */
  services(): Promise<ServiceInfo[]> {
    return this.jobApi.services();
  }

  /** Workers connected to the broker, over every protocol. */
  workers(): Promise<WorkerInfo[]> {
    return this.jobApi.workerList();
  }

  /** Recent durable jobs, newest first. */
  jobs(options: { service?: string; status?: JobStatus; limit?: number } = {}): Promise<JobInfo[]> {
    return this.jobApi.jobs(options);
  }

  // -------------------------------------------------------------- topics

  /** Publishes to a topic; resolves with its sequence number once the broker has stored it. */
  publish(topic: string, body: Body | Body[], options: PublishOptions = {}): Promise<number> {
    return this.topicApi.publish(topic, body, options);
  }

  /**
   * Subscribes to a pattern (`a/b`, `a/`, `a/* /c` without the space, `a/**`), as an async
   * iterator. Live by default; `durable` (or `group`) for a stored, acked subscription;
   * `snapshot` for the retained state first. `await sub.ready` to know it is in place.
   */
  subscribe(pattern: string, options: SubscribeOptions = {}): TopicSubscription {
    return this.topicApi.subscribe(pattern, options);
  }

  /** The retained values matching a pattern, and the sequence number they reflect. */
  retained(pattern: string): Promise<RetainedState> {
    return this.topicApi.retained(pattern);
  }

  /**
   * Publishes a retained value and waits until the nodes (default: every durable subscription
   * whose pattern matches) have confirmed it, or the timeout. Never rejects for a timeout:
   * look at `complete` and `pending`.
   */
  rollout(
    topic: string,
    body: Body | Body[],
    options: RolloutOptions = {},
  ): Promise<RolloutOutcome> {
    return this.topicApi.rollout(topic, body, options);
  }

  /** Confirms that `node` holds these versions (subscriptions with a node do it on ack). */
  confirm(node: string, items: { topic: string; seq: number }[]): Promise<void> {
    return this.topicApi.confirm(node, items);
  }

  /** Per retained topic matching a pattern: its version and the version each node holds. */
  topicStatus(pattern: string): Promise<TopicStatus[]> {
    return this.topicApi.topicStatus(pattern);
  }

  /** Deletes a durable subscription and what it holds. */
  deleteSubscription(name: string): Promise<void> {
    return this.topicApi.deleteSubscription(name);
  }

  // -------------------------------------------------------------- admin

  /** One PING round trip to the broker; resolves with its duration, ms. */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.conn.request('PING', {});
    return performance.now() - started;
  }

  stats(queue?: string): Promise<FerryStats> {
    return this.adminApi.stats(queue);
  }

  queues(): Promise<string[]> {
    return this.adminApi.queues();
  }

  peek(
    queue: string,
    options: {
      limit?: number;
      state?: 'ready' | 'leased' | 'scheduled' | 'dead';
      afterId?: string;
    } = {},
  ): Promise<PeekedMessage[]> {
    return this.adminApi.browse('PEEK', { queue, ...options });
  }

  deadLetters(
    queue: string,
    options: { limit?: number; afterId?: string } = {},
  ): Promise<PeekedMessage[]> {
    return this.adminApi.browse('DLQ_LIST', { queue, ...options });
  }

  purge(queue: string, options: { dead?: boolean } = {}): Promise<number> {
    return this.adminApi.purge(queue, options);
  }

  redrive(queue: string, options: { ids?: string[]; limit?: number } = {}): Promise<number> {
    return this.adminApi.redrive(queue, options);
  }

  /**
   * Deletes a queue. Refused with QUEUE_NOT_EMPTY while it holds messages, unless `force`
   * (its messages are then lost). Its consumers end with QUEUE_DELETED.
   */
  deleteQueue(queue: string, options: { force?: boolean } = {}): Promise<DeleteQueueOutcome> {
    return this.adminApi.deleteQueue(queue, options);
  }

  /** Stops a queue's deliveries; sends are still stored. Kept across broker restarts. */
  pauseQueue(queue: string): Promise<void> {
    return this.adminApi.pauseQueue(queue);
  }

  /** Starts a paused queue's deliveries again. */
  resumeQueue(queue: string): Promise<void> {
    return this.adminApi.resumeQueue(queue);
  }

  /**
   * Changes a queue's policy at runtime (stored; wins over the config file): per key a value,
   * or null to drop the runtime value. INVALID_POLICY for an unknown key or a bad value.
   */
  setQueuePolicy(queue: string, changes: QueuePolicyChanges): Promise<QueuePolicyInfo> {
    return this.adminApi.queuePolicy(queue, { policy: changes });
  }

  /** Drops every runtime policy value of a queue: the config file's (or defaults) apply. */
  resetQueuePolicy(queue: string): Promise<QueuePolicyInfo> {
    return this.adminApi.queuePolicy(queue, { reset: true });
  }

  /** A queue's policy in force and the values set at runtime. */
  queuePolicy(queue: string): Promise<QueuePolicyInfo> {
    return this.adminApi.queuePolicy(queue, {});
  }

  // -------------------------------------------------------------- closing

  /** Drains: waits for unconfirmed sends and acks (up to timeoutMs), cancels consumers, says BYE. */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.conn.closed) return;
    const timeoutMs = options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.queueApi.flushIfScheduled();
    this.topicApi.flushAll();
    const deadline = Date.now() + timeoutMs;
    await this.conn.drain(deadline);
    await this.jobApi.closeWorkers(timeoutMs, deadline);
    this.conn.dropStreams();
    await this.topicApi.closeAll(timeoutMs);
    await this.queueApi.closeConsumers(timeoutMs);
    if (this.conn.session !== undefined && timeoutMs > 0) {
      // BYE has its own 1 s timeout; the broker releases our leases either way.
      await this.conn.rawRequest('BYE', {}, [], BYE_TIMEOUT_MS).catch(() => {});
    }
    this.conn.stop();
    this.queueApi.failQueued();
    this.conn.endStatus();
    await this.conn.close();
  }
}

/** Connects to a broker (or the first reachable of several) and completes the handshake. */
export async function connect(
  endpoints: string | string[] = DEFAULT_ENDPOINT,
  options: ConnectOptions = {},
): Promise<FerryClient> {
  const client = new FerryClient(endpoints, options);
  await client.start();
  return client;
}
