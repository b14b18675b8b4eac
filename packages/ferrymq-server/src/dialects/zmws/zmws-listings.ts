/**
 * The ZMWS dialect's SERVER-* listings (SERVER-JOBS, SERVER-ACTIVE, SERVER-HIST,
 * SERVER-WORKERS): its SYNC jobs (transient, so not stored) while they run and their recent
 * history, merged with the job server's stored jobs; every worker, with the heartbeat
 * deadline of the dialect's own. Used by {@link ZmwsDialect} (zmws-dialect.ts).
 */
import type { Clock } from '../../core/clock.js';
import type { JobApi } from '../../core/job-types.js';
import type { JobInfo } from 'ferrymq/model';
import { zmwsJobEntry, type ZmwsJobEntry, type ZmwsServerQuery } from './zmws-commands.js';

/** Most entries in SERVER-JOBS, SERVER-ACTIVE and SERVER-HIST (ZMWS kept 100 of history). */
const ZMWS_LISTING_MAX = 100;
const MS_PER_S = 1_000;

/** What the listing shows of one of the dialect's workers. */
export interface ZmwsListedWorker {
  peer: Buffer;
  lastSeen: number;
  handle: { readonly id: string };
}

export interface ZmwsListingsOptions {
  jobs: JobApi;
  clock: Clock;
  /** The dialect's workers now. */
  workers: () => Iterable<ZmwsListedWorker>;
  /** A worker silent this long is purged: its `hb` is lastSeen plus this. */
  deadAfterMs: number;
}

export class ZmwsListings {
  private readonly jobs: JobApi;
  private readonly clock: Clock;
  private readonly workers: () => Iterable<ZmwsListedWorker>;
  private readonly deadAfterMs: number;
  private readonly syncJobs = new Map<string, ZmwsJobEntry>();
  private readonly history: ZmwsJobEntry[] = [];

  constructor(options: ZmwsListingsOptions) {
    this.jobs = options.jobs;
    this.clock = options.clock;
    this.workers = options.workers;
    this.deadAfterMs = options.deadAfterMs;
  }

  /** A SYNC job the job server accepted: listed as queued until a worker starts it. */
  syncSubmitted(job: JobInfo, service: string): ZmwsJobEntry {
    const record: ZmwsJobEntry = {
      jobid: job.id,
      service,
      reqtime: job.createdAt / MS_PER_S,
      startedat: null,
      completedat: null,
      status: 'queued',
    };
    this.syncJobs.set(job.id, record);
    return record;
  }

  /** A worker started the SYNC job. */
  syncStarted(record: ZmwsJobEntry): void {
    record.startedat = this.clock.now() / MS_PER_S;
    record.status = 'running';
  }

  /** The SYNC job ended: it moves to the history. */
  syncFinished(job: JobInfo): void {
    const record = this.syncJobs.get(job.id);
    if (!record) return;
    this.syncJobs.delete(job.id);
    record.completedat = this.clock.now() / MS_PER_S;
    record.status = job.status;
    this.history.push(record);
    if (this.history.length > ZMWS_LISTING_MAX) this.history.shift();
  }

  /** The JSON array a SERVER-* query answers (field names as ZMWS 1.0 used them). */
  async listing(query: ZmwsServerQuery): Promise<unknown[]> {
    if (query === 'SERVER-WORKERS') return this.workerListing();
    const sync = [...this.syncJobs.values()];
    if (query === 'SERVER-JOBS') {
      const stored = await this.jobs.list({ status: 'queued', limit: ZMWS_LISTING_MAX });
      return [...sync.filter((j) => j.status === 'queued'), ...stored.map(zmwsJobEntry)].slice(
        0,
        ZMWS_LISTING_MAX,
      );
    }
    if (query === 'SERVER-ACTIVE') {
      const stored = await this.jobs.list({ status: 'running', limit: ZMWS_LISTING_MAX });
      return [...sync.filter((j) => j.status === 'running'), ...stored.map(zmwsJobEntry)].slice(
        0,
        ZMWS_LISTING_MAX,
      );
    }
    const finished = (
      await Promise.all(
        (['done', 'failed', 'cancelled', 'expired'] as const).map((status) =>
          this.jobs.list({ status, limit: ZMWS_LISTING_MAX }),
        ),
      )
    )
      .flat()
      .map(zmwsJobEntry);
    return [...finished, ...this.history]
      .sort((a, b) => (a.completedat ?? 0) - (b.completedat ?? 0))
      .slice(-ZMWS_LISTING_MAX);
  }

  private workerListing(): unknown[] {
    const ours = new Map<string, ZmwsListedWorker>();
    for (const w of this.workers()) ours.set(w.handle.id, w);
    const out: unknown[] = [];
    for (const info of this.jobs.workers()) {
      const z = ours.get(info.id);
      for (const service of info.services) {
        out.push({
          hb: z ? (z.lastSeen + this.deadAfterMs) / MS_PER_S : null,
          service,
          workerid: z ? z.peer.toString('latin1') : info.name,
          protocol: info.protocol,
          running: info.running,
        });
      }
    }
    return out;
  }
}
