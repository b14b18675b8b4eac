/**
 * The gateway's guards, in the order a request meets them: the `Host` check (DNS rebinding),
 * the `Origin` check (pages of other sites), CORS for the configured origins only, bearer
 * tokens and permissions, then the rate limit per token. Registered before any route: the
 * rate limit and the permission table attach to routes as they are added.
 */
import fastifyCors from '@fastify/cors';
import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FerryError } from 'ferrymq/model';
import type { AuthModel } from '../security/auth-model.js';
import { registerAuthGuard } from './auth-guard.js';
import { registerHostGuard } from './host-guard.js';
import { registerOriginGuard } from './origin-guard.js';

export interface GatewaySecurityOptions {
  /** `Host` names answered besides loopback names and IP addresses. */
  allowedHosts: readonly string[];
  /** Origins whose pages may call the gateway (and read its answers: CORS). */
  allowedOrigins: readonly string[];
  /** Routes (URL patterns) open to every origin (ZMWS's `/<JOB>`). */
  openRoutes: ReadonlySet<string>;
  /** The auth file's users as loaded now; undefined: no authentication. */
  auth: (() => AuthModel | undefined) | undefined;
  /** `sha256:<hex>` of the token that may read `/metrics`. */
  metricsToken: string | undefined;
  /** Requests per minute per token (per client address without an auth file); 0: no limit. */
  rateLimitPerMinute: number;
  serviceOfJob: (id: string) => Promise<string | undefined>;
  queueOfLease: (lease: string) => string | undefined;
}

/** The rate limit's window. */
const RATE_WINDOW_MS = 60_000;
/** Probes are never limited: a limited orchestrator would restart a healthy broker. */
const UNLIMITED_PATHS = new Set(['/healthz', '/readyz']);
/** How long browsers may keep a CORS preflight's answer. */
const CORS_MAX_AGE_S = 600;

export async function registerGatewaySecurity(
  app: FastifyInstance,
  o: GatewaySecurityOptions,
): Promise<void> {
  registerHostGuard(app, { allowedHosts: o.allowedHosts });
  registerOriginGuard(app, { openRoutes: o.openRoutes, allowedOrigins: o.allowedOrigins });
  if (o.allowedOrigins.length > 0) {
    await app.register(fastifyCors, {
      origin: [...o.allowedOrigins],
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type'],
      credentials: false,
      maxAge: CORS_MAX_AGE_S,
    });
  }
  registerAuthGuard(app, {
    auth: o.auth,
    metricsToken: o.metricsToken,
    serviceOfJob: o.serviceOfJob,
    queueOfLease: o.queueOfLease,
  });
  if (o.rateLimitPerMinute > 0) {
    const limit = o.rateLimitPerMinute;
    await app.register(fastifyRateLimit, {
      global: true,
      max: limit,
      timeWindow: RATE_WINDOW_MS,
      // After the auth guard (route hooks run after the app's): a valid token is the key.
      keyGenerator: (req: FastifyRequest) => req.ferryCredential ?? `ip:${req.ip}`,
      allowList: (req: FastifyRequest) => UNLIMITED_PATHS.has(req.url.split('?')[0] ?? ''),
      errorResponseBuilder: (req, ctx) =>
        new FerryError(
          'RATE_LIMITED',
          `more than ${limit} requests a minute ${req.ferryCredential ? 'with this token' : 'from this address'}; retry in ${ctx.after}`,
        ),
    });
  }
  // Answers are never to be sniffed into another type (a JSON body read as HTML, say).
  app.addHook('onSend', (_req, reply, payload, done) => {
    void reply.header('x-content-type-options', 'nosniff');
    done(null, payload);
  });
}
