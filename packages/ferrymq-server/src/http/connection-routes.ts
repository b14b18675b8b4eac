/**
 * Connections for operators (the dashboard): open connections per dialect, every session
 * with its consumers (queue, prefetch, deliveries in flight) and the registered workers.
 */
import type { FastifyInstance } from 'fastify';
import type { Broker } from '../core/broker.js';
import type { JobApi } from '../core/job-types.js';
import type { StatsSource } from '../core/stats.js';
import { errorResponses } from './schemas.js';

export interface ConnectionRoutesOptions {
  broker: Broker;
  jobs: JobApi;
  stats: StatsSource;
}

const looseArray = {
  type: 'array',
  items: { type: 'object', additionalProperties: true },
} as const;

export function registerConnectionRoutes(app: FastifyInstance, o: ConnectionRoutesOptions): void {
  const { broker, jobs, stats } = o;
  app.get(
    '/v1/connections',
    {
      schema: {
        tags: ['ops'],
        summary: 'Connections per dialect, sessions with their consumers and prefetch, workers',
        response: {
          200: {
            type: 'object',
            properties: {
              total: { type: 'integer' },
              byDialect: { type: 'object', additionalProperties: { type: 'integer' } },
              sessions: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    id: { type: 'string' },
                    leases: { type: 'integer' },
                    consumers: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: {
                          tag: { type: 'string' },
                          queue: { type: 'string' },
                          prefetch: { type: 'integer' },
                          inflight: { type: 'integer' },
                          ackTimeoutMs: { type: 'integer' },
                        },
                      },
                    },
                  },
                },
              },
              workers: looseArray,
            },
          },
          ...errorResponses,
        },
      },
    },
    async () => {
      const snap = await stats.snapshot();
      return {
        total: snap.broker.connections,
        byDialect: snap.connections,
        sessions: broker.sessions(),
        workers: jobs.workers(),
      };
    },
  );
}
