/**
 * The HTTP gateway: REST for queues and jobs, the ZMWS routes, server-sent events, the
 * dashboard at `/`, Prometheus metrics at `/metrics` and the OpenAPI document at
 * `/openapi.json`. Built on Fastify; it calls the core (broker, job server, stats) and never
 * the store. docs/http.md describes every route.
 */
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import type { Broker } from '../core/broker.js';
import type { JobApi } from '../core/job-types.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { StatsSource } from '../core/stats.js';
import { FerryError, toFerryError, type ErrorCode } from 'ferrymq/model';
import type { JobAdmin } from '../core/job-admin.js';
import { registerBrowseRoutes } from './browse-routes.js';
import { registerConnectionRoutes } from './connection-routes.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { registerJobAdminRoutes } from './job-admin-routes.js';
import { registerTopicRoutes, type TopicSource } from './topic-routes.js';
import { registerEventRoutes, SseStreams } from './sse.js';
import { HttpConsumers } from './http-consumers.js';
import { registerJobRoutes } from './job-routes.js';
import { GatewayMetrics } from './metrics.js';
import { registerQueueRoutes } from './queue-routes.js';
import { registerZmwsRoutes } from './zmws-routes.js';
import type { ZmwsServerQuery } from '../dialects/zmws/zmws-commands.js';

export interface GatewayOptions {
  broker: Broker;
  jobs: JobApi;
  stats: StatsSource;
  /** Host to listen on (loopback by default in the server config). */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Largest request body, bytes. */
  bodyLimitBytes: number;
  logger?: Logger | undefined;
  /** The ZMWS dialect's SERVER-* listings, when it runs (the HTTP ZMWS routes answer alike). */
  zmwsListing?: ((query: ZmwsServerQuery) => Promise<unknown[]>) | undefined;
  /** Job search, detail and retry for the dashboard (the job server); routes off without. */
  jobAdmin?: JobAdmin | undefined;
  /** Retained values and durable subscriptions (pub/sub); the topic routes are off without. */
  topics?: TopicSource | undefined;
  /** Package version, shown in the OpenAPI document. */
  version?: string | undefined;
}

/** What the server holds of a running gateway. */
export interface HttpGateway {
  /** `http://host:port`, with the real port. */
  readonly url: string;
  /** Open HTTP connections (for the `http` row of connections per dialect). */
  readonly connections: number;
  /** Every route served (method and Fastify path), for the docs and OpenAPI checks. */
  readonly routes: readonly { method: string; url: string }[];
  close(): Promise<void>;
}

/**
 * On close, how long requests in flight (polls just answered, calls waiting for a job) get to
 * finish before their connections are cut.
 */
const CLOSE_GRACE_MS = 1_000;

/** Longest path parameter the router takes (longer: 414 from Fastify itself). */
const MAX_PARAM_LENGTH = 2048;

/** Fastify's own error codes, as the gateway answers them. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_ARGUMENTS',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_JSON',
};

/** Maps anything a route or Fastify threw to the `{code, message}` the client gets. */
function gatewayError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  const e = err as FastifyError & { validation?: { instancePath?: string }[] };
  if (e.validation) {
    const onName =
      e.validationContext === 'params' &&
      e.validation.some((v) => v.instancePath === '/queue' || v.instancePath === '/service');
    const code: ErrorCode = onName
      ? e.validation.some((v) => v.instancePath === '/service')
        ? 'INVALID_SERVICE_NAME'
        : 'INVALID_QUEUE_NAME'
      : 'BAD_ARGUMENTS';
    return new FerryError(code, e.message);
  }
  if (typeof e.code === 'string' && FASTIFY_CODES[e.code]) {
    return new FerryError(FASTIFY_CODES[e.code]!, e.message);
  }
  if (e instanceof SyntaxError) return new FerryError('BAD_JSON', e.message);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new FerryError('BAD_ARGUMENTS', e.message);
  }
  return toFerryError(err);
}

export async function startGateway(options: GatewayOptions): Promise<HttpGateway> {
  const log = options.logger ?? silentLogger;
  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit: options.bodyLimitBytes,
    // Refuse unknown fields instead of dropping them; coerce query strings to their types.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    forceCloseConnections: true,
    // Queue and service names are up to 200 characters; longer ones get INVALID_*_NAME.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
  });
  const consumers = new HttpConsumers(options.broker);
  const metrics = new GatewayMetrics(options.stats);
  const sockets = new Set<Socket>();
  const routes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) {
      if (method !== 'HEAD') routes.push({ method, url: r.url });
    }
  });
  app.server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Ferry HTTP gateway',
        description: 'Queues, jobs, stats and events of a Ferry broker. See docs/http.md.',
        version: options.version ?? '0.0.0',
      },
      tags: [
        { name: 'queues', description: 'Send, consume, settle, browse, dead letters' },
        { name: 'jobs', description: 'Services, workers, jobs' },
        { name: 'events', description: 'Server-sent events' },
        { name: 'topics', description: 'Retained values, durable subscriptions' },
        { name: 'zmws', description: 'ZMWS 1.0 gateway routes' },
        { name: 'ops', description: 'Stats, metrics, dashboard, this document' },
      ],
    },
  });

  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );

  // A POST without a body is an empty object: routes whose fields are all optional take it.
  app.addHook('preValidation', (req, _reply, done) => {
    if (req.method === 'POST' && req.body === undefined) req.body = {};
    done();
  });

  app.setErrorHandler((err, _req, reply) => {
    const fe = gatewayError(err);
    if (fe.code === 'INTERNAL') log.error('http route failed', { err: String(err) });
    void reply.status(fe.status).send({ code: fe.code, message: fe.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({
      code: 'ROUTE_NOT_FOUND',
      message: `no route ${req.method} ${req.url.split('?')[0]}`,
    });
  });

  const inflight = new Set<FastifyRequest>();
  let onIdle: (() => void) | undefined;
  app.addHook('onRequest', (req, _reply, done) => {
    inflight.add(req);
    done();
  });
  const requestEnded = (req: FastifyRequest): void => {
    if (inflight.delete(req) && inflight.size === 0) onIdle?.();
  };
  const streams = new SseStreams(requestEnded);
  app.addHook('onRequestAbort', (req, done) => {
    requestEnded(req);
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    requestEnded(req);
    metrics.observeRequest(
      req.method,
      req.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime,
    );
    done();
  });

  app.get('/openapi.json', { schema: { tags: ['ops'], summary: 'This OpenAPI document' } }, () =>
    app.swagger(),
  );
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['ops'],
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
      },
    },
    async (_req, reply) => {
      const text = await metrics.render();
      return reply.type(metrics.contentType).send(text);
    },
  );
  app.get(
    '/v1/stats',
    { schema: { tags: ['ops'], summary: 'Every stat: broker, storage, queues, jobs, workers' } },
    () => options.stats.snapshot(),
  );

  registerQueueRoutes(app, { broker: options.broker, consumers });
  registerJobRoutes(app, { jobs: options.jobs });
  registerEventRoutes(app, { jobs: options.jobs, stats: options.stats, streams });
  registerZmwsRoutes(app, { jobs: options.jobs, listing: options.zmwsListing });
  registerBrowseRoutes(app, { broker: options.broker });
  registerConnectionRoutes(app, options);
  if (options.jobAdmin) registerJobAdminRoutes(app, { admin: options.jobAdmin });
  if (options.topics) registerTopicRoutes(app, { broker: options.broker, topics: options.topics });
  registerDashboardRoutes(app);

  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    consumers.close();
    metrics.close();
    await app.close().catch(() => {});
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') {
      throw new FerryError('ADDRESS_IN_USE', `http ${options.host}:${options.port} is in use`, {
        cause: err,
      });
    }
    throw toFerryError(err);
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    get connections() {
      return sockets.size;
    },
    routes,
    close() {
      closing ??= (async () => {
        // Answer the waiting polls, end the event streams, give answers a moment to go out.
        consumers.close();
        streams.closeAll();
        if (inflight.size > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, CLOSE_GRACE_MS);
            onIdle = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        metrics.close();
        await app.close();
      })();
      return closing;
    },
  };
}
