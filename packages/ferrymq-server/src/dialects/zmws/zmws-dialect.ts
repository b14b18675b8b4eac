/**
 * The ZMWS 1.0 dialect (research/protocols.md §2): ZMWS clients on one ROUTER, ZMWS workers
 * on another, mapped onto the core job server, so ZMWS jobs are Ferry jobs.
 *
 * - `JOB: <service>` (async) becomes a durable `submit`; the client hears
 *   `JOB: <jobid> <service>` once it is stored. `SYNC-<service>` becomes a transient `call`;
 *   the client hears `COMPLETE:` / `FAIL:` and the result frame; a DEALER client (one that
 *   sends no empty delimiter, like ZMWS's `client_base.php`) also gets `CONT:` partials.
 * - `READY` registers a concurrency-1 worker for its service. A job goes to it as
 *   `<client id>, "", <param frame>, JOB: <jobid>`; its `COMPLETE:` / `FAIL:` / `CONT:`
 *   answers complete, fail or add a partial to the job.
 * - Heartbeats: the broker sends `HEARTBEAT` to idle workers every interval (5 s) and purges
 *   a worker silent for interval × liveness (15 s); its running job is requeued.
 * - `SERVER-JOBS`, `SERVER-ACTIVE`, `SERVER-HIST`, `SERVER-WORKERS` answer JSON listings.
 *
 * Malformed messages are answered where the protocol has an answer (`FAIL: <service>`) and
 * otherwise logged and counted; nothing here throws on peer input.
 */
import { HeartbeatTicker, type HeartbeatTick } from '../heartbeat-ticker.js';
import { systemClock, type Clock } from '../../core/clock.js';
import type { JobApi, WorkerHandle } from '../../core/job-types.js';
import { isValidQueueName, type Assignment, type JobEvent, type JobInfo } from 'ferrymq/model';
import { silentLogger, type Logger } from '../../core/logger.js';
import {
  ZMWS_PARAM_JSON,
  encodeParam,
  failureJsonText,
  formatAccepted,
  formatRefused,
  formatSyncStatus,
  paramJsonFrame,
  parseClientRequest,
  type ZmwsJobEntry,
  type ZmwsParam,
  type ZmwsServerQuery,
} from './zmws-commands.js';
import {
  decodeWorkerMessage,
  encodeWorkerHeartbeat,
  encodeWorkerJob,
  type ZmwsWorkerMessage,
} from './zmws-frames.js';
import { ZmwsListings } from './zmws-listings.js';

/** ZMWS's HEARTBEAT_INTERVAL. */
export const ZMWS_HEARTBEAT_INTERVAL_MS = 5_000;
/** ZMWS's HEARTBEAT_MAXTRIES: a worker silent this many intervals is purged (15 s). */
export const ZMWS_HEARTBEAT_LIVENESS = 3;
/** Silence is checked this many times per interval. */
const ZMWS_LIVENESS_CHECKS_PER_INTERVAL = 5;
/** A SYNC job no worker has started within this is expired and answered FAIL. */
export const ZMWS_SYNC_TTL_MS = 60_000;
/** Header that keeps a parameter key other than PARAM-JSON, to hand it to workers as sent. */
const ZMWS_PARAM_KEY_HEADER = 'zmws-param-key';

export interface ZmwsDialectOptions {
  clock?: Clock;
  logger?: Logger;
  heartbeatIntervalMs?: number;
  heartbeatLiveness?: number;
  syncTtlMs?: number;
}

/** Where the dialect's frames go. */
export interface ZmwsOutputs {
  toClient(peer: Buffer, frames: Buffer[]): void;
  toWorker(peer: Buffer, frames: Buffer[]): void;
}

interface ZmwsWorker {
  peer: Buffer;
  key: string;
  service: string;
  handle: WorkerHandle;
  lastSeen: number;
  /** Jobs sent to this worker and not answered yet (taken-back ones included). */
  running: Set<string>;
  gone: boolean;
}

export interface ZmwsCounters {
  submitted: number;
  calls: number;
  refused: number;
  completed: number;
  failed: number;
  partials: number;
  /** Messages dropped as malformed or unexpected (logged). */
  dropped: number;
  /** Workers purged after silence. */
  purged: number;
}

const EMPTY = Buffer.alloc(0);

export class ZmwsDialect {
  private readonly workers = new Map<string, ZmwsWorker>();
  /** Services a ZMWS worker has registered since start (ZMWS's "seen" jobs). */
  private readonly seenServices = new Set<string>();
  /** SYNC jobs (not stored) and their history, for the SERVER-* listings. */
  private readonly listings: ZmwsListings;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly heartbeatIntervalMs: number;
  private readonly heartbeatLiveness: number;
  private readonly syncTtlMs: number;
  private readonly ticker: HeartbeatTicker;
  private closed = false;
  readonly counters: ZmwsCounters = {
    submitted: 0,
    calls: 0,
    refused: 0,
    completed: 0,
    failed: 0,
    partials: 0,
    dropped: 0,
    purged: 0,
  };

  constructor(
    private readonly jobs: JobApi,
    private readonly out: ZmwsOutputs,
    options: ZmwsDialectOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? ZMWS_HEARTBEAT_INTERVAL_MS;
    this.heartbeatLiveness = options.heartbeatLiveness ?? ZMWS_HEARTBEAT_LIVENESS;
    this.syncTtlMs = options.syncTtlMs ?? ZMWS_SYNC_TTL_MS;
    this.listings = new ZmwsListings({
      jobs,
      clock: this.clock,
      workers: () => this.workers.values(),
      deadAfterMs: this.heartbeatIntervalMs * this.heartbeatLiveness,
    });
    this.ticker = new HeartbeatTicker(
      this.clock,
      this.heartbeatIntervalMs,
      this.heartbeatLiveness,
      ZMWS_LIVENESS_CHECKS_PER_INTERVAL,
      (t) => this.tick(t),
    );
  }

  get workerCount(): number {
    return this.workers.size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ticker.stop();
    for (const w of [...this.workers.values()]) this.dropWorker(w);
  }

  // ---- clients -------------------------------------------------------------------------

  /** A message from a client (frames after the ROUTER id). Never throws. False: invalid. */
  handleClient(peer: Buffer, frames: Buffer[]): boolean {
    if (this.closed) return true;
    try {
      // A REQ client sends an empty delimiter first; a DEALER client (client_base.php) not.
      const fromReq = frames[0]?.length === 0;
      const req = parseClientRequest(fromReq ? frames.slice(1) : frames);
      switch (req.kind) {
        case 'invalid':
          this.counters.dropped++;
          this.log.warn('zmws: dropped an invalid client request', { reason: req.reason });
          return false;
        case 'server':
          this.serverQuery(peer, req.query);
          return true;
        case 'job':
          if (!isValidQueueName(req.service)) {
            // Refused as the job server would, but now: it counts as an invalid frame.
            this.refuse(peer, req.service, new Error('invalid service name'));
            return false;
          }
          if (req.sync) this.syncJob(peer, req.service, req.param, !fromReq);
          else this.asyncJob(peer, req.service, req.param);
          return true;
      }
    } catch (err) {
      this.log.error('zmws: internal error handling a client message', { err: String(err) });
    }
    return true;
  }

  private reply(peer: Buffer, ...frames: (Buffer | string)[]): void {
    if (this.closed) return;
    this.out.toClient(peer, [
      EMPTY,
      ...frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f)),
    ]);
  }

  private jobSpec(
    service: string,
    param: ZmwsParam | undefined,
  ): { service: string; params: Buffer[]; headers: Record<string, string> | undefined } {
    return {
      service,
      // The job server wants a frame: a request without parameters gets one empty frame.
      params: [param ? Buffer.from(param.value) : EMPTY],
      headers:
        param && param.key !== ZMWS_PARAM_JSON ? { [ZMWS_PARAM_KEY_HEADER]: param.key } : undefined,
    };
  }

  private asyncJob(peer: Buffer, service: string, param: ZmwsParam | undefined): void {
    let pending: Promise<JobInfo>;
    try {
      pending = this.jobs.submit({ ...this.jobSpec(service, param), durable: true });
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (job) => {
        this.counters.submitted++;
        this.reply(peer, formatAccepted(job.id, service));
      },
      (err: unknown) => this.refuse(peer, service, err),
    );
  }

  private refuse(peer: Buffer, service: string, err: unknown): void {
    this.counters.refused++;
    this.log.warn('zmws: job refused', {
      service,
      err: err instanceof Error ? err.message : String(err),
    });
    this.reply(peer, formatRefused(service));
  }

  private syncJob(
    peer: Buffer,
    service: string,
    param: ZmwsParam | undefined,
    partials: boolean,
  ): void {
    if (!this.seenServices.has(service) && !this.jobs.hasWorkers(service)) {
      // As ZMWS: a service no worker has ever offered is refused at once.
      this.refuse(peer, service, new Error('no worker has registered this service'));
      return;
    }
    let record: ZmwsJobEntry | undefined;
    const onEvent = (event: JobEvent): void => {
      if (this.closed || !record) return;
      if (event.type === 'status' && event.status === 'running') {
        this.listings.syncStarted(record);
      } else if (event.type === 'partial' && partials) {
        this.counters.partials++;
        this.reply(
          peer,
          formatSyncStatus('CONT', service, record.jobid),
          paramJsonFrame(event.frames),
        );
      }
    };
    let pending: Promise<JobInfo>;
    try {
      pending = this.jobs.call(
        { ...this.jobSpec(service, param), durable: false, ttlMs: this.syncTtlMs },
        {
          onEvent,
          onSubmitted: (job) => {
            record = this.listings.syncSubmitted(job, service);
          },
        },
      );
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (job) => {
        this.listings.syncFinished(job);
        if (job.status === 'done') {
          this.counters.completed++;
          const result = job.result ?? [];
          this.reply(
            peer,
            formatSyncStatus('COMPLETE', service, job.id),
            result.length === 0 ? EMPTY : paramJsonFrame(result),
          );
          return;
        }
        this.counters.failed++;
        const why = job.error?.message ?? '';
        this.reply(
          peer,
          formatSyncStatus('FAIL', service, job.id),
          why === '' ? EMPTY : encodeParam(ZMWS_PARAM_JSON, Buffer.from(failureJsonText(why))),
        );
      },
      (err: unknown) => this.refuse(peer, service, err),
    );
  }

  // ---- introspection -------------------------------------------------------------------

  private serverQuery(peer: Buffer, query: ZmwsServerQuery): void {
    this.listing(query).then(
      (list) => this.reply(peer, JSON.stringify(list)),
      (err: unknown) => {
        this.log.error('zmws: listing failed', { query, err: String(err) });
        this.reply(peer, '[]');
      },
    );
  }

  /** The JSON array a SERVER-* query answers (field names as ZMWS 1.0 used them). */
  listing(query: ZmwsServerQuery): Promise<unknown[]> {
    return this.listings.listing(query);
  }

  // ---- workers -------------------------------------------------------------------------

  /** A message from a worker (frames after the ROUTER id). Never throws. False: invalid. */
  handleWorker(peer: Buffer, frames: Buffer[]): boolean {
    if (this.closed) return true;
    try {
      const msg = decodeWorkerMessage(frames);
      this.workerMessage(peer, msg);
      return msg.kind !== 'invalid';
    } catch (err) {
      this.log.error('zmws: internal error handling a worker message', { err: String(err) });
    }
    return true;
  }

  private workerMessage(peer: Buffer, msg: ZmwsWorkerMessage): void {
    const key = peer.toString('latin1');
    const worker = this.workers.get(key);
    if (msg.kind === 'invalid') {
      this.counters.dropped++;
      this.log.warn('zmws: dropped an invalid worker message', { reason: msg.reason });
      if (worker) worker.lastSeen = this.clock.now(); // still a sign of life
      return;
    }
    if (msg.kind === 'heartbeat') {
      if (worker) worker.lastSeen = this.clock.now();
      else this.log.debug('zmws: heartbeat from a worker not in the list; ignored');
      return;
    }
    if (msg.kind === 'ready') {
      if (worker && worker.service === msg.service) {
        worker.lastSeen = this.clock.now();
        return;
      }
      if (worker) this.dropWorker(worker);
      this.register(peer, key, msg.service);
      return;
    }
    // A result.
    if (!worker) {
      // ZMWS puts a worker that answers back in its list: it is alive and free.
      this.log.info('zmws: answer from a worker not in the list; registered, answer dropped', {
        job: msg.jobId,
      });
      this.counters.dropped++;
      this.register(peer, key, msg.service);
      return;
    }
    worker.lastSeen = this.clock.now();
    this.result(worker, msg);
  }

  private result(w: ZmwsWorker, msg: Extract<ZmwsWorkerMessage, { kind: 'result' }>): void {
    const { jobId } = msg;
    const value = msg.param ? [Buffer.from(msg.param.value)] : [];
    if (msg.outcome === 'CONT') {
      if (!w.running.has(jobId)) {
        this.counters.dropped++;
        return;
      }
      const r = w.handle.partial(jobId, value);
      if (r !== null) this.log.debug('zmws: partial not taken', { job: jobId, reason: r });
      return;
    }
    if (!w.running.delete(jobId)) {
      this.counters.dropped++;
      this.log.warn('zmws: answer for a job this worker does not run; dropped', { job: jobId });
      return;
    }
    const report =
      msg.outcome === 'COMPLETE'
        ? w.handle.complete(jobId, value)
        : w.handle.fail(
            jobId,
            { code: 'JOB_FAILED', message: value[0]?.toString('utf8') ?? '' },
            { retry: false },
          );
    report.then(
      (r) => {
        // A job taken back (cancelled, past its run timeout): the core frees the worker's slot
        // on this late answer and refuses the result.
        if (r !== null) this.log.info('zmws: late answer not taken', { job: jobId, reason: r });
      },
      (err: unknown) =>
        this.log.error('zmws: storing an answer failed', { job: jobId, err: String(err) }),
    );
  }

  private register(peer: Buffer, key: string, service: string): void {
    const worker: ZmwsWorker = {
      peer,
      key,
      service,
      handle: undefined as unknown as WorkerHandle,
      lastSeen: this.clock.now(),
      running: new Set(),
      gone: false,
    };
    try {
      worker.handle = this.jobs.registerWorker(
        {
          assign: (job) => this.assign(worker, job),
          // ZMWS cannot tell a worker to stop: the core keeps the job's slot on this worker
          // until its (late) answer arrives, which the core then refuses.
          cancel: (jobId) => this.log.debug('zmws: a job was taken back', { job: jobId }),
        },
        {
          services: [service],
          concurrency: 1,
          name: `zmws:${printable(peer)}`,
          protocol: 'ZMWS/1.0',
        },
      );
    } catch (err) {
      this.counters.dropped++;
      this.log.warn('zmws: a worker could not register', {
        service,
        err: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    this.seenServices.add(service);
    this.workers.set(key, worker);
    this.log.debug('zmws: worker ready', { service });
  }

  private assign(worker: ZmwsWorker, job: Assignment): void {
    if (worker.gone || this.closed) return;
    worker.running.add(job.id);
    this.out.toWorker(
      worker.peer,
      encodeWorkerJob(Buffer.from(job.id, 'latin1'), paramFrameFor(job), job.id),
    );
  }

  private dropWorker(worker: ZmwsWorker): void {
    if (worker.gone) return;
    worker.gone = true;
    this.workers.delete(worker.key);
    worker.handle.close();
  }

  // ---- heartbeats ----------------------------------------------------------------------

  /** Purges silent workers (their job is requeued); once per interval, beats to idle ones. */
  private tick({ now, beat, deadAfterMs: deadAfter }: HeartbeatTick): void {
    for (const w of [...this.workers.values()]) {
      if (now - w.lastSeen > deadAfter) {
        this.counters.purged++;
        this.log.info('zmws: purging a silent worker; its job is requeued', {
          service: w.service,
          running: w.running.size,
        });
        this.dropWorker(w);
        continue;
      }
      if (beat && w.running.size === 0) this.out.toWorker(w.peer, encodeWorkerHeartbeat());
    }
  }
}

/** The parameter frame a worker gets: as the client sent it, or Ferry params as PARAM-JSON. */
function paramFrameFor(job: Assignment): Buffer {
  const key = job.headers?.[ZMWS_PARAM_KEY_HEADER];
  if (key !== undefined) return encodeParam(key, job.params[0] ?? EMPTY);
  // ZMWS hands a job without parameters its request frame instead; the worker ignores it.
  if (job.params.length === 0 || (job.params.length === 1 && job.params[0]!.length === 0)) {
    return Buffer.from(`JOB: ${job.service}`);
  }
  return paramJsonFrame(job.params);
}

/** A routing id for logs and listings: text when printable, hex otherwise. */
function printable(peer: Buffer): string {
  const s = peer.toString('latin1');
  return /^[\x20-\x7e]+$/.test(s) ? s : peer.toString('hex');
}
