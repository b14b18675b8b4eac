/**
 * Message bodies over BODY_CHUNK_BYTES, stored in chunks (migration 0005). SQLite copies a
 * bound blob, then copies it again into the record it writes: a 128 MiB body cost 256 MiB
 * more while it was stored in one piece. In chunks the extra memory is about one chunk, and
 * reading one back fills a single buffer of its size chunk by chunk.
 *
 * The chunks hold the body as frames-codec.ts packs it, without building the packed buffer:
 * a single frame is cut in place, several are copied a chunk at a time.
 */
import type Database from 'better-sqlite3';

/** Bodies longer than this are stored in chunks of this size. */
export const BODY_CHUNK_BYTES = 1024 * 1024;
const LENGTH_PREFIX_BYTES = 4;

export interface BodyStatements {
  insertChunk: Database.Statement<[number, number, Buffer]>;
  chunkBytes: Database.Statement<[number], { n: number | null }>;
  chunks: Database.Statement<[number], [Buffer]>;
}

export function prepareBodyStatements(db: Database.Database): BodyStatements {
  return {
    insertChunk: db.prepare('INSERT INTO message_chunks(message_id, seq, data) VALUES (?, ?, ?)'),
    chunkBytes: db.prepare(
      'SELECT sum(length(data)) AS n FROM message_chunks WHERE message_id = ?',
    ),
    chunks: db
      .prepare<[number], [Buffer]>(
        'SELECT data FROM message_chunks WHERE message_id = ? ORDER BY seq',
      )
      .raw(true),
  };
}

/** The length of the body frames-codec.ts makes of these frames. */
export function packedLength(frames: readonly Buffer[]): number {
  if (frames.length === 1) return frames[0]!.length;
  let n = 0;
  for (const f of frames) n += LENGTH_PREFIX_BYTES + f.length;
  return n;
}

/** The packed body of `frames`, BODY_CHUNK_BYTES at a time (the last one shorter). */
export function* packedChunks(frames: readonly Buffer[]): Generator<Buffer> {
  if (frames.length === 1) {
    const f = frames[0]!;
    for (let off = 0; off < f.length; off += BODY_CHUNK_BYTES) {
      yield f.subarray(off, Math.min(f.length, off + BODY_CHUNK_BYTES));
    }
    return;
  }
  let cur = Buffer.allocUnsafe(BODY_CHUNK_BYTES);
  let pos = 0;
  const prefix = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES);
  for (const f of frames) {
    prefix.writeUInt32BE(f.length, 0);
    for (const part of [prefix, f]) {
      let off = 0;
      while (off < part.length) {
        const n = Math.min(part.length - off, BODY_CHUNK_BYTES - pos);
        part.copy(cur, pos, off, off + n);
        pos += n;
        off += n;
        if (pos === BODY_CHUNK_BYTES) {
          yield cur;
          cur = Buffer.allocUnsafe(BODY_CHUNK_BYTES);
          pos = 0;
        }
      }
    }
  }
  if (pos > 0) yield cur.subarray(0, pos);
}

/** Stores the chunks of a message's body; returns how many. */
export function writeChunks(st: BodyStatements, id: number, frames: readonly Buffer[]): number {
  let seq = 0;
  for (const chunk of packedChunks(frames)) st.insertChunk.run(id, seq++, chunk);
  return seq;
}

/** A chunked message's packed body, read back into one buffer. */
export function readChunks(st: BodyStatements, id: number): Buffer {
  const out = Buffer.allocUnsafe(st.chunkBytes.get(id)?.n ?? 0);
  let off = 0;
  for (const [data] of st.chunks.iterate(id)) {
    off += data.copy(out, off);
  }
  if (off !== out.length) throw new Error(`message ${id}: its stored chunks are incomplete`);
  return out;
}
