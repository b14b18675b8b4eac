/**
 * What each gateway route asks of a user when an auth file is on: the verb and the resource
 * (docs/security.md#http-gateway has the same table). Routes that show many things (lists,
 * stats) need only a valid token and show only what the user may see (`filter`). Every route
 * the gateway serves must have a rule here: the gateway refuses to start otherwise, so a new
 * route can never be open by omission.
 */
import type { FastifyRequest } from 'fastify';
import type { FerryStats, JobInfo, ServiceInfo, WorkerInfo } from 'ferrymq/model';
import type { AuthVerb } from '../security/auth-model.js';

/** A verb of the auth file (docs/security.md). */
export type Verb = AuthVerb;

/** One permission a request needs: any of `verbs` on `resource`. */
export interface Need {
  verbs: readonly Verb[];
  resource: string;
}

/** What a rule may look up to name the resource. */
export interface RuleContext {
  req: FastifyRequest;
  /** The service of a job, or undefined when there is no such job. */
  serviceOfJob: (id: string) => Promise<string | undefined>;
  /** The queue a lease was handed out from, or undefined for a lease the gateway does not hold. */
  queueOfLease: (lease: string) => string | undefined;
}

/** What a user may see, for the lists. */
export interface Visibility {
  queue(name: string): boolean;
  service(name: string): boolean;
  topic(pattern: string): boolean;
}

export type RouteRule =
  /** No token needed: health, the OpenAPI document, the dashboard's files. */
  | { access: 'open' }
  /** The metrics token, or a user with `admin`. */
  | { access: 'metrics' }
  | {
      access: 'user';
      /** What the request needs (none: any valid token). */
      needs?: (ctx: RuleContext) => Need[] | Promise<Need[]>;
      /** True when `needs` reads the body (checked once it is parsed). */
      body?: boolean;
      /** Cuts the reply down to what the user may see. */
      filter?: (payload: unknown, see: Visibility) => unknown;
    };

export const QUEUE_ANY: readonly Verb[] = ['queue:send', 'queue:consume', 'queue:manage'];
export const SERVICE_ANY: readonly Verb[] = ['service:call', 'service:serve', 'service:manage'];
const SERVICE_READ: readonly Verb[] = ['service:call', 'service:manage'];
/** The topic pattern a subscribe or retained read asks for, `**` when none. */
const DEFAULT_PATTERN = '**';
/** ZMWS's synchronous call prefix: `/SYNC-<JOB>` calls `<JOB>`. */
const ZMWS_SYNC = 'SYNC-';
const ZMWS_SERVER = 'SERVER-';

const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const param = (req: FastifyRequest, name: string): string =>
  text((req.params as Record<string, unknown>)[name]);
const query = (req: FastifyRequest, name: string, fallback: string): string => {
  const v = (req.query as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' && v !== '' ? v : fallback;
};
const body = (req: FastifyRequest): Record<string, unknown> =>
  (req.body ?? {}) as Record<string, unknown>;

const onQueue =
  (...verbs: Verb[]) =>
  ({ req }: RuleContext): Need[] => [{ verbs, resource: param(req, 'queue') }];
const onService =
  (...verbs: Verb[]) =>
  ({ req }: RuleContext): Need[] => [{ verbs, resource: param(req, 'service') }];
const onJob =
  (...verbs: Verb[]) =>
  async (ctx: RuleContext): Promise<Need[]> => {
    const service = await ctx.serviceOfJob(param(ctx.req, 'id'));
    // No such job: the route answers JOB_NOT_FOUND, which tells nothing about any service.
    return service === undefined ? [] : [{ verbs, resource: service }];
  };
const onPattern =
  (verb: Verb) =>
  ({ req }: RuleContext): Need[] => [
    { verbs: [verb], resource: query(req, 'pattern', DEFAULT_PATTERN) },
  ];
/** Settling leases: consume on the queue of each lease the gateway holds. */
const onLeases = (ctx: RuleContext, leases: readonly unknown[]): Need[] =>
  leases.flatMap((l) => {
    const queue = typeof l === 'string' ? ctx.queueOfLease(l) : undefined;
    return queue === undefined ? [] : [{ verbs: ['queue:consume'] as Verb[], resource: queue }];
  });

/** `admin` names operations: `stats` (everything's numbers), `connections`. */
const admin = (operation: 'stats' | 'connections') => (): Need[] => [
  { verbs: ['admin'], resource: operation },
];

/** Stats with only the queues and services the user may see (broker-wide counters stay). */
export function visibleStats(s: FerryStats, see: Visibility): FerryStats {
  const byService: Record<string, number> = {};
  for (const [name, n] of Object.entries(s.workers.byService)) {
    if (see.service(name)) byService[name] = n;
  }
  return {
    ...s,
    queues: s.queues.filter((q) => see.queue(q.name)),
    services: s.services.filter((x) => see.service(x.name)),
    workers: { ...s.workers, byService },
  };
}

type Rows<K extends string, T> = Record<K, T[]> & Record<string, unknown>;
function keep<K extends string, T>(key: K, test: (row: T) => boolean) {
  return (payload: unknown): unknown => {
    const p = payload as Rows<K, T>;
    return Array.isArray(p[key]) ? { ...p, [key]: p[key].filter(test) } : payload;
  };
}

const user = (rule: Omit<Extract<RouteRule, { access: 'user' }>, 'access'> = {}): RouteRule => ({
  access: 'user',
  ...rule,
});
const OPEN: RouteRule = { access: 'open' };

/** `METHOD /path` (Fastify's route pattern) → its rule. HEAD follows GET. */
const ROUTE_RULES: Readonly<Record<string, RouteRule>> = {
  'GET /openapi.json': OPEN,
  'GET /healthz': OPEN,
  'GET /readyz': OPEN,
  'GET /favicon.ico': OPEN,
  'OPTIONS *': OPEN, // CORS preflights, when origins are configured
  'GET /metrics': { access: 'metrics' },
  'GET /v1/stats': user(), // filtered by its handler (statsFor), like the stream
  'GET /v1/events/stats': user(), // the stream filters each snapshot itself (sse.ts)
  'GET /v1/connections': user({ needs: admin('connections') }),

  // Queues
  'GET /v1/queues': user({
    filter: (p, see) => keep<'queues', { name: string }>('queues', (q) => see.queue(q.name))(p),
  }),
  'GET /v1/queues/:queue': user({ needs: onQueue(...QUEUE_ANY) }),
  'POST /v1/queues/:queue/messages': user({ needs: onQueue('queue:send') }),
  'POST /v1/queues/:queue/batch': user({ needs: onQueue('queue:send') }),
  'POST /v1/queues/:queue/consume': user({ needs: onQueue('queue:consume') }),
  'POST /v1/leases/ack': user({ body: true, needs: (c) => onLeases(c, leasesOf(c.req)) }),
  'POST /v1/leases/nack': user({ body: true, needs: (c) => onLeases(c, leasesOf(c.req)) }),
  'POST /v1/leases/:lease/ack': user({ needs: (c) => onLeases(c, [param(c.req, 'lease')]) }),
  'POST /v1/leases/:lease/nack': user({ needs: (c) => onLeases(c, [param(c.req, 'lease')]) }),
  'POST /v1/leases/:lease/extend': user({ needs: (c) => onLeases(c, [param(c.req, 'lease')]) }),
  'GET /v1/queues/:queue/messages': user({ needs: onQueue('queue:manage') }),
  'DELETE /v1/queues/:queue/messages': user({ needs: onQueue('queue:manage') }),
  'GET /v1/queues/:queue/dead': user({ needs: onQueue('queue:manage') }),
  'DELETE /v1/queues/:queue/dead': user({ needs: onQueue('queue:manage') }),
  'POST /v1/queues/:queue/dead/redrive': user({ needs: onQueue('queue:manage') }),
  'DELETE /v1/queues/:queue': user({ needs: onQueue('queue:manage') }),
  'POST /v1/queues/:queue/pause': user({ needs: onQueue('queue:manage') }),
  'POST /v1/queues/:queue/resume': user({ needs: onQueue('queue:manage') }),
  'GET /v1/queues/:queue/policy': user({ needs: onQueue('queue:manage') }),
  'PATCH /v1/queues/:queue/policy': user({ needs: onQueue('queue:manage') }),
  'DELETE /v1/queues/:queue/policy': user({ needs: onQueue('queue:manage') }),
  'GET /v1/queues/:queue/browse': user({ needs: onQueue('queue:manage') }),
  'GET /v1/queues/:queue/messages/:id': user({ needs: onQueue('queue:manage') }),
  'DELETE /v1/queues/:queue/messages/:id': user({ needs: onQueue('queue:manage') }),
  'POST /v1/queues/:queue/messages/:id/redrive': user({ needs: onQueue('queue:manage') }),

  // Jobs
  'GET /v1/services': user({
    filter: (p, see) => keep<'services', ServiceInfo>('services', (x) => see.service(x.name))(p),
  }),
  'GET /v1/workers': user({
    filter: (p, see) =>
      keep<'workers', WorkerInfo>('workers', (w) => w.services.some((s) => see.service(s)))(p),
  }),
  'GET /v1/jobs': user({
    filter: (p, see) => keep<'jobs', JobInfo>('jobs', (j) => see.service(j.service))(p),
  }),
  'GET /v1/jobs/search': user({
    filter: (p, see) => keep<'jobs', JobInfo>('jobs', (j) => see.service(j.service))(p),
  }),
  'POST /v1/services/:service/jobs': user({ needs: onService('service:call') }),
  'POST /v1/services/:service/call': user({ needs: onService('service:call') }),
  'GET /v1/jobs/:id': user({ needs: onJob(...SERVICE_READ) }),
  'GET /v1/jobs/:id/events': user({ needs: onJob(...SERVICE_READ) }),
  'POST /v1/jobs/:id/cancel': user({ needs: onJob('service:manage') }),
  'GET /v1/jobs/:id/detail': user({ needs: onJob('service:manage') }),
  'POST /v1/jobs/:id/retry': user({ needs: onJob('service:manage') }),

  // Topics
  'POST /v1/topics/publish': user({
    body: true,
    needs: ({ req }) => {
      const b = body(req);
      const topic = text(b['topic']);
      const needs: Need[] = [{ verbs: ['topic:publish'], resource: topic }];
      if (b['retain'] === true) needs.push({ verbs: ['topic:retain'], resource: topic });
      return needs;
    },
  }),
  'GET /v1/topics/retained': user({ needs: onPattern('topic:subscribe') }),
  'GET /v1/topics/subscribe': user({ needs: onPattern('topic:subscribe') }),
  'GET /v1/topics': user({ needs: onPattern('topic:subscribe') }),
  'GET /v1/subscriptions': user({
    filter: (p, see) =>
      keep<'subscriptions', { pattern: string; queue: string }>(
        'subscriptions',
        (s) => see.topic(s.pattern) || see.queue(s.queue),
      )(p),
  }),
  'DELETE /v1/subscriptions/:name': user({
    needs: ({ req }) => [{ verbs: ['queue:manage'], resource: `sub:${param(req, 'name')}` }],
  }),

  // ZMWS 1.0 (only with the dialect on): `/<JOB>` and `/SYNC-<JOB>` call, `/SERVER-*` list all.
  'GET /:job': user({ needs: ({ req }) => zmwsNeeds(param(req, 'job')) }),
  'POST /:job': user({ needs: ({ req }) => zmwsNeeds(param(req, 'job')) }),
};

function leasesOf(req: FastifyRequest): unknown[] {
  const l = body(req)['leases'];
  return Array.isArray(l) ? l : [];
}

function zmwsNeeds(job: string): Need[] {
  if (job.startsWith(ZMWS_SERVER)) return admin('stats')();
  const service = job.startsWith(ZMWS_SYNC) ? job.slice(ZMWS_SYNC.length) : job;
  return [{ verbs: ['service:call'], resource: service }];
}

/** The rule of a route (`/dashboard/*` files and `/` are open: the page must load to log in). */
export function ruleOf(method: string, url: string): RouteRule | undefined {
  if (url === '/' || url.startsWith('/dashboard/')) return OPEN;
  return ROUTE_RULES[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}
