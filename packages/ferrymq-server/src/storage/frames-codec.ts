/**
 * How a multipart body is kept in one column: a single frame as its own bytes; several frames
 * as a sequence of [u32 big-endian length][bytes]. The frame count is kept beside it.
 */
export function packFrames(frames: readonly Buffer[]): Buffer {
  if (frames.length === 1) return frames[0]!;
  let total = 0;
  for (const f of frames) total += 4 + f.length;
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const f of frames) {
    out.writeUInt32BE(f.length, off);
    off += 4;
    f.copy(out, off);
    off += f.length;
  }
  return out;
}

export function unpackFrames(body: Buffer, count: number): Buffer[] {
  if (count === 1) return [body];
  const frames: Buffer[] = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > body.length) throw new Error('stored body is truncated');
    const len = body.readUInt32BE(off);
    off += 4;
    if (off + len > body.length) throw new Error('stored body is truncated');
    frames.push(body.subarray(off, off + len));
    off += len;
  }
  return frames;
}
