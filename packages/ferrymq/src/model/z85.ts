/**
 * Z85, the text encoding of CURVE keys (ZeroMQ RFC 32): 4 bytes become 5 printable
 * characters. A CURVE key is 32 bytes, so 40 characters of Z85. Pure functions.
 */

const Z85_ALPHABET =
  '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_BASE = 85;
const BYTES_PER_CHUNK = 4;
const CHARS_PER_CHUNK = 5;
/** A CURVE public or secret key: 32 bytes, 40 characters of Z85. */
export const CURVE_KEY_BYTES = 32;
export const CURVE_KEY_Z85_LENGTH = (CURVE_KEY_BYTES / BYTES_PER_CHUNK) * CHARS_PER_CHUNK;

const DECODE_TABLE: ReadonlyMap<string, number> = new Map(
  [...Z85_ALPHABET].map((ch, i) => [ch, i]),
);

/** Encodes bytes (a multiple of 4 long) as Z85 text. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % BYTES_PER_CHUNK !== 0)
    throw new RangeError(`Z85 encodes a multiple of 4 bytes, not ${bytes.length}`);
  let out = '';
  for (let i = 0; i < bytes.length; i += BYTES_PER_CHUNK) {
    let value =
      ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
    let chunk = '';
    for (let j = 0; j < CHARS_PER_CHUNK; j++) {
      chunk = Z85_ALPHABET[value % Z85_BASE]! + chunk;
      value = Math.floor(value / Z85_BASE);
    }
    out += chunk;
  }
  return out;
}

/** Decodes Z85 text (a multiple of 5 characters); undefined when it is not Z85. */
export function z85Decode(text: string): Uint8Array | undefined {
  if (text.length % CHARS_PER_CHUNK !== 0) return undefined;
  const out = new Uint8Array((text.length / CHARS_PER_CHUNK) * BYTES_PER_CHUNK);
  for (let i = 0, o = 0; i < text.length; i += CHARS_PER_CHUNK, o += BYTES_PER_CHUNK) {
    let value = 0;
    for (let j = 0; j < CHARS_PER_CHUNK; j++) {
      const digit = DECODE_TABLE.get(text[i + j]!);
      if (digit === undefined) return undefined;
      value = value * Z85_BASE + digit;
    }
    if (value > 0xffff_ffff) return undefined;
    out[o] = value >>> 24;
    out[o + 1] = (value >>> 16) & 0xff;
    out[o + 2] = (value >>> 8) & 0xff;
    out[o + 3] = value & 0xff;
  }
  return out;
}

/** True when `text` is a CURVE key in Z85: 40 characters that decode to 32 bytes. */
export function isCurveKey(text: unknown): text is string {
  return (
    typeof text === 'string' &&
    text.length === CURVE_KEY_Z85_LENGTH &&
    z85Decode(text) !== undefined
  );
}
