/**
 * The components under the core, all about where data lives: the data folder's lock (one
 * broker per folder), the free-disk-space watcher, and the store the core opens and writes —
 * SQLite in the data folder, or a PostgreSQL database shared with other brokers (`store`).
 */
import os from 'node:os';
import type { Logger } from '../core/logger.js';
import { DiskFloor, type StatFs } from '../storage/sqlite/disk-floor.js';
import { PostgresStorage } from '../storage/postgres/pg-storage.js';
import { SqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import type { Storage } from '../storage/types.js';
import type { FerryConfig } from './config.js';
import { lockDataDir } from './data-dir-lock.js';
import type { Component } from './lifecycle.js';

/** How often free disk space in the data folder is checked. */
const DISK_CHECK_INTERVAL_MS = 1_000;
/**
 * After a start, the previous run's leases are held back this long before they are delivered
 * again: consumers that reconnect re-send the acks that were in flight when the broker went
 * down, and those settle the held-back messages instead of being answered LEASE_LOST (which
 * meant a redelivery). Above the SDK's default heartbeat (2 s), by which a client notices.
 */
const RECOVERY_GRACE_MS = 3_000;

/** The data folder's lock file: taken first, released last. */
export class DataDirLockComponent implements Component {
  readonly name = 'data-dir-lock';
  private unlock: (() => void) | undefined;

  constructor(private readonly dataDir: string) {}

  async start(): Promise<void> {
    this.unlock = lockDataDir(this.dataDir);
  }

  async close(): Promise<void> {
    // Only a lock this broker took is released (a failed start took none).
    this.unlock?.();
  }
}

/**
 * The free-disk floor: read every second here, and by the store before each commit that
 * could cross it (DiskFloor accounts the bytes written between readings). Below the floor,
 * sends and job submits are refused (STORAGE_FULL).
 */
export class DiskWatcherComponent implements Component {
  readonly name = 'disk-watcher';
  readonly floor: DiskFloor;
  private timer: NodeJS.Timeout | undefined;

  constructor(dataDir: string, floorBytes: number, log: Logger, statfs?: StatFs) {
    this.floor = new DiskFloor({
      dir: dataDir,
      floorBytes,
      statfs,
      onChange: (low, freeBytes) =>
        log.warn(low ? 'free disk below the floor: refusing sends' : 'free disk recovered', {
          freeBytes,
          floorBytes,
        }),
    });
  }

  /** True while free space is below the floor (read by the broker and the job server). */
  readonly isLow = (): boolean => this.floor.isLow();

  async start(): Promise<void> {
    this.floor.refresh();
    this.timer = setInterval(() => this.floor.refresh(), DISK_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
  }
}

/**
 * This broker's id among brokers sharing a store: the configured one, or `<hostname>:<port>`
 * of its Ferry endpoint (stable across restarts, so a restarted broker takes back its own
 * leases at once), or `<hostname>:pid<pid>` when the port is chosen by the system.
 */
function nodeIdOf(config: FerryConfig): string {
  if (config.nodeId !== undefined) return config.nodeId;
  const port = /:(\d+)$/.exec(config.bind)?.[1];
  const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-');
  return port !== undefined && port !== '0' ? `${host}:${port}` : `${host}:pid${process.pid}`;
}

/**
 * The store. The broker opens it (Broker.open reads what it recovers) and closes it when it
 * drains; closing it here again is a no-op then, and closes it when the core failed to start.
 */
export class StoreComponent implements Component {
  readonly name = 'store';
  private store: Storage | undefined;

  constructor(
    private readonly config: FerryConfig,
    private readonly floor?: DiskFloor,
  ) {}

  /** The store, once started. */
  get storage(): Storage {
    if (!this.store) throw new Error('the store is not started');
    return this.store;
  }

  async start(): Promise<void> {
    if (this.config.store !== undefined) {
      this.store = new PostgresStorage({
        url: this.config.store,
        schema: this.config.storeSchema,
        sync: this.config.sync,
        nodeId: nodeIdOf(this.config),
        nodeTimeoutMs: this.config.nodeTimeoutMs,
        recoveryGraceMs: RECOVERY_GRACE_MS,
      });
      return;
    }
    this.store = new SqliteStorage({
      dataDir: this.config.dataDir,
      sync: this.config.sync,
      maxStoreBytes: this.config.maxStoreBytes,
      floor: this.floor,
      recoveryGraceMs: RECOVERY_GRACE_MS,
    });
  }

  async close(): Promise<void> {
    await this.store?.close();
  }
}
