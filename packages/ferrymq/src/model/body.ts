/**
 * What callers may hand over as a message body, a job's parameters or a result: text (sent as
 * UTF-8) or bytes, one frame or several. The SDK, the broker's dialects and the gateway all
 * turn it into frames the same way.
 */
export type Body = string | Buffer | Uint8Array;

/** One body as a Buffer, without copying bytes that are already in one. */
export function toBuffer(body: Body): Buffer {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/** One body or several as frames; nothing at all is one empty frame. */
export function toFrames(body: Body | Body[] | undefined): Buffer[] {
  if (body === undefined) return [Buffer.alloc(0)];
  return Array.isArray(body) ? body.map(toBuffer) : [toBuffer(body)];
}
