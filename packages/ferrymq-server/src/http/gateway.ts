/**
 * The HTTP gateway: REST for queues, jobs and topics, server-sent events, liveness and
 * readiness, the dashboard at `/`, Prometheus metrics at `/metrics`, the OpenAPI document at
 * `/openapi.json`, and the ZMWS routes when the ZMWS dialect is on. Built on Fastify; it calls
 * the core (broker, job server, pub/sub, stats) and never the store. docs/http.md describes
 * every route.
 */
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import type { Broker } from '../core/broker.js';
import type { JobApi } from '../core/job-types.js';
import type { PubSub } from '../core/pubsub.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { StatsSource } from '../core/stats.js';
import { FerryError, toFerryError } from 'ferrymq/model';
import type { JobAdmin } from '../core/job-admin.js';
import { registerBrowseRoutes } from './browse-routes.js';
import { registerConnectionRoutes } from './connection-routes.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { errorBody, gatewayError, RouteMethods, routerError } from './gateway-errors.js';
import { registerHealthRoutes, type ReadinessProbe } from './health-routes.js';
import { registerJobAdminRoutes } from './job-admin-routes.js';
import { registerTopicAdminRoutes, type TopicSource } from './topic-admin-routes.js';
import { registerEventRoutes, SseStreams } from './sse.js';
import { HttpConsumers } from './http-consumers.js';
import { registerJobRoutes } from './job-routes.js';
import { parseJsonBody } from './json-body.js';
import { GatewayMetrics } from './metrics.js';
import { registerQueueLifecycleRoutes } from './queue-lifecycle-routes.js';
import { registerQueueRoutes } from './queue-routes.js';
import { registerTopicRoutes } from './topic-routes.js';
import { registerGatewaySecurity } from './gateway-security.js';
import { statsFor } from './auth-guard.js';
import type { AuthModel } from '../security/auth-model.js';
import { registerZmwsRoutes } from './zmws-routes.js';
import type { ZmwsServerQuery } from '../dialects/zmws/zmws-commands.js';

export interface GatewayOptions {
  broker: Broker;
  jobs: JobApi;
  /** Pub/sub: the topic routes, and deleting durable subscriptions. */
  pubsub: PubSub;
  stats: StatsSource;
  /** Host to listen on (loopback by default in the server config). */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Largest request body, bytes. */
  bodyLimitBytes: number;
  /** Where errors go, and each request at debug level (the access log). */
  logger?: Logger | undefined;
  /**
   * The ZMWS dialect's SERVER-* listings, when the dialect runs: only then are the ZMWS
   * routes (`/<JOB>`, `/SYNC-<JOB>`, `/SERVER-*`) mounted.
   */
  zmwsListing?: ((query: ZmwsServerQuery) => Promise<unknown[]>) | undefined;
  /** The server's readiness checks, for `/readyz`. */
  readiness?: ReadinessProbe | undefined;
  /** Job search, detail and retry for the dashboard (the job server); routes off without. */
  jobAdmin?: JobAdmin | undefined;
  /** Retained values and durable subscriptions (pub/sub); the topic routes are off without. */
  topics?: TopicSource | undefined;
  /** Package version, shown in the OpenAPI document. */
  version: string;
  /** PEM certificate and key: HTTPS instead of HTTP. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** `Host` names answered besides loopback names and IP addresses (DNS rebinding guard). */
  allowedHosts?: readonly string[] | undefined;
  /** Origins whose pages may call the gateway (CORS for them); none by default. */
  allowedOrigins?: readonly string[] | undefined;
  /**
   * The auth file's users as loaded now (asked per request: a reload applies to the next
   * one). Undefined: no bearer tokens, every route open (loopback development).
   */
  auth?: (() => AuthModel | undefined) | undefined;
  /** `sha256:<hex>` of a token that may read `/metrics`. */
  metricsToken?: string | undefined;
  /** Requests per minute per token (per address without an auth file); 0 or undefined: no limit. */
  rateLimitPerMinute?: number | undefined;
}

/** What the server holds of a running gateway. */
export interface HttpGateway {
  /** `http://host:port` (`https://` with TLS), with the real port. */
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

/** Longest path parameter the router takes (longer: answered by routerError). */
const MAX_PARAM_LENGTH = 2048;

export async function startGateway(options: GatewayOptions): Promise<HttpGateway> {
  const log = options.logger ?? silentLogger;
  const app = Fastify({
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
    logger: false,
    bodyLimit: options.bodyLimitBytes,
    // Refuse unknown fields instead of dropping them; coerce query strings to their types.
    // Verbose: a violation carries its schema, so the error can list the allowed fields.
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: 'array',
        allErrors: false,
        verbose: true,
      },
    },
    forceCloseConnections: true,
    // Queue and service names are up to 200 characters; longer ones get INVALID_*_NAME.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Errors of the router itself (a 10 KB name, a URL that does not decode): Ferry's shape.
    frameworkErrors: (err, req, reply) => {
      const fe = routerError(err, req.url.split('?')[0] ?? '');
      void (reply as FastifyReply).status(fe.status).send(errorBody(fe));
    },
  }) as unknown as FastifyInstance;
  const consumers = new HttpConsumers(options.broker);
  const metrics = new GatewayMetrics(options.stats);
  const sockets = new Set<Socket>();
  const routes: { method: string; url: string }[] = [];
  const methods = new RouteMethods();
  app.addHook('onRoute', (r) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) {
      methods.add(method, r.url);
      if (method !== 'HEAD') routes.push({ method, url: r.url });
    }
  });
  app.server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  // ZMWS's `/<JOB>` route is called from its clients' own pages by design.
  await registerGatewaySecurity(app, {
    allowedHosts: options.allowedHosts ?? [],
    allowedOrigins: options.allowedOrigins ?? [],
    openRoutes: new Set(['/:job']),
    auth: options.auth,
    metricsToken: options.metricsToken,
    rateLimitPerMinute: options.rateLimitPerMinute ?? 0,
    // A malformed id has no job: the route's own validation answers it.
    serviceOfJob: (id) =>
      options.jobs.get(id).then(
        (j) => j?.service,
        () => undefined,
      ),
    queueOfLease: (lease) => consumers.queueOfLease(lease),
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Ferry HTTP gateway',
        description: 'Queues, jobs, stats and events of a Ferry broker. See docs/http.md.',
        version: options.version,
      },
      // With an auth file every route but the probes, this document and the dashboard's
      // files takes a bearer token (docs/security.md#http-gateway).
      ...(options.auth
        ? {
            components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
            security: [{ bearer: [] }],
          }
        : {}),
      tags: [
        { name: 'queues', description: 'Send, consume, settle, browse, dead letters' },
        { name: 'jobs', description: 'Services, workers, jobs' },
        { name: 'topics', description: 'Publish, retained values, subscriptions' },
        { name: 'events', description: 'Server-sent events' },
        { name: 'zmws', description: 'ZMWS 1.0 gateway routes' },
        { name: 'ops', description: 'Health, readiness, stats, metrics, dashboard, this document' },
      ],
    },
  });

  // Bodies are JSON only (Fastify would also take text/plain): anything else is 415. The ZMWS
  // routes take form and text bodies too, in their own scope (zmws-routes.ts).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  // A POST without a body is an empty object: routes whose fields are all optional take it.
  app.addHook('preValidation', (req, _reply, done) => {
    if (req.method === 'POST' && req.body === undefined) req.body = {};
    done();
  });

  app.setErrorHandler((err, _req, reply) => {
    const fe = gatewayError(err);
    if (fe.code === 'INTERNAL') log.error('http route failed', { err: String(err) });
    void reply.status(fe.status).send(errorBody(fe));
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    const allowed = methods.allowed(path);
    if (allowed.length > 0) {
      const fe = new FerryError(
        'METHOD_NOT_ALLOWED',
        `${path} does not take ${req.method}; it takes ${allowed.join(', ')}`,
      );
      void reply.status(fe.status).header('allow', allowed.join(', ')).send(errorBody(fe));
      return;
    }
    void reply
      .status(404)
      .send({ code: 'ROUTE_NOT_FOUND', message: `no route ${req.method} ${path}` });
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
    log.debug('http request', {
      method: req.method,
      url: req.url,
      route: req.routeOptions.url ?? null,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 100) / 100,
      remote: req.ip,
    });
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
    async (req) => statsFor(req, await options.stats.snapshot()),
  );

  let closingNow = false;
  registerHealthRoutes(app, { readiness: options.readiness, isClosing: () => closingNow });
  registerQueueRoutes(app, { broker: options.broker, consumers });
  registerQueueLifecycleRoutes(app, { broker: options.broker, pubsub: options.pubsub });
  registerJobRoutes(app, { jobs: options.jobs });
  registerTopicRoutes(app, { pubsub: options.pubsub, streams });
  registerEventRoutes(app, {
    jobs: options.jobs,
    stats: options.stats,
    streams,
    statsView: statsFor,
  });
  const zmwsListing = options.zmwsListing;
  if (zmwsListing) {
    await app.register((scope) =>
      registerZmwsRoutes(scope, { jobs: options.jobs, listing: zmwsListing }),
    );
  }
  registerBrowseRoutes(app, { broker: options.broker });
  registerConnectionRoutes(app, options);
  if (options.jobAdmin) registerJobAdminRoutes(app, { admin: options.jobAdmin });
  if (options.topics) {
    registerTopicAdminRoutes(app, { broker: options.broker, topics: options.topics });
  }
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
    url: `${options.tls ? 'https' : 'http'}://${host}:${port}`,
    get connections() {
      return sockets.size;
    },
    routes,
    close() {
      closing ??= (async () => {
        closingNow = true; // /readyz answers 503 from now on
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
