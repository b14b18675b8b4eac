/**
 * The job server's tables in the PostgreSQL store. Every call runs inside the store's group
 * commit (the `run` function it is given).
 */
import type { JobStatus } from 'ferrymq/model';
import type {
  InsertJobsOutcome,
  JobCounts,
  JobFinish,
  JobListOptions,
  JobRow,
  JobSettled,
  JobStorage,
  JobSweepOutcome,
  NewJobRow,
} from '../types.js';
import type { PgSession, PgWriteLevel } from './pg-writer.js';

type Run = <T>(fn: (db: PgSession) => Promise<T>, level?: PgWriteLevel) => Promise<T>;

export class PgJobStorage implements JobStorage {
  constructor(
    private readonly run: Run,
    readonly durable: () => Promise<void>,
    private readonly nodeId: string,
  ) {}
  insert(_jobs: NewJobRow[]): Promise<InsertJobsOutcome> {
    throw new Error('not built yet');
  }
  lease(_service: string, _max: number, _now: number): Promise<JobRow[]> {
    throw new Error('not built yet');
  }
  finish(_id: string, _attempt: number, _finish: JobFinish): Promise<boolean> {
    throw new Error('not built yet');
  }
  requeue(_id: string, _attempt: number, _notBefore: number, _uncount?: boolean): Promise<boolean> {
    throw new Error('not built yet');
  }
  settle(_id: string, _finish: JobFinish): Promise<JobSettled | null> {
    throw new Error('not built yet');
  }
  setProgress(_id: string, _progress: string): Promise<void> {
    throw new Error('not built yet');
  }
  addPartial(_id: string, _seq: number, _frames: Buffer[]): Promise<void> {
    throw new Error('not built yet');
  }
  partials(_id: string): Promise<{ seq: number; frames: Buffer[] }[]> {
    throw new Error('not built yet');
  }
  get(_id: string): Promise<JobRow | null> {
    throw new Error('not built yet');
  }
  remove(_id: string): Promise<{ service: string; status: JobStatus } | null> {
    throw new Error('not built yet');
  }
  counts(): Promise<Map<string, JobCounts>> {
    throw new Error('not built yet');
  }
  sweep(_now: number, _max: number): Promise<JobSweepOutcome> {
    throw new Error('not built yet');
  }
  list(_options: JobListOptions): Promise<JobRow[]> {
    throw new Error('not built yet');
  }
  retry(_id: string, _notBefore: number): Promise<JobSettled | null> {
    throw new Error('not built yet');
  }
}
