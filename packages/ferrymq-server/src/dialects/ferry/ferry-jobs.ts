/**
 * The job commands of FERRY01 (docs/protocol.md §8) mapped onto the job server: callers
 * (SUBMIT, CALL, MULTICAST, JOB, JOBS, WATCH, JOB_CANCEL), workers (WORKER, COMPLETE, FAIL,
 * PROGRESS, JOB_EXTEND, WORKER_STOP) and listings (SERVICES, WORKERS). A peer's workers and
 * watches end with its session.
 */
import type { JobApi, WorkerHandle } from '../../core/job-types.js';
import {
  type ErrorCode,
  FerryError,
  type Headers,
  JOB_STATUSES,
  type JobEvent,
  type JobInfo,
  type JobStatus,
  type NewJob,
} from 'ferrymq/model';
import { encodeReply, type Json, type Request } from 'ferrymq/protocol';
import { CommandGroup, type PeerSend } from './command-group.js';
import { optBool, optInt, optNumber, optString, reqString } from './args.js';

const EMPTY = Buffer.alloc(0);
const MAX_WORKERS_PER_SESSION = 1_000;
const MAX_WATCHES_PER_SESSION = 10_000;

interface PeerJobs {
  id: Buffer;
  workers: Map<string, WorkerHandle>;
  /** Which of the peer's workers holds each job it was assigned. */
  owner: Map<string, string>;
  watches: Map<string, () => void>;
  nextWorker: number;
}

/** The wire form of a job: JSON fields, and its result frames as the payload. */
function jobJson(info: JobInfo): { args: Json; payload: Buffer[] } {
  const args: Json = {
    id: info.id,
    service: info.service,
    status: info.status,
    durable: info.durable,
    attempts: info.attempts,
    priority: info.priority,
    createdAt: info.createdAt,
    startedAt: info.startedAt,
    finishedAt: info.finishedAt,
    retainUntil: info.retainUntil,
    partials: info.partials,
    resultFrames: info.result?.length ?? 0,
  };
  if (info.progress !== undefined) args['progress'] = info.progress;
  if (info.error) args['error'] = info.error;
  if (info.children) args['children'] = info.children;
  return { args, payload: info.result ?? [] };
}

/** The error a caller gets for a job that ended without a result. */
function jobErrorCode(status: JobStatus): ErrorCode {
  if (status === 'cancelled') return 'JOB_CANCELLED';
  if (status === 'expired') return 'JOB_EXPIRED';
  return 'JOB_FAILED';
}

export class FerryJobCommands extends CommandGroup {
  private readonly peers = new Map<string, PeerJobs>();

  constructor(
    private readonly jobs: JobApi,
    sendTo: PeerSend,
  ) {
    super(sendTo);
  }

  private peer(peerId: Buffer, key: string): PeerJobs {
    let p = this.peers.get(key);
    if (!p) {
      p = { id: peerId, workers: new Map(), owner: new Map(), watches: new Map(), nextWorker: 1 };
      this.peers.set(key, p);
    }
    return p;
  }

  /** Handles one job command; throws FerryError for bad arguments (answered by the caller). */
  handle(peerId: Buffer, key: string, req: Request): void {
    const { args, requestId, payload } = req;
    switch (req.command) {
      case 'SUBMIT': {
        const job = newJob(args, payload, true);
        job.delayMs = optNumber(args, 'delayMs');
        job.dedupKey = optString(args, 'dedupKey');
        this.answer(
          peerId,
          requestId,
          this.jobs.submit(job).then((info) => jobJson(info).args),
        );
        return;
      }
      case 'CALL': {
        // Not durable unless asked; the job server decides when only another broker can run it.
        const job = newJob(args, payload, undefined);
        job.dedupKey = optString(args, 'dedupKey');
        const timeoutMs = optNumber(args, 'timeoutMs');
        const stream = optBool(args, 'stream') ?? false;
        let jobId = '';
        let answered = false;
        this.jobs
          .call(job, {
            timeoutMs,
            onSubmitted: (info) => (jobId = info.id),
            onEvent: stream ? (ev) => this.sendEvent(peerId, requestId, jobId, ev) : undefined,
            // Answer the moment the job ends, ahead of the worker's own acknowledgement.
            onFinal: (info) => {
              answered = true;
              this.final(peerId, requestId, info);
            },
          })
          .catch((err: unknown) => {
            if (!answered) this.fail(peerId, requestId, err);
          });
        return;
      }
      case 'MULTICAST': {
        const services = args['services'];
        if (!Array.isArray(services) || !services.every((s) => typeof s === 'string')) {
          throw new FerryError('BAD_ARGUMENTS', 'services must be an array of service names');
        }
        const job = newJob({ ...args, service: 'multicast' }, payload, true);
        job.dedupKey = optString(args, 'dedupKey');
        const { service: _s, ...rest } = job;
        this.answer(
          peerId,
          requestId,
          this.jobs.multicast(services, rest).then((info) => jobJson(info).args),
        );
        return;
      }
      case 'JOB': {
        const id = reqString(args, 'id');
        this.jobs
          .get(id)
          .then(
            (info) => {
              if (!info) throw new FerryError('JOB_NOT_FOUND', `no job ${id}`);
              const j = jobJson(info);
              this.ok(peerId, requestId, j.args, j.payload);
            },
            (err: unknown) => this.fail(peerId, requestId, err),
          )
          .catch((err: unknown) => this.fail(peerId, requestId, err));
        return;
      }
      case 'JOBS': {
        const status = optString(args, 'status');
        if (status !== undefined && !(JOB_STATUSES as readonly string[]).includes(status)) {
          throw new FerryError('BAD_ARGUMENTS', `status must be one of ${JOB_STATUSES.join(', ')}`);
        }
        this.answer(
          peerId,
          requestId,
          this.jobs
            .list({
              service: optString(args, 'service'),
              status: status as JobStatus | undefined,
              limit: optInt(args, 'limit'),
            })
            .then((list) => ({ jobs: list.map((i) => jobJson(i).args) })),
        );
        return;
      }
      case 'WATCH': {
        const id = reqString(args, 'id');
        const p = this.peer(peerId, key);
        if (p.watches.has(id)) throw new FerryError('BAD_ARGUMENTS', `already watching ${id}`);
        if (p.watches.size >= MAX_WATCHES_PER_SESSION) {
          throw new FerryError('BAD_ARGUMENTS', 'too many watches in this session');
        }
        // Events of the snapshot wait until the OK is out, then follow in order.
        let buffered: JobEvent[] | undefined = [];
        const listener = (ev: JobEvent): void => {
          if (buffered) buffered.push(ev);
          else this.sendEvent(peerId, requestId, id, ev);
          if (ev.type === 'final') p.watches.delete(id);
        };
        p.watches.set(id, () => {});
        this.jobs.watch(id, listener).then(
          (stop) => {
            const events = buffered ?? [];
            buffered = undefined;
            this.ok(peerId, requestId, { id });
            for (const ev of events) this.sendEvent(peerId, requestId, id, ev);
            if (events.some((e) => e.type === 'final')) {
              p.watches.delete(id);
              stop();
            } else p.watches.set(id, stop);
          },
          (err: unknown) => {
            p.watches.delete(id);
            this.fail(peerId, requestId, err);
          },
        );
        return;
      }
      case 'UNWATCH': {
        const id = reqString(args, 'id');
        const p = this.peer(peerId, key);
        p.watches.get(id)?.();
        p.watches.delete(id);
        this.ok(peerId, requestId);
        return;
      }
      case 'JOB_CANCEL': {
        const id = reqString(args, 'id');
        this.answer(
          peerId,
          requestId,
          this.jobs.cancel(id).then((info) => jobJson(info).args),
        );
        return;
      }
      case 'WORKER': {
        const p = this.peer(peerId, key);
        const services = args['services'];
        if (!Array.isArray(services) || !services.every((s) => typeof s === 'string')) {
          throw new FerryError('BAD_ARGUMENTS', 'services must be an array of service names');
        }
        const tag = optString(args, 'worker') ?? `w${p.nextWorker++}`;
        if (tag.length === 0 || tag.length > 100) {
          throw new FerryError('BAD_ARGUMENTS', 'worker tag must be 1–100 characters');
        }
        if (p.workers.has(tag)) {
          throw new FerryError('WORKER_EXISTS', `worker ${tag} already exists in this session`);
        }
        if (p.workers.size >= MAX_WORKERS_PER_SESSION) {
          throw new FerryError('BAD_ARGUMENTS', 'too many workers in this session');
        }
        const handle = this.jobs.registerWorker(
          {
            assign: (job) => {
              p.owner.set(job.id, tag);
              const a: Json = {
                worker: tag,
                id: job.id,
                service: job.service,
                attempt: job.attempt,
                deadline: job.deadline,
              };
              if (job.headers) a['headers'] = job.headers;
              this.sendTo(peerId, encodeReply('ASSIGN', EMPTY, a, job.params));
            },
            cancel: (jobId) => {
              this.sendTo(peerId, encodeReply('REVOKE', EMPTY, { worker: tag, id: jobId }));
            },
          },
          {
            services: services,
            concurrency: optInt(args, 'concurrency'),
            name: optString(args, 'name'),
            protocol: 'ferry',
          },
        );
        p.workers.set(tag, handle);
        this.ok(peerId, requestId, { worker: tag, id: handle.id });
        return;
      }
      case 'WORKER_STOP': {
        const p = this.peer(peerId, key);
        const tag = reqString(args, 'worker');
        const handle = p.workers.get(tag);
        if (!handle) throw new FerryError('WORKER_NOT_FOUND', `no worker ${tag} in this session`);
        if (optBool(args, 'drain') === true) {
          handle.pause();
        } else {
          handle.close();
          p.workers.delete(tag);
          for (const [job, owner] of p.owner) if (owner === tag) p.owner.delete(job);
        }
        this.ok(peerId, requestId);
        return;
      }
      case 'COMPLETE':
      case 'FAIL': {
        const id = reqString(args, 'id');
        // Checked before the report is applied: a malformed one changes nothing.
        const quiet = optBool(args, 'quiet') === true;
        const error = {
          code: optString(args, 'code') ?? 'JOB_FAILED',
          message: optString(args, 'message') ?? 'the worker reported a failure',
        };
        const retry = optBool(args, 'retry') ?? true;
        const p = this.peer(peerId, key);
        const tag = p.owner.get(id);
        const handle = tag === undefined ? undefined : p.workers.get(tag);
        p.owner.delete(id);
        // Not this session's: maybe a run from before a restart, re-sent by a reconnected worker.
        const work = !handle
          ? this.jobs.reportRecovered(
              id,
              req.command === 'COMPLETE'
                ? { type: 'complete', result: payload }
                : { type: 'fail', error, retry },
            )
          : req.command === 'COMPLETE'
            ? handle.complete(id, payload)
            : handle.fail(id, error, { retry });
        const reported = work.then((r) => {
          if (r !== null) throw new FerryError(r, `job ${id} is not held by this worker`);
          return {};
        });
        // A quiet report is answered only when it fails (one message less per job).
        if (quiet) this.answerErrors(peerId, requestId, reported);
        else this.answer(peerId, requestId, reported);
        return;
      }
      case 'PROGRESS': {
        const id = reqString(args, 'id');
        const handle = this.ownerOf(peerId, key, id);
        let r = null;
        if (Object.hasOwn(args, 'progress')) r = handle.progress(id, args['progress'] as never);
        if (r === null && optBool(args, 'partial') === true) r = handle.partial(id, payload);
        if (r !== null) throw new FerryError(r, `job ${id} is not held by this worker`);
        this.ok(peerId, requestId);
        return;
      }
      case 'JOB_EXTEND': {
        const id = reqString(args, 'id');
        const ms = optNumber(args, 'ms');
        if (ms === undefined) throw new FerryError('BAD_ARGUMENTS', 'JOB_EXTEND needs ms');
        const r = this.ownerOf(peerId, key, id).extend(id, ms);
        if (r !== null) throw new FerryError(r, `job ${id} is not held by this worker`);
        this.ok(peerId, requestId);
        return;
      }
      case 'SERVICES':
        this.answer(
          peerId,
          requestId,
          this.jobs.services().then((services) => ({ services })),
        );
        return;
      case 'WORKERS':
        this.ok(peerId, requestId, { workers: this.jobs.workers() });
        return;
      default:
        throw new FerryError('UNKNOWN_COMMAND', `not a job command: ${req.command}`);
    }
  }

  private ownerOf(peerId: Buffer, key: string, jobId: string): WorkerHandle {
    const p = this.peer(peerId, key);
    const tag = p.owner.get(jobId);
    const handle = tag === undefined ? undefined : p.workers.get(tag);
    if (!handle) {
      throw new FerryError('LEASE_LOST', `job ${jobId} is not held by a worker of this session`);
    }
    return handle;
  }

  private final(peer: Buffer, requestId: Buffer, info: JobInfo): void {
    const j = jobJson(info);
    if (info.status === 'done') {
      this.ok(peer, requestId, j.args, j.payload);
      return;
    }
    const code = jobErrorCode(info.status);
    this.sendTo(
      peer,
      encodeReply('ERROR', requestId, {
        code,
        message: info.error?.message ?? `job ${info.status}`,
        job: j.args,
      }),
    );
  }

  private sendEvent(peer: Buffer, requestId: Buffer, id: string, ev: JobEvent): void {
    const args: Json = { id, type: ev.type };
    let payload: Buffer[] = [];
    if (ev.type === 'status') {
      args['status'] = ev.status;
      args['attempt'] = ev.attempt;
    } else if (ev.type === 'progress') {
      args['progress'] = ev.progress;
    } else if (ev.type === 'partial') {
      args['seq'] = ev.seq;
      payload = ev.frames;
    } else {
      const j = jobJson(ev.job);
      args['job'] = j.args;
      payload = j.payload;
    }
    this.sendTo(peer, encodeReply('EVENT', requestId, args, payload));
  }

  /** The peer's session ended: its workers are gone (their jobs requeued), watches stop. */
  closePeer(key: string): void {
    const p = this.peers.get(key);
    if (!p) return;
    this.peers.delete(key);
    for (const w of p.workers.values()) w.close();
    for (const stop of p.watches.values()) stop();
  }

  close(): void {
    for (const key of [...this.peers.keys()]) this.closePeer(key);
  }
}

function newJob(args: Json, payload: Buffer[], durableDefault: boolean | undefined): NewJob {
  if (payload.length === 0) {
    throw new FerryError('BAD_FRAME', 'a job needs at least one params frame after the arguments');
  }
  const headers = args['headers'];
  if (headers !== undefined && (typeof headers !== 'object' || headers === null)) {
    throw new FerryError('BAD_ARGUMENTS', 'headers must be an object of strings');
  }
  return {
    service: reqString(args, 'service'),
    params: payload,
    headers: headers as Headers | undefined,
    priority: optInt(args, 'priority'),
    ttlMs: optNumber(args, 'ttlMs'),
    maxAttempts: optInt(args, 'maxAttempts'),
    durable: optBool(args, 'durable') ?? durableDefault,
  };
}
