/**
 * The job side of the SDK: job handles (status, result, cancel, updates) and workers.
 *
 *   const w = ferry.worker('thumbnails', async (job) => render(job.params), { concurrency: 4 });
 *   const png = await ferry.call('thumbnails', imageId, { timeoutMs: 10_000 });
 *   const job = await ferry.submit('reports', JSON.stringify({ month: 11 }));
 *   for await (const u of job.updates()) console.log(u.type);
 *
 * FerryClient owns the connection; this file gets a {@link JobWire} from it.
 */
import { FerryError, type ErrorCode } from '../model/errors.js';
import { toFrames, type Body } from '../model/body.js';
import type { JobInfo, JobStatus } from '../model/jobs.js';
import type { ExtendOutcome, LeaseLost } from '../model/queues.js';
import type { Command, Json, Reply } from '../protocol/codec.js';
import type { SettleCommand } from './status.js';

export type JobUpdate =
  | { type: 'status'; status: JobStatus; attempt: number }
  | { type: 'progress'; progress: unknown }
  | { type: 'partial'; seq: number; body: Buffer; frames: Buffer[] }
  | { type: 'final'; job: JobInfo };

export interface JobOptions {
  /** 0–255, higher first. */
  priority?: number;
  /** Expire if no worker has started the job within this many ms. */
  ttlMs?: number;
  /** Runs before the job is failed (default the broker's, 5). */
  maxAttempts?: number;
  headers?: Record<string, string>;
}

export interface SubmitOptions extends JobOptions {
  /** Do not start before this many ms from now. */
  delayMs?: number;
  /** A repeat of the key within 10 minutes returns the first job. */
  dedupKey?: string;
  /** Store before acknowledging (default true). */
  durable?: boolean;
}

export interface CallOptions extends JobOptions {
  /** Give up after this long: the call rejects with TIMEOUT and the job is cancelled. */
  timeoutMs?: number;
  /** Store the job before running it, so it survives a broker restart (default false). */
  durable?: boolean;
  /** Progress reports of the worker, as they happen. */
  onProgress?: (progress: unknown) => void;
  /** Partial results of the worker, in order. */
  onPartial?: (frames: Buffer[], seq: number) => void;
  /** Aborting cancels the job and rejects the call with JOB_CANCELLED. */
  signal?: AbortSignal;
}

/**
 * What a worker's handler gets.
 * @public (the SDK's index exports it)
 */
export interface JobContext {
  readonly id: string;
  readonly service: string;
  /** The first params frame. */
  readonly params: Buffer;
  /** Every params frame. */
  readonly frames: Buffer[];
  readonly headers: Record<string, string>;
  /** 1 on the first run. */
  readonly attempt: number;
  /** Aborted when a client cancels the job, or the broker took it back. */
  readonly signal: AbortSignal;
  /**
   * Reports progress (any JSON), seen by callers and watchers. Once the broker took the job
   * back (`signal` aborted), reports are dropped without an error.
   */
  progress(progress: unknown): Promise<void>;
  /** Sends a partial result, relayed to callers and watchers in order (dropped likewise). */
  partial(body: Body | Body[]): Promise<void>;
  /**
   * More time: the run's deadline becomes at least `ms` from now. Resolves `'lease-lost'`
   * (never throws for it) when the broker took the job back: stop, it runs again.
   */
  extend(ms: number): Promise<ExtendOutcome>;
}

/**
 * Returns the result: a Buffer, string or Uint8Array is one frame, an array of them several
 * frames, undefined an empty frame, anything else is sent as JSON. A throw fails the attempt
 * (retried with backoff); throw a {@link JobFailure} with `retry: false` to fail it for good.
 */
export type JobHandler = (job: JobContext) => unknown;

export interface WorkerOptions {
  /** Most jobs at once (default 1). */
  concurrency?: number;
  /** Name shown by `ferry workers`. */
  name?: string;
  /** After this long with no job running, `onIdle` is called (ZMWS `idle()`). */
  idleMs?: number;
  onIdle?: () => void;
  /** Called when a handler throws or a report fails (default: ignored). */
  onError?: (err: unknown, job: JobContext) => void;
}

/** Throw from a handler to choose the error code, and whether the job is retried. */
export class JobFailure extends Error {
  constructor(
    message: string,
    readonly code = 'JOB_FAILED',
    readonly retry = true,
  ) {
    super(message);
    this.name = 'JobFailure';
  }
}

export interface Worker {
  readonly services: string[];
  /** Resolves once the broker has registered the worker (rejects if it refused). */
  readonly ready: Promise<void>;
  /** Jobs running now. */
  readonly running: number;
  /** Stops taking jobs, waits for the running ones (up to timeoutMs), then unregisters. */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

/** What the job code needs from the connection. @internal */
export interface JobWire {
  /** With `scope` (a session id): rejects LEASE_LOST, unsent, once that session is gone. */
  request(
    command: Command,
    args: Json,
    payload?: Buffer[],
    timeoutMs?: number,
    scope?: string,
  ): Promise<Reply>;
  /** The session now (undefined between sessions). */
  readonly session: string | undefined;
  /** A settle found its lease gone: counted and reported on the status stream. */
  reportLeaseLost(command: SettleCommand, id: string): void;
  /** Whether the broker announced `feature` in HELLO. */
  supports(feature: string): boolean;
  /**
   * A quiet report: answered only when it fails, to `onError`. Bound to no session: sent
   * after the next HELLO when there is none, and again after a new HELLO when the broker may
   * have been lost before reading it.
   */
  notify(command: Command, args: Json, payload: Buffer[], onError: (err: FerryError) => void): void;
  /** Sends a request whose EVENT messages go to onEvent until the stream is closed. */
  stream(
    command: Command,
    args: Json,
    payload: Buffer[],
    onEvent: (reply: Reply) => void,
    timeoutMs?: number,
  ): { reply: Promise<Reply>; close(): void };
  isClosed(): boolean;
}

/** A handler's return value as result frames. */
function resultFrames(value: unknown): Buffer[] {
  if (value === undefined || value === null) return [Buffer.alloc(0)];
  if (typeof value === 'string' || Buffer.isBuffer(value) || value instanceof Uint8Array) {
    return toFrames(value);
  }
  if (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((v) => typeof v === 'string' || Buffer.isBuffer(v) || v instanceof Uint8Array)
  ) {
    return toFrames(value);
  }
  return [Buffer.from(JSON.stringify(value), 'utf8')];
}

export function jobInfoOf(args: Json, payload: Buffer[]): JobInfo {
  const info = { ...(args as unknown as JobInfo) };
  delete (info as unknown as Record<string, unknown>)['resultFrames'];
  if (info.status === 'done') info.result = payload;
  return info;
}

/** The FerryError for a job that ended without a result. */
function jobError(info: JobInfo): FerryError {
  const code: ErrorCode =
    info.status === 'cancelled'
      ? 'JOB_CANCELLED'
      : info.status === 'expired'
        ? 'JOB_EXPIRED'
        : 'JOB_FAILED';
  const detail = info.error ? `${info.error.code}: ${info.error.message}` : info.status;
  return new FerryError(code, `job ${info.id} ${info.status} (${detail})`, {
    details: { job: info },
  });
}

export function updateOf(reply: Reply): JobUpdate | undefined {
  const a = reply.args;
  switch (a['type']) {
    case 'status':
      return { type: 'status', status: a['status'] as JobStatus, attempt: Number(a['attempt']) };
    case 'progress':
      return { type: 'progress', progress: a['progress'] };
    case 'partial':
      return {
        type: 'partial',
        seq: Number(a['seq']),
        body: reply.payload[0] ?? Buffer.alloc(0),
        frames: reply.payload,
      };
    case 'final':
      return { type: 'final', job: jobInfoOf(a['job'] as Json, reply.payload) };
    default:
      return undefined;
  }
}

/** A job by id: look at it, wait for it, cancel it, follow it. */
export class JobHandle {
  constructor(
    private readonly wire: JobWire,
    readonly id: string,
  ) {}

  /** Its state now (with the result frames once done). Rejects JOB_NOT_FOUND after retention. */
  async status(): Promise<JobInfo> {
    const reply = await this.wire.request('JOB', { id: this.id });
    return jobInfoOf(reply.args, reply.payload);
  }

  /** Waits for the job to end; resolves with its final state whatever the outcome. */
  async wait(options: { timeoutMs?: number } = {}): Promise<JobInfo> {
    const it = this.updates()[Symbol.asyncIterator]();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(
          () => reject(new FerryError('TIMEOUT', `job ${this.id} did not end in time`)),
          options.timeoutMs,
        );
      }
    });
    try {
      for (;;) {
        const next = await Promise.race([it.next(), timeout]);
        if (next.done) throw new FerryError('CONNECTION_CLOSED', 'the update stream ended');
        if (next.value.type === 'final') return next.value.job;
      }
    } finally {
      clearTimeout(timer);
      await it.return?.();
    }
  }

  /** Waits for the result frames; rejects JOB_FAILED / JOB_CANCELLED / JOB_EXPIRED otherwise. */
  async result(options: { timeoutMs?: number } = {}): Promise<Buffer[]> {
    const info = await this.wait(options);
    if (info.status !== 'done') throw jobError(info);
    return info.result ?? [];
  }

  /** Cancels it (a running job's worker is told); resolves with its state after. */
  async cancel(): Promise<JobInfo> {
    const reply = await this.wire.request('JOB_CANCEL', { id: this.id });
    return jobInfoOf(reply.args, reply.payload);
  }

  /**
   * Its updates from the start: status, progress, partials (each once, in order), then the
   * final state, after which the iteration ends. Break out of the loop to stop following.
   */
  updates(): AsyncIterable<JobUpdate> {
    return {
      [Symbol.asyncIterator]: (): AsyncIterator<JobUpdate> => {
        const items: JobUpdate[] = [];
        const waiters: {
          resolve: (r: IteratorResult<JobUpdate>) => void;
          reject: (e: unknown) => void;
        }[] = [];
        let ended = false;
        let failure: unknown;
        let lastSeq = 0;
        const push = (u: JobUpdate): void => {
          if (ended) return;
          if (u.type === 'partial') {
            if (u.seq <= lastSeq) return; // replayed after a reconnect
            lastSeq = u.seq;
          }
          const w = waiters.shift();
          if (w) w.resolve({ value: u, done: false });
          else items.push(u);
          if (u.type === 'final') finish();
        };
        const finish = (err?: unknown): void => {
          if (ended) return;
          ended = true;
          failure = err;
          s.close();
          for (const w of waiters.splice(0)) {
            if (err === undefined) w.resolve({ value: undefined, done: true });
            else w.reject(err);
          }
        };
        const s = this.wire.stream('WATCH', { id: this.id }, [], (reply) => {
          const u = updateOf(reply);
          if (u) push(u);
        });
        s.reply.then(
          () => {},
          (err: unknown) => {
            // The OK may come after the final event (the stream then already ended).
            if (!ended || items.length === 0) finish(err);
          },
        );
        return {
          next: () => {
            const v = items.shift();
            if (v !== undefined) return Promise.resolve({ value: v, done: false });
            if (failure !== undefined) {
              const e: unknown = failure;
              failure = undefined;
              return Promise.reject(e);
            }
            if (ended) return Promise.resolve({ value: undefined, done: true });
            return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
          },
          return: () => {
            if (!ended) {
              finish();
              this.wire.request('UNWATCH', { id: this.id }).catch(() => {});
            }
            return Promise.resolve({ value: undefined, done: true });
          },
        };
      },
    };
  }
}

/** A registered worker. @internal — use FerryClient.worker(). */
export class JobWorker implements Worker {
  readonly running = 0;
  private readonly active = new Map<string, AbortController>();
  private idleTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private drained: (() => void) | undefined;
  established = false;
  /** Set by the client once it has sent the registration. */
  ready: Promise<void> = Promise.resolve();

  constructor(
    private readonly wire: JobWire,
    readonly tag: string,
    readonly services: string[],
    private readonly handler: JobHandler,
    readonly options: WorkerOptions,
    private readonly onClosed: () => void,
  ) {
    Object.defineProperty(this, 'running', { get: () => this.active.size });
    this.armIdle();
  }

  /** The WORKER request's arguments (sent again after a reconnect). */
  registerArgs(): Json {
    const args: Json = { worker: this.tag, services: this.services };
    if (this.options.concurrency !== undefined) args['concurrency'] = this.options.concurrency;
    if (this.options.name !== undefined) args['name'] = this.options.name;
    return args;
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const { idleMs, onIdle } = this.options;
    if (idleMs === undefined || !onIdle || this.closing || this.active.size > 0) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      try {
        onIdle();
      } finally {
        this.armIdle();
      }
    }, idleMs);
    this.idleTimer.unref();
  }

  /** An ASSIGN for this worker. */
  onAssign(args: Json, payload: Buffer[]): void {
    const id = String(args['id']);
    // The job is held by this session: what settles it means nothing in another one.
    const session = this.wire.session;
    const controller = new AbortController();
    this.active.set(id, controller);
    this.armIdle();
    const ctx: JobContext = {
      id,
      service: String(args['service']),
      params: payload[0] ?? Buffer.alloc(0),
      frames: payload,
      headers: (args['headers'] as Record<string, string> | undefined) ?? {},
      attempt: Number(args['attempt'] ?? 1),
      signal: controller.signal,
      progress: (progress) => this.report({ id, progress: progress ?? null }, [], session),
      partial: (body) => this.report({ id, partial: true }, toFrames(body), session),
      extend: async (ms) => {
        const lost = await this.settle('JOB_EXTEND', { id, ms }, [], session);
        return lost ?? 'extended';
      },
    };
    void (async () => {
      let command: 'COMPLETE' | 'FAIL';
      let args2: Json;
      let frames: Buffer[] = [];
      try {
        const value: unknown = await this.handler(ctx);
        command = 'COMPLETE';
        args2 = { id };
        frames = resultFrames(value);
      } catch (err) {
        this.options.onError?.(err, ctx);
        command = 'FAIL';
        const e = err as { code?: unknown; message?: unknown; retry?: unknown };
        args2 = {
          id,
          code:
            typeof e?.code === 'string' && e.code.length > 0 && e.code.length <= 100
              ? e.code
              : 'JOB_FAILED',
          message: typeof e?.message === 'string' ? e.message.slice(0, 10_000) : String(err),
          retry: e?.retry !== false,
        };
      }
      // Reported even when aborted: the broker keeps the slot until it hears of the job. Not
      // bound to the session it was assigned in: after a broker crash the restarted broker
      // holds the job for its recovery grace, and this report, sent again once reconnected,
      // ends it instead of it running again (docs/semantics.md, Restart).
      try {
        if (this.wire.supports('quiet-reports')) {
          // Quietly: the broker answers only a failure — LEASE_LOST (the job was taken back
          // and runs again) is counted and reported, anything else goes to onError.
          this.wire.notify(command, args2, frames, (err) => {
            if (err.code === 'LEASE_LOST') this.wire.reportLeaseLost(command, id);
            else this.options.onError?.(err, ctx);
          });
        } else {
          await this.settle(command, args2, frames, undefined);
        }
      } catch (err) {
        this.options.onError?.(err, ctx);
      } finally {
        this.active.delete(id);
        this.armIdle();
        if (this.active.size === 0) this.drained?.();
      }
    })();
  }

  /**
   * Sends a settle of a job this session holds. LEASE_LOST (the broker took the job back: ack
   * timeout, restart, reconnect; it runs again) resolves `'lease-lost'`, counted and reported;
   * other errors reject. Waits for the broker however long it is away (no timeout).
   */
  private async settle(
    command: 'COMPLETE' | 'FAIL' | 'JOB_EXTEND',
    args: Json,
    frames: Buffer[],
    session: string | undefined,
  ): Promise<LeaseLost | undefined> {
    try {
      await this.wire.request(command, args, frames, 0, session);
      return undefined;
    } catch (err) {
      if (!(err instanceof FerryError && err.code === 'LEASE_LOST')) throw err;
      this.wire.reportLeaseLost(command, String(args['id']));
      return 'lease-lost';
    }
  }

  /** A PROGRESS report of a job this session holds: dropped once the job was taken back. */
  private async report(args: Json, frames: Buffer[], session: string | undefined): Promise<void> {
    try {
      await this.wire.request('PROGRESS', args, frames, undefined, session);
    } catch (err) {
      if (!(err instanceof FerryError && err.code === 'LEASE_LOST')) throw err;
    }
  }

  /** A REVOKE: the job was cancelled or taken back. */
  onRevoke(id: string): void {
    this.active
      .get(id)
      ?.abort(new FerryError('JOB_CANCELLED', `job ${id} was cancelled or taken back`));
  }

  /** The session was lost: the broker has requeued our jobs, so stop them. */
  abortAll(): void {
    for (const [id, c] of this.active) {
      c.abort(new FerryError('LEASE_LOST', `job ${id}: the connection to the broker was lost`));
    }
  }

  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.ready.catch(() => {});
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const timeoutMs = options.timeoutMs ?? 10_000;
    if (this.wire.isClosed()) return;
    await this.wire.request('WORKER_STOP', { worker: this.tag, drain: true }).catch(() => {});
    if (this.active.size > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        setTimeout(resolve, timeoutMs).unref();
      });
    }
    await this.wire.request('WORKER_STOP', { worker: this.tag }).catch(() => {});
    this.onClosed();
  }
}
