/**
 * The Majordomo dialect: MDP/0.1 (7/MDP) and MDP/0.2 (18/MDP) clients and workers on one
 * ROUTER, told apart by their header frame, mapped onto the core job server.
 *
 * - A client REQUEST becomes a transient `call` (in memory, queued until a worker for the
 *   service is there, expired after `requestTtlMs` if none starts it). Its result goes back
 *   as REPLY (0.1) or FINAL (0.2); partial results as PARTIAL (0.2 only). A job that ends in
 *   anything but `done` gets no reply, as when a Majordomo broker loses a request: the
 *   client times out and retries (logged).
 * - A worker READY registers a concurrency-1 worker. The job id travels as the "client
 *   address" frame of REQUEST and comes back in REPLY / PARTIAL / FINAL.
 * - Services named `mmi.*` (8/MMI) and any `InternalServices` given (Titanic) are answered
 *   by the broker; workers may not register them.
 * - Protocol violations by a worker (malformed command, READY twice, a command before
 *   READY, a reserved service) are answered with DISCONNECT; malformed client messages are
 *   dropped. Both are logged and counted; neither throws.
 */
import { HeartbeatTicker, type HeartbeatTick } from '../heartbeat-ticker.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { type JobApi, type WorkerHandle } from '../../core/job-types.js';
import { isJobId, type Assignment, type JobEvent, type JobInfo } from 'ferrymq/model';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { InternalServices } from './internal-services.js';
import {
  decodeMdp,
  encodeClientReplyV1,
  encodeClientV2,
  encodeWorkerDisconnect,
  encodeWorkerHeartbeat,
  encodeWorkerRequest,
  type MdpClientRequest,
  type MdpVersion,
  type MdpWorkerCommand,
} from './mdp-frames.js';
import { MmiServices } from './mmi.js';

/** Broker heartbeat to workers (the zguide default). */
export const MDP_HEARTBEAT_INTERVAL_MS = 2_500;
/** Silence is checked this many times per heartbeat interval (dead workers found sooner). */
const MDP_LIVENESS_CHECKS_PER_INTERVAL = 5;
/** A worker silent for this many intervals is dead (7.5 s at the defaults). */
export const MDP_HEARTBEAT_LIVENESS = 3;
/** A client request no worker has started within this is expired (7/MDP: SHOULD expire). */
const MDP_REQUEST_TTL_MS = 60_000;
/** How many peers that said DISCONNECT are remembered, so nothing more is sent to them. */
const MDP_GONE_PEERS_REMEMBERED = 10_000;

export interface MdpDialectOptions {
  clock?: Clock;
  logger?: Logger;
  heartbeatIntervalMs?: number;
  heartbeatLiveness?: number;
  requestTtlMs?: number;
  /** Services the broker answers itself besides MMI (Titanic). */
  internal?: InternalServices[];
}

/** Sends frames to one peer. */
export type PeerSend = (peer: Buffer, frames: Buffer[]) => void;

interface MdpWorker {
  peer: Buffer;
  key: string;
  version: MdpVersion;
  service: string;
  handle: WorkerHandle;
  lastSeen: number;
  /** Jobs sent to this worker and not yet answered. */
  running: Set<string>;
  /** Of those, the ones the core took back: the worker is busy until it answers them. */
  abandoned: Set<string>;
  gone: boolean;
}

/** Counters for stats and tests. */
export interface MdpCounters {
  requests: number;
  replies: number;
  partials: number;
  /** Requests that ended without a result (failed, expired, cancelled, refused). */
  unanswered: number;
  /** Workers sent DISCONNECT for breaking the protocol. */
  violations: number;
  /** Messages dropped as invalid (clients and unknown headers). */
  dropped: number;
  /** Workers declared dead after silence. */
  expired: number;
}

export class MdpDialect {
  private readonly workers = new Map<string, MdpWorker>();
  private readonly gone = new Set<string>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly heartbeatIntervalMs: number;
  private readonly heartbeatLiveness: number;
  private readonly requestTtlMs: number;
  private readonly internal: InternalServices[];
  private readonly ticker: HeartbeatTicker;
  private closed = false;
  readonly counters: MdpCounters = {
    requests: 0,
    replies: 0,
    partials: 0,
    unanswered: 0,
    violations: 0,
    dropped: 0,
    expired: 0,
  };

  constructor(
    private readonly jobs: JobApi,
    private readonly sendTo: PeerSend,
    options: MdpDialectOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? MDP_HEARTBEAT_INTERVAL_MS;
    this.heartbeatLiveness = options.heartbeatLiveness ?? MDP_HEARTBEAT_LIVENESS;
    this.requestTtlMs = options.requestTtlMs ?? MDP_REQUEST_TTL_MS;
    const others = options.internal ?? [];
    const mmi = new MmiServices(
      (service) => this.jobs.hasWorkers(service) || others.some((s) => s.provides(service)),
    );
    this.internal = [mmi, ...others];
    this.ticker = new HeartbeatTicker(
      this.clock,
      this.heartbeatIntervalMs,
      this.heartbeatLiveness,
      MDP_LIVENESS_CHECKS_PER_INTERVAL,
      (t) => this.tick(t),
    );
  }

  /** Workers registered now. */
  get workerCount(): number {
    return this.workers.size;
  }

  /** Entry point for every message a peer sends. Never throws. False: it was invalid. */
  handle(peer: Buffer, frames: Buffer[]): boolean {
    if (this.closed) return true;
    try {
      const msg = decodeMdp(frames);
      switch (msg.kind) {
        case 'client-request':
          this.clientRequest(peer, msg);
          return true;
        case 'worker':
          this.workerCommand(peer, msg);
          return true;
        case 'invalid':
          if (msg.from === 'worker' && msg.version !== undefined) {
            this.violation(peer, msg.version, msg.reason);
          } else {
            this.counters.dropped++;
            this.log.warn('mdp: dropped an invalid message', {
              from: msg.from,
              reason: msg.reason,
            });
          }
          return false;
      }
    } catch (err) {
      this.log.error('mdp: internal error handling a message', { err: String(err) });
    }
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ticker.stop();
    // Tell workers to reconnect: after a restart they register again at once.
    for (const w of this.workers.values()) this.dropWorker(w, true);
  }

  // ---- clients -------------------------------------------------------------------------

  private clientRequest(peer: Buffer, req: MdpClientRequest): void {
    this.counters.requests++;
    const internal = this.internal.find((s) => s.owns(req.service));
    if (internal) {
      void internal.answer(req.service, req.body).then(
        (body) => this.replyToClient(peer, req, body),
        (err: unknown) => {
          this.counters.unanswered++;
          this.log.error('mdp: internal service failed', {
            service: req.service,
            err: String(err),
          });
        },
      );
      return;
    }
    let finished = false;
    const onEvent =
      req.version === 2
        ? (event: JobEvent): void => {
            if (finished || this.closed || event.type !== 'partial') return;
            this.counters.partials++;
            this.sendTo(peer, encodeClientV2('PARTIAL', req.service, event.frames));
          }
        : undefined;
    // The answer goes out the moment the job ends (onFinal), or when the promise settles.
    const settle = (job: JobInfo): void => {
      if (finished) return;
      finished = true;
      if (job.status === 'done') {
        this.replyToClient(peer, req, job.result ?? []);
        return;
      }
      this.counters.unanswered++;
      this.log.warn('mdp: request ended without a result; the client gets no reply', {
        service: req.service,
        job: job.id,
        status: job.status,
        error: job.error?.message,
      });
    };
    let pending: Promise<JobInfo>;
    try {
      pending = this.jobs.call(
        { service: req.service, params: req.body, durable: false, ttlMs: this.requestTtlMs },
        { onEvent, onFinal: settle },
      );
    } catch (err) {
      pending = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    pending.then(settle, (err: unknown) => {
      if (finished) return;
      finished = true;
      this.counters.unanswered++;
      this.log.warn('mdp: request refused; the client gets no reply', {
        service: req.service,
        err: err instanceof Error ? err.message : String(err),
      });
    });
  }

  private replyToClient(peer: Buffer, req: MdpClientRequest, body: Buffer[]): void {
    if (this.closed) return;
    this.counters.replies++;
    this.sendTo(
      peer,
      req.version === 1
        ? encodeClientReplyV1(req.service, body)
        : encodeClientV2('FINAL', req.service, body),
    );
  }

  // ---- workers -------------------------------------------------------------------------

  private workerCommand(peer: Buffer, cmd: MdpWorkerCommand): void {
    const key = peer.toString('latin1');
    const worker = this.workers.get(key);
    if (cmd.command === 'DISCONNECT') {
      // Valid at any time, even before READY; nothing more goes to this peer.
      if (worker) this.dropWorker(worker, false);
      this.rememberGone(key);
      this.log.debug('mdp: worker said DISCONNECT', { service: worker?.service });
      return;
    }
    if (this.gone.has(key)) {
      if (cmd.command !== 'READY') {
        this.counters.dropped++;
        this.log.warn('mdp: dropped a command from a worker that was disconnected');
        return;
      }
      this.gone.delete(key); // the same identity registering afresh
    }
    if (cmd.command === 'READY') {
      if (worker) {
        this.violation(peer, cmd.version, 'READY from a worker that is already registered');
        return;
      }
      this.ready(peer, key, cmd.version, cmd.service);
      return;
    }
    if (!worker) {
      this.violation(peer, cmd.version, `${cmd.command} before READY`);
      return;
    }
    if (worker.version !== cmd.version) {
      this.violation(
        peer,
        worker.version,
        `MDP/0.${cmd.version} command from an MDP/0.${worker.version} worker`,
      );
      return;
    }
    worker.lastSeen = this.clock.now();
    if (!('address' in cmd)) return; // HEARTBEAT: being heard is all it says
    const jobId = cmd.address.toString('latin1');
    if (!isJobId(jobId)) {
      this.counters.dropped++;
      this.log.warn('mdp: worker answered an address the broker never sent; dropped', {
        service: worker.service,
      });
      return;
    }
    if (cmd.command === 'PARTIAL') {
      const r = worker.handle.partial(jobId, cmd.body);
      if (r !== null) this.log.debug('mdp: partial not taken', { job: jobId, reason: r });
      return;
    }
    // REPLY (0.1) or FINAL (0.2): the worker is free again once the core hears of it.
    worker.running.delete(jobId);
    if (worker.abandoned.delete(jobId)) {
      if (worker.abandoned.size === 0) worker.handle.resume();
      this.log.info('mdp: late reply for a job taken back from the worker; dropped', {
        job: jobId,
      });
      // The core keeps a taken-back job's slot on its worker until the worker reports it:
      // report it (the core refuses the result) so the slot is freed.
      void worker.handle.complete(jobId, cmd.body).catch(() => {});
      return;
    }
    worker.handle.complete(jobId, cmd.body).then(
      (r) => {
        if (r !== null) this.log.info('mdp: reply not taken', { job: jobId, reason: r });
      },
      (err: unknown) =>
        this.log.error('mdp: storing a reply failed', { job: jobId, err: String(err) }),
    );
  }

  private ready(peer: Buffer, key: string, version: MdpVersion, service: string): void {
    if (this.internal.some((s) => s.owns(service))) {
      this.violation(peer, version, `service ${service} is answered by the broker`);
      return;
    }
    const worker: MdpWorker = {
      peer,
      key,
      version,
      service,
      handle: undefined as unknown as WorkerHandle,
      lastSeen: this.clock.now(),
      running: new Set(),
      abandoned: new Set(),
      gone: false,
    };
    try {
      worker.handle = this.jobs.registerWorker(
        {
          assign: (job) => this.assign(worker, job),
          cancel: (jobId) => this.cancelled(worker, jobId),
        },
        {
          services: [service],
          concurrency: 1,
          name: `mdp:${peer.toString('hex')}`,
          protocol: version === 1 ? 'MDP/0.1' : 'MDP/0.2',
        },
      );
    } catch (err) {
      this.violation(
        peer,
        version,
        `cannot register: ${err instanceof Error ? err.message : String(err)}`,
      );
      return;
    }
    this.workers.set(key, worker);
    this.log.debug('mdp: worker ready', { service, version });
  }

  private assign(worker: MdpWorker, job: Assignment): void {
    if (worker.gone || this.closed) return;
    worker.running.add(job.id);
    this.sendTo(
      worker.peer,
      encodeWorkerRequest(worker.version, Buffer.from(job.id, 'latin1'), job.params),
    );
  }

  /**
   * The core took a job back from a worker (cancelled, or past its run timeout). MDP cannot
   * tell a worker to stop, so the worker is still busy with it: it takes no new request until
   * its late answer arrives (which the core then refuses).
   */
  private cancelled(worker: MdpWorker, jobId: string): void {
    if (!worker.running.has(jobId) || worker.gone) return;
    worker.abandoned.add(jobId);
    worker.handle.pause();
    this.log.info('mdp: a job was taken back from its worker; the worker waits for its reply', {
      job: jobId,
      service: worker.service,
    });
  }

  /** A worker broke the protocol: DISCONNECT, then nothing more to it. */
  private violation(peer: Buffer, version: MdpVersion, reason: string): void {
    this.counters.violations++;
    const key = peer.toString('latin1');
    const worker = this.workers.get(key);
    this.log.warn('mdp: protocol violation; worker disconnected', {
      reason,
      service: worker?.service,
    });
    if (worker) this.dropWorker(worker, false);
    this.rememberGone(key);
    this.sendTo(peer, encodeWorkerDisconnect(version));
  }

  private dropWorker(worker: MdpWorker, sayDisconnect: boolean): void {
    if (worker.gone) return;
    worker.gone = true;
    this.workers.delete(worker.key);
    if (sayDisconnect) this.sendTo(worker.peer, encodeWorkerDisconnect(worker.version));
    worker.handle.close();
  }

  private rememberGone(key: string): void {
    this.gone.add(key);
    if (this.gone.size > MDP_GONE_PEERS_REMEMBERED) {
      const oldest = this.gone.values().next();
      if (!oldest.done) this.gone.delete(oldest.value);
    }
  }

  // ---- heartbeats ----------------------------------------------------------------------

  /** Expires silent workers; once per interval, sends a heartbeat to the rest. */
  private tick({ now, beat, deadAfterMs: deadAfter }: HeartbeatTick): void {
    for (const w of [...this.workers.values()]) {
      if (now - w.lastSeen > deadAfter) {
        this.counters.expired++;
        this.log.info('mdp: worker went silent; its requests go to another worker', {
          service: w.service,
          running: w.running.size,
        });
        this.dropWorker(w, false);
        continue;
      }
      if (beat) this.sendTo(w.peer, encodeWorkerHeartbeat(w.version));
    }
  }
}
