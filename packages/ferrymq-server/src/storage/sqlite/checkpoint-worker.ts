/**
 * The checkpoint thread of the SQLite store (a worker_threads worker, see checkpointer.ts): a
 * connection of its own to the database that copies WAL frames into the database file when
 * asked (`PRAGMA wal_checkpoint(PASSIVE)`), with SQLite's own fsyncs — of the WAL before the
 * copy, of the database file before the frames count as copied — so they never run on the
 * broker's event loop. PASSIVE never waits for the writer: what the writer appends meanwhile
 * is left for the next round.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** Sent back for each checkpoint asked for. */
export interface CheckpointReply {
  /** Frames in the WAL, and of those the ones now copied into the database file. */
  logFrames: number;
  checkpointedFrames: number;
  error?: string;
}

const { dbPath } = workerData as { dbPath: string };
const db = new Database(dbPath);
// NORMAL in WAL mode: the checkpoint fsyncs the WAL, then the database file.
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 0');

parentPort!.on('message', (what: 'checkpoint' | 'close') => {
  if (what === 'close') {
    // After any checkpoint asked before (messages are handled in order).
    db.close();
    parentPort!.close();
    return;
  }
  let reply: CheckpointReply;
  try {
    const row = db.pragma('wal_checkpoint(PASSIVE)') as {
      busy: number;
      log: number;
      checkpointed: number;
    }[];
    reply = { logFrames: row[0]?.log ?? 0, checkpointedFrames: row[0]?.checkpointed ?? 0 };
  } catch (err) {
    reply = { logFrames: 0, checkpointedFrames: 0, error: String(err) };
  }
  parentPort!.postMessage(reply);
});
