/**
 * Pub/sub over HTTP: publish, read the retained values, and subscribe as server-sent events.
 * Topics hold `/`, so they travel in the body or the query string, never in the path.
 *
 * A subscription stream is a live subscription of the core (docs/pubsub.md): `snapshot`
 * events (the retained values, with `?snapshot=true`), then `snapshot-end`, then one `message`
 * event per publish. A message counts against the subscription's window until its event has
 * been handed to the socket; a client that reads too slowly falls behind the window, gets a
 * `dropped` event and the stream ends (reconnect, with `snapshot=true` to catch up).
 */
import type { FastifyInstance } from 'fastify';
import type { PubSub, TopicMessage } from '../core/pubsub.js';
import { encodeFrames, toNewMessage, type Encoding, type HttpMessage } from './body-encoding.js';
import { errorResponses, newMessageSchema } from './schemas.js';
import type { SseStream, SseStreams } from './sse.js';

/** Longest topic or pattern (core/topics.ts checks the rest). */
const TOPIC_MAX_LENGTH = 256;
/** Messages a subscription stream may be behind before it is dropped, by default. */
const DEFAULT_HTTP_WINDOW = 1_000;
const MAX_HTTP_WINDOW = 100_000;

export interface TopicRoutesOptions {
  pubsub: PubSub;
  streams: SseStreams;
}

/** A topic message as JSON. */
function topicMessageToJson(m: TopicMessage, encoding?: Encoding): Record<string, unknown> {
  return {
    topic: m.topic,
    seq: m.seq,
    publishedAt: m.publishedAt,
    retained: m.retained,
    deleted: m.deleted,
    ...(m.headers ? { headers: m.headers } : {}),
    ...encodeFrames(m.frames, encoding),
  };
}

const encodingQuery = newMessageSchema.properties.encoding;

const topicMessageSchema = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    seq: { type: 'integer' },
    publishedAt: { type: 'integer' },
    retained: { type: 'boolean' },
    deleted: { type: 'boolean' },
    headers: newMessageSchema.properties.headers,
    encoding: encodingQuery,
    body: { type: 'string' },
    frames: { type: 'array', items: { type: 'string' } },
  },
} as const;

const publishSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['topic'],
  description: 'One publish. Give exactly one of body, frames or json.',
  properties: {
    topic: { type: 'string', minLength: 1, maxLength: TOPIC_MAX_LENGTH },
    body: newMessageSchema.properties.body,
    frames: newMessageSchema.properties.frames,
    json: newMessageSchema.properties.json,
    encoding: encodingQuery,
    headers: newMessageSchema.properties.headers,
    retain: {
      type: 'boolean',
      description: "Keep as the topic's retained value; an empty body deletes it.",
    },
    ttlMs: { type: 'integer', minimum: 1, description: 'The retained value expires after.' },
  },
} as const;

const patternQuery = {
  type: 'string',
  minLength: 1,
  maxLength: TOPIC_MAX_LENGTH,
  default: '**',
  description: 'A topic, a prefix ending in /, or a pattern with * and ** segments.',
} as const;

interface PublishBody extends HttpMessage {
  topic: string;
  retain?: boolean;
}

export function registerTopicRoutes(app: FastifyInstance, o: TopicRoutesOptions): void {
  const { pubsub, streams } = o;
  const tags = ['topics'];

  app.post<{ Body: PublishBody }>(
    '/v1/topics/publish',
    {
      schema: {
        tags,
        summary: 'Publish to a topic (retain: keep as its last value) → 201 {seq, durable}',
        body: publishSchema,
        response: {
          201: {
            type: 'object',
            properties: {
              seq: { type: 'integer' },
              durable: { type: 'integer', description: 'Durable subscriptions that stored it.' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const { topic, retain, ttlMs, ...message } = req.body;
      const { frames, headers } = toNewMessage(message, 0);
      const out = await pubsub.publish(topic, frames, { retain, ttlMs, headers });
      return reply.status(201).send(out);
    },
  );

  app.get<{ Querystring: { pattern: string; encoding?: Encoding } }>(
    '/v1/topics/retained',
    {
      schema: {
        tags,
        summary: 'The retained values matching a pattern, and the sequence they reflect',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { pattern: patternQuery, encoding: encodingQuery },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              seq: { type: 'integer' },
              items: { type: 'array', items: topicMessageSchema },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { seq, items } = await pubsub.retained(req.query.pattern);
      return { seq, items: items.map((m) => topicMessageToJson(m, req.query.encoding)) };
    },
  );

  app.get<{
    Querystring: { pattern: string; snapshot: boolean; window: number; encoding?: Encoding };
  }>(
    '/v1/topics/subscribe',
    {
      schema: {
        tags: ['events', ...tags],
        summary: 'Subscribe: snapshot, snapshot-end, then message events (server-sent events)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            pattern: patternQuery,
            snapshot: {
              type: 'boolean',
              default: false,
              description: 'Send the matching retained values first.',
            },
            window: {
              type: 'integer',
              minimum: 1,
              maximum: MAX_HTTP_WINDOW,
              default: DEFAULT_HTTP_WINDOW,
              description: 'Messages the stream may be behind before it is dropped.',
            },
            encoding: encodingQuery,
          },
        },
        produces: ['text/event-stream'],
        response: { 200: { description: 'text/event-stream', type: 'string' }, ...errorResponses },
      },
    },
    (req, reply) => {
      const { pattern, snapshot, window, encoding } = req.query;
      // Events the core hands over before the stream is open (none in practice: the core
      // delivers asynchronously) wait here, so nothing is lost or reordered.
      const open: { stream?: SseStream } = {};
      const early: ((s: SseStream) => void)[] = [];
      const emit = (fn: (s: SseStream) => void): void => {
        if (open.stream) fn(open.stream);
        else early.push(fn);
      };
      // Subscribing first: a bad pattern or a full broker is answered as a JSON error.
      const sub = pubsub.subscribeLive(
        pattern,
        {
          messages(batch) {
            emit((s) => {
              batch.forEach((m, i) => {
                const last = i === batch.length - 1;
                s.send(
                  'message',
                  topicMessageToJson(m, encoding),
                  last ? () => sub.consumed(batch.length) : undefined,
                );
              });
            });
          },
          snapshot(batch, seq, last) {
            emit((s) => {
              for (const m of batch) s.send('snapshot', topicMessageToJson(m, encoding));
              if (last) s.send('snapshot-end', { seq });
            });
          },
          dropped(err) {
            emit((s) => {
              s.send('dropped', { code: err.code, message: err.message });
              s.close();
            });
          },
        },
        { snapshot, window },
      );
      const stream = streams.start(req, reply);
      open.stream = stream;
      stream.whenClosed(() => sub.close());
      for (const fn of early.splice(0)) fn(stream);
    },
  );
}
