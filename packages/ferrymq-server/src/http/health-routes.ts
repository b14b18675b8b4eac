/**
 * Liveness and readiness for orchestrators and load balancers:
 *
 * - `GET /healthz`: the process answers HTTP (200), nothing more;
 * - `GET /readyz`: 200 only when the server says it is ready (the store is writable, every
 *   endpoint is bound, it is not draining); 503 `NOT_READY` with the failed checks otherwise.
 *
 * The gateway does not judge readiness itself: the server composes the check (it knows the
 * store, the disk and its own life cycle; server/readiness.ts) and passes it in.
 */
import type { FastifyInstance } from 'fastify';
import { FerryError } from 'ferrymq/model';
import { errorBody } from './gateway-errors.js';

/** One readiness check: its name and whether it passed (with why not). */
export interface ReadinessCheck {
  name: string;
  ok: boolean;
  detail?: string | undefined;
}

/** The server's readiness checks, run at each `/readyz`; ready when every one is ok. */
export type ReadinessProbe = () => ReadinessCheck[];

export interface HealthRoutesOptions {
  /** The server's readiness; without one, the gateway is ready while it is open. */
  readiness: ReadinessProbe | undefined;
  /** True once the gateway is closing (it is then never ready). */
  isClosing: () => boolean;
}

const checksSchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: { name: { type: 'string' }, ok: { type: 'boolean' }, detail: { type: 'string' } },
  },
} as const;

export function registerHealthRoutes(app: FastifyInstance, o: HealthRoutesOptions): void {
  const tags = ['ops'];
  app.get(
    '/healthz',
    {
      schema: {
        tags,
        summary: 'Liveness: 200 while the process answers HTTP',
        response: {
          200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } },
        },
      },
    },
    () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        tags,
        summary: 'Readiness: 200 when the store is writable and every endpoint is bound',
        response: {
          200: {
            type: 'object',
            properties: { status: { type: 'string', enum: ['ready'] }, checks: checksSchema },
          },
          503: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: { type: 'string' },
              message: { type: 'string' },
              checks: checksSchema,
            },
          },
        },
      },
    },
    (_req, reply) => {
      const closing = o.isClosing();
      const checks: ReadinessCheck[] = [
        { name: 'gateway open', ok: !closing, ...(closing ? { detail: 'draining' } : {}) },
        ...(o.readiness?.() ?? []),
      ];
      const failed = checks.filter((c) => !c.ok);
      if (failed.length === 0) return reply.send({ status: 'ready', checks });
      const why = failed.map((c) => (c.detail ? `${c.name}: ${c.detail}` : c.name)).join('; ');
      const fe = new FerryError('NOT_READY', `not ready: ${why}`);
      return reply.status(503).send({ ...errorBody(fe), checks });
    },
  );
}
