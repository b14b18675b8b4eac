/**
 * The WAL flush barrier of the PostgreSQL store under `--sync always`, on a connection of its
 * own: the writer commits the hot-path batches with `synchronous_commit = off` (visible at
 * once, so deliveries go out without waiting for the disk) and a confirm waits here for a
 * barrier: a transaction of this connection that is given an xid and commits with
 * `synchronous_commit = on`. Its commit waits until PostgreSQL has flushed the WAL up to its
 * commit record, which lies after the commit records of every writer commit made before the
 * barrier began, so the flush covers them all. One barrier in flight at a time; confirms
 * that ask meanwhile share the next one (group flush, as SQLite's WAL fdatasync in
 * sqlite-writer.ts). docs/postgres.md (sync policy) has the argument for power loss.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { FerryError } from 'ferrymq/model';

/** Assigns the barrier's transaction an xid, so its commit writes a record and flushes. */
const BARRIER_SQL = 'SELECT txid_current()';

export interface PgFlushOptions {
  /** Opens a new connection (search_path set). */
  connect: () => Promise<pg.Client>;
  /** Each barrier that ran: its duration (the metrics' fsyncs and fsyncMs). */
  onFlush: (elapsedMs: number) => void;
}

export class PgFlushBarrier {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  /** Commits made without waiting for the flush, numbered; and the highest one flushed. */
  private unflushedSeq = 0;
  private flushedSeq = 0;
  /** The barrier in flight and the commit number it covers. */
  private inFlight: Promise<void> | undefined;
  private inFlightCovers = 0;
  private closed = false;

  constructor(private readonly options: PgFlushOptions) {}

  /** A writer commit was made without waiting for the flush. */
  noteUnflushedCommit(): void {
    this.unflushedSeq++;
  }

  /** A writer commit waited for the flush: every commit before it is flushed too. */
  noteFlushedCommit(): void {
    this.flushedSeq = this.unflushedSeq;
  }

  /** Whether a commit was made since the last flush. */
  get pending(): boolean {
    return this.flushedSeq < this.unflushedSeq;
  }

  /** Resolves once every commit made before the call is flushed to PostgreSQL's disk. */
  async flushed(): Promise<void> {
    const target = this.unflushedSeq;
    while (this.flushedSeq < target) {
      if (this.closed) throw new FerryError('SHUTTING_DOWN', 'the store is closed');
      if (this.inFlight && this.inFlightCovers >= target) {
        await this.inFlight;
        continue;
      }
      // A barrier started before our commit does not cover it: wait for it, then run ours.
      if (this.inFlight) {
        await this.inFlight.catch(() => undefined);
        continue;
      }
      this.inFlightCovers = this.unflushedSeq;
      this.inFlight = this.barrier(this.inFlightCovers).finally(() => {
        this.inFlight = undefined;
      });
      await this.inFlight;
    }
  }

  private async barrier(covers: number): Promise<void> {
    const started = performance.now();
    try {
      const client = await this.ensureClient();
      await client.query(BARRIER_SQL);
    } catch (err) {
      this.dropClient();
      const message = err instanceof Error ? err.message : String(err);
      throw new FerryError('STORAGE_ERROR', `WAL flush failed: ${message}`, { cause: err });
    }
    if (covers > this.flushedSeq) this.flushedSeq = covers;
    this.options.onFlush(performance.now() - started);
  }

  private ensureClient(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = await this.options.connect();
      client.on('error', () => this.dropClient(client));
      client.on('end', () => this.dropClient(client));
      await client.query('SET synchronous_commit = on');
      this.client = client;
      return client;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private dropClient(client = this.client): void {
    if (!client || client !== this.client) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
  }

  /** Waits for the barrier in flight and closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    await this.inFlight?.catch(() => undefined);
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
