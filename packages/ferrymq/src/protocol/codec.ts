/**
 * Ferry's own wire protocol, version 1: a pure codec, no I/O. docs/protocol.md is the spec.
 *
 * Every message, in both directions, after any ZeroMQ routing envelope:
 *   frame 0  protocol id and version: ASCII "FERRY01"
 *   frame 1  command (client → broker) or reply kind (broker → client), ASCII
 *   frame 2  request id: 0–64 opaque bytes chosen by the client, echoed in the reply
 *   frame 3  arguments: a UTF-8 JSON object (an empty frame means {})
 *   frame 4… payload frames (message bodies), as the arguments describe
 */
import { FerryError, isErrorCode, type ErrorCode } from '../model/errors.js';

export const PROTOCOL_ID = 'FERRY01';
export const PROTOCOL_VERSION = 1;
const PROTOCOL_ID_BYTES = Buffer.from(PROTOCOL_ID, 'ascii');
const PROTOCOL_FAMILY = Buffer.from('FERRY', 'ascii');
export const REQUEST_ID_MAX_BYTES = 64;
const EMPTY = Buffer.alloc(0);

/** The job server's commands (docs/protocol.md §8). */
export const JOB_COMMAND_NAMES = [
  'SUBMIT',
  'CALL',
  'MULTICAST',
  'JOB',
  'JOBS',
  'WATCH',
  'UNWATCH',
  'JOB_CANCEL',
  'WORKER',
  'WORKER_STOP',
  'COMPLETE',
  'FAIL',
  'PROGRESS',
  'JOB_EXTEND',
  'SERVICES',
  'WORKERS',
] as const;

/** The pub/sub commands (docs/protocol.md §9). */
export const TOPIC_COMMAND_NAMES = [
  'PUBLISH',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'TOPIC_ACK',
  'RETAINED',
  'CONFIRM',
  'ROLLOUT',
  'TOPIC_STATUS',
] as const;

/** A queue's life: delete, pause, resume, runtime policy (docs/protocol.md §4, "QUEUE_*"). */
export const QUEUE_LIFECYCLE_COMMAND_NAMES = [
  'QUEUE_DELETE',
  'QUEUE_PAUSE',
  'QUEUE_RESUME',
  'QUEUE_POLICY',
] as const;

export const COMMANDS = [
  'HELLO',
  'CHALLENGE',
  'PING',
  'SEND',
  'CONSUME',
  'CANCEL',
  'ACK',
  'NACK',
  'EXTEND',
  'STATS',
  'QUEUES',
  'PEEK',
  'PURGE',
  'DLQ_LIST',
  'DLQ_REDRIVE',
  'BYE',
  'SEND_MULTICAST',
  ...QUEUE_LIFECYCLE_COMMAND_NAMES,
  ...JOB_COMMAND_NAMES,
  ...TOPIC_COMMAND_NAMES,
] as const;
export type Command = (typeof COMMANDS)[number];
const COMMAND_SET: ReadonlySet<string> = new Set(COMMANDS);

/** The arguments each command accepts; any other key is refused with BAD_ARGUMENTS. */
export const COMMAND_ARGUMENTS: Readonly<Record<Command, readonly string[]>> = {
  HELLO: ['heartbeatMs', 'client', 'auth'],
  CHALLENGE: [],
  PING: [],
  SEND: ['queue', 'messages', 'requestKey'],
  CONSUME: ['queue', 'prefetch', 'ackTimeoutMs', 'consumer'],
  CANCEL: ['consumer'],
  ACK: ['ids'],
  NACK: ['ids', 'delayMs', 'dead', 'requeue'],
  EXTEND: ['ids', 'ms'],
  STATS: ['queue'],
  QUEUES: [],
  PEEK: ['queue', 'limit', 'state', 'afterId'],
  PURGE: ['queue', 'dead'],
  DLQ_LIST: ['queue', 'limit', 'afterId'],
  DLQ_REDRIVE: ['queue', 'ids', 'limit'],
  BYE: [],
  SEND_MULTICAST: ['queues', 'headers', 'priority', 'ttlMs', 'wait', 'timeoutMs', 'requestKey'],
  QUEUE_DELETE: ['queue', 'force'],
  QUEUE_PAUSE: ['queue'],
  QUEUE_RESUME: ['queue'],
  QUEUE_POLICY: ['queue', 'policy', 'reset'],
  SUBMIT: [
    'service',
    'priority',
    'delayMs',
    'ttlMs',
    'maxAttempts',
    'dedupKey',
    'headers',
    'durable',
  ],
  CALL: [
    'service',
    'priority',
    'ttlMs',
    'maxAttempts',
    'headers',
    'durable',
    'timeoutMs',
    'stream',
    'dedupKey',
  ],
  MULTICAST: ['services', 'priority', 'ttlMs', 'maxAttempts', 'headers', 'durable', 'dedupKey'],
  JOB: ['id'],
  JOBS: ['service', 'status', 'limit'],
  WATCH: ['id'],
  UNWATCH: ['id'],
  JOB_CANCEL: ['id'],
  WORKER: ['worker', 'services', 'concurrency', 'name'],
  WORKER_STOP: ['worker', 'drain'],
  COMPLETE: ['id', 'quiet'],
  FAIL: ['id', 'code', 'message', 'retry', 'quiet'],
  PROGRESS: ['id', 'progress', 'partial'],
  JOB_EXTEND: ['id', 'ms'],
  SERVICES: [],
  WORKERS: [],
  PUBLISH: ['topic', 'retain', 'ttlMs', 'headers', 'messages', 'requestKey'],
  SUBSCRIBE: [
    'pattern',
    'subscription',
    'durable',
    'group',
    'snapshot',
    'window',
    'prefetch',
    'ackTimeoutMs',
  ],
  UNSUBSCRIBE: ['subscription', 'durable', 'delete'],
  TOPIC_ACK: ['subscription', 'count'],
  RETAINED: ['pattern'],
  CONFIRM: ['node', 'items'],
  ROLLOUT: ['topic', 'nodes', 'timeoutMs', 'ttlMs', 'headers'],
  TOPIC_STATUS: ['pattern'],
};

export const REPLY_KINDS = [
  'OK',
  'ERROR',
  'PONG',
  'DELIVER',
  'ASSIGN',
  'REVOKE',
  'EVENT',
  'TOPIC',
  'DROPPED',
  'CANCELLED',
] as const;
export type ReplyKind = (typeof REPLY_KINDS)[number];
const REPLY_SET: ReadonlySet<string> = new Set(REPLY_KINDS);

export type Json = Record<string, unknown>;

export interface Request {
  command: Command;
  requestId: Buffer;
  args: Json;
  payload: Buffer[];
}

export interface Reply {
  kind: ReplyKind;
  requestId: Buffer;
  args: Json;
  payload: Buffer[];
}

/** Thrown by decoders; carries the request id when it could be read, so the error can answer it. */
export class ProtocolError extends FerryError {
  readonly requestId: Buffer;
  constructor(code: ErrorCode, message: string, requestId: Buffer = EMPTY) {
    super(code, message);
    this.requestId = requestId;
  }
}

function encodeJson(args: Json | undefined): Buffer {
  if (args === undefined) return EMPTY;
  return Buffer.from(JSON.stringify(args), 'utf8');
}

function decodeJson(frame: Buffer, requestId: Buffer): Json {
  if (frame.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(frame.toString('utf8'));
  } catch {
    throw new ProtocolError('BAD_ARGUMENTS', 'the arguments frame is not valid JSON', requestId);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(
      'BAD_ARGUMENTS',
      'the arguments frame must be a JSON object',
      requestId,
    );
  }
  return value as Json;
}

function checkHeader(frames: readonly Buffer[], requestId: Buffer): void {
  const header = frames[0];
  if (header === undefined) throw new ProtocolError('BAD_FRAME', 'empty message', requestId);
  if (!header.equals(PROTOCOL_ID_BYTES)) {
    if (header.subarray(0, PROTOCOL_FAMILY.length).equals(PROTOCOL_FAMILY)) {
      throw new ProtocolError(
        'UNSUPPORTED_VERSION',
        `unsupported protocol ${JSON.stringify(header.toString('latin1'))}; this broker speaks ${PROTOCOL_ID}`,
        requestId,
      );
    }
    throw new ProtocolError('BAD_FRAME', `frame 0 must be ${PROTOCOL_ID}`, requestId);
  }
}

function readRequestId(frames: readonly Buffer[]): Buffer {
  const id = frames[2];
  if (id === undefined || id.length > REQUEST_ID_MAX_BYTES) return EMPTY;
  return id;
}

export function encodeRequest(
  command: Command,
  requestId: Buffer,
  args?: Json,
  payload: readonly Buffer[] = [],
): Buffer[] {
  return [
    PROTOCOL_ID_BYTES,
    Buffer.from(command, 'ascii'),
    requestId,
    encodeJson(args),
    ...payload,
  ];
}

/** Decodes a client's message. Throws ProtocolError with a code on any malformation. */
export function decodeRequest(frames: readonly Buffer[]): Request {
  const requestId = readRequestId(frames);
  checkHeader(frames, requestId);
  if (frames.length < 4) {
    throw new ProtocolError(
      'BAD_FRAME',
      `a request has at least 4 frames (header, command, request id, arguments); got ${frames.length}`,
      requestId,
    );
  }
  if (frames[2]!.length > REQUEST_ID_MAX_BYTES) {
    throw new ProtocolError('BAD_FRAME', `request id is longer than ${REQUEST_ID_MAX_BYTES} bytes`);
  }
  const command = frames[1]!.toString('latin1');
  if (!COMMAND_SET.has(command)) {
    throw new ProtocolError(
      'UNKNOWN_COMMAND',
      `unknown command ${JSON.stringify(command.slice(0, 40))}`,
      requestId,
    );
  }
  const args = decodeJson(frames[3]!, requestId);
  const allowed = COMMAND_ARGUMENTS[command as Command];
  for (const key of Object.keys(args)) {
    if (!allowed.includes(key)) {
      throw new ProtocolError(
        'BAD_ARGUMENTS',
        `${command} takes no argument ${JSON.stringify(key.slice(0, 40))}` +
          (allowed.length > 0 ? ` (it takes ${allowed.join(', ')})` : ''),
        requestId,
      );
    }
  }
  return { command: command as Command, requestId, args, payload: frames.slice(4) };
}

export function encodeReply(
  kind: ReplyKind,
  requestId: Buffer,
  args?: Json,
  payload: readonly Buffer[] = [],
): Buffer[] {
  return [PROTOCOL_ID_BYTES, Buffer.from(kind, 'ascii'), requestId, encodeJson(args), ...payload];
}

export function encodeError(requestId: Buffer, code: ErrorCode, message: string): Buffer[] {
  return encodeReply('ERROR', requestId, { code, message });
}

/** Decodes a broker's message (client side). */
export function decodeReply(frames: readonly Buffer[]): Reply {
  const requestId = readRequestId(frames);
  checkHeader(frames, requestId);
  if (frames.length < 4) throw new ProtocolError('BAD_FRAME', 'a reply has at least 4 frames');
  const kind = frames[1]!.toString('latin1');
  if (!REPLY_SET.has(kind)) throw new ProtocolError('BAD_FRAME', `unknown reply kind ${kind}`);
  return {
    kind: kind as ReplyKind,
    requestId,
    args: decodeJson(frames[3]!, requestId),
    payload: frames.slice(4),
  };
}

/** The FerryError an ERROR reply stands for. */
export function errorFromReply(reply: Reply): FerryError {
  const code = reply.args['code'];
  const message = typeof reply.args['message'] === 'string' ? reply.args['message'] : undefined;
  return new FerryError(isErrorCode(code) ? code : 'INTERNAL', message);
}

// ------------------------------------------------------------------ message descriptors

/** Per-message metadata of a SEND; the bodies are the payload frames, in order. */
export interface MessageSpec {
  frames?: number;
  headers?: Record<string, string>;
  priority?: number;
  delayMs?: number;
  ttlMs?: number;
  dedupKey?: string;
}

export interface DecodedMessage {
  frames: Buffer[];
  spec: MessageSpec;
}

const SPEC_KEYS: ReadonlySet<string> = new Set([
  'frames',
  'headers',
  'priority',
  'delayMs',
  'ttlMs',
  'dedupKey',
]);

/**
 * Splits a SEND's payload into messages. `messages` is either a count of single-frame
 * messages or an array of MessageSpec; the frame counts must add up to the payload.
 */
export function splitMessages(
  messages: unknown,
  payload: readonly Buffer[],
  requestId: Buffer = EMPTY,
  /** Refuse keys a SEND does not know (broker side); deliveries carry more. */
  strictKeys = false,
): DecodedMessage[] {
  if (typeof messages === 'number') {
    if (!Number.isInteger(messages) || messages < 0 || messages !== payload.length) {
      throw new ProtocolError(
        'BAD_FRAME',
        `messages says ${messages} but ${payload.length} payload frames came`,
        requestId,
      );
    }
    return payload.map((f) => ({ frames: [f], spec: {} }));
  }
  if (!Array.isArray(messages)) {
    throw new ProtocolError('BAD_ARGUMENTS', 'messages must be a count or an array', requestId);
  }
  const out: DecodedMessage[] = [];
  let off = 0;
  for (let i = 0; i < messages.length; i++) {
    const spec: unknown = messages[i];
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      throw new ProtocolError('BAD_ARGUMENTS', `messages[${i}] must be an object`, requestId);
    }
    for (const k of strictKeys ? Object.keys(spec) : []) {
      if (!SPEC_KEYS.has(k)) {
        throw new ProtocolError('BAD_ARGUMENTS', `messages[${i}] has unknown key ${k}`, requestId);
      }
    }
    const s = spec as MessageSpec;
    const n = s.frames ?? 1;
    if (!Number.isInteger(n) || n < 1) {
      throw new ProtocolError(
        'BAD_ARGUMENTS',
        `messages[${i}].frames must be an integer ≥ 1`,
        requestId,
      );
    }
    if (off + n > payload.length) {
      throw new ProtocolError(
        'BAD_FRAME',
        `messages describe more frames than the payload holds`,
        requestId,
      );
    }
    out.push({ frames: payload.slice(off, off + n), spec: s });
    off += n;
  }
  if (off !== payload.length) {
    throw new ProtocolError(
      'BAD_FRAME',
      `messages describe ${off} frames but ${payload.length} payload frames came`,
      requestId,
    );
  }
  return out;
}

/** Metadata of one delivered (or peeked) message; its frames follow in the payload. */
export interface DeliveredSpec {
  id: string;
  frames: number;
  attempt?: number;
  headers?: Record<string, string>;
  priority?: number;
  enqueuedAt?: number;
  [extra: string]: unknown;
}

/** Joins messages into descriptors + one payload, the inverse of splitMessages. */
export function joinMessages<T extends { frames: Buffer[] }>(
  messages: readonly T[],
  describe: (m: T) => Json,
): { specs: Json[]; payload: Buffer[] } {
  const specs: Json[] = [];
  const payload: Buffer[] = [];
  for (const m of messages) {
    specs.push({ ...describe(m), frames: m.frames.length });
    for (const f of m.frames) payload.push(f);
  }
  return { specs, payload };
}

export {
  CHALLENGE_BYTES,
  generateKeyPair,
  helloProof,
  publicKeyOf,
  verifyHelloProof,
  type CurveKeyPair,
} from './curve-keys.js';
