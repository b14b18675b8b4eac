/**
 * Bearer tokens on the gateway. With an auth file (security/auth-model.ts), every route but the open ones
 * (health, OpenAPI, the dashboard's files) needs `Authorization: Bearer <token>` of a user:
 * none or an unknown one is 401 `UNAUTHENTICATED`; a user without the verb on the resource
 * that route-permissions.ts names is 403 `FORBIDDEN`, before the route runs (after the body
 * is parsed for the routes whose resource is in the body). Lists and stats show only what the
 * user may see. `/metrics` takes its own token (`metricsToken`) or a user with `admin`.
 * Without an auth file every route is open, as before (loopback development); `/metrics`
 * still asks for the metrics token when one is set.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FerryError, type FerryStats } from 'ferrymq/model';
import { hashToken, type AuthModel, type AuthUser } from '../security/auth-model.js';
import {
  QUEUE_ANY,
  ruleOf,
  SERVICE_ANY,
  type Need,
  type RouteRule,
  type RuleContext,
  type Verb,
  type Visibility,
  visibleStats,
} from './route-permissions.js';

export interface AuthGuardOptions {
  /**
   * The auth file's users as loaded now (read per request, so a reload applies to the next
   * one); undefined: no authentication, every route open.
   */
  auth: (() => AuthModel | undefined) | undefined;
  /** `sha256:<hex>` of the token that may read /metrics. */
  metricsToken: string | undefined;
  serviceOfJob: (id: string) => Promise<string | undefined>;
  queueOfLease: (lease: string) => string | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The user of the request's bearer token (undefined without auth or a valid token). */
    ferryUser: AuthUser | undefined;
    /** The auth model the request was checked against (one per request, reloads aside). */
    ferryAuth: AuthModel | undefined;
    /** What the rate limit counts this request against: its token's hash, when valid. */
    ferryCredential: string | undefined;
  }
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
function bearerOf(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(h);
  return m?.[1];
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The route pattern of a request; undefined when no route matched (the 404 handler answers). */
function routeOf(req: FastifyRequest): string | undefined {
  return req.routeOptions.url;
}

/** RFC 6750: a 401 names the scheme it wants. */
const CHALLENGE = 'Bearer realm="ferry"';

function unauthenticated(hadToken: boolean): FerryError {
  return new FerryError(
    'UNAUTHENTICATED',
    hadToken
      ? 'the bearer token is not one of the auth file'
      : 'this gateway needs Authorization: Bearer <token> (docs/security.md)',
  );
}

/** What a user may see in lists: any verb of the kind on the name, or `admin`. */
function visibilityOf(auth: AuthModel, user: AuthUser): Visibility {
  const isAdmin = auth.isAllowed(user, 'admin', 'stats');
  const any = (verbs: readonly Verb[], name: string): boolean =>
    isAdmin || verbs.some((v) => auth.isAllowed(user, v, name));
  return {
    queue: (name) => any(QUEUE_ANY, name),
    service: (name) => any(SERVICE_ANY, name),
    topic: (pattern) => any(['topic:subscribe'], pattern),
  };
}

/**
 * Registers the guard. Call before the routes: every route the gateway serves must have a rule
 * (route-permissions.ts) or the gateway does not start.
 */
export function registerAuthGuard(app: FastifyInstance, o: AuthGuardOptions): void {
  app.decorateRequest('ferryUser', undefined);
  app.decorateRequest('ferryAuth', undefined);
  app.decorateRequest('ferryCredential', undefined);
  app.addHook('onRoute', (r) => {
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) {
      if (ruleOf(m, r.url) === undefined) {
        throw new Error(`route ${m} ${r.url} has no rule in route-permissions.ts`);
      }
    }
  });

  const check = async (req: FastifyRequest, rule: RouteRule): Promise<void> => {
    const auth = req.ferryAuth;
    if (rule.access !== 'user' || rule.needs === undefined || auth === undefined) return;
    const user = req.ferryUser!;
    const ctx: RuleContext = { req, serviceOfJob: o.serviceOfJob, queueOfLease: o.queueOfLease };
    for (const need of await rule.needs(ctx)) refuseUnless(auth, user, need);
  };

  app.addHook('onRequest', async (req, reply) => {
    const auth = o.auth?.();
    req.ferryAuth = auth;
    const token = bearerOf(req);
    const hash = token === undefined ? undefined : hashToken(token);
    const user = token === undefined ? undefined : auth?.userForToken(token);
    req.ferryUser = user;
    const route = routeOf(req);
    const rule = route === undefined ? undefined : ruleOf(req.method, route);
    if (rule === undefined || rule.access === 'open') return;
    if (rule.access === 'metrics') {
      const byToken =
        o.metricsToken !== undefined && hash !== undefined && sameHash(hash, o.metricsToken);
      if (byToken) req.ferryCredential = hash;
      else if (auth !== undefined || o.metricsToken !== undefined) {
        if (user === undefined) {
          void reply.header('www-authenticate', CHALLENGE);
          throw unauthenticated(token !== undefined);
        }
        if (auth === undefined || !auth.isAllowed(user, 'admin', 'stats')) {
          throw forbidden(user, { verbs: ['admin'], resource: 'stats' });
        }
      }
    }
    if (user !== undefined) req.ferryCredential = hash;
    if (auth === undefined || rule.access === 'metrics') return;
    if (user === undefined) {
      void reply.header('www-authenticate', CHALLENGE);
      throw unauthenticated(token !== undefined);
    }
    if (!rule.body) await check(req, rule);
  });

  app.addHook('preHandler', async (req) => {
    const route = routeOf(req);
    const rule = route === undefined ? undefined : ruleOf(req.method, route);
    if (rule?.access !== 'user' || !rule.body) return;
    await check(req, rule);
  });

  app.addHook('preSerialization', (req, reply, payload, done) => {
    const route = routeOf(req);
    const rule = route === undefined ? undefined : ruleOf(req.method, route);
    const { ferryUser: user, ferryAuth: auth } = req;
    const ok = reply.statusCode < 300;
    if (
      !ok ||
      auth === undefined ||
      user === undefined ||
      rule?.access !== 'user' ||
      !rule.filter
    ) {
      return done(null, payload);
    }
    done(null, rule.filter(payload, visibilityOf(auth, user)));
  });
}

function forbidden(user: AuthUser, need: Need): FerryError {
  return new FerryError(
    'FORBIDDEN',
    `user ${JSON.stringify(user.name)} may not ${need.verbs.join(' or ')} ${JSON.stringify(need.resource)}`,
  );
}

function refuseUnless(auth: AuthModel, user: AuthUser, need: Need): void {
  if (!need.verbs.some((v) => auth.isAllowed(user, v, need.resource))) throw forbidden(user, need);
}

/** The stats a request's user may see: all without auth or with `admin` on `stats`. */
export function statsFor(req: FastifyRequest, s: FerryStats): FerryStats {
  const { ferryAuth: auth, ferryUser: user } = req;
  return auth === undefined || user === undefined ? s : visibleStats(s, visibilityOf(auth, user));
}
