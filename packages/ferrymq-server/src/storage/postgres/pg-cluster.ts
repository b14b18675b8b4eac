/**
 * The brokers sharing one PostgreSQL store, seen from one of them: its node row and heartbeat,
 * the lock that keeps two live brokers from using one node id, the wake-ups other brokers'
 * commits send (LISTEN on the schema's channel; the triggers are in migrations 0002 and 0003:
 * `q`, `j`, `x`, and `p` for publishes, `s` for durable subscriptions), and the
 * release of a dead broker's leases and running jobs.
 *
 * All of it runs on one connection of its own, never on the writer's: a slow heartbeat never
 * delays a commit, and the LISTEN stays pinned to one session.
 */
import type pg from 'pg';
import { FerryError } from 'ferrymq/model';
import type { RemoteChanges, StoreNode } from '../types.js';
import { connectPg, type PgTarget } from './pg-schema.js';

/** How often a broker writes its heartbeat and looks for dead ones. */
const NODE_HEARTBEAT_MS = 1_000;
/** The database's clock in ms since the epoch (heartbeats compare against it, not ours). */
const DB_NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;
/** Notices of one channel gathered before the listener is called (one callback per batch). */
const NOTICE_BATCH_MS = 0;

export interface PgClusterOptions {
  target: PgTarget;
  nodeId: string;
  /** A node whose heartbeat is older than this is dead. */
  nodeTimeoutMs: number;
  /** Other brokers are alive (true) or none is (false): whether commits should notify. */
  onPeers: (alive: boolean) => void;
  /** The writer connection's backend pid: its own notices are not news. */
  ownPids: () => number[];
  /** Something went wrong in the background (a lost connection, a failed heartbeat). */
  onError: (err: FerryError) => void;
}

/** What releasing the dead brokers' work did. */
export interface ReclaimOutcome {
  nodes: string[];
  leases: number;
  jobs: number;
}

export class PgCluster {
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private listener: ((changes: RemoteChanges) => void) | undefined;
  private peersAlive = false;
  private readonly queueNames = new Map<number, string>();
  private pending = {
    queues: new Set<number>(),
    services: new Set<string>(),
    jobs: new Set<string>(),
    publishes: false,
    subscriptions: false,
  };
  private flushScheduled = false;
  private closed = false;
  private beating: Promise<void> | undefined;
  private joining: Promise<void> | undefined;
  /** The connection broke (a PostgreSQL restart): the next heartbeat opens a new one. */
  private broken = false;
  /** This node's start, as its first node row recorded it. */
  private startedAt: number | null = null;
  /** Heartbeats, reclaims and their failures (for tests and stats). */
  readonly counters = { heartbeats: 0, reclaimedLeases: 0, reclaimedJobs: 0, notices: 0 };

  constructor(private readonly options: PgClusterOptions) {}

  get channel(): string {
    return this.options.target.schema;
  }

  /**
   * Connects, takes the node id's lock (refusing a node id a live broker holds), writes the
   * node row, listens, and starts the heartbeat.
   */
  async start(): Promise<void> {
    this.startedAt = null;
    await this.join();
    await this.beat();
    this.timer = setInterval(() => this.beatNow(), NODE_HEARTBEAT_MS);
    this.timer.unref();
  }

  /**
   * Opens the cluster connection: the node lock, the node row (its start time kept across
   * reconnects), and the LISTEN. Run at start and again after the connection was lost (a
   * PostgreSQL restart); until then notices are missed and the idle probes carry on.
   */
  private async join(): Promise<void> {
    const client = await connectPg(this.options.target);
    const lost = (): void => {
      if (this.client === client) this.broken = true;
    };
    client.on('error', (err: Error) => {
      lost();
      this.options.onError(
        new FerryError('STORAGE_ERROR', `cluster connection lost: ${err.message}`, { cause: err }),
      );
    });
    client.on('end', lost);
    const { schema } = this.options.target;
    try {
      const got = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock(hashtext($1)) AS ok',
        [`ferry-node:${schema}:${this.options.nodeId}`],
      );
      if (!got.rows[0]?.ok) {
        throw new FerryError(
          'NODE_ID_IN_USE',
          `another live broker uses node id "${this.options.nodeId}" on this store; give each broker its own (--node-id)`,
        );
      }
      const started = await client.query<{ started_at: number }>(
        `INSERT INTO nodes(id, started_at, heartbeat_at)
         VALUES ($1, COALESCE($2, ${DB_NOW_MS}), ${DB_NOW_MS})
         ON CONFLICT (id) DO UPDATE SET started_at = EXCLUDED.started_at,
           heartbeat_at = EXCLUDED.heartbeat_at
         RETURNING started_at`,
        [this.options.nodeId, this.startedAt],
      );
      this.startedAt = started.rows[0]?.started_at ?? null;
      // Notifications sent by this connection's own statements (the reclaim) reach others.
      await client.query(`SET ferry.notify = on`);
      client.on('notification', (msg) => this.onNotice(msg));
      await client.query(`LISTEN ${schema}`);
      // Tell the others a broker joined: they start notifying at once rather than at their
      // next heartbeat, so nothing stored meanwhile waits for the idle probe.
      await client.query('SELECT pg_notify($1, $2)', [schema, `n${this.options.nodeId}`]);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    const old = this.client;
    this.client = client;
    this.broken = false;
    await old?.end().catch(() => undefined);
  }

  /** join() once at a time (the heartbeat and a stats read may both want it). */
  private rejoin(): Promise<void> {
    this.joining ??= this.join().finally(() => (this.joining = undefined));
    return this.joining;
  }

  /** A heartbeat now (another broker joined), unless one is running. */
  private beatNow(): void {
    if (this.closed || this.beating) return;
    this.beating = this.beat().finally(() => (this.beating = undefined));
  }

  /** One listener for wake-ups; a second replaces the first. */
  watch(listener: (changes: RemoteChanges) => void): void {
    this.listener = listener;
  }

  /** Writes the heartbeat, releases dead brokers' work, and tells whether peers are alive. */
  private async beat(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.client || this.broken) await this.rejoin();
      const client = this.client!;
      // An upsert: after a long PostgreSQL outage another broker may have taken this node for
      // dead and deleted its row.
      await client.query(
        `INSERT INTO nodes(id, started_at, heartbeat_at) VALUES ($1, $2, ${DB_NOW_MS})
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at`,
        [this.options.nodeId, this.startedAt ?? 0],
      );
      this.counters.heartbeats++;
      await this.reclaim();
      const alive = await client.query<{ n: number }>(
        `SELECT count(*) AS n FROM nodes WHERE id <> $1 AND heartbeat_at > ${DB_NOW_MS} - $2`,
        [this.options.nodeId, this.options.nodeTimeoutMs],
      );
      const peers = (alive.rows[0]?.n ?? 0) > 0;
      if (peers !== this.peersAlive) {
        this.peersAlive = peers;
        this.options.onPeers(peers);
      }
    } catch (err) {
      if (this.closed) return;
      // Reconnect at the next heartbeat (a lost connection may not have said so yet).
      this.broken = true;
      const message = err instanceof Error ? err.message : String(err);
      this.options.onError(
        new FerryError('STORAGE_ERROR', `heartbeat failed: ${message}`, { cause: err }),
      );
    }
  }

  /**
   * Releases the leases and running jobs of brokers silent past the timeout, and forgets
   * them, in one statement: two brokers doing it at once release each lease once (the node
   * row is deleted by whichever gets it first). Messages go back to ready with their attempt
   * counted; jobs back to queued. The wake-up triggers tell every broker.
   */
  async reclaim(): Promise<ReclaimOutcome> {
    const client = this.client;
    if (!client) return { nodes: [], leases: 0, jobs: 0 };
    const r = await client.query<{ nodes: string[] | null; leases: number; jobs: number }>(
      `WITH dead AS (
         DELETE FROM nodes WHERE id <> $1 AND heartbeat_at <= ${DB_NOW_MS} - $2 RETURNING id
       ), m AS (
         UPDATE messages SET state = 0, leased_by = NULL
         WHERE state = 1 AND leased_by IN (SELECT id FROM dead) RETURNING 1
       ), j AS (
         UPDATE jobs SET status = 'queued', leased_by = NULL, started_at = NULL
         WHERE status = 'running' AND leased_by IN (SELECT id FROM dead) RETURNING 1
       )
       SELECT (SELECT array_agg(id) FROM dead) AS nodes,
              (SELECT count(*) FROM m) AS leases, (SELECT count(*) FROM j) AS jobs`,
      [this.options.nodeId, this.options.nodeTimeoutMs],
    );
    const row = r.rows[0];
    const out = { nodes: row?.nodes ?? [], leases: row?.leases ?? 0, jobs: row?.jobs ?? 0 };
    this.counters.reclaimedLeases += out.leases;
    this.counters.reclaimedJobs += out.jobs;
    return out;
  }

  private onNotice(msg: pg.Notification): void {
    if (msg.channel !== this.channel || msg.payload === undefined) return;
    if (this.options.ownPids().includes(msg.processId)) return;
    this.counters.notices++;
    const kind = msg.payload[0];
    const rest = msg.payload.slice(1);
    if (kind === 'q') {
      const id = Number(rest);
      if (Number.isSafeInteger(id)) this.pending.queues.add(id);
    } else if (kind === 'j') this.pending.services.add(rest);
    else if (kind === 'x') this.pending.jobs.add(rest);
    else if (kind === 'p') this.pending.publishes = true;
    else if (kind === 's') this.pending.subscriptions = true;
    else if (kind === 'n') {
      if (rest !== this.options.nodeId) this.beatNow();
      return;
    } else return;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(() => void this.flushNotices(), NOTICE_BATCH_MS);
    }
  }

  /** Calls the listener once with every notice gathered (queue ids read as names). */
  private async flushNotices(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = {
      queues: new Set(),
      services: new Set(),
      jobs: new Set(),
      publishes: false,
      subscriptions: false,
    };
    const queues: string[] = [];
    const unknown: number[] = [];
    for (const id of batch.queues) {
      const name = this.queueNames.get(id);
      if (name !== undefined) queues.push(name);
      else unknown.push(id);
    }
    if (unknown.length > 0 && this.client && !this.closed) {
      try {
        const r = await this.client.query<{ id: number; name: string }>(
          'SELECT id, name FROM queues WHERE id = ANY($1::bigint[])',
          [unknown],
        );
        for (const row of r.rows) {
          this.queueNames.set(row.id, row.name);
          queues.push(row.name);
        }
      } catch {
        // The connection went; the polling floor (idle probes) still finds the messages.
      }
    }
    if (this.closed) return;
    this.listener?.({
      queues,
      services: [...batch.services],
      jobs: [...batch.jobs],
      ...(batch.publishes ? { publishes: true } : {}),
      ...(batch.subscriptions ? { subscriptions: true } : {}),
    });
  }

  /** The brokers sharing the store (those not yet forgotten), this one first. */
  async nodes(): Promise<StoreNode[]> {
    if (this.closed) return [];
    let r: pg.QueryResult<{ id: string; started_at: number; heartbeat_at: number }>;
    try {
      // After a lost connection, reconnect now rather than at the next heartbeat.
      if (!this.client || this.broken) await this.rejoin();
      r = await this.client!.query('SELECT id, started_at, heartbeat_at FROM nodes ORDER BY id');
    } catch (err) {
      this.broken = true;
      const message = err instanceof Error ? err.message : String(err);
      throw new FerryError(
        'STORAGE_ERROR',
        `cannot read the brokers sharing the store: ${message}`,
        {
          cause: err,
        },
      );
    }
    const out = r.rows.map((row) => ({
      id: row.id,
      startedAt: row.started_at,
      heartbeatAt: row.heartbeat_at,
      self: row.id === this.options.nodeId,
    }));
    return [...out.filter((n) => n.self), ...out.filter((n) => !n.self)];
  }

  /**
   * Stops the heartbeat and marks this node as gone (its heartbeat at 0), so the others
   * release what it still holds at their next heartbeat instead of after the timeout.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.beating;
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      await client.query('UPDATE nodes SET heartbeat_at = 0 WHERE id = $1', [this.options.nodeId]);
    } catch {
      // Gone already: the others wait for the timeout instead.
    }
    await client.end().catch(() => undefined);
  }
}
