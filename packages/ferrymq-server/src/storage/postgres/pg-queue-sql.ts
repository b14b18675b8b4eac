/**
 * The queue side of the PostgreSQL store's SQL: every statement of the queue calls, and rows
 * read back as the model's messages. Used by {@link PostgresStorage} (pg-storage.ts).
 *
 * Written for several brokers sharing one schema: a ready message is taken with
 * `FOR UPDATE SKIP LOCKED` (never handed to two brokers), the timers' batches skip rows
 * another broker holds, creations race through `ON CONFLICT`, and a batch call is one
 * statement over `unnest` arrays whose expected outcomes come back as rows, never as errors
 * (an error would abort the whole group-commit transaction). Queues are named in the
 * statements themselves (`queue_id = (SELECT id FROM queues WHERE name = $1)`): no broker
 * caches a queue id another broker could delete.
 */
import type { LeaseRef } from '../types.js';

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

/** The idempotency scope of a request key (one scope for the whole store, as in SQLite). */
export const REQUEST_SCOPE = 'request';

/** The idempotency scope of a queue's dedup keys (by name: deleteQueue removes it). */
export function queueScope(queue: string): string {
  return `q:${queue}`;
}

/** The idempotency scope of a service's job dedup keys (pg-jobs.ts writes `'j:' || service`). */
export function serviceScope(service: string): string {
  return `j:${service}`;
}

/** A queue's id, inside a statement whose first parameter is the queue's name. */
const QID = '(SELECT id FROM queues WHERE name = $1)';

/** Creates a queue unless it exists (without spending a queue id when it does). */
export const SQL_ENSURE_QUEUE = `
INSERT INTO queues(name, created_at) SELECT $1, $2
WHERE NOT EXISTS (SELECT 1 FROM queues WHERE name = $1)
ON CONFLICT (name) DO NOTHING`;

export const SQL_QUEUE_ID = 'SELECT id FROM queues WHERE name = $1';

/**
 * Stores a batch of messages in one statement, creating their queues: one row back per item
 * stored (`ord` from 1, and its id), in item order. Ids come from `pre_id` when given (keys
 * claimed first), else from the sequence, in item order. An item whose queue another broker
 * created after this statement's snapshot finds no queue and is not stored: the caller runs
 * those items again (the next statement sees the queue).
 */
export const SQL_ENQUEUE = `
WITH t AS (
  SELECT * FROM unnest($1::text[], $2::int2[], $3::int4[], $4::int8[], $5::int8[], $6::int4[],
    $7::int8[], $8::int4[], $9::int4[], $10::text[], $11::text[], $12::text[], $13::bytea[],
    $14::int8[])
  WITH ORDINALITY AS t(queue, state, priority, not_before, expires_at, attempts, enqueued_at,
    size, nframes, headers, dedup_key, leased_by, body, pre_id, ord)
),
names AS (SELECT DISTINCT queue AS name FROM t),
made AS (
  INSERT INTO queues(name, created_at)
  SELECT n.name, $15 FROM names n WHERE NOT EXISTS (SELECT 1 FROM queues q WHERE q.name = n.name)
  ON CONFLICT (name) DO NOTHING
  RETURNING id, name
),
qs AS (
  SELECT id, name FROM made
  UNION ALL SELECT q.id, q.name FROM queues q JOIN names n ON n.name = q.name
),
r AS (
  SELECT COALESCE(t.pre_id, nextval('messages_id_seq')) AS id, qs.id AS queue_id, t.*
  FROM t JOIN qs ON qs.name = t.queue ORDER BY t.ord
),
ins AS (
  INSERT INTO messages(id, queue_id, state, priority, not_before, expires_at, attempts,
    enqueued_at, size, nframes, headers, dedup_key, leased_by, body)
  SELECT id, queue_id, state, priority, not_before, expires_at, attempts, enqueued_at, size,
    nframes, headers, dedup_key, leased_by, body FROM r
)
SELECT ord, id FROM r ORDER BY ord`;

/**
 * Claims dedup keys and gives every item of the batch an id, in item order, in one statement.
 * A key is claimed when absent or expired at its item's time (`now`); two brokers claiming
 * the same key at once: the second waits for the first's commit, then finds it taken.
 * Rows back: per item (`ord` from 1) its new id and whether it may be stored (`fresh`: no
 * key, or its key claimed). Keys are inserted in key order (no deadlock between brokers).
 */
export const SQL_CLAIM_KEYS = `
WITH t AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[])
  WITH ORDINALITY AS t(scope, key, until, now, ord)
),
a AS (SELECT t.*, nextval('messages_id_seq') AS id FROM t),
c AS (
  INSERT INTO idempotency(scope, key, ids, expires_at)
  SELECT scope, key, id::text, until FROM a WHERE key IS NOT NULL ORDER BY scope, key
  ON CONFLICT (scope, key) DO UPDATE SET ids = excluded.ids, expires_at = excluded.expires_at
  WHERE idempotency.expires_at <=
    (SELECT a.now FROM a WHERE a.scope = excluded.scope AND a.key = excluded.key)
  RETURNING scope, key
)
SELECT a.ord, a.id, (a.key IS NULL OR c.key IS NOT NULL) AS fresh
FROM a LEFT JOIN c ON c.scope = a.scope AND c.key = a.key ORDER BY a.ord`;

/** The ids held by keys (after a claim found them taken). */
export const SQL_KEY_IDS = `
SELECT i.scope, i.key, i.ids FROM idempotency i
JOIN unnest($1::text[], $2::text[]) AS k(scope, key) ON i.scope = k.scope AND i.key = k.key`;

/** Claims a request key (absent or expired at `$3`); a row back when claimed. */
export const SQL_CLAIM_REQUEST = `
INSERT INTO idempotency(scope, key, ids, expires_at) VALUES ('${REQUEST_SCOPE}', $1, '', $2)
ON CONFLICT (scope, key) DO UPDATE SET ids = '', expires_at = excluded.expires_at
WHERE idempotency.expires_at <= $3
RETURNING 1 AS claimed`;

export const SQL_REQUEST_IDS = `SELECT ids FROM idempotency WHERE scope = '${REQUEST_SCOPE}' AND key = $1`;

export const SQL_SET_REQUEST_IDS = `UPDATE idempotency SET ids = $2 WHERE scope = '${REQUEST_SCOPE}' AND key = $1`;

/**
 * Leases up to `$2` ready messages of queue `$1` for node `$4`: rows another broker is taking
 * are skipped. Those past their TTL at `$3` are deleted instead (rows with `expired` true).
 * Rows come back in no particular order.
 */
export const SQL_LEASE = `
WITH c AS (
  SELECT id FROM messages WHERE queue_id = ${QID} AND state = 0
  ORDER BY priority DESC, id LIMIT $2 FOR UPDATE SKIP LOCKED
),
gone AS (
  DELETE FROM messages m USING c WHERE m.id = c.id AND m.expires_at <= $3 RETURNING m.id, m.size
),
got AS (
  UPDATE messages m SET state = 1, attempts = m.attempts + 1, leased_by = $4
  FROM c WHERE m.id = c.id AND (m.expires_at IS NULL OR m.expires_at > $3)
  RETURNING m.id, m.priority, m.attempts, m.enqueued_at, m.size, m.nframes, m.headers, m.body
)
SELECT false AS expired, * FROM got
UNION ALL
SELECT true, id, 0, 0, 0::int8, size, 0, NULL::text, NULL::bytea FROM gone`;

/** Deletes leased messages at their attempt: the (id, attempts) pairs that matched. */
export const SQL_ACK = `
DELETE FROM messages m USING unnest($1::int8[], $2::int4[]) AS r(id, attempts)
WHERE m.id = r.id AND m.state = 1 AND m.attempts = r.attempts
RETURNING m.id, r.attempts`;

/** Deletes this node's (`$3`) recovered leases held back at their attempt. */
export const SQL_ACK_RECOVERED = `
DELETE FROM messages m USING unnest($1::int8[], $2::int4[]) AS r(id, attempts)
WHERE m.id = r.id AND m.state = 2 AND m.attempts = r.attempts AND m.leased_by = $3
RETURNING m.id, r.attempts`;

/**
 * Releases leased messages at their attempt: to a state (ready, scheduled, dead), with a
 * not-before (null: unchanged), a dead reason (null: unchanged) and an attempt to give back.
 */
export const SQL_RELEASE = `
UPDATE messages m SET state = r.state,
  not_before = COALESCE(r.not_before, m.not_before),
  dead_reason = COALESCE(r.dead_reason, m.dead_reason),
  attempts = m.attempts - r.uncount,
  leased_by = NULL
FROM unnest($1::int8[], $2::int4[], $3::int2[], $4::int8[], $5::text[], $6::int4[])
  AS r(id, attempts, state, not_before, dead_reason, uncount)
WHERE m.id = r.id AND m.state = 1 AND m.attempts = r.attempts
RETURNING m.id, r.attempts`;

/** Moves due scheduled messages to ready (skipping rows another broker is promoting). */
export const SQL_PROMOTE = `
WITH c AS (SELECT id FROM messages WHERE state = 2 AND not_before <= $1 FOR UPDATE SKIP LOCKED),
u AS (
  UPDATE messages m SET state = 0, leased_by = NULL FROM c WHERE m.id = c.id
  RETURNING m.queue_id, m.size
)
SELECT q.name, count(*) AS n, sum(u.size) AS bytes
FROM u JOIN queues q ON q.id = u.queue_id GROUP BY q.name`;

export const SQL_NEXT_DUE = 'SELECT min(not_before) AS t FROM messages WHERE state = 2';

/**
 * Deletes up to `$2` ready or scheduled messages past their TTL at `$1`, and every expired
 * idempotency key; rows held by another broker are left to it.
 */
export const SQL_SWEEP = `
WITH c AS (
  SELECT id FROM messages WHERE expires_at <= $1 AND state IN (0, 2)
  LIMIT $2 FOR UPDATE SKIP LOCKED
),
d AS (DELETE FROM messages m USING c WHERE m.id = c.id RETURNING m.queue_id, m.state, m.size),
k AS (
  DELETE FROM idempotency WHERE (scope, key) IN (
    SELECT scope, key FROM idempotency WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)
)
SELECT q.name, d.state, count(*) AS n, sum(d.size) AS bytes
FROM d JOIN queues q ON q.id = d.queue_id GROUP BY q.name, d.state`;

export const SQL_COUNTS = `
SELECT q.name, m.state, count(m.id) AS n, sum(m.size) AS bytes
FROM queues q LEFT JOIN messages m ON m.queue_id = q.id GROUP BY q.name, m.state`;

/** Bytes of the store's tables, their indexes and TOAST, in the current schema. */
export const SQL_SIZE = `
SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) AS bytes FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'`;

export const SQL_SETTINGS = `
SELECT q.name, s.paused, s.policy FROM queue_settings s JOIN queues q ON q.id = s.queue_id`;

export const SQL_BROWSE = `
SELECT * FROM messages WHERE queue_id = ${QID} AND id > $2 ORDER BY id LIMIT $3`;

export const SQL_BROWSE_STATE = `
SELECT * FROM messages WHERE queue_id = ${QID} AND state = $4 AND id > $2 ORDER BY id LIMIT $3`;

export const SQL_MESSAGE = `SELECT * FROM messages WHERE queue_id = ${QID} AND id = $2`;

export const SQL_DELETE_MESSAGE = `
DELETE FROM messages WHERE queue_id = ${QID} AND id = $2 AND state != 1 RETURNING state, size`;

export const SQL_OLDEST = `
SELECT enqueued_at AS t FROM messages WHERE queue_id = ${QID} AND state != 3 ORDER BY id LIMIT 1`;

export const SQL_PURGE_LIVE = `
WITH d AS (DELETE FROM messages WHERE queue_id = ${QID} AND state IN (0, 2) RETURNING state, size)
SELECT state, count(*) AS n, sum(size) AS bytes FROM d GROUP BY state`;

export const SQL_PURGE_DEAD = `DELETE FROM messages WHERE queue_id = ${QID} AND state = 3`;

/** Dead letters back to ready: those of `$2` (null: any), the oldest `$3` (null: all). */
export const SQL_REDRIVE = `
WITH c AS (
  SELECT id FROM messages
  WHERE queue_id = ${QID} AND state = 3 AND ($2::int8[] IS NULL OR id = ANY($2::int8[]))
  ORDER BY id LIMIT $3 FOR UPDATE
),
u AS (
  UPDATE messages m SET state = 0, attempts = 0, dead_reason = NULL, not_before = m.enqueued_at,
    leased_by = NULL
  FROM c WHERE m.id = c.id AND m.state = 3 RETURNING m.size
)
SELECT count(*) AS n, COALESCE(sum(size), 0) AS bytes FROM u`;

/**
 * The queue row first: a broker enqueueing into it concurrently waits or creates a new one.
 * Its messages, settings and keys go in the next statement (which sees that broker's rows).
 */
export const SQL_DELETE_QUEUE_ROW = 'DELETE FROM queues WHERE name = $1 RETURNING id';

export const SQL_DELETE_QUEUE_DATA = `
WITH s AS (DELETE FROM queue_settings WHERE queue_id = $1),
k AS (DELETE FROM idempotency WHERE scope = $2),
m AS (DELETE FROM messages WHERE queue_id = $1 RETURNING 1)
SELECT count(*) AS n FROM m`;

export const SQL_PUT_SETTINGS = `
INSERT INTO queue_settings(queue_id, paused, policy, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (queue_id) DO UPDATE
SET paused = excluded.paused, policy = excluded.policy, updated_at = excluded.updated_at`;

export const SQL_DELETE_SETTINGS = `DELETE FROM queue_settings WHERE queue_id = ${QID}`;

/** This node's (`$1`) leases of an earlier run, back to ready. */
export const SQL_RELEASE_OWN_LEASES = `
UPDATE messages SET state = 0, leased_by = NULL WHERE state = 1 AND leased_by = $1`;

/** This node's (`$1`) leases of an earlier run, held back (scheduled) until `$2`. */
export const SQL_HOLD_OWN_LEASES = `
UPDATE messages m SET state = 2, not_before = $2 FROM queues q
WHERE q.id = m.queue_id AND m.state = 1 AND m.leased_by = $1
RETURNING m.id, q.name AS queue, m.attempts, m.size`;

export interface PgMessageRow {
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
  leased_by: string | null;
  body: Buffer;
}

/** A row of {@link SQL_LEASE}. */
export interface PgLeaseRow {
  expired: boolean;
  id: number;
  priority: number;
  attempts: number;
  enqueued_at: number;
  size: number;
  nframes: number;
  headers: string | null;
  body: Buffer | null;
}

/** A message id as the store holds it (a positive safe integer), or null for any other text. */
export function parseId(id: string): number | null {
  if (!/^[0-9]{1,16}$/.test(id)) return null;
  const n = Number(id);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/**
 * Settles leases by (id, attempts) in one statement: `exec` gets each distinct pair once (the
 * first item naming it) and returns the pairs it changed. Per item, in order, whether it did:
 * a pair repeated later in the call finds the lease already settled, as if run one by one.
 */
export async function settleRefs(
  refs: readonly LeaseRef[],
  exec: (
    ids: number[],
    attempts: number[],
    which: number[],
  ) => Promise<{ id: number; attempts: number }[]>,
): Promise<boolean[]> {
  const out = new Array<boolean>(refs.length).fill(false);
  const firstOf = new Map<string, number>();
  const ids: number[] = [];
  const attempts: number[] = [];
  const which: number[] = [];
  for (let i = 0; i < refs.length; i++) {
    const r = refs[i]!;
    const id = parseId(r.id);
    if (id === null || !Number.isSafeInteger(r.attempts)) continue;
    const k = `${id}:${r.attempts}`;
    if (firstOf.has(k)) continue;
    firstOf.set(k, i);
    ids.push(id);
    attempts.push(r.attempts);
    which.push(i);
  }
  if (ids.length === 0) return out;
  for (const row of await exec(ids, attempts, which)) {
    const i = firstOf.get(`${row.id}:${row.attempts}`);
    if (i !== undefined) out[i] = true;
  }
  return out;
}
