/**
 * Browsing a queue's messages for operators (the dashboard): one state at a time in pages with
 * a cursor and size-capped body previews, one message in detail, deleting one message and
 * redriving one dead letter.
 */
import type { FastifyInstance } from 'fastify';
import type { Broker } from '../core/broker.js';
import { FerryError, type MessageState, type StoredMessage } from 'ferrymq/model';
import {
  DEFAULT_PREVIEW_BYTES,
  previewBytesQuery,
  previewFrames,
  previewOf,
  previewSchema,
} from './preview.js';
import { errorResponses, nameSchema } from './schemas.js';

/** Most messages one browse page holds. */
const MAX_BROWSE_PAGE = 200;
const DEFAULT_BROWSE_PAGE = 20;
/** Body bytes a message detail shows unless asked otherwise (4 KiB). */
const DEFAULT_DETAIL_BYTES = 4 * 1024;

const MESSAGE_STATES = ['ready', 'leased', 'scheduled', 'dead'] as const;
/** Message ids are the store's positive integers, as decimal strings. */
const messageIdSchema = { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } as const;

const messageParams = {
  type: 'object',
  required: ['queue', 'id'],
  properties: { queue: nameSchema, id: messageIdSchema },
} as const;

const headersSchema = { type: 'object', additionalProperties: { type: 'string' } } as const;

const messageSummarySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: [...MESSAGE_STATES] },
    attempts: { type: 'integer' },
    priority: { type: 'integer' },
    enqueuedAt: { type: 'integer' },
    notBefore: { type: 'integer' },
    expiresAt: { type: ['integer', 'null'] },
    dedupKey: { type: ['string', 'null'] },
    deadReason: { type: ['string', 'null'] },
    size: { type: 'integer', description: 'Bytes of every frame.' },
    frameCount: { type: 'integer' },
    headers: headersSchema,
    body: { ...previewSchema, description: 'The first frame, capped.' },
  },
} as const;

const messageDetailSchema = {
  type: 'object',
  properties: {
    ...messageSummarySchema.properties,
    queue: { type: 'string' },
    frames: {
      type: 'array',
      items: previewSchema,
      description: 'Each frame (the first 16), capped.',
    },
  },
} as const;

interface MessageParams {
  queue: string;
  id: string;
}

function summary(m: StoredMessage, previewBytes: number): Record<string, unknown> {
  return {
    id: m.id,
    state: m.state,
    attempts: m.attempts,
    priority: m.priority,
    enqueuedAt: m.enqueuedAt,
    notBefore: m.notBefore,
    expiresAt: m.expiresAt,
    dedupKey: m.dedupKey,
    deadReason: m.deadReason,
    size: m.size,
    frameCount: m.frames.length,
    headers: m.headers ?? {},
    body: previewOf(m.frames[0] ?? Buffer.alloc(0), previewBytes),
  };
}

export interface BrowseRoutesOptions {
  broker: Broker;
}

export function registerBrowseRoutes(app: FastifyInstance, o: BrowseRoutesOptions): void {
  const { broker } = o;
  const tags = ['queues'];

  app.get<{
    Params: { queue: string };
    Querystring: { state: MessageState; limit: number; after?: string; previewBytes: number };
  }>(
    '/v1/queues/:queue/browse',
    {
      schema: {
        tags,
        summary: 'One page of the messages in one state, with body previews',
        params: { type: 'object', required: ['queue'], properties: { queue: nameSchema } },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: { type: 'string', enum: [...MESSAGE_STATES], default: 'ready' },
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: MAX_BROWSE_PAGE,
              default: DEFAULT_BROWSE_PAGE,
            },
            after: { ...messageIdSchema, description: 'The `next` of the previous page.' },
            previewBytes: { ...previewBytesQuery, default: DEFAULT_PREVIEW_BYTES },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              state: { type: 'string' },
              count: { type: 'integer', description: 'Messages in this state now.' },
              messages: { type: 'array', items: messageSummarySchema },
              next: {
                type: ['string', 'null'],
                description: 'Pass as `after` for the next page; null on the last page.',
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { queue } = req.params;
      const { state, limit, after, previewBytes } = req.query;
      // One more than the page tells whether a next page exists.
      const [page, stats] = await Promise.all([
        broker.peek(queue, { state, limit: limit + 1, afterId: after }),
        broker.queueStats(queue),
      ]);
      const messages = page.slice(0, limit);
      return {
        state,
        count: stats[state],
        messages: messages.map((m) => summary(m, previewBytes)),
        next: page.length > limit ? messages[messages.length - 1]!.id : null,
      };
    },
  );

  app.get<{ Params: MessageParams; Querystring: { maxBytes: number } }>(
    '/v1/queues/:queue/messages/:id',
    {
      schema: {
        tags,
        summary: 'One message: state, attempts, headers, body preview (4 KiB unless maxBytes)',
        params: messageParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { maxBytes: { ...previewBytesQuery, default: DEFAULT_DETAIL_BYTES } },
        },
        response: { 200: messageDetailSchema, ...errorResponses },
      },
    },
    async (req) => {
      const m = await broker.message(req.params.queue, req.params.id);
      return {
        ...summary(m, req.query.maxBytes),
        queue: m.queue,
        frames: previewFrames(m.frames, req.query.maxBytes),
      };
    },
  );

  app.delete<{ Params: MessageParams }>(
    '/v1/queues/:queue/messages/:id',
    {
      schema: {
        tags,
        summary: 'Delete one ready, scheduled or dead message (a leased one: MESSAGE_LEASED)',
        params: messageParams,
        response: {
          200: {
            type: 'object',
            properties: { id: { type: 'string' }, state: { type: 'string' } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => ({
      id: req.params.id,
      state: await broker.deleteMessage(req.params.queue, req.params.id),
    }),
  );

  app.post<{ Params: MessageParams }>(
    '/v1/queues/:queue/messages/:id/redrive',
    {
      schema: {
        tags,
        summary: 'Move one dead letter back to ready (attempts reset)',
        params: messageParams,
        response: {
          200: {
            type: 'object',
            properties: { id: { type: 'string' }, state: { type: 'string', enum: ['ready'] } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { queue, id } = req.params;
      const m = await broker.message(queue, id);
      if (m.state !== 'dead') {
        throw new FerryError('MESSAGE_NOT_DEAD', `message ${id} is ${m.state}, not dead`);
      }
      const n = await broker.redrive(queue, { ids: [id] });
      // Deleted or redriven by someone else between the read and the redrive.
      if (n === 0) throw new FerryError('MESSAGE_NOT_FOUND', `no dead message ${id} any more`);
      return { id, state: 'ready' };
    },
  );
}
