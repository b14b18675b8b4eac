/**
 * The free-disk floor of the data folder. A reading of free space (statfs) is taken every
 * second by the server, and again before any group commit that could cross the floor: the
 * bytes the store wrote since the last reading are accounted (an estimate on the safe side),
 * so a burst between two timer readings cannot write the disk past the floor unseen.
 * Used by the writer (sqlite-writer.ts) before each commit and by the server's disk watcher.
 */
import fs from 'node:fs';

/** What the floor needs of statfs(2): free blocks for unprivileged users, and block size. */
interface FreeSpaceReading {
  bavail: number;
  bsize: number;
}

/** Reads free space of a folder; fs.statfsSync by default (tests pass their own). */
export type StatFs = (dir: string) => FreeSpaceReading;

export interface DiskFloorOptions {
  /** The data folder. */
  dir: string;
  /** Below this many free bytes, growing writes are refused (STORAGE_FULL); 0 = no floor. */
  floorBytes: number;
  statfs?: StatFs;
  /** Told when the floor is crossed either way, with the free bytes read. */
  onChange?: (low: boolean, freeBytes: number) => void;
}

/**
 * Disk bytes one stored row may take beyond its payload: the row header, its index entries,
 * the dedup record, and slack in a page. On the safe side: a high estimate only means an
 * earlier statfs, a low one could let a burst cross the floor before the next reading.
 */
const ROW_OVERHEAD_BYTES = 512;
/**
 * A payload is written twice before the WAL is checkpointed and reused: once into the WAL,
 * once into the database file.
 */
const PAYLOAD_WRITE_FACTOR = 2;
/** Pages a commit writes to the WAL whatever its payload (b-tree interior pages, headers). */
export const COMMIT_OVERHEAD_BYTES = 4 * 4096;

/** The disk bytes rows of `payloadBytes` in total may take (see the constants above). */
export function estimateDiskBytes(payloadBytes: number, rows: number): number {
  return PAYLOAD_WRITE_FACTOR * payloadBytes + ROW_OVERHEAD_BYTES * rows;
}

export class DiskFloor {
  private readonly dir: string;
  private readonly floorBytes: number;
  private readonly statfs: StatFs;
  private readonly onChange: ((low: boolean, freeBytes: number) => void) | undefined;
  /** Free bytes at the last reading (Infinity until one succeeded). */
  private freeAtReading = Number.POSITIVE_INFINITY;
  /** Estimated bytes written since the last reading. */
  private writtenSinceReading = 0;
  private low = false;

  constructor(options: DiskFloorOptions) {
    this.dir = options.dir;
    this.floorBytes = Math.max(0, options.floorBytes);
    this.statfs = options.statfs ?? ((dir) => fs.statfsSync(dir));
    this.onChange = options.onChange;
  }

  /** True while the last reading was below the floor: growing writes are refused. */
  isLow(): boolean {
    return this.low;
  }

  /** Reads free space now and restarts the account; keeps the last state if statfs fails. */
  refresh(): void {
    if (this.floorBytes <= 0) return;
    let free: number;
    try {
      const s = this.statfs(this.dir);
      free = Number(s.bavail) * Number(s.bsize);
    } catch {
      return; // keep the last reading
    }
    this.freeAtReading = free;
    this.writtenSinceReading = 0;
    this.setLow(free < this.floorBytes);
  }

  /**
   * Before a commit of `bytes` (estimated): the free bytes that may be written without going
   * below the floor, read afresh when the account says `bytes` could cross it. Returns
   * Infinity without a floor.
   */
  headroom(bytes: number): number {
    if (this.floorBytes <= 0) return Number.POSITIVE_INFINITY;
    const left = this.freeAtReading - this.writtenSinceReading - this.floorBytes;
    if (left >= bytes && !this.low) return left;
    this.refresh();
    const fresh = this.freeAtReading - this.floorBytes;
    if (fresh < bytes) this.setLow(true);
    return Math.max(0, fresh);
  }

  /** After a commit: `bytes` (estimated) more were written since the last reading. */
  noteWritten(bytes: number): void {
    this.writtenSinceReading += bytes;
  }

  private setLow(low: boolean): void {
    if (low === this.low) return;
    this.low = low;
    this.onChange?.(low, this.freeAtReading);
  }
}
