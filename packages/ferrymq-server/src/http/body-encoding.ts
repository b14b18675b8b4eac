/** Message bytes ⇄ JSON strings for the gateway: UTF-8 text when it is, base64 otherwise. */
import { FerryError, type NewMessage } from 'ferrymq/model';

export type Encoding = 'utf8' | 'base64';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Control characters other than tab, line feed and carriage return: binary, not text. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const BINARY_CONTROLS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** True when the bytes are UTF-8 text (valid, and free of binary control characters). */
function isText(b: Buffer): boolean {
  try {
    return !BINARY_CONTROLS.test(strictUtf8.decode(b));
  } catch {
    return false;
  }
}

/**
 * Writes frames as strings: in `forced` encoding when given, else UTF-8 when every frame is
 * text (valid UTF-8 without control characters but tab and newlines), else base64. The reply says which with `encoding`.
 */
export function encodeFrames(
  frames: readonly Buffer[],
  forced?: Encoding,
): { encoding: Encoding; body: string; frames?: string[] } {
  const encoding: Encoding = forced ?? (frames.every(isText) ? 'utf8' : 'base64');
  const texts = frames.map((f) => f.toString(encoding));
  return {
    encoding,
    body: texts[0] ?? '',
    ...(frames.length > 1 ? { frames: texts } : {}),
  };
}

export interface HttpMessage {
  body?: string;
  frames?: string[];
  json?: unknown;
  encoding?: Encoding;
  headers?: Record<string, string>;
  priority?: number;
  delayMs?: number;
  ttlMs?: number;
  dedupKey?: string;
}

const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

function decode(text: string, encoding: Encoding, where: string): Buffer {
  if (encoding === 'base64' && (text.length % 4 !== 0 || !BASE64_PATTERN.test(text))) {
    throw new FerryError('BAD_ARGUMENTS', `${where} is not valid base64`);
  }
  return Buffer.from(text, encoding);
}

/** A message of a send request, as the core takes it. */
export function toNewMessage(m: HttpMessage, index: number): NewMessage {
  const where = `message ${index}`;
  const given = [m.body !== undefined, m.frames !== undefined, m.json !== undefined].filter(
    Boolean,
  ).length;
  if (given !== 1) {
    throw new FerryError('BAD_ARGUMENTS', `${where}: give exactly one of body, frames or json`);
  }
  const encoding = m.encoding ?? 'utf8';
  let frames: Buffer[];
  if (m.json !== undefined) frames = [Buffer.from(JSON.stringify(m.json))];
  else if (m.frames !== undefined)
    frames = m.frames.map((f, i) => decode(f, encoding, `${where} frame ${i}`));
  else frames = [decode(m.body!, encoding, `${where} body`)];
  return {
    frames,
    headers: m.headers,
    priority: m.priority,
    delayMs: m.delayMs,
    ttlMs: m.ttlMs,
    dedupKey: m.dedupKey,
  };
}
