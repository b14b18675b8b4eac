/**
 * The pub/sub tables of the SQLite store. Every call runs inside the store's group commit, so
 * a publish's sequence number, its retained value and its copies in durable subscriptions'
 * queues are committed in one transaction and one fsync.
 */
import type Database from 'better-sqlite3';
import { type Headers, messageSize } from 'ferrymq/model';
import { packFrames, unpackFrames } from '../frames-codec.js';
import type {
  ConfirmationRow,
  DurableSubscriptionRow,
  PubSubState,
  PubSubStorage,
  RetainedChange,
  RetainedRow,
} from '../types.js';
import { estimateDiskBytes } from './disk-floor.js';
import type { WriteCost } from './sqlite-writer.js';

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

/** Upper bound of a prefix range: every string starting with `prefix` sorts below it. */
function prefixEnd(prefix: string): string {
  return prefix + '\uffff';
}

function prepare(db: Database.Database) {
  return {
    getSeq: db.prepare<[string], { value: number }>('SELECT value FROM pubsub_meta WHERE key = ?'),
    setSeq: db.prepare<[string, number]>(
      `INSERT INTO pubsub_meta(key, value) VALUES (?, ?)
       ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)`,
    ),
    upsert: db.prepare(
      `INSERT OR REPLACE INTO retained(topic, seq, published_at, expires_at, nframes, body, headers)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    remove: db.prepare<[string]>('DELETE FROM retained WHERE topic = ?'),
    range: db.prepare<[string, string, number], RetainedDbRow>(
      `SELECT topic, seq, published_at, expires_at, nframes, body, headers FROM retained
       WHERE topic >= ? AND topic < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY topic`,
    ),
    expired: db.prepare<[number, number], { topic: string }>(
      'SELECT topic FROM retained WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?',
    ),
    nextExpiry: db.prepare<[], { t: number | null }>(
      'SELECT min(expires_at) AS t FROM retained WHERE expires_at IS NOT NULL',
    ),
    subscriptions: db.prepare<[], { name: string; pattern: string; created_at: number }>(
      'SELECT name, pattern, created_at FROM subscriptions ORDER BY name',
    ),
    saveSub: db.prepare<[string, string, number]>(
      'INSERT OR REPLACE INTO subscriptions(name, pattern, created_at) VALUES (?, ?, ?)',
    ),
    deleteSub: db.prepare<[string]>('DELETE FROM subscriptions WHERE name = ?'),
    confirm: db.prepare<[string, string, number, number]>(
      `INSERT INTO confirmations(topic, node, seq, at) VALUES (?, ?, ?, ?)
       ON CONFLICT(topic, node) DO UPDATE SET seq = excluded.seq, at = excluded.at
       WHERE excluded.seq > confirmations.seq`,
    ),
    confirmations: db.prepare<[string, string], ConfirmationRow>(
      `SELECT node, topic, seq, at FROM confirmations WHERE topic >= ? AND topic < ?
       ORDER BY topic, node`,
    ),
  };
}

type Statements = ReturnType<typeof prepare>;

export class SqlitePubSubStorage implements PubSubStorage {
  private st: Statements | undefined;

  constructor(private readonly run: <T>(fn: () => T, cost?: WriteCost) => Promise<T>) {}

  open(db: Database.Database): void {
    this.st = prepare(db);
  }

  private get s(): Statements {
    if (!this.st) throw new Error('pub/sub storage used before open');
    return this.st;
  }

  load(): Promise<PubSubState> {
    return this.run(() => ({
      lastSeq: this.s.getSeq.get(SEQ_KEY)?.value ?? 0,
      subscriptions: this.s.subscriptions
        .all()
        .map((r) => ({ name: r.name, pattern: r.pattern, createdAt: r.created_at })),
    }));
  }

  record(seq: number, change: RetainedChange): Promise<void> {
    const payload = change.op === 'set' ? messageSize(change.row.frames) : 0;
    const cost = { diskBytes: estimateDiskBytes(payload, 1), refusable: false };
    return this.run(() => {
      this.s.setSeq.run(SEQ_KEY, seq);
      if (change.op === 'set') {
        const r = change.row;
        this.s.upsert.run(
          r.topic,
          r.seq,
          r.publishedAt,
          r.expiresAt,
          r.frames.length,
          packFrames(r.frames),
          r.headers ? JSON.stringify(r.headers) : null,
        );
      } else if (change.op === 'delete') {
        this.s.remove.run(change.topic);
      }
    }, cost);
  }

  retained(prefix: string, now: number): Promise<RetainedRow[]> {
    return this.run(() =>
      this.s.range.all(prefix, prefixEnd(prefix), now).map((r) => ({
        topic: r.topic,
        seq: r.seq,
        frames: unpackFrames(r.body, r.nframes),
        headers: r.headers === null ? undefined : (JSON.parse(r.headers) as Headers),
        publishedAt: r.published_at,
        expiresAt: r.expires_at,
      })),
    );
  }

  expired(now: number, max: number): Promise<string[]> {
    return this.run(() => this.s.expired.all(now, max).map((r) => r.topic));
  }

  nextExpiry(): Promise<number | null> {
    return this.run(() => this.s.nextExpiry.get()?.t ?? null);
  }

  saveSubscription(row: DurableSubscriptionRow): Promise<void> {
    return this.run(() => {
      this.s.saveSub.run(row.name, row.pattern, row.createdAt);
    });
  }

  deleteSubscription(name: string): Promise<boolean> {
    return this.run(() => this.s.deleteSub.run(name).changes > 0);
  }

  confirm(rows: ConfirmationRow[]): Promise<void> {
    return this.run(() => {
      for (const r of rows) this.s.confirm.run(r.topic, r.node, r.seq, r.at);
    });
  }

  confirmations(prefix: string): Promise<ConfirmationRow[]> {
    return this.run(() => this.s.confirmations.all(prefix, prefixEnd(prefix)));
  }
}
