/**
 * Operating on jobs from the outside (the dashboard, the HTTP gateway): a job with its
 * parameters and partial results, search and paging over the stored jobs, and retry (a
 * failed, cancelled or expired durable job back to queued for a fresh run).
 */
import { FerryError, isJobId, type Headers, type JobInfo, type JobStatus } from 'ferrymq/model';
import type { JobDispatch } from './job-dispatch.js';
import { jobInfo, rowInfo } from './job-records.js';
import type { JobServerState } from './job-server-state.js';
import { markDue, MULTICAST_SERVICE } from './job-state.js';
import type { JobWatchers } from './job-watchers.js';

/** Most jobs one search page holds. */
export const MAX_JOB_PAGE = 200;
/** Longest search text. */
export const MAX_JOB_SEARCH_LENGTH = 200;

/** A job with what its listing leaves out: parameters, headers and partial results. */
export interface JobDetail {
  job: JobInfo;
  params: Buffer[];
  headers: Headers | undefined;
  maxAttempts: number;
  partials: { seq: number; frames: Buffer[] }[];
}

export interface JobSearchOptions {
  service?: string | undefined;
  status?: JobStatus | undefined;
  /** Only jobs whose id starts with, or whose service contains, this text. */
  search?: string | undefined;
  limit?: number | undefined;
  offset?: number | undefined;
}

/** Implemented by the job server; the gateway's job admin routes call it. */
export interface JobAdmin {
  inspect(id: string): Promise<JobDetail>;
  /** Stored jobs, newest first, one page; `more` when a next page has jobs. */
  search(options: JobSearchOptions): Promise<{ jobs: JobInfo[]; more: boolean }>;
  retry(id: string): Promise<JobInfo>;
}

function checkId(id: string): void {
  if (!isJobId(id)) throw new FerryError('BAD_ARGUMENTS', 'a job id is 32 lower-case hex digits');
}

export class JobAdminOps implements JobAdmin {
  constructor(
    private readonly state: JobServerState,
    private readonly dispatch: JobDispatch,
    private readonly watchers: JobWatchers,
  ) {}

  async inspect(id: string): Promise<JobDetail> {
    checkId(id);
    const state = this.state;
    const t = state.transient.get(id);
    if (t) {
      const { partials, params, headers, maxAttempts } = t;
      return { job: jobInfo(t), params, headers, maxAttempts, partials };
    }
    const row = await state.calls.track(state.storage.get(id));
    if (!row) throw new FerryError('JOB_NOT_FOUND', `no job ${id}`);
    const partials = await state.calls.track(state.storage.partials(id));
    const info = rowInfo(row);
    const r = state.runs.get(id);
    if (r) info.progress = r.job.progress ?? info.progress;
    return {
      job: info,
      params: row.params,
      headers: row.headers,
      maxAttempts: row.maxAttempts,
      partials,
    };
  }

  async search(options: JobSearchOptions): Promise<{ jobs: JobInfo[]; more: boolean }> {
    const limit = options.limit ?? 20;
    const offset = options.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_JOB_PAGE) {
      throw new FerryError('BAD_ARGUMENTS', `limit must be an integer 1–${MAX_JOB_PAGE}`);
    }
    if (!Number.isInteger(offset) || offset < 0) {
      throw new FerryError('BAD_ARGUMENTS', 'offset must be an integer ≥ 0');
    }
    const search = options.search === '' ? undefined : options.search;
    if (search !== undefined && search.length > MAX_JOB_SEARCH_LENGTH) {
      throw new FerryError('BAD_ARGUMENTS', `search is at most ${MAX_JOB_SEARCH_LENGTH} chars`);
    }
    const rows = await this.state.calls.track(
      this.state.storage.list({
        service: options.service,
        status: options.status,
        search,
        offset,
        limit: limit + 1,
      }),
    );
    return { jobs: rows.slice(0, limit).map(rowInfo), more: rows.length > limit };
  }

  async retry(id: string): Promise<JobInfo> {
    checkId(id);
    const state = this.state;
    if (state.closing) throw new FerryError('SHUTTING_DOWN');
    if (state.transient.get(id)) {
      throw new FerryError('JOB_NOT_RETRYABLE', `job ${id} is transient: nothing stored to rerun`);
    }
    const before = await state.calls.track(state.storage.get(id));
    if (!before) throw new FerryError('JOB_NOT_FOUND', `no job ${id}`);
    if (before.service === MULTICAST_SERVICE || before.parentId !== null) {
      throw new FerryError('JOB_NOT_RETRYABLE', `job ${id} is part of a multicast`);
    }
    const s = state.service(before.service);
    const queued = s.transient.length + state.queuedDurable(s) + s.pendingDurable;
    if (queued >= s.policy.maxQueued) {
      throw new FerryError('QUEUE_FULL', `service ${s.name} holds ${queued} queued jobs`);
    }
    if (state.isStorageLow()) {
      throw new FerryError('STORAGE_FULL', 'free disk space is below the floor; jobs are refused');
    }
    const now = state.clock.now();
    const settled = await state.calls.track(state.storage.retry(id, now));
    if (!settled) {
      const status = (await state.calls.track(state.storage.get(id)))?.status ?? before.status;
      throw new FerryError(
        'JOB_NOT_RETRYABLE',
        `job ${id} is ${status}; only failed, cancelled or expired jobs are retried`,
      );
    }
    state.durable.move(s.name, settled.previous, 'queued');
    this.watchers.emit(id, { type: 'status', status: 'queued', attempt: 0 });
    markDue(s);
    this.dispatch.pump(s);
    return rowInfo(settled.row);
  }
}
