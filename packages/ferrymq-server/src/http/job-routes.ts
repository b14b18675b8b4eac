/**
 * Job routes: services and workers, submit (202 + job id), call (sync, waits for the result),
 * status and result (optionally waiting), cancel, recent jobs.
 */
import type { FastifyInstance } from 'fastify';
import { type JobApi } from '../core/job-types.js';
import { FerryError, isFinalStatus, type JobInfo, type JobStatus } from 'ferrymq/model';
import { jobToJson, toNewJob, type HttpNewJob } from './job-json.js';
import {
  errorResponses,
  jobIdParams,
  jobInfoSchema,
  jobStatusSchema,
  nameSchema,
  newJobSchema,
  serviceParams,
} from './schemas.js';

/** How long a sync call waits for its result unless `wait` says otherwise. */
export const DEFAULT_CALL_WAIT_MS = 30_000;
/** Longest a call or a job status request may wait. */
const MAX_JOB_WAIT_MS = 10 * 60_000;

export interface JobRoutesOptions {
  jobs: JobApi;
}

/** A final job that did not succeed, as the error its caller gets. */
function jobOutcomeError(job: JobInfo): FerryError | undefined {
  const why = job.error ? `${job.error.code}: ${job.error.message}` : undefined;
  switch (job.status) {
    case 'failed':
      return new FerryError('JOB_FAILED', why ?? `job ${job.id} failed`);
    case 'cancelled':
      return new FerryError('JOB_CANCELLED', why ?? `job ${job.id} was cancelled`);
    case 'expired':
      return new FerryError('JOB_EXPIRED', why ?? `job ${job.id} expired`);
    default:
      return undefined;
  }
}

/** The job once it is final, or as it is when `waitMs` runs out. */
async function waitForJob(jobs: JobApi, id: string, waitMs: number): Promise<JobInfo> {
  const first = await jobs.get(id);
  if (!first) throw new FerryError('JOB_NOT_FOUND', `no job ${id}`);
  if (waitMs <= 0 || isFinalStatus(first.status)) return first;
  let stop: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const final = await new Promise<JobInfo | undefined>((resolve, reject) => {
      timer = setTimeout(() => resolve(undefined), waitMs);
      jobs
        .watch(id, (e) => {
          if (e.type === 'final') resolve(e.job);
        })
        .then((s) => (stop = s), reject);
    });
    return final ?? (await jobs.get(id)) ?? first;
  } finally {
    clearTimeout(timer);
    stop?.();
  }
}

const waitQuery = (def: number) =>
  ({
    type: 'integer',
    minimum: 0,
    maximum: MAX_JOB_WAIT_MS,
    default: def,
    description: 'Wait up to this many ms for the job to finish.',
  }) as const;

export function registerJobRoutes(app: FastifyInstance, o: JobRoutesOptions): void {
  const { jobs } = o;
  const tags = ['jobs'];
  const jobReply = { 200: jobInfoSchema, ...errorResponses };

  app.get(
    '/v1/services',
    {
      schema: {
        tags,
        summary: 'Services with their workers and job counts by status',
        response: {
          200: {
            type: 'object',
            properties: {
              services: { type: 'array', items: { type: 'object', additionalProperties: true } },
            },
          },
          ...errorResponses,
        },
      },
    },
    async () => ({ services: await jobs.services() }),
  );

  app.get(
    '/v1/workers',
    {
      schema: {
        tags,
        summary: 'Registered workers',
        response: {
          200: {
            type: 'object',
            properties: {
              workers: { type: 'array', items: { type: 'object', additionalProperties: true } },
            },
          },
          ...errorResponses,
        },
      },
    },
    () => ({ workers: jobs.workers() }),
  );

  app.get<{ Querystring: { service?: string; status?: JobStatus; limit: number } }>(
    '/v1/jobs',
    {
      schema: {
        tags,
        summary: 'Recent durable jobs, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            service: nameSchema,
            status: jobStatusSchema,
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 20 },
          },
        },
        response: {
          200: { type: 'object', properties: { jobs: { type: 'array', items: jobInfoSchema } } },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const opts: { service?: string; status?: JobStatus; limit: number } = {
        limit: req.query.limit,
      };
      if (req.query.service !== undefined) opts.service = req.query.service;
      if (req.query.status !== undefined) opts.status = req.query.status;
      return { jobs: (await jobs.list(opts)).map(jobToJson) };
    },
  );

  app.post<{ Params: { service: string }; Body: HttpNewJob | undefined }>(
    '/v1/services/:service/jobs',
    {
      schema: {
        tags,
        summary: 'Submit a job (durable, async): 202 with its id',
        params: serviceParams,
        body: newJobSchema,
        response: { 202: jobInfoSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const job = await jobs.submit(toNewJob(req.params.service, req.body, true));
      return reply.status(202).header('location', `/v1/jobs/${job.id}`).send(jobToJson(job));
    },
  );

  app.post<{
    Params: { service: string };
    Body: HttpNewJob | undefined;
    Querystring: { wait: number };
  }>(
    '/v1/services/:service/call',
    {
      schema: {
        tags,
        summary: 'Call a service and wait for the result (sync)',
        description:
          'Answers 200 with the done job, or the error of a failed, cancelled or expired one. ' +
          'If no result comes within wait ms the job is cancelled and the answer is 504 TIMEOUT.',
        params: serviceParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { wait: waitQuery(DEFAULT_CALL_WAIT_MS) },
        },
        body: newJobSchema,
        response: jobReply,
      },
    },
    async (req) => {
      const job = await jobs.call(toNewJob(req.params.service, req.body, false), {
        timeoutMs: req.query.wait > 0 ? req.query.wait : undefined,
      });
      const err = jobOutcomeError(job);
      if (err) throw err;
      return jobToJson(job);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { wait: number } }>(
    '/v1/jobs/:id',
    {
      schema: {
        tags,
        summary: 'A job: status, progress, result (wait for it to finish with ?wait)',
        params: jobIdParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { wait: waitQuery(0) },
        },
        response: jobReply,
      },
    },
    async (req) => jobToJson(await waitForJob(jobs, req.params.id, req.query.wait)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/jobs/:id/cancel',
    {
      schema: {
        tags,
        summary: 'Cancel a job (reaches its worker if running)',
        params: jobIdParams,
        response: jobReply,
      },
    },
    async (req) => jobToJson(await jobs.cancel(req.params.id)),
  );
}
