/**
 * Pub/sub's tables in the PostgreSQL store: the publish sequence, retained values, durable
 * subscriptions and confirmations. Every call runs inside the store's group commit and mirrors
 * the SQLite store (sqlite-pubsub.ts), one statement per call (load: two).
 *
 * The store is shared, so it numbers publishes itself (`publish`): one counter row, raised by
 * `UPDATE … RETURNING` in the transaction that stores the publishes, whose row lock held to
 * the commit makes the numbers consecutive and in commit order across brokers. Each publish is
 * also kept for a few seconds in the UNLOGGED `publishes` table, from which the other brokers
 * read it (`published`) when told by a notification (docs/postgres.md, "Publishes").
 * `record` (the core numbering from memory) stays for the storage contract's tests.
 */
import { FerryError, type Headers } from 'ferrymq/model';
import { packFrames, unpackFrames } from '../frames-codec.js';
import type {
  ConfirmationRow,
  DurableSubscriptionRow,
  EnqueueItem,
  NewPublish,
  PublishBatch,
  PublishedRow,
  PubSubState,
  PubSubStorage,
  RetainedChange,
  RetainedRow,
  StoredPublishes,
} from '../types.js';
import type { EnqueueResult } from './pg-enqueue.js';
import type { PgSession, PgWriteLevel } from './pg-writer.js';

type Run = <T>(fn: (db: PgSession) => Promise<T>, level?: PgWriteLevel) => Promise<T>;

/** Stores durable copies inside the current transaction (the queue store's enqueue). */
export type PgEnqueueInto = (db: PgSession, items: EnqueueItem[]) => Promise<EnqueueResult>;

/**
 * How long a publish stays in the `publishes` table for other brokers to read (by the
 * publishing broker's clock): well above the ~1 s after which a broker re-reads a number it
 * misses, so only a broker stalled this long loses publishes.
 */
const PUBLISH_LOG_KEEP_MS = 10_000;
/** How often `published` also trims rows past PUBLISH_LOG_KEEP_MS. */
const PUBLISH_LOG_TRIM_EVERY_MS = 1_000;

interface PublishedDbRow {
  seq: number;
  topic: string;
  retained: boolean;
  deleted: boolean;
  published_at: number;
  nframes: number;
  body: Buffer;
  headers: string | null;
}

interface SnapshotDbRow extends Omit<RetainedDbRow, 'topic'> {
  last: number;
  topic: string | null;
}

const SEQ_KEY = 'seq';

interface RetainedDbRow {
  topic: string;
  seq: number;
  published_at: number;
  expires_at: number | null;
  nframes: number;
  body: Buffer;
  headers: string | null;
}

/** Raises the publish sequence to $1 (never lowers it); the statement it prefixes uses $1. */
const SET_SEQ = `INSERT INTO pubsub_meta AS m(key, value) VALUES ('${SEQ_KEY}', $1)
  ON CONFLICT (key) DO UPDATE SET value = GREATEST(m.value, excluded.value)`;

const SQL = {
  getSeq: `SELECT value FROM pubsub_meta WHERE key = '${SEQ_KEY}'`,
  subscriptions: 'SELECT name, pattern, created_at FROM subscriptions ORDER BY name',
  recordNone: SET_SEQ,
  recordSet: `WITH s AS (${SET_SEQ})
    INSERT INTO retained(topic, seq, published_at, expires_at, nframes, body, headers)
    VALUES ($2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (topic) DO UPDATE SET seq = excluded.seq, published_at = excluded.published_at,
      expires_at = excluded.expires_at, nframes = excluded.nframes, body = excluded.body,
      headers = excluded.headers`,
  recordDelete: `WITH s AS (${SET_SEQ}) DELETE FROM retained WHERE topic = $2`,
  /** Topics in [prefix, prefix + U+FFFF), in code-point order (the column is COLLATE "C"). */
  range: `SELECT topic, seq, published_at, expires_at, nframes, body, headers FROM retained
    WHERE topic >= $1 AND topic < $2 AND (expires_at IS NULL OR expires_at > $3) ORDER BY topic`,
  expired: `SELECT topic FROM retained WHERE expires_at IS NOT NULL AND expires_at <= $1
    ORDER BY expires_at, topic LIMIT $2`,
  nextExpiry: 'SELECT min(expires_at) AS t FROM retained WHERE expires_at IS NOT NULL',
  saveSub: `INSERT INTO subscriptions(name, pattern, created_at) VALUES ($1, $2, $3)
    ON CONFLICT (name) DO UPDATE SET pattern = excluded.pattern,
      created_at = excluded.created_at`,
  deleteSub: 'DELETE FROM subscriptions WHERE name = $1',
  /** One row per (topic, node) in the arrays; a lower sequence number changes nothing. */
  confirm: `INSERT INTO confirmations AS c(topic, node, seq, at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
    ON CONFLICT (topic, node) DO UPDATE SET seq = excluded.seq, at = excluded.at
    WHERE excluded.seq > c.seq`,
  confirmations: `SELECT node, topic, seq, at FROM confirmations
    WHERE topic >= $1 AND topic < $2 ORDER BY topic, node`,
  /**
   * Numbers $1 publishes (the counter row stays locked to the commit) and keeps them for the
   * other brokers; returns the first number.
   */
  publish: `WITH n AS (
      UPDATE pubsub_meta SET value = value + $1 WHERE key = '${SEQ_KEY}' RETURNING value
    ), ins AS (
      INSERT INTO publishes(seq, topic, retained, deleted, published_at, nframes, body, headers)
      SELECT (SELECT value FROM n) - $1 + u.ord, u.topic, u.retained, u.deleted, u.at,
        u.nframes, u.body, u.headers
      FROM unnest($2::text[], $3::bool[], $4::bool[], $5::int8[], $6::int4[], $7::bytea[],
        $8::text[]) WITH ORDINALITY AS u(topic, retained, deleted, at, nframes, body, headers, ord)
    )
    SELECT value - $1 + 1 AS first FROM n`,
  /** The last value per topic a batch leaves (one row per topic). */
  retainSet: `INSERT INTO retained(topic, seq, published_at, expires_at, nframes, body, headers)
    SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int4[],
      $6::bytea[], $7::text[])
    ON CONFLICT (topic) DO UPDATE SET seq = excluded.seq, published_at = excluded.published_at,
      expires_at = excluded.expires_at, nframes = excluded.nframes, body = excluded.body,
      headers = excluded.headers`,
  retainDelete: 'DELETE FROM retained WHERE topic = ANY($1::text[])',
  published: `SELECT seq, topic, retained, deleted, published_at, nframes, body, headers
    FROM publishes WHERE seq >= $1 ORDER BY seq LIMIT $2`,
  /** Rows another broker is trimming at the same moment are skipped, not waited for. */
  trimPublished: `DELETE FROM publishes WHERE seq IN (
    SELECT seq FROM publishes WHERE published_at < $1 FOR UPDATE SKIP LOCKED)`,
  /** Retained values and the counter in one statement (one snapshot); a row even with none. */
  snapshot: `SELECT m.value AS last, r.topic, r.seq, r.published_at, r.expires_at, r.nframes,
      r.body, r.headers
    FROM pubsub_meta m LEFT JOIN retained r ON r.topic >= $1 AND r.topic < $2
      AND (r.expires_at IS NULL OR r.expires_at > $3)
    WHERE m.key = '${SEQ_KEY}' ORDER BY r.topic`,
} as const;

/** Upper bound of a prefix range: every string starting with `prefix` sorts below it. */
function prefixEnd(prefix: string): string {
  return prefix + '\uffff';
}

/**
 * Per (topic, node) the row kept when the rows are stored one by one: the first, unless a
 * later one has a higher sequence number. Sorted by (topic, node), so brokers confirming the
 * same keys lock them in one order.
 */
function highestPerKey(rows: ConfirmationRow[]): ConfirmationRow[] {
  const kept = new Map<string, ConfirmationRow>();
  for (const r of rows) {
    const key = `${r.topic}\u0000${r.node}`;
    const prior = kept.get(key);
    if (!prior || r.seq > prior.seq) kept.set(key, r);
  }
  return [...kept.values()].sort((a, b) =>
    a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.node < b.node ? -1 : a.node > b.node ? 1 : 0,
  );
}

/** A retained row as read (headers as JSON text). */
function toRetainedRow(r: RetainedDbRow): RetainedRow {
  return {
    topic: r.topic,
    seq: r.seq,
    frames: unpackFrames(r.body, r.nframes),
    headers: r.headers === null ? undefined : (JSON.parse(r.headers) as Headers),
    publishedAt: r.published_at,
    expiresAt: r.expires_at,
  };
}

/** Per topic, the index of the batch's last retained publish to it (what the topic keeps). */
function lastRetained(publishes: NewPublish[]): Map<string, number> {
  const last = new Map<string, number>();
  publishes.forEach((p, i) => {
    if (p.retained) last.set(p.topic, i);
  });
  return last;
}

export class PgPubSubStorage implements PubSubStorage {
  private lastTrimAt = 0;

  constructor(
    private readonly run: Run,
    private readonly enqueueInto: PgEnqueueInto,
    /** Counts copies stored, once committed (the store's metrics). */
    private readonly noteWritten: (n: number) => void,
  ) {}

  publish(batch: PublishBatch): Promise<StoredPublishes> {
    const ps = batch.publishes;
    const packed = ps.map((p) => packFrames(p.frames));
    return this.run(async (db) => {
      const got = await db.rows<{ first: number }>(SQL.publish, [
        ps.length,
        ps.map((p) => p.topic),
        ps.map((p) => p.retained),
        ps.map((p) => p.deleted),
        ps.map((p) => p.publishedAt),
        ps.map((p) => p.frames.length),
        packed,
        ps.map((p) => (p.headers ? JSON.stringify(p.headers) : null)),
      ]);
      const firstSeq = got[0]?.first;
      if (firstSeq === undefined) {
        throw new FerryError('STORAGE_ERROR', 'the publish counter row is missing');
      }
      const sets: number[] = [];
      const deletes: string[] = [];
      for (const [topic, i] of lastRetained(ps)) {
        if (ps[i]!.deleted) deletes.push(topic);
        else sets.push(i);
      }
      if (sets.length > 0) {
        await db.run(SQL.retainSet, [
          sets.map((i) => ps[i]!.topic),
          sets.map((i) => firstSeq + i),
          sets.map((i) => ps[i]!.publishedAt),
          sets.map((i) => ps[i]!.expiresAt),
          sets.map((i) => ps[i]!.frames.length),
          sets.map((i) => packed[i]!),
          sets.map((i) => (ps[i]!.headers ? JSON.stringify(ps[i]!.headers) : null)),
        ]);
      }
      if (deletes.length > 0) await db.run(SQL.retainDelete, [deletes]);
      const c = batch.copies;
      if (!c || c.items.length === 0) return { firstSeq, copies: undefined, stored: 0 };
      const items = c.items.map((it, i) => ({
        ...it,
        headers: c.headersFor(i, firstSeq + c.publishOf[i]!),
      }));
      const r = await this.enqueueInto(db, items);
      return { firstSeq, copies: r.outcome, stored: r.stored };
    }).then(({ firstSeq, copies, stored }) => {
      // Counted once committed (a batch re-run after another call failed runs this call twice).
      if (stored > 0) this.noteWritten(stored);
      return { firstSeq, copies };
    });
  }

  published(fromSeq: number, max: number): Promise<PublishedRow[]> {
    const now = Date.now();
    const trim = now - this.lastTrimAt >= PUBLISH_LOG_TRIM_EVERY_MS;
    if (trim) this.lastTrimAt = now;
    return this.run(async (db) => {
      if (trim) await db.run(SQL.trimPublished, [now - PUBLISH_LOG_KEEP_MS]);
      const rows = await db.rows<PublishedDbRow>(SQL.published, [fromSeq, max]);
      return rows.map((r) => ({
        seq: r.seq,
        topic: r.topic,
        frames: unpackFrames(r.body, r.nframes),
        headers: r.headers === null ? undefined : (JSON.parse(r.headers) as Headers),
        retained: r.retained,
        deleted: r.deleted,
        publishedAt: r.published_at,
      }));
    });
  }

  snapshot(prefix: string, now: number): Promise<{ seq: number; rows: RetainedRow[] }> {
    return this.run(async (db) => {
      const rows = await db.rows<SnapshotDbRow>(SQL.snapshot, [prefix, prefixEnd(prefix), now]);
      const seq = rows[0]?.last ?? 0;
      const out: RetainedRow[] = [];
      for (const r of rows) if (r.topic !== null) out.push(toRetainedRow({ ...r, topic: r.topic }));
      return { seq, rows: out };
    });
  }

  /** Nothing to prepare or release at open (statements are prepared on first use). */
  async open(_db: PgSession): Promise<void> {}

  load(): Promise<PubSubState> {
    return this.run(async (db) => {
      const seq = await db.rows<{ value: number }>(SQL.getSeq);
      const subs = await db.rows<{ name: string; pattern: string; created_at: number }>(
        SQL.subscriptions,
      );
      return {
        lastSeq: seq[0]?.value ?? 0,
        subscriptions: subs.map((r) => ({
          name: r.name,
          pattern: r.pattern,
          createdAt: r.created_at,
        })),
      };
    });
  }

  record(seq: number, change: RetainedChange): Promise<void> {
    return this.run(async (db) => {
      if (change.op === 'set') {
        const r = change.row;
        await db.run(SQL.recordSet, [
          seq,
          r.topic,
          r.seq,
          r.publishedAt,
          r.expiresAt,
          r.frames.length,
          packFrames(r.frames),
          r.headers ? JSON.stringify(r.headers) : null,
        ]);
      } else if (change.op === 'delete') {
        await db.run(SQL.recordDelete, [seq, change.topic]);
      } else {
        await db.run(SQL.recordNone, [seq]);
      }
    });
  }

  retained(prefix: string, now: number): Promise<RetainedRow[]> {
    return this.run(async (db) => {
      const rows = await db.rows<RetainedDbRow>(SQL.range, [prefix, prefixEnd(prefix), now]);
      return rows.map(toRetainedRow);
    });
  }

  expired(now: number, max: number): Promise<string[]> {
    return this.run(async (db) =>
      (await db.rows<{ topic: string }>(SQL.expired, [now, max])).map((r) => r.topic),
    );
  }

  nextExpiry(): Promise<number | null> {
    return this.run(
      async (db) => (await db.rows<{ t: number | null }>(SQL.nextExpiry))[0]?.t ?? null,
    );
  }

  saveSubscription(row: DurableSubscriptionRow): Promise<void> {
    return this.run(async (db) => {
      await db.run(SQL.saveSub, [row.name, row.pattern, row.createdAt]);
    });
  }

  deleteSubscription(name: string): Promise<boolean> {
    return this.run(async (db) => (await db.run(SQL.deleteSub, [name])) > 0);
  }

  confirm(rows: ConfirmationRow[]): Promise<void> {
    if (rows.length === 0) return this.run(async () => undefined);
    const kept = highestPerKey(rows);
    return this.run(async (db) => {
      await db.run(SQL.confirm, [
        kept.map((r) => r.topic),
        kept.map((r) => r.node),
        kept.map((r) => r.seq),
        kept.map((r) => r.at),
      ]);
    });
  }

  confirmations(prefix: string): Promise<ConfirmationRow[]> {
    return this.run(async (db) =>
      db.rows<ConfirmationRow>(SQL.confirmations, [prefix, prefixEnd(prefix)]),
    );
  }
}
