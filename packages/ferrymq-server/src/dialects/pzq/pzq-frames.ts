/**
 * PZQ's frames (research/protocols.md §1.2), encoded and decoded. Pure: no sockets, no core.
 *
 * - Producer → broker (after the ROUTER id): `id, [header…], "", body…`.
 * - Broker → producer: `id, "1" | "0", "", [error text]`.
 * - Broker → consumer (on the DEALER): `key, sent µs, ack timeout µs, "", body…`.
 * - Consumer → broker: `key, "1" | "0"` (extra frames ignored).
 * - Monitor: a request whose last frame is `MONITOR` gets `"", text` of six `name: value` lines.
 */

/** PZQ's own NACK text for a message with no empty delimiter frame. */
export const PZQ_NO_DELIMITER_TEXT =
  'Malformed message, no delimiter found or missing message parts';
/** PZQ's own NACK text for a message with a delimiter and no body after it. */
export const PZQ_EMPTY_MESSAGE_TEXT = 'Trying to save empty message';
const PZQ_MONITOR_COMMAND = 'MONITOR';

const OK = Buffer.from('1');
const NOT_OK = Buffer.from('0');
const EMPTY = Buffer.alloc(0);

export type ProducerMessage =
  | { kind: 'message'; id: Buffer; headers: Buffer[]; body: Buffer[] }
  /** Answered with a NACK carrying `text` (PZQ's own wording). */
  | { kind: 'refused'; id: Buffer; text: string }
  /** Too short to answer (PZQ drops these silently). */
  | { kind: 'dropped'; reason: string };

/** Decodes what a producer sent (frames after the ROUTER's routing id). */
export function decodeProducerMessage(frames: Buffer[]): ProducerMessage {
  // PZQ drops anything of two frames or fewer counting the routing id: nothing to answer to.
  if (frames.length < 2) return { kind: 'dropped', reason: 'fewer than two frames' };
  const id = frames[0]!;
  let delimiter = -1;
  for (let i = 1; i < frames.length; i++) {
    if (frames[i]!.length === 0) {
      delimiter = i;
      break;
    }
  }
  if (delimiter < 0) return { kind: 'refused', id, text: PZQ_NO_DELIMITER_TEXT };
  if (delimiter === frames.length - 1) return { kind: 'refused', id, text: PZQ_EMPTY_MESSAGE_TEXT };
  return {
    kind: 'message',
    id,
    headers: frames.slice(1, delimiter),
    body: frames.slice(delimiter + 1),
  };
}

/** The producer's ACK: stored (`"1"`) or not (`"0"` plus the reason). */
export function encodeProducerAck(id: Buffer, ok: boolean, error?: string): Buffer[] {
  const frames = [id, ok ? OK : NOT_OK, EMPTY];
  if (error !== undefined) frames.push(Buffer.from(error));
  return frames;
}

/** A delivery to a consumer: the broker key, then times as ASCII-decimal microseconds. */
export function encodeDelivery(
  key: string,
  sentAtUs: number,
  ackTimeoutUs: number,
  body: Buffer[],
): Buffer[] {
  return [
    Buffer.from(key),
    Buffer.from(String(Math.floor(sentAtUs))),
    Buffer.from(String(Math.floor(ackTimeoutUs))),
    EMPTY,
    ...body,
  ];
}

export type ConsumerAck =
  { kind: 'ack'; key: string; ok: boolean } | { kind: 'invalid'; reason: string };

/** Decodes a consumer's ACK (frames as the broker's DEALER receives them). */
export function decodeConsumerAck(frames: Buffer[]): ConsumerAck {
  if (frames.length < 2) return { kind: 'invalid', reason: 'an ACK needs a key and a status' };
  const key = frames[0]!;
  if (key.length === 0) return { kind: 'invalid', reason: 'empty key' };
  const status = frames[1]!.toString('latin1');
  if (status !== '1' && status !== '0') {
    return { kind: 'invalid', reason: `status must be "1" or "0", not ${JSON.stringify(status)}` };
  }
  return { kind: 'ack', key: key.toString('latin1'), ok: status === '1' };
}

/** True when the monitor request asks for stats (its last frame is `MONITOR`). */
export function isMonitorRequest(frames: Buffer[]): boolean {
  const last = frames.at(-1);
  return last !== undefined && last.toString('latin1') === PZQ_MONITOR_COMMAND;
}

/** The six values the monitor reports, in PZQ's order. */
export interface PzqMonitorStats {
  messages: number;
  messagesInflight: number;
  dbSize: number;
  inflightDbSize: number;
  syncs: number;
  expiredMessages: number;
}

/** The monitor reply: an empty delimiter, then the six `name: value` lines. */
export function encodeMonitorReply(s: PzqMonitorStats): Buffer[] {
  const text =
    `messages: ${s.messages}\n` +
    `messages_inflight: ${s.messagesInflight}\n` +
    `db_size: ${s.dbSize}\n` +
    `inflight_db_size: ${s.inflightDbSize}\n` +
    `syncs: ${s.syncs}\n` +
    `expired_messages: ${s.expiredMessages}\n`;
  return [EMPTY, Buffer.from(text)];
}
