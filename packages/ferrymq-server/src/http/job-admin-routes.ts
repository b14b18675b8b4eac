/**
 * Job routes for operators (the dashboard): search and paging over the stored jobs, one job
 * in detail (parameters, headers, progress, partial results, error, result) and retry.
 * Cancelling is POST /v1/jobs/{id}/cancel in job-routes.ts.
 */
import type { FastifyInstance } from 'fastify';
import {
  MAX_JOB_PAGE,
  MAX_JOB_SEARCH_LENGTH,
  type JobAdmin,
  type JobSearchOptions,
} from '../core/job-admin.js';
import type { JobStatus } from 'ferrymq/model';
import { jobToJson } from './job-json.js';
import { previewBytesQuery, previewFrames, previewSchema } from './preview.js';
import {
  errorResponses,
  jobIdParams,
  jobInfoSchema,
  jobStatusSchema,
  nameSchema,
} from './schemas.js';

const DEFAULT_JOB_PAGE = 20;
/** Bytes of each parameter and partial frame a detail shows unless asked otherwise (4 KiB). */
const DEFAULT_DETAIL_BYTES = 4 * 1024;
/** Most partial results one detail reply lists (the latest ones). */
const MAX_DETAIL_PARTIALS = 50;

export interface JobAdminRoutesOptions {
  admin: JobAdmin;
}

export function registerJobAdminRoutes(app: FastifyInstance, o: JobAdminRoutesOptions): void {
  const { admin } = o;
  const tags = ['jobs'];

  app.get<{
    Querystring: {
      q?: string;
      service?: string;
      status?: JobStatus;
      limit: number;
      offset: number;
    };
  }>(
    '/v1/jobs/search',
    {
      schema: {
        tags,
        summary: 'Stored jobs, newest first, one page: by service, status and search text',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            q: {
              type: 'string',
              maxLength: MAX_JOB_SEARCH_LENGTH,
              description: 'Jobs whose id starts with, or whose service contains, this text.',
            },
            service: nameSchema,
            status: jobStatusSchema,
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: MAX_JOB_PAGE,
              default: DEFAULT_JOB_PAGE,
            },
            offset: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              jobs: { type: 'array', items: jobInfoSchema },
              offset: { type: 'integer' },
              more: { type: 'boolean', description: 'True when the next page has jobs.' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { q, service, status, limit, offset } = req.query;
      const opts: JobSearchOptions = { service, status, search: q, limit, offset };
      const page = await admin.search(opts);
      return { jobs: page.jobs.map(jobToJson), offset, more: page.more };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { maxBytes: number } }>(
    '/v1/jobs/:id/detail',
    {
      schema: {
        tags,
        summary: 'A job with its parameters, headers and partial results (previews capped)',
        params: jobIdParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { maxBytes: { ...previewBytesQuery, default: DEFAULT_DETAIL_BYTES } },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              job: jobInfoSchema,
              maxAttempts: { type: 'integer' },
              headers: { type: 'object', additionalProperties: { type: 'string' } },
              params: { type: 'array', items: previewSchema },
              partials: {
                type: 'array',
                description: 'The latest 50 partial results.',
                items: {
                  type: 'object',
                  properties: {
                    seq: { type: 'integer' },
                    frames: { type: 'array', items: previewSchema },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const d = await admin.inspect(req.params.id);
      const max = req.query.maxBytes;
      return {
        job: jobToJson(d.job),
        maxAttempts: d.maxAttempts,
        headers: d.headers ?? {},
        params: previewFrames(d.params, max),
        partials: d.partials.slice(-MAX_DETAIL_PARTIALS).map((p) => ({
          seq: p.seq,
          frames: previewFrames(p.frames, max),
        })),
      };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/jobs/:id/retry',
    {
      schema: {
        tags,
        summary: 'Retry a failed, cancelled or expired durable job: back to queued, fresh run',
        params: jobIdParams,
        response: { 200: jobInfoSchema, ...errorResponses },
      },
    },
    async (req) => jobToJson(await admin.retry(req.params.id)),
  );
}
