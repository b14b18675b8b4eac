/**
 * The mixed load the chaos tool (chaos.ts) keeps on a broker it kills: a queue with a producer
 * and an acking consumer, durable jobs with a submitter and a worker, and a durable pub/sub
 * subscription with a publisher and an acking subscriber. Every item's body is unique; what
 * the broker acknowledged, delivered and ran is written into one Ledger per kind. Clients stay
 * connected across kills: the SDK reconnects, re-sends unconfirmed sends and resumes consumers.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { connect, FerryError, type FerryClient, type JobHandle } from 'ferrymq';
import { Ledger, type AuditRow } from './chaos-ledger.js';

const QUEUE = 'chaos-queue';
const SERVICE = 'chaos-jobs';
const TOPIC = 'chaos/events';
const TOPIC_PATTERN = 'chaos/**';
const DURABLE = 'chaos-sub';
/** The durable subscription's internal queue (docs/pubsub.md). */
const DURABLE_QUEUE = `sub:${DURABLE}`;

/** Producer requests in flight per kind. */
const WINDOW = 64;
/** Accepted but not yet delivered items per kind before a producer waits. */
const MAX_BACKLOG = 2_000;
/** Items per kind at most in one run (a bound, never reached in practice). */
const MAX_ITEMS_PER_KIND = 5_000_000;
/** After a refused request (the broker is down), a producer waits this long before the next. */
const RETRY_PAUSE_MS = 50;
const PREFETCH = 100;
const WORKER_CONCURRENCY = 16;
/** Jobs may be taken back at many kills: never let that fail them. */
const JOB_MAX_ATTEMPTS = 1_000;
const HEARTBEAT_MS = 100;
/** A consuming loop that keeps failing is given up after this many restarts. */
const MAX_CONSUMER_RESTARTS = 1_000;
const REQUEST_TIMEOUT_MS = 60_000;
/** When the drain ends, job statuses are read this many at a time. */
const STATUS_BATCH = 100;
/** How often the drain looks whether everything arrived. */
const DRAIN_POLL_MS = 100;

export class ChaosLoad {
  readonly queue = new Ledger('queue');
  readonly jobs = new Ledger('jobs');
  readonly pubsub = new Ledger('pubsub');
  /** Producer requests the broker refused or never answered (retried items get a new body). */
  readonly refused = { queue: 0, jobs: 0, pubsub: 0 };
  private readonly clients: FerryClient[] = [];
  private readonly jobHandles = new Map<string, JobHandle>();
  /** The submitter's wait for each job's final state (answered once it is stored). */
  private readonly jobWaits = new Map<string, Promise<unknown>>();
  /** Jobs whose final state was seen `done` by the submitter. */
  private readonly jobsDone = new Set<string>();
  private producing = false;
  private closing = false;
  /** Consuming loops that ended with an error and were started again, per kind. */
  readonly consumerRestarts = { queue: 0, pubsub: 0 };
  /** The errors that ended them. */
  readonly consumerErrors = new Set<string>();
  private readonly producers: Promise<void>[] = [];
  private readonly consumers: Promise<void>[] = [];

  private async client(endpoint: string, name: string): Promise<FerryClient> {
    const c = await connect(endpoint, {
      heartbeatMs: HEARTBEAT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      name,
    });
    this.clients.push(c);
    return c;
  }

  /** Connects every client, creates the durable subscription, and starts producing. */
  async start(endpoint: string): Promise<void> {
    const [producer, consumer, worker, subscriber] = await Promise.all([
      this.client(endpoint, 'chaos-producer'),
      this.client(endpoint, 'chaos-consumer'),
      this.client(endpoint, 'chaos-worker'),
      this.client(endpoint, 'chaos-subscriber'),
    ]);
    const subscribe = () =>
      subscriber.subscribe(TOPIC_PATTERN, { durable: DURABLE, prefetch: PREFETCH });
    // Created before anything is published, so that every publish is copied into its queue.
    let sub = subscribe();
    await sub.ready;
    this.consumers.push(
      this.keepConsuming('queue', async () => {
        for await (const m of consumer.consume(QUEUE, { prefetch: PREFETCH })) {
          const item = m.body.toString();
          this.queue.deliver(item, m.id);
          this.queue.settle(item, m.ack());
        }
      }),
      this.keepConsuming('pubsub', async (restart) => {
        if (restart > 0) sub = subscribe();
        for await (const m of sub) {
          const item = m.body.toString();
          this.pubsub.deliver(item, String(m.seq));
          this.pubsub.settle(item, m.ack());
        }
      }),
    );
    worker.worker(
      SERVICE,
      async (ctx) => {
        const item = ctx.params.toString();
        this.jobs.deliver(item, ctx.id);
        await new Promise((r) => setImmediate(r));
        // The completion goes out when this returns; it is answered once the job is final.
        const answered = this.jobWaits.get(item);
        if (answered) this.jobs.settle(item, answered);
        return item;
      },
      { concurrency: WORKER_CONCURRENCY, name: 'chaos-worker' },
    );
    this.producing = true;
    this.producers.push(
      this.produce(this.queue, 'queue', (item) => producer.send(QUEUE, item)),
      this.produce(this.jobs, 'jobs', async (item) => {
        const h = await producer.submit(SERVICE, item, { maxAttempts: JOB_MAX_ATTEMPTS });
        this.jobHandles.set(item, h);
        const ended = h.wait({ timeoutMs: REQUEST_TIMEOUT_MS }).then((info) => {
          if (info.status === 'done') this.jobsDone.add(item);
        });
        // A wait cut by a kill or a timeout is not an error: the drain looks the job up.
        ended.catch(() => {});
        this.jobWaits.set(item, ended);
      }),
      this.produce(this.pubsub, 'pubsub', (item) => producer.publish(TOPIC, item)),
    );
  }

  /**
   * Runs a consuming loop again when it ends with an error (as an application would: the SDK
   * ends a subscription whose re-SUBSCRIBE after a reconnect failed), counting each restart.
   */
  private async keepConsuming(
    kind: 'queue' | 'pubsub',
    loop: (restart: number) => Promise<void>,
  ): Promise<void> {
    for (let restart = 0; restart <= MAX_CONSUMER_RESTARTS; restart++) {
      try {
        await loop(restart);
        return; // ended without an error: the client is closing
      } catch (err) {
        if (this.closing) return;
        this.consumerRestarts[kind]++;
        this.consumerErrors.add(err instanceof FerryError ? err.code : String(err));
        await delay(RETRY_PAUSE_MS);
      }
    }
  }

  /** One producer: at most WINDOW requests in flight and MAX_BACKLOG items undelivered. */
  private async produce(
    ledger: Ledger,
    kind: keyof ChaosLoad['refused'],
    issue: (item: string) => Promise<unknown>,
  ): Promise<void> {
    let inflight = 0;
    let seq = 0;
    let wake: (() => void) | undefined;
    const settled = (): void => {
      inflight--;
      wake?.();
    };
    while (this.producing && seq < MAX_ITEMS_PER_KIND) {
      // Issue every free slot in one tick: the SDK sends them as one request (one commit).
      const slots = Math.min(WINDOW - inflight, MAX_BACKLOG - ledger.missingCount());
      if (slots <= 0) {
        await new Promise<void>((r) => {
          wake = r;
          // Deliveries do not wake the producer: look again shortly.
          setTimeout(r, RETRY_PAUSE_MS).unref();
        });
        wake = undefined;
        continue;
      }
      let failed = false;
      for (let k = 0; k < slots && seq < MAX_ITEMS_PER_KIND; k++) {
        const item = `${kind}-${seq++}`;
        inflight++;
        issue(item).then(
          () => {
            ledger.accept(item);
            settled();
          },
          () => {
            this.refused[kind]++;
            failed = true;
            settled();
          },
        );
      }
      // Let the request go out and replies come in.
      await new Promise((r) => setImmediate(r));
      if (failed) await delay(RETRY_PAUSE_MS);
    }
    while (inflight > 0) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, RETRY_PAUSE_MS).unref();
      });
    }
  }

  /** Note what was in flight: the broker is killed now. */
  noteKill(): void {
    for (const l of [this.queue, this.jobs, this.pubsub]) l.noteKill();
  }

  /** Stops producing and waits for the requests in flight to be answered. */
  async stopProducing(): Promise<void> {
    this.producing = false;
    await Promise.all(this.producers);
  }

  /**
   * Waits until every accepted item was delivered and every job ended `done` (a job whose
   * wait was cut by a kill is looked up), or until `deadlineMs` (epoch ms).
   */
  async drain(admin: FerryClient, deadlineMs: number): Promise<boolean> {
    while (Date.now() < deadlineMs) {
      const delivered =
        this.queue.missingCount() === 0 &&
        this.pubsub.missingCount() === 0 &&
        this.jobs.missingCount() === 0;
      if (delivered) {
        const statuses = await this.unfinishedJobStatuses(admin);
        if ([...statuses.values()].every((st) => st === 'done')) return true;
      }
      await delay(DRAIN_POLL_MS);
    }
    return false;
  }

  /** The broker's status of each job not yet seen `done` ('gone' if it does not answer). */
  private async unfinishedJobStatuses(admin: FerryClient): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const unfinished = [...this.jobs.accepted].filter((j) => !this.jobsDone.has(j));
    for (let i = 0; i < unfinished.length; i += STATUS_BATCH) {
      const batch = unfinished.slice(i, i + STATUS_BATCH);
      const statuses = await Promise.all(
        batch.map((item) =>
          admin
            .job(this.jobHandles.get(item)!.id)
            .status()
            .then(
              (info) => info.status as string,
              () => 'gone',
            ),
        ),
      );
      for (let k = 0; k < batch.length; k++) {
        out.set(batch[k]!, statuses[k]!);
        if (statuses[k] === 'done') this.jobsDone.add(batch[k]!);
      }
    }
    return out;
  }

  /** The audit of each kind, asking the broker what it still holds of the missing items. */
  async audit(admin: FerryClient): Promise<AuditRow[]> {
    const held = async (queue: string): Promise<number> => {
      const s = (await admin.stats(queue)).queues.find((q) => q.name === queue);
      return s ? s.ready + s.leased + s.scheduled + s.dead : 0;
    };
    // Jobs: one not ended done is stuck while the broker still has it queued or running, and
    // lost otherwise (gone, failed, cancelled, expired).
    let stuck = 0;
    let lost = 0;
    for (const st of (await this.unfinishedJobStatuses(admin)).values()) {
      if (st === 'queued' || st === 'running') stuck++;
      else if (st !== 'done') lost++;
    }
    const jobs = { ...this.jobs.audit(0), lost, stuck };
    jobs.delivered = jobs.accepted - lost - stuck;
    return [
      this.queue.audit(await held(QUEUE)),
      jobs,
      this.pubsub.audit(await held(DURABLE_QUEUE)),
    ];
  }

  async close(): Promise<void> {
    this.producing = false;
    this.closing = true;
    await Promise.all(this.clients.map((c) => c.close({ timeoutMs: 500 }).catch(() => {})));
    await Promise.all(this.consumers);
  }
}
