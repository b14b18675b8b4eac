/**
 * Topics for operators (the dashboard): the retained values matching a pattern, with
 * size-capped previews, and the durable subscriptions with the depth of their queues.
 */
import type { FastifyInstance } from 'fastify';
import type { Broker } from '../core/broker.js';
import type { DurableSubscriptionInfo } from '../core/pubsub-durable.js';
import type { TopicMessage } from '../core/pubsub-types.js';
import { DEFAULT_PREVIEW_BYTES, previewBytesQuery, previewOf, previewSchema } from './preview.js';
import { errorResponses } from './schemas.js';

/** Most retained values one reply lists. */
const MAX_TOPICS_PAGE = 1000;
const DEFAULT_TOPICS_PAGE = 100;
/** Longest pattern (the topic length limit of core/topics.ts). */
const MAX_PATTERN_LENGTH = 256;

/** What the routes read of the pub/sub engine. */
export interface TopicSource {
  retained(pattern: string): Promise<{ seq: number; items: TopicMessage[] }>;
  durableSubscriptions(): DurableSubscriptionInfo[];
}

export interface TopicAdminRoutesOptions {
  broker: Broker;
  topics: TopicSource;
}

export function registerTopicAdminRoutes(app: FastifyInstance, o: TopicAdminRoutesOptions): void {
  const { broker, topics } = o;
  const tags = ['topics'];

  app.get<{ Querystring: { pattern: string; limit: number; previewBytes: number } }>(
    '/v1/topics',
    {
      schema: {
        tags,
        summary: 'Retained values of the topics matching a pattern (default every topic)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            pattern: {
              type: 'string',
              minLength: 1,
              maxLength: MAX_PATTERN_LENGTH,
              default: '**',
              description: 'Exact topic, prefix ending in `/`, or `*` / `**` wildcards.',
            },
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: MAX_TOPICS_PAGE,
              default: DEFAULT_TOPICS_PAGE,
            },
            previewBytes: { ...previewBytesQuery, default: DEFAULT_PREVIEW_BYTES },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              seq: { type: 'integer', description: 'Sequence number the listing reflects.' },
              topics: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    topic: { type: 'string' },
                    seq: { type: 'integer' },
                    publishedAt: { type: 'integer' },
                    headers: { type: 'object', additionalProperties: { type: 'string' } },
                    frameCount: { type: 'integer' },
                    value: previewSchema,
                  },
                },
              },
              more: { type: 'boolean', description: 'True when more topics matched than listed.' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { pattern, limit, previewBytes } = req.query;
      const { seq, items } = await topics.retained(pattern);
      const sorted = [...items].sort((a, b) => a.topic.localeCompare(b.topic));
      return {
        seq,
        topics: sorted.slice(0, limit).map((m) => ({
          topic: m.topic,
          seq: m.seq,
          publishedAt: m.publishedAt,
          headers: m.headers ?? {},
          frameCount: m.frames.length,
          value: previewOf(m.frames[0] ?? Buffer.alloc(0), previewBytes),
        })),
        more: sorted.length > limit,
      };
    },
  );

  app.get(
    '/v1/subscriptions',
    {
      schema: {
        tags,
        summary: 'Durable subscriptions with the messages waiting in their queues',
        response: {
          200: {
            type: 'object',
            properties: {
              subscriptions: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    pattern: { type: 'string' },
                    queue: { type: 'string' },
                    createdAt: { type: 'integer' },
                    depth: { type: 'integer' },
                    ready: { type: 'integer' },
                    leased: { type: 'integer' },
                    dead: { type: 'integer' },
                    consumers: { type: 'integer' },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async () => {
      const known = new Set(broker.listQueues());
      const subscriptions = await Promise.all(
        topics.durableSubscriptions().map(async (s) => {
          const q = known.has(s.queue) ? await broker.queueStats(s.queue) : undefined;
          return {
            ...s,
            depth: q?.depth ?? 0,
            ready: q?.ready ?? 0,
            leased: q?.leased ?? 0,
            dead: q?.dead ?? 0,
            consumers: q?.consumers ?? 0,
          };
        }),
      );
      return { subscriptions };
    },
  );
}
