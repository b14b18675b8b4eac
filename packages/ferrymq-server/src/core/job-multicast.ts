/**
 * Multicast jobs: one job to several services as a parent with a child per service, stored
 * together (all or nothing). When the last child ends, the parent ends: done when every child
 * is, failed otherwise, with a summary of the children as its result.
 */
import {
  FerryError,
  isFinalStatus,
  type JobError,
  type JobInfo,
  type NewJob,
  toFerryError,
} from 'ferrymq/model';
import type { JobDispatch } from './job-dispatch.js';
import { jobInfo, newJobId, rowInfo, toRow } from './job-records.js';
import type { JobRuns } from './job-runs.js';
import type { JobServerState } from './job-server-state.js';
import { MULTICAST_SERVICE, enqueueTransient, markDue, type Job } from './job-state.js';
import type { JobSubmit } from './job-submit.js';
import type { JobWatchers } from './job-watchers.js';

export class JobMulticast {
  constructor(
    private readonly state: JobServerState,
    private readonly dispatch: JobDispatch,
    private readonly submitter: JobSubmit,
    private readonly runs: JobRuns,
    private readonly watchers: JobWatchers,
    /** A job's current state, from memory or the store. */
    private readonly get: (id: string) => Promise<JobInfo | null>,
  ) {}

  multicast(services: string[], spec: Omit<NewJob, 'service'>): Promise<JobInfo> {
    try {
      if (this.state.closing) throw new FerryError('SHUTTING_DOWN');
      if (!Array.isArray(services) || services.length === 0 || services.length > 100) {
        throw new FerryError('BAD_ARGUMENTS', 'multicast needs 1–100 services');
      }
      if (new Set(services).size !== services.length) {
        throw new FerryError('BAD_ARGUMENTS', 'multicast services must be distinct');
      }
      const now = this.state.clock.now();
      // Validate every child up front, so the multicast is all or nothing.
      const children = services.map((service) =>
        this.submitter.validate({ ...spec, service }, now),
      );
      const durable = spec.durable ?? true;
      const dedupKey = spec.dedupKey ?? null;
      if (dedupKey !== null && !durable) {
        throw new FerryError('BAD_ARGUMENTS', 'dedupKey needs a durable job');
      }
      const parent: Job = {
        ...children[0]!.job,
        id: newJobId(),
        service: MULTICAST_SERVICE,
        status: 'running',
        startedAt: now,
        params: [Buffer.from(JSON.stringify({ services }))],
        children: [],
      };
      for (const c of children) {
        c.job.parentId = parent.id;
        parent.children!.push(c.job.id);
      }
      if (!durable) {
        this.state.transient.add(parent);
        for (const c of children) {
          this.state.transient.add(c.job);
          const s = this.state.service(c.job.service);
          enqueueTransient(s, c.job);
          this.dispatch.pump(s);
        }
        return Promise.resolve(jobInfo(parent));
      }
      const states = children.map((c) => this.state.service(c.job.service));
      // With a dedup key, the parent and every child carry it (each in its service's scope)
      // for one window: a re-sent multicast matches all of them together and stores nothing.
      const windowMs = Math.min(...states.map((s) => s.policy.dedupWindowMs));
      const rows = [toRow(parent, dedupKey, windowMs)];
      for (const c of children) rows.push(toRow(c.job, dedupKey, windowMs));
      for (const s of states) s.pendingDurable++;
      return this.state.calls.track(this.state.storage.insert(rows)).then(
        async (out) => {
          if (out.duplicate[0]) {
            for (const s of states) s.pendingDurable--;
            const prior = await this.get(out.ids[0]!);
            if (prior) return this.state.storage.durable().then(() => prior);
            throw new FerryError('JOB_NOT_FOUND', `the earlier multicast ${out.ids[0]} is gone`);
          }
          this.state.durable.move(MULTICAST_SERVICE, null, 'running');
          for (const s of states) {
            s.pendingDurable--;
            this.state.durable.move(s.name, null, 'queued');
            markDue(s);
            this.dispatch.pump(s);
          }
          // Children handed out at the commit; the multicast confirmed once it is durable.
          const info = jobInfo(parent);
          return this.state.storage.durable().then(() => info);
        },
        (err: unknown) => {
          for (const s of states) s.pendingDurable--;
          throw toFerryError(err);
        },
      );
    } catch (err) {
      return Promise.reject(toFerryError(err));
    }
  }

  /** A multicast child ended: when all have, so does the parent. */
  childFinished(parentId: string): void {
    const transientParent = this.state.transient.getLive(parentId);
    void (async () => {
      const parent = transientParent ? jobInfo(transientParent) : await this.get(parentId);
      if (!parent || isFinalStatus(parent.status) || !parent.children) return;
      const kids: JobInfo[] = [];
      for (const id of parent.children) {
        const k = await this.get(id);
        if (!k || !isFinalStatus(k.status)) return;
        kids.push(k);
      }
      const allDone = kids.every((k) => k.status === 'done');
      const summary = kids.map((k) => ({
        service: k.service,
        id: k.id,
        status: k.status,
        ...(k.error ? { error: k.error } : {}),
      }));
      const result = [Buffer.from(JSON.stringify(summary))];
      const error: JobError | undefined = allDone
        ? undefined
        : { code: 'JOB_FAILED', message: 'not every service completed the job' };
      const now = this.state.clock.now();
      if (transientParent) {
        this.runs.finalize(transientParent, allDone ? 'done' : 'failed', now, result, error);
        return;
      }
      const settled = await this.state.calls.track(
        this.state.storage.settle(parentId, {
          status: allDone ? 'done' : 'failed',
          finishedAt: now,
          retainUntil: now + this.state.defaultPolicy.retentionMs,
          result,
          error,
        }),
      );
      if (settled) {
        this.state.durable.move(MULTICAST_SERVICE, settled.previous, settled.row.status);
        this.watchers.emit(parentId, { type: 'final', job: rowInfo(settled.row) });
      }
    })().catch((err: unknown) =>
      this.state.log.error('multicast completion failed', { job: parentId, err: String(err) }),
    );
  }
}
