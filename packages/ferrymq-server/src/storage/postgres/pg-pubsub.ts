/**
 * Pub/sub's tables in the PostgreSQL store: the publish sequence, retained values, durable
 * subscriptions and confirmations. Every call runs inside the store's group commit and mirrors
 * the SQLite store (sqlite-pubsub.ts), one statement per call (load: two).
 *
 * The sequence kept here is the highest ever recorded (GREATEST: a lower one never moves it
 * back); the core still hands sequence numbers out from memory, which holds for one broker per
 * database only (see docs/architecture.md, "PostgreSQL store: jobs and pub/sub").
 */
import type { Headers } from 'ferrymq/model';
import { packFrames, unpackFrames } from '../frames-codec.js';
import type {
  ConfirmationRow,
  DurableSubscriptionRow,
  PubSubState,
  PubSubStorage,
  RetainedChange,
  RetainedRow,
} from '../types.js';
import type { PgSession, PgWriteLevel } from './pg-writer.js';

type Run = <T>(fn: (db: PgSession) => Promise<T>, level?: PgWriteLevel) => Promise<T>;

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

export class PgPubSubStorage implements PubSubStorage {
  constructor(private readonly run: Run) {}

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
      return rows.map((r) => ({
        topic: r.topic,
        seq: r.seq,
        frames: unpackFrames(r.body, r.nframes),
        headers: r.headers === null ? undefined : (JSON.parse(r.headers) as Headers),
        publishedAt: r.published_at,
        expiresAt: r.expires_at,
      }));
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
