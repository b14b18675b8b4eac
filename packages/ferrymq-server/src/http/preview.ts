/**
 * Size-capped previews of message bodies, topic values and job payloads for browsing: the
 * first bytes as UTF-8 text when they are text, else base64, with how many bytes there are.
 */

/** Preview size when the request names none, bytes. */
export const DEFAULT_PREVIEW_BYTES = 256;
/** Largest preview a request may ask for, bytes (64 KiB). */
const MAX_PREVIEW_BYTES = 64 * 1024;
/** Most frames one detail reply previews. */
const MAX_PREVIEW_FRAMES = 16;

export interface Preview {
  /** Bytes of the whole frame. */
  size: number;
  encoding: 'utf8' | 'base64';
  /** The first bytes (at most the cap), in `encoding`. */
  preview: string;
  /** True when `preview` holds less than the whole frame. */
  truncated: boolean;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** Control characters other than tab, line feed and carriage return mean binary. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const BINARY_CONTROLS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
/** A cut may split a UTF-8 sequence of up to 4 bytes: drop at most 3 trailing bytes. */
const MAX_SPLIT_BYTES = 3;

function asText(b: Uint8Array, cut: boolean): string | undefined {
  for (let drop = 0; drop <= (cut ? MAX_SPLIT_BYTES : 0) && drop < b.length + 1; drop++) {
    try {
      const text = strictUtf8.decode(b.subarray(0, b.length - drop));
      return BINARY_CONTROLS.test(text) ? undefined : text;
    } catch {
      /* not text yet: try a shorter cut */
    }
  }
  return undefined;
}

/** The first `maxBytes` of `frame` for display. */
export function previewOf(frame: Buffer, maxBytes: number): Preview {
  const cut = frame.length > maxBytes;
  const head = cut ? frame.subarray(0, maxBytes) : frame;
  const text = asText(head, cut);
  return text !== undefined
    ? { size: frame.length, encoding: 'utf8', preview: text, truncated: cut }
    : { size: frame.length, encoding: 'base64', preview: head.toString('base64'), truncated: cut };
}

/** Previews of the first frames (at most MAX_PREVIEW_FRAMES), each capped at `maxBytes`. */
export function previewFrames(frames: readonly Buffer[], maxBytes: number): Preview[] {
  return frames.slice(0, MAX_PREVIEW_FRAMES).map((f) => previewOf(f, maxBytes));
}

export const previewSchema = {
  type: 'object',
  properties: {
    size: { type: 'integer' },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
    preview: { type: 'string' },
    truncated: { type: 'boolean' },
  },
} as const;

export const previewBytesQuery = {
  type: 'integer',
  minimum: 0,
  maximum: MAX_PREVIEW_BYTES,
  description: `Bytes of each body preview (at most ${MAX_PREVIEW_BYTES}).`,
} as const;
