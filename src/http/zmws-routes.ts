/**
 * The ZMWS 1.0 HTTP gateway routes (research/protocols.md §2.6) over the job server:
 *
 * - `GET|POST /<JOB>` submits a job to service JOB and answers `JOB: <id> <JOB>` at once;
 * - `GET|POST /SYNC-<JOB>` calls it and answers `PARAM-JSON: <result>\nCOMPLETE: <JOB> [<id>]`
 *   (or `… FAIL: <JOB> [<id>]`);
 * - `/SERVER-WORKERS` answers the registered workers as a JSON array.
 *
 * Parameters come from the query string, else a JSON body, else a form body, and become the
 * job's params as their JSON text (ZMWS's `PARAM-JSON`). `jsonp=cb` wraps the reply as
 * `cb(<reply>);`. Replies are 200 `application/javascript` with `Access-Control-Allow-Origin: *`,
 * as ZMWS sends them; a service no worker ever registered answers `FAIL: <JOB>`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JobApi, JobInfo } from '../core/job-types.js';
import { FerryError } from '../errors.js';
import { DEFAULT_CALL_WAIT_MS } from './job-routes.js';
import { NAME_PATTERN } from './schemas.js';

export const ZMWS_SYNC_PREFIX = 'SYNC-';
export const ZMWS_SERVER_WORKERS = 'SERVER-WORKERS';
/** The query parameter that asks for a JSONP reply. */
const JSONP_PARAM = 'jsonp';
const JSONP_CALLBACK_PATTERN = /^[A-Za-z_$][\w$.]{0,99}$/;
const SERVICE_PATTERN = new RegExp(NAME_PATTERN);

export interface ZmwsRoutesOptions {
  jobs: JobApi;
  /** How long a SYNC- request waits for its result (then 504 TIMEOUT). */
  syncTimeoutMs?: number;
}

/** ZMWS parameters: query string, else a JSON body, else a form body (already parsed). */
export function zmwsParams(query: Record<string, unknown>, body: unknown): unknown {
  const q = { ...query };
  delete q[JSONP_PARAM];
  if (Object.keys(q).length > 0) return q;
  if (typeof body === 'string') {
    if (body.trim() === '') return {};
    try {
      return JSON.parse(body) as unknown;
    } catch {
      throw new FerryError('BAD_JSON', 'the body is neither JSON nor a form');
    }
  }
  if (body !== undefined && body !== null) return body;
  return {};
}

/** A result's first frame as the text after `PARAM-JSON: ` (JSON text, or a JSON string). */
function resultJson(job: JobInfo): string {
  const first = job.result?.[0];
  if (first === undefined) return 'null';
  const text = first.toString('utf8');
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}

export function registerZmwsRoutes(app: FastifyInstance, o: ZmwsRoutesOptions): void {
  const { jobs } = o;
  const syncTimeoutMs = o.syncTimeoutMs ?? DEFAULT_CALL_WAIT_MS;

  const reply = (req: FastifyRequest, res: FastifyReply, body: string): FastifyReply => {
    const cb = (req.query as Record<string, unknown>)[JSONP_PARAM];
    let out = body;
    if (cb !== undefined) {
      if (typeof cb !== 'string' || !JSONP_CALLBACK_PATTERN.test(cb)) {
        throw new FerryError('BAD_ARGUMENTS', 'jsonp must be a JavaScript identifier');
      }
      out = `${cb}(${JSON.stringify(body)});`;
    }
    return res
      .status(200)
      .header('access-control-allow-origin', '*')
      .type('application/javascript')
      .send(out);
  };

  const handler = async (
    req: FastifyRequest<{ Params: { job: string } }>,
    res: FastifyReply,
  ): Promise<FastifyReply> => {
    const name = req.params.job;
    if (name === ZMWS_SERVER_WORKERS) {
      const list = jobs.workers().flatMap((w) =>
        w.services.map((service) => ({
          workerid: w.id,
          service,
          // Seconds since the epoch of the worker's last sign of life that Ferry records.
          hb: Math.floor((w.lastJobAt ?? w.connectedAt) / 1000),
        })),
      );
      return reply(req, res, JSON.stringify(list));
    }
    const sync = name.startsWith(ZMWS_SYNC_PREFIX);
    const service = sync ? name.slice(ZMWS_SYNC_PREFIX.length) : name;
    if (!SERVICE_PATTERN.test(service) || service.length > 200) {
      throw new FerryError(
        'INVALID_SERVICE_NAME',
        `invalid service name: ${JSON.stringify(service)}`,
      );
    }
    const params = zmwsParams(req.query as Record<string, unknown>, req.body);
    const known =
      jobs.hasWorkers(service) || (await jobs.services()).some((s) => s.name === service);
    if (!known) return reply(req, res, `FAIL: ${service}`);
    const job = { service, params: [Buffer.from(JSON.stringify(params))] };
    if (!sync) {
      const info = await jobs.submit({ ...job, durable: true });
      return reply(req, res, `JOB: ${info.id} ${service}`);
    }
    const done = await jobs.call({ ...job, durable: false }, { timeoutMs: syncTimeoutMs });
    const verb = done.status === 'done' ? 'COMPLETE' : 'FAIL';
    const param =
      done.status === 'done'
        ? `PARAM-JSON: ${resultJson(done)}`
        : done.error
          ? `PARAM-JSON: ${JSON.stringify(done.error)}`
          : '';
    return reply(req, res, `${param}\n${verb}: ${service} [${done.id}]`);
  };

  const schema = {
    tags: ['zmws'],
    summary: 'ZMWS: run job JOB (async), SYNC-JOB (wait for the result), or SERVER-WORKERS',
    params: {
      type: 'object',
      required: ['job'],
      properties: { job: { type: 'string', minLength: 1, maxLength: 205 } },
    },
  };
  app.get('/favicon.ico', { schema: { hide: true } }, (_req, res) =>
    res.status(404).send({ code: 'ROUTE_NOT_FOUND', message: 'no favicon' }),
  );
  app.get<{ Params: { job: string } }>('/:job', { schema }, handler);
  app.post<{ Params: { job: string } }>('/:job', { schema }, handler);
}
