/**
 * The queue side of the SQLite store's SQL: message states as stored, the prepared statements
 * of the queue operations, and rows read back as the model's messages. Used by
 * {@link SqliteStorage} (sqlite-storage.ts).
 */
import type Database from 'better-sqlite3';

export {
  STATE_CODES,
  STATE_DEAD,
  STATE_LEASED,
  STATE_NAMES,
  STATE_READY,
  STATE_SCHEDULED,
  parseHeaders,
  rowToStored,
} from '../message-rows.js';

export interface MessageRow {
  id: number;
  queue_id: number;
  state: number;
  priority: number;
  not_before: number;
  expires_at: number | null;
  attempts: number;
  enqueued_at: number;
  size: number;
  nframes: number;
  headers: string | null;
  dedup_key: string | null;
  dead_reason: string | null;
  body: Buffer;
  /** Chunks of a body stored in chunks (sqlite-bodies.ts); 0: the body is `body`. */
  chunks: number;
}

/** A ready row as the lease query returns it (raw mode: an array, in SELECT order). */
type LeaseRow = [
  id: number,
  priority: number,
  attempts: number,
  enqueuedAt: number,
  size: number,
  nframes: number,
  headers: string | null,
  body: Buffer,
  expiresAt: number | null,
  chunks: number,
];

type Statement<P extends unknown[], R = unknown> = Database.Statement<P, R>;

/**
 * The queue operations' statements, with their parameters and rows (named here, not inferred,
 * so that declarations can name them).
 */
export interface QueueStatements {
  queueId: Statement<[string], { id: number }>;
  insertQueue: Statement<[string, number]>;
  insertMessage: Statement<unknown[]>;
  getIdem: Statement<[string, string, number], { ids: string }>;
  putIdem: Statement<[string, string, string, number]>;
  selectReady: Statement<[number, number], LeaseRow>;
  markLeased: Statement<[number]>;
  deleteById: Statement<[number]>;
  ack: Statement<[number, number]>;
  releaseTo: Statement<[number, number, number, number, number]>;
  releaseDead: Statement<[string, number, number, number]>;
  dueCounts: Statement<[number], { name: string; n: number; bytes: number }>;
  promote: Statement<[number]>;
  nextDue: Statement<[], { t: number | null }>;
  expiredRows: Statement<
    [number, number],
    { id: number; name: string; state: number; size: number }
  >;
  sweepIdem: Statement<[number]>;
  counts: Statement<[], { name: string; state: number | null; n: number; bytes: number | null }>;
  oldest: Statement<[number], { t: number }>;
  purgeStats: Statement<[number], { state: number; n: number; bytes: number }>;
  purgeLive: Statement<[number]>;
  purgeDead: Statement<[number]>;
  redriveOne: Statement<[number, number], { size: number }>;
  deadIds: Statement<[number, number], { id: number }>;
  releaseAllLeases: Statement<unknown[]>;
  deleteQueueMessages: Statement<[number]>;
  deleteQueueIdem: Statement<[string]>;
  deleteQueueSettings: Statement<[number]>;
  deleteQueueRow: Statement<[number]>;
  putSettings: Statement<[number, number, string, number]>;
  allSettings: Statement<[], { name: string; paused: number; policy: string }>;

  leasedRows: Statement<[], { id: number; queue: string; attempts: number; size: number }>;
  holdLeases: Statement<[number]>;
  ackRecovered: Statement<[number, number]>;
}

/** The queue operations' statements, prepared once when the store opens. */
export function prepareQueueStatements(db: Database.Database): QueueStatements {
  return {
    queueId: db.prepare('SELECT id FROM queues WHERE name = ?'),
    insertQueue: db.prepare('INSERT OR IGNORE INTO queues(name, created_at) VALUES (?, ?)'),
    insertMessage: db.prepare(
      `INSERT INTO messages(queue_id, state, priority, not_before, expires_at, attempts, enqueued_at,
         size, nframes, headers, dedup_key, body, chunks)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    getIdem: db.prepare(
      'SELECT ids FROM idempotency WHERE scope = ? AND key = ? AND expires_at > ?',
    ),
    putIdem: db.prepare(
      'INSERT OR REPLACE INTO idempotency(scope, key, ids, expires_at) VALUES (?, ?, ?, ?)',
    ),
    // Rows as arrays, not objects: measured 25 % cheaper per leased message (see LeaseRow).
    selectReady: db
      .prepare<[number, number], LeaseRow>(
        `SELECT id, priority, attempts, enqueued_at, size, nframes, headers, body, expires_at,
           chunks
         FROM messages WHERE queue_id = ? AND state = 0 ORDER BY priority DESC, id LIMIT ?`,
      )
      .raw(true),
    markLeased: db.prepare('UPDATE messages SET state = 1, attempts = attempts + 1 WHERE id = ?'),
    deleteById: db.prepare('DELETE FROM messages WHERE id = ?'),
    ack: db.prepare('DELETE FROM messages WHERE id = ? AND state = 1 AND attempts = ?'),
    releaseTo: db.prepare(
      `UPDATE messages SET state = ?, not_before = ?, attempts = attempts - ?
       WHERE id = ? AND state = 1 AND attempts = ?`,
    ),
    releaseDead: db.prepare(
      `UPDATE messages SET state = 3, dead_reason = ?, attempts = attempts - ?
       WHERE id = ? AND state = 1 AND attempts = ?`,
    ),
    dueCounts: db.prepare(
      `SELECT q.name AS name, count(*) AS n, sum(m.size) AS bytes FROM messages m
       JOIN queues q ON q.id = m.queue_id
       WHERE m.state = 2 AND m.not_before <= ? GROUP BY q.name`,
    ),
    promote: db.prepare('UPDATE messages SET state = 0 WHERE state = 2 AND not_before <= ?'),
    nextDue: db.prepare('SELECT min(not_before) AS t FROM messages WHERE state = 2'),
    expiredRows: db.prepare(
      `SELECT m.id AS id, q.name AS name, m.state AS state, m.size AS size FROM messages m
       JOIN queues q ON q.id = m.queue_id
       WHERE m.expires_at <= ? AND m.state IN (0, 2) LIMIT ?`,
    ),
    sweepIdem: db.prepare('DELETE FROM idempotency WHERE expires_at <= ?'),
    counts: db.prepare(
      `SELECT q.name AS name, m.state AS state, count(m.id) AS n, sum(m.size) AS bytes
       FROM queues q LEFT JOIN messages m ON m.queue_id = q.id GROUP BY q.name, m.state`,
    ),
    oldest: db.prepare(
      'SELECT enqueued_at AS t FROM messages WHERE queue_id = ? AND state != 3 ORDER BY id LIMIT 1',
    ),
    purgeStats: db.prepare(
      `SELECT state, count(*) AS n, sum(size) AS bytes FROM messages
       WHERE queue_id = ? AND state IN (0, 2) GROUP BY state`,
    ),
    purgeLive: db.prepare('DELETE FROM messages WHERE queue_id = ? AND state IN (0, 2)'),
    purgeDead: db.prepare('DELETE FROM messages WHERE queue_id = ? AND state = 3'),
    redriveOne: db.prepare(
      `UPDATE messages SET state = 0, attempts = 0, dead_reason = NULL, not_before = enqueued_at
       WHERE id = ? AND queue_id = ? AND state = 3 RETURNING size`,
    ),
    deadIds: db.prepare(
      'SELECT id FROM messages WHERE queue_id = ? AND state = 3 ORDER BY id LIMIT ?',
    ),
    releaseAllLeases: db.prepare('UPDATE messages SET state = 0 WHERE state = 1'),
    deleteQueueMessages: db.prepare('DELETE FROM messages WHERE queue_id = ?'),
    deleteQueueIdem: db.prepare('DELETE FROM idempotency WHERE scope = ?'),
    deleteQueueSettings: db.prepare('DELETE FROM queue_settings WHERE queue_id = ?'),
    deleteQueueRow: db.prepare('DELETE FROM queues WHERE id = ?'),
    putSettings: db.prepare(
      'INSERT OR REPLACE INTO queue_settings(queue_id, paused, policy, updated_at) VALUES (?, ?, ?, ?)',
    ),
    allSettings: db.prepare(
      `SELECT q.name AS name, s.paused AS paused, s.policy AS policy
       FROM queue_settings s JOIN queues q ON q.id = s.queue_id`,
    ),

    leasedRows: db.prepare(
      `SELECT m.id AS id, q.name AS queue, m.attempts AS attempts, m.size AS size
       FROM messages m JOIN queues q ON q.id = m.queue_id WHERE m.state = 1`,
    ),
    // The previous run's leases, held back (scheduled) until the grace ends.
    holdLeases: db.prepare('UPDATE messages SET state = 2, not_before = ? WHERE state = 1'),
    ackRecovered: db.prepare('DELETE FROM messages WHERE id = ? AND state = 2 AND attempts = ?'),
  };
}
