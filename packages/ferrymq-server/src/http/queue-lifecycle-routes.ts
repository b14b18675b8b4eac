/**
 * Queue life-cycle routes: delete a queue (refused while it holds messages unless forced),
 * pause and resume its deliveries, read and change its runtime policy; and delete a durable
 * subscription. docs/http.md describes them; the core does the work (QueueLifecycle).
 */
import type { FastifyInstance } from 'fastify';
import type { Broker } from '../core/broker.js';
import type { PubSub } from '../core/pubsub.js';
import { FerryError, QUEUE_POLICY_BOUNDS, QUEUE_POLICY_KEYS } from 'ferrymq/model';
import { errorResponses, nameSchema, queueParams } from './schemas.js';

export interface QueueLifecycleRoutesOptions {
  broker: Broker;
  /** Pub/sub, for deleting durable subscriptions; without it that route answers 404. */
  pubsub?: PubSub | undefined;
}

interface QueueParams {
  queue: string;
}

const policyValuesSchema = {
  type: 'object',
  properties: Object.fromEntries(
    QUEUE_POLICY_KEYS.map((k) => [
      k,
      {
        type: 'integer',
        minimum: QUEUE_POLICY_BOUNDS[k].min,
        maximum: QUEUE_POLICY_BOUNDS[k].max,
      },
    ]),
  ),
} as const;

const policyInfoSchema = {
  type: 'object',
  properties: {
    queue: { type: 'string' },
    policy: { ...policyValuesSchema, description: 'In force: defaults, config file, runtime.' },
    overrides: { ...policyValuesSchema, description: 'Set at runtime (win over the config).' },
  },
} as const;

/**
 * A merge patch of the runtime policy: per key an integer (set) or null (drop the runtime
 * value). Types and bounds are checked by the core, so a bad value is INVALID_POLICY.
 */
const policyPatchSchema = {
  type: 'object',
  description:
    'Per policy key: an integer sets the runtime value, null drops it (the config applies). ' +
    `Keys: ${QUEUE_POLICY_KEYS.join(', ')}.`,
  properties: Object.fromEntries(
    QUEUE_POLICY_KEYS.map((k) => [
      k,
      {
        description: `integer ${QUEUE_POLICY_BOUNDS[k].min}–${QUEUE_POLICY_BOUNDS[k].max}, or null`,
      },
    ]),
  ),
} as const;

const pausedSchema = {
  type: 'object',
  properties: { queue: { type: 'string' }, paused: { type: 'boolean' } },
} as const;

export function registerQueueLifecycleRoutes(
  app: FastifyInstance,
  o: QueueLifecycleRoutesOptions,
): void {
  const { broker, pubsub } = o;
  const tags = ['queues'];

  app.delete<{ Params: QueueParams; Querystring: { force?: boolean } }>(
    '/v1/queues/:queue',
    {
      schema: {
        tags,
        summary: 'Delete a queue (409 QUEUE_NOT_EMPTY while it holds messages, unless force)',
        params: queueParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            force: { type: 'boolean', description: 'Delete its messages too.', default: false },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { deleted: { type: 'string' }, messages: { type: 'integer' } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const out = await broker.deleteQueue(req.params.queue, { force: req.query.force === true });
      return { deleted: req.params.queue, messages: out.messages };
    },
  );

  app.post<{ Params: QueueParams }>(
    '/v1/queues/:queue/pause',
    {
      schema: {
        tags,
        summary: 'Stop delivering (sends are still stored); kept across restarts',
        params: queueParams,
        response: { 200: pausedSchema, ...errorResponses },
      },
    },
    async (req) => {
      await broker.pauseQueue(req.params.queue);
      return { queue: req.params.queue, paused: true };
    },
  );

  app.post<{ Params: QueueParams }>(
    '/v1/queues/:queue/resume',
    {
      schema: {
        tags,
        summary: 'Deliver again after a pause',
        params: queueParams,
        response: { 200: pausedSchema, ...errorResponses },
      },
    },
    async (req) => {
      await broker.resumeQueue(req.params.queue);
      return { queue: req.params.queue, paused: false };
    },
  );

  app.get<{ Params: QueueParams }>(
    '/v1/queues/:queue/policy',
    {
      schema: {
        tags,
        summary: 'The policy in force and the values set at runtime',
        params: queueParams,
        response: { 200: policyInfoSchema, ...errorResponses },
      },
    },
    (req) => broker.queuePolicy(req.params.queue),
  );

  app.patch<{ Params: QueueParams; Body: Record<string, unknown> }>(
    '/v1/queues/:queue/policy',
    {
      schema: {
        tags,
        summary: 'Change the runtime policy (stored, applied at once; 400 INVALID_POLICY)',
        params: queueParams,
        body: policyPatchSchema,
        response: { 200: policyInfoSchema, ...errorResponses },
      },
    },
    (req) => broker.setQueuePolicy(req.params.queue, req.body),
  );

  app.delete<{ Params: QueueParams }>(
    '/v1/queues/:queue/policy',
    {
      schema: {
        tags,
        summary: 'Drop every runtime policy value: the config file (or defaults) apply again',
        params: queueParams,
        response: { 200: policyInfoSchema, ...errorResponses },
      },
    },
    (req) => broker.setQueuePolicy(req.params.queue, {}, { reset: true }),
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/subscriptions/:name',
    {
      schema: {
        tags: ['events'],
        summary: 'Delete a durable subscription and its queue with what it holds',
        params: {
          type: 'object',
          required: ['name'],
          properties: { name: { ...nameSchema, description: 'The durable subscription.' } },
        },
        response: { 204: { type: 'null' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      if (!pubsub) throw new FerryError('SUBSCRIPTION_NOT_FOUND', 'this broker runs no pub/sub');
      await pubsub.removeDurable(req.params.name);
      return reply.status(204).send();
    },
  );
}
