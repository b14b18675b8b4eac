/**
 * The job side of FerryClient: submit, call (plain or streamed), multicast, workers and the
 * ASSIGN/REVOKE messages routed to them, and the job listings. Handles and workers themselves
 * are in job-client.ts; this file glues them to the {@link Connection}.
 */
import { toFrames, type Body } from '../model/body.js';
import { FerryError } from '../model/errors.js';
import type { JobInfo, JobStatus, ServiceInfo, WorkerInfo } from '../model/jobs.js';
import type { Json, Reply } from '../protocol/codec.js';
import type { Connection } from './connection.js';
import {
  JobHandle,
  JobWorker,
  jobInfoOf,
  updateOf,
  type CallOptions,
  type JobHandler,
  type JobOptions,
  type SubmitOptions,
  type Worker,
  type WorkerOptions,
} from './job-client.js';

/** Jobs and workers over a {@link Connection} (which is their JobWire). @internal */
export class JobApi {
  private readonly workers = new Map<string, JobWorker>();
  private nextWorker = 1;
  private nextSubmitSeq = 1;

  constructor(
    private readonly conn: Connection,
    private readonly clientId: string,
  ) {}

  /** A dedup key unique to this client's request (the same one when it is re-sent). */
  private autoKey(): string {
    return `~${this.clientId}:${this.nextSubmitSeq++}`;
  }

  private jobArgs(service: string, options: JobOptions): Json {
    const args: Json = { service };
    if (options.priority !== undefined) args['priority'] = options.priority;
    if (options.ttlMs !== undefined) args['ttlMs'] = options.ttlMs;
    if (options.maxAttempts !== undefined) args['maxAttempts'] = options.maxAttempts;
    if (options.headers !== undefined) args['headers'] = options.headers;
    return args;
  }

  async submit(service: string, params: Body | Body[], options: SubmitOptions): Promise<JobHandle> {
    const args = this.jobArgs(service, options);
    if (options.delayMs !== undefined) args['delayMs'] = options.delayMs;
    if (options.durable !== undefined) args['durable'] = options.durable;
    // A dedup key on every durable submit, so a re-send after a reconnect is stored once.
    if (options.durable !== false) {
      args['dedupKey'] = options.dedupKey ?? this.autoKey();
    }
    const reply = await this.conn.request('SUBMIT', args, toFrames(params));
    return new JobHandle(this.conn, String(reply.args['id']));
  }

  async callFrames(
    service: string,
    params: Body | Body[],
    options: CallOptions,
  ): Promise<Buffer[]> {
    const args = this.jobArgs(service, options);
    if (options.durable !== undefined) args['durable'] = options.durable;
    if (options.timeoutMs !== undefined) args['timeoutMs'] = options.timeoutMs;
    // A durable call is stored: a dedup key, so a re-send after a reconnect is stored (and
    // run) once and answered with that job's end.
    if (options.durable === true && this.conn.supports('request-keys')) {
      args['dedupKey'] = this.autoKey();
    }
    const { signal, onProgress, onPartial } = options;
    if (signal?.aborted) throw new FerryError('JOB_CANCELLED', 'aborted before the call');
    // The broker enforces timeoutMs; the request itself waits a little longer for its answer.
    const timeoutMs =
      options.timeoutMs === undefined ? 0 : options.timeoutMs + this.conn.requestTimeoutMs;
    const streamed = onProgress !== undefined || onPartial !== undefined || signal !== undefined;
    if (!streamed) {
      const reply = await this.conn.request('CALL', args, toFrames(params), timeoutMs);
      return reply.payload;
    }
    args['stream'] = true;
    let jobId: string | undefined;
    let lastSeq = 0;
    const s = this.conn.stream(
      'CALL',
      args,
      toFrames(params),
      (reply) => {
        if (typeof reply.args['id'] === 'string' && reply.args['id'] !== '') {
          jobId = reply.args['id'];
          if (signal?.aborted) void this.conn.request('JOB_CANCEL', { id: jobId }).catch(() => {});
        }
        const u = updateOf(reply);
        if (u?.type === 'progress') onProgress?.(u.progress);
        if (u?.type === 'partial' && u.seq > lastSeq) {
          lastSeq = u.seq;
          onPartial?.(u.frames, u.seq);
        }
      },
      timeoutMs,
    );
    const onAbort = (): void => {
      if (jobId !== undefined) void this.conn.request('JOB_CANCEL', { id: jobId }).catch(() => {});
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const reply = await s.reply;
      return reply.payload;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      s.close();
    }
  }

  async multicast(
    services: string[],
    params: Body | Body[],
    options: JobOptions & { durable?: boolean },
  ): Promise<JobHandle> {
    const { service: _s, ...args } = this.jobArgs('', options);
    if (options.durable !== undefined) args['durable'] = options.durable;
    if (options.durable !== false && this.conn.supports('request-keys')) {
      args['dedupKey'] = this.autoKey();
    }
    const reply = await this.conn.request('MULTICAST', { ...args, services }, toFrames(params));
    return new JobHandle(this.conn, String(reply.args['id']));
  }

  job(id: string): JobHandle {
    return new JobHandle(this.conn, id);
  }

  worker(services: string | string[], handler: JobHandler, options: WorkerOptions): Worker {
    if (this.conn.closed) throw new FerryError('CONNECTION_CLOSED');
    const list = Array.isArray(services) ? services : [services];
    const tag = `${this.clientId.slice(0, 6)}-w${this.nextWorker++}`;
    const w = new JobWorker(this.conn, tag, list, handler, options, () => this.workers.delete(tag));
    this.workers.set(tag, w);
    w.ready = this.conn.request('WORKER', w.registerArgs()).then(
      () => {
        w.established = true;
      },
      (err: unknown) => {
        this.workers.delete(tag);
        throw err;
      },
    );
    w.ready.catch(() => {});
    return w;
  }

  /** An ASSIGN or REVOKE for one of our workers. */
  onWorkerMessage(reply: Reply): void {
    const tag = reply.args['worker'];
    const w = typeof tag === 'string' ? this.workers.get(tag) : undefined;
    const id = reply.args['id'];
    if (typeof id !== 'string') return;
    if (reply.kind === 'REVOKE') {
      w?.onRevoke(id);
      return;
    }
    if (!w) {
      // Assigned to a worker we no longer have: give it back.
      this.conn
        .request('FAIL', { id, code: 'WORKER_GONE', message: 'worker closed' })
        .catch(() => {});
      return;
    }
    w.onAssign(reply.args, reply.payload);
  }

  /** A new session: workers register again (the old session's jobs were requeued). */
  resume(): void {
    for (const w of this.workers.values()) {
      w.abortAll(); // the old session's jobs were requeued by the broker
      if (w.established) this.conn.rawRequest('WORKER', w.registerArgs()).catch(() => {});
    }
  }

  /** Closes every worker, letting running jobs finish until the deadline (if there is time). */
  async closeWorkers(timeoutMs: number, deadline: number): Promise<void> {
    for (const w of [...this.workers.values()]) {
      if (timeoutMs > 0 && this.conn.session !== undefined) {
        await w.close({ timeoutMs: Math.max(0, deadline - Date.now()) }).catch(() => {});
      }
    }
    this.workers.clear();
  }

  async services(): Promise<ServiceInfo[]> {
    const reply = await this.conn.request('SERVICES', {});
    return reply.args['services'] as ServiceInfo[];
  }

  async workerList(): Promise<WorkerInfo[]> {
    const reply = await this.conn.request('WORKERS', {});
    return reply.args['workers'] as WorkerInfo[];
  }

  async jobs(options: {
    service?: string;
    status?: JobStatus;
    limit?: number;
  }): Promise<JobInfo[]> {
    const reply = await this.conn.request('JOBS', { ...options });
    return (reply.args['jobs'] as Json[]).map((j) => jobInfoOf(j, []));
  }
}
