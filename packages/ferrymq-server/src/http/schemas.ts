/**
 * JSON schemas of the gateway's requests and replies. Fastify validates requests with them
 * and @fastify/swagger turns them into the OpenAPI document at /openapi.json.
 */
import { DEDUP_KEY_MAX_LENGTH } from '../core/broker.js';
import { JOB_STATUSES, PRIORITY_MAX, PRIORITY_MIN, QUEUE_NAME_MAX_LENGTH } from 'ferrymq/model';
import { MAX_CONSUME_MESSAGES, MAX_CONSUME_WAIT_MS, MAX_LEASE_MS } from './http-consumers.js';

/**
 * Queue and service names (ferrymq/model isValidQueueName): its characters, and not `.` or
 * `..` (RESERVED_NAMES).
 */
const NAME_PATTERN = '^(?!\\.\\.?$)[A-Za-z0-9._:-]+$';

export const nameSchema = {
  type: 'string',
  minLength: 1,
  maxLength: QUEUE_NAME_MAX_LENGTH,
  pattern: NAME_PATTERN,
} as const;

const errorSchema = {
  type: 'object',
  description:
    'Every error: a stable code from docs/errors.md and a message for people; a schema violation also names the field.',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string' },
    message: { type: 'string' },
    field: { type: 'string', description: 'The offending field, e.g. body.messages[0].priority.' },
  },
} as const;

/** Error replies every route may give. */
export const errorResponses = {
  '4xx': errorSchema,
  '5xx': errorSchema,
} as const;

const encodingSchema = {
  type: 'string',
  enum: ['utf8', 'base64'],
  description: 'How body and frames are written: UTF-8 text or base64 bytes.',
} as const;

const headersSchema = {
  type: 'object',
  additionalProperties: { type: 'string' },
  description: 'String headers carried with the message.',
} as const;

export const newMessageSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'One message. Give exactly one of body, frames (multipart) or json.',
  properties: {
    body: { type: 'string', description: 'The body, in `encoding` (default utf8).' },
    frames: {
      type: 'array',
      minItems: 1,
      items: { type: 'string' },
      description: 'A multipart message: each frame in `encoding`.',
    },
    json: { description: 'Any JSON value, stored as its JSON text (one frame).' },
    encoding: encodingSchema,
    headers: headersSchema,
    priority: { type: 'integer', minimum: PRIORITY_MIN, maximum: PRIORITY_MAX },
    delayMs: { type: 'integer', minimum: 0, description: 'Deliver no sooner than this.' },
    ttlMs: { type: 'integer', minimum: 1, description: 'Discard if not delivered within.' },
    dedupKey: { type: 'string', minLength: 1, maxLength: DEDUP_KEY_MAX_LENGTH },
  },
} as const;

export const batchSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['messages'],
  properties: {
    messages: { type: 'array', minItems: 1, items: newMessageSchema },
    requestKey: {
      type: 'string',
      minLength: 1,
      maxLength: DEDUP_KEY_MAX_LENGTH,
      description: 'Idempotency key of the whole batch: a replay stores nothing.',
    },
  },
} as const;

export const sendReplySchema = {
  type: 'object',
  properties: {
    ids: { type: 'array', items: { type: 'string' } },
    duplicates: { type: 'array', items: { type: 'integer' } },
    replayed: { type: 'boolean' },
  },
} as const;

export const deliverySchema = {
  type: 'object',
  properties: {
    lease: { type: 'string', description: 'Ack, nack or extend with this id.' },
    id: { type: 'string' },
    queue: { type: 'string' },
    attempt: { type: 'integer' },
    encoding: encodingSchema,
    body: { type: 'string' },
    frames: { type: 'array', items: { type: 'string' }, description: 'Every frame, if > 1.' },
    headers: headersSchema,
    priority: { type: 'integer' },
    enqueuedAt: { type: 'integer' },
    leaseExpiresAt: { type: 'integer' },
  },
} as const;

export const consumeQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max: { type: 'integer', minimum: 1, maximum: MAX_CONSUME_MESSAGES, default: 1 },
    wait: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_CONSUME_WAIT_MS,
      default: 0,
      description: 'Long poll: wait up to this many ms for a message.',
    },
    leaseMs: {
      type: 'integer',
      minimum: 1,
      maximum: MAX_LEASE_MS,
      description: "Lease length; default the queue's ack timeout.",
    },
    encoding: encodingSchema,
  },
} as const;

export const leaseListSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['leases'],
  properties: {
    leases: { type: 'array', minItems: 1, maxItems: 10_000, items: { type: 'string' } },
    delayMs: { type: 'integer', minimum: 0 },
    dead: { type: 'boolean' },
    ms: { type: 'integer', minimum: 1, maximum: MAX_LEASE_MS },
  },
} as const;

export const settleReplySchema = {
  type: 'object',
  properties: {
    results: {
      type: 'array',
      description: 'Per lease: null when done, or the code of why not (LEASE_LOST).',
      items: { type: ['string', 'null'] },
    },
  },
} as const;

export const nackBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    delayMs: { type: 'integer', minimum: 0, description: 'Redeliver after; default backoff.' },
    dead: { type: 'boolean', description: 'Straight to the dead letters.' },
  },
} as const;

export const extendBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ms'],
  properties: { ms: { type: 'integer', minimum: 1, maximum: MAX_LEASE_MS } },
} as const;

export const queueStatsSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    name: { type: 'string' },
    depth: { type: 'integer' },
    ready: { type: 'integer' },
    leased: { type: 'integer', description: 'Delivered under a lease, not yet settled.' },
    scheduled: {
      type: 'integer',
      description: 'Waiting for their time (a delay or a retry backoff).',
    },
    dead: { type: 'integer' },
    bytes: { type: 'integer' },
    consumers: { type: 'integer' },
    enqueued: { type: 'integer' },
    acked: { type: 'integer' },
    expired: { type: 'integer' },
    deadLettered: { type: 'integer' },
    redelivered: { type: 'integer' },
    enqueueRate: { type: 'number' },
    ackRate: { type: 'number' },
    oldestAgeMs: { type: ['integer', 'null'] },
  },
} as const;

export const storedMessageSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: ['ready', 'leased', 'scheduled', 'dead'] },
    attempts: { type: 'integer' },
    priority: { type: 'integer' },
    enqueuedAt: { type: 'integer' },
    notBefore: { type: 'integer' },
    expiresAt: { type: ['integer', 'null'] },
    dedupKey: { type: ['string', 'null'] },
    size: { type: 'integer' },
    deadReason: { type: ['string', 'null'] },
    headers: headersSchema,
    encoding: encodingSchema,
    body: { type: 'string' },
    frames: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const peekQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { type: 'string', enum: ['ready', 'leased', 'scheduled', 'dead'] },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
    after: { type: 'string', description: 'Only messages after this id (paging).' },
    encoding: encodingSchema,
  },
} as const;

export const redriveBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ids: { type: 'array', items: { type: 'string' }, maxItems: 10_000 },
    limit: { type: 'integer', minimum: 1 },
  },
} as const;

export const queueParams = {
  type: 'object',
  required: ['queue'],
  properties: { queue: nameSchema },
} as const;

export const serviceParams = {
  type: 'object',
  required: ['service'],
  properties: { service: nameSchema },
} as const;

export const jobIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' } },
} as const;

export const leaseParams = {
  type: 'object',
  required: ['lease'],
  properties: { lease: { type: 'string', minLength: 3, maxLength: 100 } },
} as const;

export const jobStatusSchema = { type: 'string', enum: [...JOB_STATUSES] } as const;

export const jobInfoSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    service: { type: 'string' },
    status: jobStatusSchema,
    durable: { type: 'boolean' },
    attempts: { type: 'integer' },
    priority: { type: 'integer' },
    createdAt: { type: 'integer' },
    startedAt: { type: ['integer', 'null'] },
    finishedAt: { type: ['integer', 'null'] },
    retainUntil: { type: ['integer', 'null'] },
    partials: { type: 'integer' },
    result: { description: 'The result: JSON when the first frame parses, else a string.' },
    encoding: encodingSchema,
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
    children: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const newJobSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    params: { description: 'Any JSON value: the job parameters (one frame of its JSON text).' },
    headers: headersSchema,
    priority: { type: 'integer', minimum: PRIORITY_MIN, maximum: PRIORITY_MAX },
    delayMs: { type: 'integer', minimum: 0 },
    ttlMs: { type: 'integer', minimum: 1 },
    maxAttempts: { type: 'integer', minimum: 1, maximum: 1000 },
    dedupKey: { type: 'string', minLength: 1, maxLength: DEDUP_KEY_MAX_LENGTH },
  },
} as const;
