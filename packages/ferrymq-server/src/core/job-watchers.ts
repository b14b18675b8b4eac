/**
 * Job event streams: watchers per job, live events fanned out to them, and a late watcher's
 * start: the job's state so far (status, progress, partials, final) from memory or the store,
 * then the live events that came meanwhile without repeats. Also how a call waits for its job's
 * final state.
 */
import {
  FerryError,
  isFinalStatus,
  isJobId,
  type JobEvent,
  type JobInfo,
  toFerryError,
} from 'ferrymq/model';
import type { Clock } from './clock.js';
import { jobInfo } from './job-records.js';
import type { CallOptions } from './job-types.js';
import type { Logger } from './logger.js';
import type { TransientJobs } from './transient-jobs.js';

export type Watcher = (event: JobEvent) => void;

type Partials = { seq: number; frames: Buffer[] }[];

export class JobWatchers {
  private readonly watchers = new Map<string, Set<Watcher>>();
  /** Per watched job: the last status/attempt, progress (JSON) and partial sent. */
  private readonly seen = new Map<
    string,
    { status: string; progress: string | undefined; seq: number }
  >();

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly transient: TransientJobs,
    /** A job's current state (durable ones from the store). */
    private readonly get: (id: string) => Promise<JobInfo | null>,
    /** A durable job's stored partial results. */
    private readonly storedPartials: (id: string) => Promise<Partials>,
    /** Cancels a job (a call that timed out). */
    private readonly cancel: (id: string) => Promise<JobInfo>,
  ) {}

  /**
   * Streams a job's events from the start, then live ones; resolves with a stop function.
   * `submitted`: the job as its submit just returned it (a call's own job), so the snapshot is
   * taken from memory instead of read back from the store.
   */
  async watch(id: string, listener: Watcher, submitted?: JobInfo): Promise<() => void> {
    if (!isJobId(id)) throw new FerryError('BAD_ARGUMENTS', 'a job id is 32 lower-case hex digits');
    // Live events are buffered while the snapshot loads, then replayed past it.
    const buffered: JobEvent[] = [];
    let live = false;
    let stopped = false;
    const w: Watcher = (ev) => {
      if (stopped) return;
      if (live) listener(ev);
      else buffered.push(ev);
    };
    let set = this.watchers.get(id);
    if (!set) this.watchers.set(id, (set = new Set()));
    set.add(w);
    const stop = (): void => {
      stopped = true;
      const s = this.watchers.get(id);
      s?.delete(w);
      if (s && s.size === 0) {
        this.watchers.delete(id);
        this.seen.delete(id);
      }
    };
    let info: JobInfo | null;
    let partials: Partials;
    try {
      const t = this.transient.get(id);
      if (t) {
        info = jobInfo(t);
        partials = t.partials.slice();
      } else if (submitted) {
        info = submitted;
        partials = [];
      } else {
        info = await this.get(id);
        partials = info && info.partials > 0 ? await this.storedPartials(id) : [];
      }
    } catch (err) {
      stop();
      throw err;
    }
    if (!info) {
      stop();
      throw new FerryError('JOB_NOT_FOUND', `no job ${id}`);
    }
    let lastStatus = `${info.status}/${info.attempts}`;
    this.note(id, { type: 'status', status: info.status, attempt: info.attempts });
    if (info.progress !== undefined) this.note(id, { type: 'progress', progress: info.progress });
    for (const p of partials) this.note(id, { type: 'partial', seq: p.seq, frames: p.frames });
    listener({ type: 'status', status: info.status, attempt: info.attempts });
    if (info.progress !== undefined) listener({ type: 'progress', progress: info.progress });
    let lastSeq = 0;
    for (const p of partials) {
      listener({ type: 'partial', seq: p.seq, frames: p.frames });
      lastSeq = p.seq;
    }
    let final = isFinalStatus(info.status);
    if (final) listener({ type: 'final', job: info });
    for (const ev of buffered) {
      if (final || stopped) break;
      if (ev.type === 'partial' && ev.seq <= lastSeq) continue;
      if (ev.type === 'status') {
        // The snapshot may already show it.
        const key = `${ev.status}/${ev.attempt}`;
        if (key === lastStatus) continue;
        lastStatus = key;
      }
      if (ev.type === 'partial') lastSeq = ev.seq;
      if (ev.type === 'final') final = true;
      listener(ev);
    }
    buffered.length = 0;
    live = true;
    if (final) stop();
    return stop;
  }

  /**
   * Another broker changed a job (a shared store): if anyone here watches it, its row and
   * partial results are read again and what is new goes out as events — partials past the
   * last one sent, a changed progress, a new status or attempt, the final state.
   */
  async refresh(id: string): Promise<void> {
    if (!this.watchers.has(id)) return;
    const info = await this.get(id);
    if (!info || !this.watchers.has(id)) return;
    const seen = this.seen.get(id) ?? { status: '', progress: undefined, seq: 0 };
    if (info.partials > seen.seq) {
      for (const p of await this.storedPartials(id)) {
        if (p.seq > (this.seen.get(id)?.seq ?? 0)) {
          this.emit(id, { type: 'partial', seq: p.seq, frames: p.frames });
        }
      }
    }
    if (info.progress !== undefined && JSON.stringify(info.progress) !== seen.progress) {
      this.emit(id, { type: 'progress', progress: info.progress });
    }
    if (isFinalStatus(info.status)) this.emit(id, { type: 'final', job: info });
    else if (`${info.status}/${info.attempts}` !== seen.status) {
      this.emit(id, { type: 'status', status: info.status, attempt: info.attempts });
    }
  }

  /** Ids of the jobs someone here watches. */
  watchedIds(): string[] {
    return [...this.watchers.keys()];
  }

  /** Tells a job's watchers of an event; a final one ends their streams. */
  emit(id: string, ev: JobEvent): void {
    const set = this.watchers.get(id);
    if (!set) return;
    this.note(id, ev);
    for (const w of [...set]) {
      try {
        w(ev);
      } catch (err) {
        this.log.error('job watcher threw', { job: id, err: String(err) });
      }
    }
    if (ev.type === 'final') {
      this.watchers.delete(id);
      this.seen.delete(id);
    }
  }

  /** Remembers what watchers of a job were last told (for refresh). */
  private note(id: string, ev: JobEvent): void {
    let seen = this.seen.get(id);
    if (!seen) this.seen.set(id, (seen = { status: '', progress: undefined, seq: 0 }));
    if (ev.type === 'status') seen.status = `${ev.status}/${ev.attempt}`;
    else if (ev.type === 'progress') seen.progress = JSON.stringify(ev.progress);
    else if (ev.type === 'partial') seen.seq = Math.max(seen.seq, ev.seq);
  }

  /**
   * Resolves with the job's final state (streaming its events to onEvent meanwhile); after
   * `timeoutMs` rejects with TIMEOUT and cancels the job.
   */
  awaitFinal(id: string, options: CallOptions, submitted?: JobInfo): Promise<JobInfo> {
    return new Promise<JobInfo>((resolve, reject) => {
      let stop: (() => void) | undefined;
      let settled = false;
      let cancelTimer: (() => void) | undefined;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        cancelTimer?.();
        stop?.();
        fn();
      };
      if (options.timeoutMs !== undefined) {
        cancelTimer = this.clock.setTimer(() => {
          finish(() =>
            reject(new FerryError('TIMEOUT', `no result within ${options.timeoutMs} ms`)),
          );
          this.cancel(id).catch(() => {});
        }, options.timeoutMs);
      }
      this.watch(
        id,
        (ev) => {
          if (ev.type === 'final') {
            finish(() => {
              options.onFinal?.(ev.job);
              resolve(ev.job);
            });
          } else if (!settled) options.onEvent?.(ev);
        },
        submitted,
      ).then(
        (s) => {
          if (settled) s();
          else stop = s;
        },
        (err: unknown) => finish(() => reject(toFerryError(err))),
      );
    });
  }
}
