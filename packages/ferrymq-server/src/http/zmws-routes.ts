/**
 * The ZMWS 1.0 HTTP gateway routes over the job server, mounted only when the ZMWS dialect
 * is on (`--zmws`): without it, `/<JOB>` would turn any unknown path (`GET /health`) into a
 * stored job. They answer as Ferry's ZMWS ZeroMQ dialect does (docs/dialects.md), with its
 * text formatting (`dialects/zmws/zmws-commands.ts`, pure and shared):
 *
 * - `GET|POST /<JOB>` submits a durable job to service JOB: `JOB: <id> <JOB>`;
 * - `GET|POST /SYNC-<JOB>` calls it: `PARAM-JSON: <result>\nCOMPLETE: <JOB> [<id>]`, or
 *   `PARAM-JSON: <reason>\nFAIL: <JOB> [<id>]` (the HTTP body is ZMWS's: the reply's last
 *   frame, a newline, its first frame);
 * - `/SERVER-JOBS`, `/SERVER-ACTIVE`, `/SERVER-HIST`, `/SERVER-WORKERS`: JSON listings;
 * - a refused request (a SYNC- for a service no worker ever offered, an invalid name, a full
 *   queue) answers `FAIL: <JOB>`.
 *
 * Parameters come from the query string, else a JSON body, else a form body, and become the
 * job's params as their JSON text (ZMWS's `PARAM-JSON`). Form and text bodies are parsed in
 * this plugin's scope only; every other route takes JSON alone. `jsonp=cb` wraps the reply as
 * `cb(<reply>);`. Replies are 200 `application/javascript` with `Access-Control-Allow-Origin: *`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JobApi } from '../core/job-types.js';
import { FerryError } from 'ferrymq/model';
import {
  ZMWS_PARAM_JSON,
  ZMWS_SERVER_QUERIES,
  ZMWS_SYNC_PREFIX,
  formatAccepted,
  formatRefused,
  formatSyncStatus,
  failureJsonText,
  framesToJson,
  type ZmwsServerQuery,
} from '../dialects/zmws/zmws-commands.js';
import { DEFAULT_CALL_WAIT_MS } from './job-routes.js';
import { parseJsonBody } from './json-body.js';

/** The query parameter that asks for a JSONP reply. */
const JSONP_PARAM = 'jsonp';
const JSONP_CALLBACK_PATTERN = /^[A-Za-z_$][\w$.]{0,99}$/;

export interface ZmwsRoutesOptions {
  jobs: JobApi;
  /** How long a SYNC- request waits for its result (then `FAIL`, the job expired). */
  syncTimeoutMs?: number | undefined;
  /** The ZMWS dialect's own SERVER-* listing (its workers' heartbeats, its SYNC- jobs). */
  listing: (query: ZmwsServerQuery) => Promise<unknown[]>;
}

/** ZMWS parameters: query string, else a JSON body, else a form body (already parsed). */
function zmwsParams(query: Record<string, unknown>, body: unknown): unknown {
  const q = { ...query };
  delete q[JSONP_PARAM];
  if (Object.keys(q).length > 0) return q;
  if (typeof body === 'string') {
    if (body.trim() === '') return {};
    return parseJsonBody(body); // the same depth and key checks as a JSON body
  }
  if (body !== undefined && body !== null) return body;
  return {};
}

/** ZMWS's HTTP body of a reply: its last frame, then a newline and its first, if several. */
function httpBody(frames: string[]): string {
  return frames.length > 1 ? `${frames.at(-1)!}\n${frames[0]!}` : (frames[0] ?? '');
}

/** Registers the routes; call it inside its own plugin scope (its body parsers are scoped). */
export async function registerZmwsRoutes(
  app: FastifyInstance,
  o: ZmwsRoutesOptions,
): Promise<void> {
  const { jobs, listing } = o;
  const syncTimeoutMs = o.syncTimeoutMs ?? DEFAULT_CALL_WAIT_MS;
  // ZMWS clients post forms and raw text; the gateway's other routes take JSON only.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) => {
    done(null, body);
  });

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

  const run = async (service: string, sync: boolean, params: unknown): Promise<string> => {
    const job = { service, params: [Buffer.from(JSON.stringify(params))] };
    if (!sync) {
      const info = await jobs.submit({ ...job, durable: true });
      return formatAccepted(info.id, service);
    }
    if (!jobs.hasWorkers(service) && !(await jobs.services()).some((s) => s.name === service)) {
      return formatRefused(service); // as ZMWS: a service no worker ever offered
    }
    const done = await jobs.call(
      { ...job, durable: false, ttlMs: syncTimeoutMs },
      { timeoutMs: syncTimeoutMs },
    );
    if (done.status === 'done') {
      const result = done.result ?? [];
      const param = result.length === 0 ? '' : `${ZMWS_PARAM_JSON}: ${framesToJson(result)}`;
      return httpBody([formatSyncStatus('COMPLETE', service, done.id), param]);
    }
    const why = done.error?.message ?? '';
    const param = why === '' ? '' : `${ZMWS_PARAM_JSON}: ${failureJsonText(why)}`;
    return httpBody([formatSyncStatus('FAIL', service, done.id), param]);
  };

  const handler = async (
    req: FastifyRequest<{ Params: { job: string } }>,
    res: FastifyReply,
  ): Promise<FastifyReply> => {
    const name = req.params.job;
    if ((ZMWS_SERVER_QUERIES as readonly string[]).includes(name)) {
      return reply(req, res, JSON.stringify(await listing(name as ZmwsServerQuery)));
    }
    const sync = name.startsWith(ZMWS_SYNC_PREFIX);
    const service = sync ? name.slice(ZMWS_SYNC_PREFIX.length) : name;
    const params = zmwsParams(req.query as Record<string, unknown>, req.body);
    let body: string;
    try {
      body = await run(service, sync, params);
    } catch (err) {
      // ZMWS has one answer for a request it will not run.
      if (err instanceof FerryError && err.code === 'SHUTTING_DOWN') throw err;
      body = formatRefused(service);
    }
    return reply(req, res, body);
  };

  const schema = {
    tags: ['zmws'],
    summary: 'ZMWS: run JOB (async), SYNC-JOB (wait for the result), or a SERVER-* listing',
    params: {
      type: 'object',
      required: ['job'],
      properties: { job: { type: 'string', minLength: 1, maxLength: 300 } },
    },
  };
  app.get('/favicon.ico', { schema: { hide: true } }, (_req, res) =>
    res.status(404).send({ code: 'ROUTE_NOT_FOUND', message: 'no favicon' }),
  );
  app.get<{ Params: { job: string } }>('/:job', { schema }, handler);
  app.post<{ Params: { job: string } }>('/:job', { schema }, handler);
}
