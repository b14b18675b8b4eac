/**
 * Queue routes: send (one, batch), consume with a lease (long poll), ack/nack/extend by lease
 * id, queue list and stats, peek, purge, dead letters and redrive.
 */
import type { FastifyInstance } from 'fastify';
import type { Broker } from '../core/broker.js';
import type { MessageState, StoredMessage } from 'ferrymq/model';
import { encodeFrames, toNewMessage, type Encoding, type HttpMessage } from './body-encoding.js';
import { settleError, type HttpConsumers } from './http-consumers.js';
import {
  batchSchema,
  consumeQuerySchema,
  deliverySchema,
  errorResponses,
  extendBodySchema,
  leaseListSchema,
  leaseParams,
  nackBodySchema,
  newMessageSchema,
  peekQuerySchema,
  queueParams,
  queueStatsSchema,
  redriveBodySchema,
  sendReplySchema,
  settleReplySchema,
  storedMessageSchema,
} from './schemas.js';

export interface QueueRoutesOptions {
  broker: Broker;
  consumers: HttpConsumers;
}

interface QueueParams {
  queue: string;
}

function storedToJson(m: StoredMessage, encoding?: Encoding): Record<string, unknown> {
  return {
    id: m.id,
    state: m.state,
    attempts: m.attempts,
    priority: m.priority,
    enqueuedAt: m.enqueuedAt,
    notBefore: m.notBefore,
    expiresAt: m.expiresAt,
    dedupKey: m.dedupKey,
    size: m.size,
    deadReason: m.deadReason,
    ...(m.headers ? { headers: m.headers } : {}),
    ...encodeFrames(m.frames, encoding),
  };
}

export function registerQueueRoutes(app: FastifyInstance, o: QueueRoutesOptions): void {
  const { broker, consumers } = o;
  const tags = ['queues'];

  app.get(
    '/v1/queues',
    {
      schema: {
        tags,
        summary: 'Every queue with its stats',
        response: {
          200: {
            type: 'object',
            properties: { queues: { type: 'array', items: queueStatsSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async () => ({ queues: await broker.allQueueStats() }),
  );

  app.get<{ Params: QueueParams }>(
    '/v1/queues/:queue',
    {
      schema: {
        tags,
        summary: 'One queue: depth, ready, leased, scheduled, dead, rates, oldest age',
        params: queueParams,
        response: { 200: queueStatsSchema, ...errorResponses },
      },
    },
    (req) => broker.queueStats(req.params.queue),
  );

  app.post<{ Params: QueueParams; Body: HttpMessage }>(
    '/v1/queues/:queue/messages',
    {
      schema: {
        tags,
        summary: 'Send one message (answered once it is stored)',
        params: queueParams,
        body: newMessageSchema,
        response: {
          201: {
            type: 'object',
            properties: { id: { type: 'string' }, duplicate: { type: 'boolean' } },
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const out = await consumers.send(req.params.queue, [toNewMessage(req.body, 0)]);
      return reply.status(201).send({ id: out.ids[0], duplicate: out.duplicates.length > 0 });
    },
  );

  app.post<{ Params: QueueParams; Body: { messages: HttpMessage[]; requestKey?: string } }>(
    '/v1/queues/:queue/batch',
    {
      schema: {
        tags,
        summary: 'Send a batch of messages in one commit',
        params: queueParams,
        body: batchSchema,
        response: { 201: sendReplySchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const messages = req.body.messages.map((m, i) => toNewMessage(m, i));
      const out = await consumers.send(req.params.queue, messages, {
        requestKey: req.body.requestKey,
      });
      return reply.status(201).send(out);
    },
  );

  app.post<{
    Params: QueueParams;
    Querystring: { max: number; wait: number; leaseMs?: number; encoding?: Encoding };
  }>(
    '/v1/queues/:queue/consume',
    {
      schema: {
        tags,
        summary: 'Take up to max messages with a lease (long poll with wait)',
        params: queueParams,
        querystring: consumeQuerySchema,
        response: {
          200: {
            type: 'object',
            properties: { messages: { type: 'array', items: deliverySchema } },
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const ac = new AbortController();
      const onClose = (): void => ac.abort();
      req.raw.socket.once('close', onClose);
      const got = await consumers.consume({
        queue: req.params.queue,
        max: req.query.max,
        waitMs: req.query.wait,
        leaseMs: req.query.leaseMs,
        signal: ac.signal,
      });
      req.raw.socket.off('close', onClose);
      if (req.raw.socket.destroyed) {
        consumers.giveBack(got);
        return reply.status(499).send();
      }
      const messages = got.map((d) => ({
        lease: d.lease,
        id: d.id,
        queue: d.queue,
        attempt: d.attempt,
        ...encodeFrames(d.frames, req.query.encoding),
        ...(d.headers ? { headers: d.headers } : {}),
        priority: d.priority,
        enqueuedAt: d.enqueuedAt,
        leaseExpiresAt: d.leaseExpiresAt,
      }));
      return { messages };
    },
  );

  app.post<{ Body: { leases: string[] } }>(
    '/v1/leases/ack',
    {
      schema: {
        tags,
        summary: 'Ack many leases: their messages are deleted',
        body: leaseListSchema,
        response: { 200: settleReplySchema, ...errorResponses },
      },
    },
    async (req) => ({ results: await consumers.ack(req.body.leases) }),
  );

  app.post<{ Body: { leases: string[]; delayMs?: number; dead?: boolean } }>(
    '/v1/leases/nack',
    {
      schema: {
        tags,
        summary: 'Nack many leases: redelivered after a delay, or dead-lettered',
        body: leaseListSchema,
        response: { 200: settleReplySchema, ...errorResponses },
      },
    },
    async (req) => ({
      results: await consumers.nack(req.body.leases, {
        delayMs: req.body.delayMs,
        dead: req.body.dead,
      }),
    }),
  );

  app.post<{ Params: { lease: string } }>(
    '/v1/leases/:lease/ack',
    {
      schema: {
        tags,
        summary: 'Ack one lease',
        params: leaseParams,
        response: { 204: { type: 'null' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const [r] = await consumers.ack([req.params.lease]);
      const err = settleError(r, req.params.lease);
      if (err) throw err;
      return reply.status(204).send();
    },
  );

  app.post<{ Params: { lease: string }; Body: { delayMs?: number; dead?: boolean } | undefined }>(
    '/v1/leases/:lease/nack',
    {
      schema: {
        tags,
        summary: 'Nack one lease',
        params: leaseParams,
        body: nackBodySchema,
        response: { 204: { type: 'null' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const [r] = await consumers.nack([req.params.lease], {
        delayMs: req.body?.delayMs,
        dead: req.body?.dead,
      });
      const err = settleError(r, req.params.lease);
      if (err) throw err;
      return reply.status(204).send();
    },
  );

  app.post<{ Params: { lease: string }; Body: { ms: number } }>(
    '/v1/leases/:lease/extend',
    {
      schema: {
        tags,
        summary: 'Extend one lease to at least ms from now',
        params: leaseParams,
        body: extendBodySchema,
        response: {
          200: { type: 'object', properties: { leaseExpiresAt: { type: 'integer' } } },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const [r] = await consumers.extend([req.params.lease], req.body.ms);
      const err = settleError(r === undefined ? 'LEASE_LOST' : r.result, req.params.lease);
      if (err) throw err;
      return { leaseExpiresAt: r!.leaseExpiresAt };
    },
  );

  const peekRoute =
    (dead: boolean) =>
    async (req: {
      params: QueueParams;
      query: { state?: MessageState; limit: number; after?: string; encoding?: Encoding };
    }) => {
      const messages = await broker.peek(req.params.queue, {
        state: dead ? 'dead' : req.query.state,
        limit: req.query.limit,
        afterId: req.query.after,
      });
      return { messages: messages.map((m) => storedToJson(m, req.query.encoding)) };
    };
  const peekReply = {
    200: {
      type: 'object',
      properties: { messages: { type: 'array', items: storedMessageSchema } },
    },
    ...errorResponses,
  };

  app.get<{
    Params: QueueParams;
    Querystring: { state?: MessageState; limit: number; after?: string; encoding?: Encoding };
  }>(
    '/v1/queues/:queue/messages',
    {
      schema: {
        tags,
        summary: 'Peek at messages without taking them',
        params: queueParams,
        querystring: peekQuerySchema,
        response: peekReply,
      },
    },
    peekRoute(false),
  );

  app.delete<{ Params: QueueParams }>(
    '/v1/queues/:queue/messages',
    {
      schema: {
        tags,
        summary: 'Purge ready and scheduled messages (leased ones stay)',
        params: queueParams,
        response: {
          200: { type: 'object', properties: { purged: { type: 'integer' } } },
          ...errorResponses,
        },
      },
    },
    async (req) => ({ purged: await broker.purge(req.params.queue) }),
  );

  app.get<{
    Params: QueueParams;
    Querystring: { state?: MessageState; limit: number; after?: string; encoding?: Encoding };
  }>(
    '/v1/queues/:queue/dead',
    {
      schema: {
        tags,
        summary: 'List dead letters',
        params: queueParams,
        querystring: peekQuerySchema,
        response: peekReply,
      },
    },
    peekRoute(true),
  );

  app.delete<{ Params: QueueParams }>(
    '/v1/queues/:queue/dead',
    {
      schema: {
        tags,
        summary: 'Purge the dead letters',
        params: queueParams,
        response: {
          200: { type: 'object', properties: { purged: { type: 'integer' } } },
          ...errorResponses,
        },
      },
    },
    async (req) => ({ purged: await broker.purge(req.params.queue, { dead: true }) }),
  );

  app.post<{ Params: QueueParams; Body: { ids?: string[]; limit?: number } | undefined }>(
    '/v1/queues/:queue/dead/redrive',
    {
      schema: {
        tags,
        summary: 'Move dead letters back to ready (all, some ids, or up to limit)',
        params: queueParams,
        body: redriveBodySchema,
        response: {
          200: { type: 'object', properties: { redriven: { type: 'integer' } } },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const opts: { ids?: string[]; limit?: number } = {};
      if (req.body?.ids !== undefined) opts.ids = req.body.ids;
      if (req.body?.limit !== undefined) opts.limit = req.body.limit;
      return { redriven: await broker.redrive(req.params.queue, opts) };
    },
  );
}
