/**
 * Checkpoints off the event loop. SQLite's automatic checkpoint runs in the connection that
 * commits — the broker's event loop — and fsyncs the WAL and the database file there, a few
 * milliseconds every ~4 MiB of WAL. The store turns it off (`wal_autocheckpoint = 0`) and asks
 * a worker thread with its own connection (checkpoint-worker.ts) for a PASSIVE checkpoint
 * whenever the writer has committed since the last one, at most every
 * {@link CHECKPOINT_INTERVAL_MS}.
 *
 * A PASSIVE checkpoint does not wait for the writer, so under a steady load the WAL may never
 * be entirely copied at the moment the writer starts its next transaction (only then does
 * SQLite start the WAL over from the beginning). When the WAL has grown past
 * {@link WAL_RESTART_FRAMES}, the writer copies the last few frames itself, in line: the
 * thread has already copied and synced the bulk, so this costs little, and the next commit
 * starts the WAL over. Power safety is SQLite's own in both places (docs/semantics.md §1).
 */
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { CheckpointReply } from './checkpoint-worker.js';

/** Least time between two checkpoints asked of the thread. */
const CHECKPOINT_INTERVAL_MS = 100;
/** WAL frames (pages) past which the writer finishes a checkpoint itself: 4,096 = 16 MiB. */
const WAL_RESTART_FRAMES = 4096;

export interface CheckpointerMetrics {
  /** Checkpoints run by the thread. */
  checkpoints: number;
  /** Tails the writer copied itself (the WAL had grown past WAL_RESTART_FRAMES). */
  writerCheckpoints: number;
}

export class Checkpointer {
  private readonly worker: Worker;
  private inFlight = false;
  private dirty = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  /** The writer should copy the WAL's tail itself before its next transaction. */
  private tailDue = false;
  readonly metrics: CheckpointerMetrics = { checkpoints: 0, writerCheckpoints: 0 };

  constructor(
    dbPath: string,
    private readonly onError: (message: string) => void,
  ) {
    this.worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
      workerData: { dbPath },
    });
    this.worker.unref();
    this.worker.on('message', (reply: CheckpointReply) => this.done(reply));
    this.worker.on('error', (err) => this.onError(`checkpoint thread: ${String(err)}`));
    this.timer = setInterval(() => this.ask(), CHECKPOINT_INTERVAL_MS);
    this.timer.unref();
  }

  /** The writer committed: the WAL has frames to copy. */
  noteCommit(): void {
    this.dirty = true;
  }

  /**
   * Called by the writer before its transaction: when the WAL grew past the bound, copies its
   * tail in line (the thread did the bulk), so that this transaction starts the WAL over.
   */
  beforeTransaction(db: Database.Database): void {
    if (!this.tailDue || this.inFlight) return;
    this.tailDue = false;
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
      this.metrics.writerCheckpoints++;
    } catch (err) {
      this.onError(`checkpoint: ${String(err)}`);
    }
  }

  private ask(): void {
    if (!this.dirty || this.inFlight || this.closed) return;
    this.dirty = false;
    this.inFlight = true;
    this.worker.postMessage('checkpoint');
  }

  private done(reply: CheckpointReply): void {
    this.inFlight = false;
    if (reply.error !== undefined) {
      this.onError(`checkpoint: ${reply.error}`);
      return;
    }
    this.metrics.checkpoints++;
    // A WAL this long is started over only once it is copied entirely when the writer begins
    // a transaction; with the writer appending all the while, that takes the writer's help.
    if (reply.logFrames >= WAL_RESTART_FRAMES) this.tailDue = true;
  }

  /** Stops the thread once its connection is closed (after any checkpoint in flight). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.ref(); // keep the process alive until the thread is gone
    this.worker.postMessage('close');
    await exited;
  }
}
