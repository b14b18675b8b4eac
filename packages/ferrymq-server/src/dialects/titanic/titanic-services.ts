/**
 * 9/TSP, the Titanic Service Protocol, as three services the broker answers itself on the
 * Majordomo endpoint, backed by Ferry's durable jobs:
 *
 * - `titanic.request` [service, body…] → `200` + job id once the job is stored (it survives
 *   a restart), or `500` + a reason frame when it could not be stored.
 * - `titanic.reply` [id] → `200` + the result once done, `300` while queued or running,
 *   `400` for an id that is unknown or closed, `500` + a reason frame when the job failed,
 *   expired or was cancelled (the request will not be run again).
 * - `titanic.close` [id] → `200`, always; the job is forgotten (cancelled first if pending).
 *
 * Ids are Ferry job ids: 32 lower-case hex digits. Status frames are exactly three digits;
 * any explanation travels in a separate frame after them.
 */
import type { JobApi } from '../../core/job-types.js';
import { isFinalStatus, isJobId, type JobInfo } from 'ferrymq/model';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { InternalServices } from '../mdp/internal-services.js';

const TITANIC_PREFIX = 'titanic.';
const TITANIC_REQUEST = 'titanic.request';
const TITANIC_REPLY = 'titanic.reply';
const TITANIC_CLOSE = 'titanic.close';

const TITANIC_OK = '200';
const TITANIC_PENDING = '300';
const TITANIC_UNKNOWN = '400';
const TITANIC_ERROR = '500';
/** Answer to a `titanic.*` service 9/TSP does not define. */
const TITANIC_NOT_IMPLEMENTED = '501';

export interface TitanicOptions {
  logger?: Logger;
  /** Says whether a service name is answered by the broker (those cannot be requested). */
  isReserved?: (service: string) => boolean;
}

function status(code: string, reason?: string): Buffer[] {
  return reason === undefined ? [Buffer.from(code)] : [Buffer.from(code), Buffer.from(reason)];
}

function reasonOf(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

export class TitanicServices implements InternalServices {
  private readonly log: Logger;
  private readonly isReserved: (service: string) => boolean;

  constructor(
    private readonly jobs: JobApi,
    options: TitanicOptions = {},
  ) {
    this.log = options.logger ?? silentLogger;
    this.isReserved = options.isReserved ?? (() => false);
  }

  owns(service: string): boolean {
    return service.startsWith(TITANIC_PREFIX);
  }

  provides(service: string): boolean {
    return service === TITANIC_REQUEST || service === TITANIC_REPLY || service === TITANIC_CLOSE;
  }

  async answer(service: string, body: Buffer[]): Promise<Buffer[]> {
    try {
      switch (service) {
        case TITANIC_REQUEST:
          return await this.request(body);
        case TITANIC_REPLY:
          return await this.reply(body);
        case TITANIC_CLOSE:
          return await this.close(body);
        default:
          return status(TITANIC_NOT_IMPLEMENTED, `${service} is not a Titanic service`);
      }
    } catch (err) {
      this.log.warn('titanic: request failed', { service, err: reasonOf(err) });
      return status(TITANIC_ERROR, reasonOf(err));
    }
  }

  private async request(body: Buffer[]): Promise<Buffer[]> {
    const target = body[0]?.toString('utf8') ?? '';
    if (target === '') return status(TITANIC_ERROR, 'the first frame must name a service');
    if (target.startsWith(TITANIC_PREFIX) || this.isReserved(target)) {
      return status(TITANIC_ERROR, `${target} is answered by the broker, not by a worker`);
    }
    const params = body.length > 1 ? body.slice(1) : [Buffer.alloc(0)];
    const job = await this.jobs.submit({ service: target, params, durable: true });
    return [Buffer.from(TITANIC_OK), Buffer.from(job.id)];
  }

  private async reply(body: Buffer[]): Promise<Buffer[]> {
    const id = this.idOf(body);
    if (id === undefined) return status(TITANIC_UNKNOWN);
    const job = await this.jobs.get(id);
    if (!job) return status(TITANIC_UNKNOWN);
    if (!isFinalStatus(job.status)) return status(TITANIC_PENDING);
    if (job.status === 'done') return [Buffer.from(TITANIC_OK), ...(job.result ?? [])];
    return status(TITANIC_ERROR, describeEnd(job));
  }

  private async close(body: Buffer[]): Promise<Buffer[]> {
    const id = this.idOf(body);
    // Forgetting cancels a job still pending; an unknown id is fine (idempotent).
    if (id !== undefined) await this.jobs.forget(id);
    return status(TITANIC_OK);
  }

  private idOf(body: Buffer[]): string | undefined {
    const id = body[0]?.toString('latin1').toLowerCase();
    return isJobId(id) ? id : undefined;
  }
}

function describeEnd(job: JobInfo): string {
  const why = job.error ? `${job.error.code}: ${job.error.message}` : job.status;
  return `job ${job.status}: ${why}`;
}
