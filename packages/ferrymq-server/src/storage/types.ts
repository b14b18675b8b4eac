/**
 * The storage contract, in queue terms. No connection, statement or transaction type appears
 * here: a backend owns its connections and decides how calls become transactions.
 *
 * Group commit is part of the contract: every call made during one event-loop turn is applied
 * in call order within one transaction. A failing call rejects alone; the others in the same
 * turn still commit. A failed commit rejects every call of the turn.
 *
 * Two levels of done. The hot-path calls — enqueue, lease, ack, release, the scheduled and
 * expiry sweeps, reads, and the job calls insert, lease, finish, requeue, progress and
 * partials — resolve at their commit: applied and visible, surviving a crash of the process,
 * not yet necessarily a power loss. The core hands messages and jobs out at that point and
 * calls {@link Storage.durable} before it confirms anything to a producer or caller. Every
 * other call (administration, settings, cancellations, pub/sub) resolves only once its commit
 * is durable under the backend's sync policy.
 *
 * Longer than most files on purpose: the whole contract in one place, one reading.
 */
import type {
  Headers,
  JobError,
  JobStatus,
  MessageState,
  QueueCounts,
  QueueSettings,
  StorageMetrics,
  StoredMessage,
} from 'ferrymq/model';

/** How hard a commit is pushed to disk before it counts as done. */
export type SyncPolicy =
  { mode: 'always' } | { mode: 'batch'; intervalMs: number } | { mode: 'off' };

export interface EnqueueItem {
  queue: string;
  frames: Buffer[];
  headers: Headers | undefined;
  priority: number;
  enqueuedAt: number;
  /** When not in the future, the message is ready at once; otherwise scheduled. */
  notBefore: number;
  expiresAt: number | null;
  dedupKey: string | null;
  /** Until when the dedup key holds (ignored without a key). */
  dedupUntil: number;
  /**
   * Store it already leased (attempt 1) instead of ready: the core hands it straight to a
   * waiting consumer after the commit. Ignored for scheduled messages.
   */
  leased?: boolean | undefined;
}

export interface EnqueueRequestKey {
  /** Producer-chosen idempotency key of the whole request. */
  key: string;
  /** Until when a replay of the same key returns the first outcome. */
  until: number;
}

export interface EnqueueOutcome {
  /** Message ids, one per item, in order (the first message's id for a duplicate). */
  ids: string[];
  /** Per item: true when its dedup key matched a message stored earlier (nothing stored). */
  duplicate: boolean[];
  /** The whole request was a replay of an earlier request key: nothing was stored. */
  replayed: boolean;
}

/** A message leased to a consumer: state leased, attempts already incremented. */
export interface LeasedMessage {
  id: string;
  frames: Buffer[];
  headers: Headers | undefined;
  priority: number;
  attempts: number;
  enqueuedAt: number;
  size: number;
}

export interface LeaseOutcome {
  messages: LeasedMessage[];
  /** Messages found past their TTL while leasing; removed. */
  expired: { count: number; bytes: number };
}

/** Identifies one lease: the message and the delivery attempt it was leased at. */
export interface LeaseRef {
  id: string;
  attempts: number;
}

export interface ReleaseItem extends LeaseRef {
  /** Back to ready (notBefore <= now), scheduled (later), or dead with a reason. */
  notBefore: number;
  deadReason?: string | undefined;
  /** Undo the attempt count of this lease (the message never reached a consumer). */
  uncount?: boolean | undefined;
}

export interface QueueDelta {
  queue: string;
  count: number;
  bytes: number;
}

export interface ExpiryDelta {
  queue: string;
  ready: number;
  scheduled: number;
  bytes: number;
}

export interface BrowseOptions {
  state?: MessageState | undefined;
  limit: number;
  /** Only ids greater than this (for paging). */
  afterId?: string | undefined;
}

export interface RedriveOptions {
  ids?: string[] | undefined;
  limit?: number | undefined;
}

export interface PurgeOutcome {
  ready: number;
  scheduled: number;
  dead: number;
  /** Bytes of the live (ready and scheduled) messages removed. */
  bytes: number;
}

/** A lease of the previous run, held back for the recovery grace. */
export interface RecoveredLease {
  id: string;
  queue: string;
  /** The attempt the lease was at (its ack's attempt). */
  attempts: number;
  size: number;
}

/** A job running in the previous run, left running for the recovery grace. */
export interface RecoveredJob {
  id: string;
  service: string;
  /** The attempt it was running at (what a report of its worker ends). */
  attempts: number;
}

export interface StorageRecovery {
  /** Counters of every queue the store knows, after releasing leases of the previous run. */
  queues: Map<string, QueueCounts>;
  /** Leases of the previous run that were released (their consumers are gone). */
  releasedLeases: number;
  /**
   * With a recovery grace: those leases, held back (scheduled) until `recoveryUntil`, so that
   * acks their consumers re-send after reconnecting settle them (ackRecovered). Empty without.
   */
  recoveredLeases: RecoveredLease[];
  /** Set when anything is held back for the grace (leases or jobs); null otherwise. */
  recoveryUntil: number | null;
  /**
   * With a recovery grace: the previous run's running jobs, left `running` (not counted in
   * `requeuedJobs`), so that a COMPLETE or FAIL their worker re-sends after reconnecting ends
   * them (`JobStorage.finish` / `requeue` at that attempt); the core requeues the others at
   * `recoveryUntil`. Absent or empty without a grace: they were put back to queued.
   */
  recoveredJobs?: RecoveredJob[] | undefined;
  /** Earliest time a scheduled message becomes due, if any. */
  nextDueAt: number | null;
  /** Running jobs of the previous run put back to queued (their workers are gone). */
  requeuedJobs: number;
  /** Settings an operator made at runtime (pause, policy), by queue; absent = none. */
  settings: Map<string, QueueSettings>;
}

/** What deleting a queue removed. */
export interface DeleteQueueOutcome {
  /** The queue was known to the store. */
  existed: boolean;
  /** Messages removed, whatever their state. */
  messages: number;
}

/**
 * What other brokers sharing the store changed, after their commit (a shared store only).
 * A hint, not a log: the core reads the store again for whatever it names.
 */
export interface RemoteChanges {
  /** Queues where messages became ready. */
  queues: string[];
  /** Services where jobs were queued. */
  services: string[];
  /** Jobs whose state, progress or partial results changed. */
  jobs: string[];
  /** Publishes were committed (read them with {@link PubSubStorage.published}). */
  publishes?: boolean | undefined;
  /** Durable subscriptions were created or deleted (read them with {@link PubSubStorage.load}). */
  subscriptions?: boolean | undefined;
}

/** A broker sharing the store, as its heartbeat row says. */
export interface StoreNode {
  id: string;
  startedAt: number;
  /** Its latest heartbeat, by the database's clock. */
  heartbeatAt: number;
  /** This broker. */
  self: boolean;
}

export interface Storage {
  /**
   * True when other brokers may share this store (PostgreSQL). The core then takes its
   * counters from the store, listens to {@link Storage.watch}, and stores calls that no local
   * worker can run so that a worker on another broker can.
   */
  readonly shared: boolean;
  /**
   * Calls `listener` with what other brokers changed, batched, once they committed it. Never
   * called by a store that is not shared. One listener; a second replaces the first.
   */
  watch(listener: (changes: RemoteChanges) => void): void;
  /** The brokers sharing the store, this one first (only this one when not shared). */
  nodes(): Promise<StoreNode[]>;

  /** Opens the store, applies pending migrations, releases leases left by a previous run. */
  open(): Promise<StorageRecovery>;
  /** Commits what is pending, syncs, and closes. */
  close(): Promise<void>;

  /** Ensures a queue exists (created on first use). */
  ensureQueue(queue: string): Promise<void>;
  /** Stores a batch of messages for one or more queues, honouring dedup keys and request key. */
  enqueue(items: EnqueueItem[], request?: EnqueueRequestKey): Promise<EnqueueOutcome>;
  /** Leases up to `max` ready messages of a queue, highest priority then oldest first. */
  lease(queue: string, max: number, now: number): Promise<LeaseOutcome>;
  /** Deletes leased messages; per ref, whether it was still leased at that attempt. */
  ack(refs: LeaseRef[]): Promise<boolean[]>;
  /**
   * Deletes leases of the previous run still held back by the recovery grace (an ack re-sent
   * by a consumer that reconnected); per ref, whether it was still held at that attempt.
   */
  ackRecovered(refs: LeaseRef[]): Promise<boolean[]>;
  /** Returns leased messages to ready/scheduled, or moves them to the dead letters. */
  release(items: ReleaseItem[], now: number): Promise<boolean[]>;
  /** Moves scheduled messages whose time has come to ready. */
  promoteDue(now: number): Promise<QueueDelta[]>;
  /** Earliest not-before among scheduled messages. */
  nextDueAt(): Promise<number | null>;
  /** Removes messages past their TTL (ready or scheduled) and expired dedup keys. */
  sweepExpired(now: number, max: number): Promise<ExpiryDelta[]>;

  /** Counters per queue, read from the store. */
  counts(): Promise<Map<string, QueueCounts>>;
  /** Messages of a queue in id order, without changing them. */
  browse(queue: string, options: BrowseOptions): Promise<StoredMessage[]>;
  /** Enqueue time of the oldest live message of a queue. */
  oldestEnqueuedAt(queue: string): Promise<number | null>;
  /** One message of the queue by id, or null. */
  message(queue: string, id: string): Promise<StoredMessage | null>;
  /** Deletes one message that is not leased: its state and size before, or null if none such. */
  deleteMessage(queue: string, id: string): Promise<{ state: MessageState; size: number } | null>;
  /** Deletes the ready and scheduled messages (or, with state 'dead', the dead letters). */
  purge(queue: string, state: 'ready' | 'dead'): Promise<PurgeOutcome>;
  /** Moves dead letters back to ready with attempts reset. */
  redrive(queue: string, options: RedriveOptions): Promise<{ count: number; bytes: number }>;
  /**
   * Removes a queue: its messages in every state, its settings and its dedup keys. The core
   * decides whether it may (it refuses a queue with messages unless forced). A later use of
   * the name creates a new, empty queue.
   */
  deleteQueue(queue: string): Promise<DeleteQueueOutcome>;
  /**
   * Stores a queue's runtime settings (creating the queue if needed); settings with nothing
   * set (not paused, no overrides) are removed.
   */
  saveQueueSettings(queue: string, settings: QueueSettings): Promise<void>;

  /**
   * Resolves once every commit made so far is durable under the sync policy (under `always`:
   * fsync'd). Commits made while one such wait runs share its fsync (group fsync).
   */
  durable(): Promise<void>;

  metrics(): StorageMetrics;

  /** The job server's part of the store; its calls share the same group commit. */
  readonly jobs: JobStorage;
  /** Topics' part of the store (retained values, durable subscriptions, confirmations). */
  readonly pubsub: PubSubStorage;
}

// ------------------------------------------------------------------------------ jobs

/** A job as the store holds it. */
export interface JobRow {
  id: string;
  service: string;
  status: JobStatus;
  priority: number;
  /** Runs started so far (a lease counts one). */
  attempts: number;
  maxAttempts: number;
  params: Buffer[];
  headers: Headers | undefined;
  createdAt: number;
  /** Not started before this time (delays and retry backoff). */
  notBefore: number;
  /** Expires if still queued at this time. */
  expiresAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  /** A final job is deleted at this time. */
  retainUntil: number | null;
  /** Latest progress, as JSON text. */
  progress: string | null;
  partials: number;
  result: Buffer[] | null;
  error: JobError | null;
  dedupKey: string | null;
  parentId: string | null;
  children: string[] | null;
}

/** A job to store: status `queued` (or `running` for a multicast parent). */
export interface NewJobRow {
  id: string;
  service: string;
  status: 'queued' | 'running';
  priority: number;
  maxAttempts: number;
  params: Buffer[];
  headers: Headers | undefined;
  createdAt: number;
  notBefore: number;
  expiresAt: number | null;
  dedupKey: string | null;
  /** Until when the dedup key holds (ignored without a key). */
  dedupUntil: number;
  parentId: string | null;
  children: string[] | null;
  /**
   * Status `running` only: stored as started (attempt 1, started at createdAt) for a worker
   * the core reserved in memory — the direct path, one write instead of insert then lease.
   */
  started?: boolean | undefined;
}

export interface InsertJobsOutcome {
  /** Per job: its id, or the earlier job's id when its dedup key matched. */
  ids: string[];
  duplicate: boolean[];
}

/** How a run ends: a final status with its result or error. */
export interface JobFinish {
  status: 'done' | 'failed' | 'cancelled' | 'expired';
  finishedAt: number;
  retainUntil: number;
  result?: Buffer[] | undefined;
  error?: JobError | undefined;
}

export interface JobSweepOutcome {
  /** Queued jobs past their time to live (unchanged: the core settles them as `expired`). */
  pastTtl: JobRow[];
  /** Final jobs deleted after their retention, by service and status. */
  forgotten: { service: string; status: JobStatus; count: number }[];
}

/** What settle() changed: the row after, and the status it had before. */
export interface JobSettled {
  row: JobRow;
  previous: JobStatus;
}

/** Counters of one service's durable jobs, by status. */
export type JobCounts = Record<JobStatus, number>;

export interface JobStorage {
  /** The store's {@link Storage.durable}: resolves once every commit so far is durable. */
  durable(): Promise<void>;
  /** Stores new jobs, honouring dedup keys (scope: the service). */
  insert(jobs: NewJobRow[]): Promise<InsertJobsOutcome>;
  /** Starts up to `max` queued jobs of a service due by `now`: highest priority, then oldest. */
  lease(service: string, max: number, now: number): Promise<JobRow[]>;
  /** Ends a running job's attempt with a final status; false if it is not running at that attempt. */
  finish(id: string, attempt: number, finish: JobFinish): Promise<boolean>;
  /**
   * Puts a running job back to queued, due at `notBefore`; false if it is not running at that
   * attempt. `uncount` undoes the attempt (it never reached a worker).
   */
  requeue(id: string, attempt: number, notBefore: number, uncount?: boolean): Promise<boolean>;
  /** Ends a job that is not final (queued or running) with `finish`; null if it was final or unknown. */
  settle(id: string, finish: JobFinish): Promise<JobSettled | null>;
  setProgress(id: string, progress: string): Promise<void>;
  /** Appends a partial result (sequence numbers from 1). */
  addPartial(id: string, seq: number, frames: Buffer[]): Promise<void>;
  partials(id: string): Promise<{ seq: number; frames: Buffer[] }[]>;
  get(id: string): Promise<JobRow | null>;
  /** Deletes a job and its partials; what it was, or null if there was none. */
  remove(id: string): Promise<{ service: string; status: JobStatus } | null>;
  /** Per service, jobs by status. */
  counts(): Promise<Map<string, JobCounts>>;
  /** Finds queued jobs past their TTL and deletes final jobs past their retention. */
  sweep(now: number, max: number): Promise<JobSweepOutcome>;
  /** Most recently created jobs, newest first (optionally of one service / status). */
  list(options: JobListOptions): Promise<JobRow[]>;
  /**
   * Puts a failed, cancelled or expired job back to queued for a fresh run (attempts, error,
   * result, progress and partials cleared); null if it is not in one of those states.
   */
  retry(id: string, notBefore: number): Promise<JobSettled | null>;
}

export interface JobListOptions {
  service?: string | undefined;
  status?: JobStatus | undefined;
  limit: number;
  /** Skip this many of the matching jobs (paging). */
  offset?: number | undefined;
  /** Only jobs whose id starts with, or whose service contains, this text. */
  search?: string | undefined;
}

// ------------------------------------------------------------------------------ pub/sub

/** The last value of a topic, kept because it was published with `retain`. */
export interface RetainedRow {
  topic: string;
  /** Sequence number of the publish that set it. */
  seq: number;
  frames: Buffer[];
  headers: Headers | undefined;
  publishedAt: number;
  expiresAt: number | null;
}

/** What a publish changes in the store besides the durable subscriptions' queues. */
export type RetainedChange =
  { op: 'set'; row: RetainedRow } | { op: 'delete'; topic: string } | { op: 'none' };

export interface DurableSubscriptionRow {
  name: string;
  pattern: string;
  createdAt: number;
}

/** A node's confirmation that it holds a topic at a version (sequence number). */
export interface ConfirmationRow {
  node: string;
  topic: string;
  seq: number;
  at: number;
}

export interface PubSubState {
  /** Highest sequence number ever given to a publish (0 on a new store). */
  lastSeq: number;
  subscriptions: DurableSubscriptionRow[];
}

/** A publish to be numbered and stored by a shared store ({@link PubSubStorage.publish}). */
export interface NewPublish {
  topic: string;
  /** An empty frame for a retained delete. */
  frames: Buffer[];
  headers: Headers | undefined;
  /** A change of the topic's retained value (set, or delete when `deleted`). */
  retained: boolean;
  deleted: boolean;
  publishedAt: number;
  /** Expiry of a retained value set (null: none). */
  expiresAt: number | null;
}

/** A publish as the store relays it to the brokers sharing it. */
export interface PublishedRow {
  seq: number;
  topic: string;
  frames: Buffer[];
  headers: Headers | undefined;
  retained: boolean;
  deleted: boolean;
  publishedAt: number;
}

/**
 * Durable copies stored with a batch of publishes. Their sequence header is known only once
 * the store has numbered the batch: the store writes copy `i` with `headersFor(i, seq)`, where
 * `seq` is the number of its publish (`publishOf[i]`, an index into the batch's publishes).
 */
interface PublishCopies {
  items: EnqueueItem[];
  publishOf: number[];
  /** Pure: the headers copy `i` is stored with when its publish is numbered `seq`. */
  headersFor(i: number, seq: number): Headers | undefined;
}

export interface PublishBatch {
  publishes: NewPublish[];
  copies?: PublishCopies | undefined;
}

export interface StoredPublishes {
  /** The number of the batch's first publish; the others follow it without a gap. */
  firstSeq: number;
  /** The copies' outcome (as {@link Storage.enqueue}); absent without copies. */
  copies: EnqueueOutcome | undefined;
}

export interface PubSubStorage {
  /**
   * A shared store only (absent otherwise; the core numbers publishes itself and calls
   * {@link PubSubStorage.record}). Numbers the batch's publishes in the store, in one
   * transaction with everything else the publish writes: the numbers are consecutive, in
   * commit order across the brokers sharing the store, and gap-free (a rolled-back call also
   * returns its numbers). Records the retained changes, stores the durable copies, and keeps
   * each publish for a few seconds for {@link PubSubStorage.published}.
   */
  publish?(batch: PublishBatch): Promise<StoredPublishes>;
  /**
   * A shared store only: publishes numbered `fromSeq` and up, in number order, at most `max`
   * (every broker's, its own included). Publishes older than the store keeps them for (a few
   * seconds) are gone: a number missing below a row returned will not come back.
   */
  published?(fromSeq: number, max: number): Promise<PublishedRow[]>;
  /**
   * A shared store only: retained values as {@link PubSubStorage.retained}, read together with
   * the highest publish number they reflect (one consistent read).
   */
  snapshot?(prefix: string, now: number): Promise<{ seq: number; rows: RetainedRow[] }>;
  /** Reads what the core needs at start. */
  load(): Promise<PubSubState>;
  /** Records a publish: its sequence number and, for a retained one, the new value. */
  record(seq: number, change: RetainedChange): Promise<void>;
  /** Retained values of topics starting with `prefix` not expired at `now`, in topic order. */
  retained(prefix: string, now: number): Promise<RetainedRow[]>;
  /** Topics whose retained value expired by `now` (at most `max`). */
  expired(now: number, max: number): Promise<string[]>;
  /** Earliest expiry of a retained value, if any. */
  nextExpiry(): Promise<number | null>;
  saveSubscription(row: DurableSubscriptionRow): Promise<void>;
  deleteSubscription(name: string): Promise<boolean>;
  /** Stores confirmations, keeping per (node, topic) the highest sequence number. */
  confirm(rows: ConfirmationRow[]): Promise<void>;
  /** Confirmations of topics starting with `prefix`. */
  confirmations(prefix: string): Promise<ConfirmationRow[]>;
}
