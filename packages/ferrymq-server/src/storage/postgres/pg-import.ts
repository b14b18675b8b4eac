/**
 * Writing a whole store into an empty PostgreSQL schema, for `ferry migrate`: one connection,
 * one transaction for everything (all or nothing), held under the schema's migration lock so
 * that a broker starting on the schema meanwhile waits at its own migrations until the copy
 * committed. Rows arrive as store records (store-records.ts) in batches; each batch is one
 * statement over `unnest` arrays. Ids are kept as they were, and the sequences continue above
 * the source's highest ids, so nothing that names an id (dedup and request keys, clients
 * holding message ids) needs remapping.
 */
import type pg from 'pg';
import { FerryError, type MessageState } from 'ferrymq/model';
import type {
  ConfirmationRecord,
  IdHighWater,
  JobRecord,
  KeyOwner,
  KeyRecord,
  MessageRecord,
  PartialRecord,
  PubSubMetaRecord,
  QueueRecord,
  QueueSettingsRecord,
  RetainedRecord,
  SubscriptionRecord,
} from '../store-records.js';
import { connectPg, redactUrl, schemaLockKey, type PgTarget } from './pg-schema.js';
import { queueScope, REQUEST_SCOPE, serviceScope, STATE_CODES } from './pg-queue-sql.js';

/** A broker whose heartbeat is newer than this may still be running on the schema. */
const LIVE_NODE_WINDOW_MS = 60_000;
/** The database's clock in ms since the epoch (as pg-cluster.ts reads it). */
const DB_NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;
/** The tables holding a store's data: any row in one means the schema is in use. */
const DATA_TABLES = [
  'queues',
  'messages',
  'idempotency',
  'queue_settings',
  'jobs',
  'job_partials',
  'pubsub_meta',
  'retained',
  'subscriptions',
  'confirmations',
] as const;

const SQL = {
  queues: `INSERT INTO queues(id, name, created_at)
    SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[])`,
  settings: `INSERT INTO queue_settings(queue_id, paused, policy, updated_at)
    SELECT * FROM unnest($1::int8[], $2::bool[], $3::text[], $4::int8[])`,
  messages: `INSERT INTO messages(id, queue_id, state, priority, not_before, expires_at, attempts,
      enqueued_at, size, nframes, headers, dedup_key, dead_reason, body)
    SELECT * FROM unnest($1::int8[], $2::int8[], $3::int2[], $4::int4[], $5::int8[], $6::int8[],
      $7::int4[], $8::int8[], $9::int4[], $10::int4[], $11::text[], $12::text[], $13::text[],
      $14::bytea[])`,
  keys: `INSERT INTO idempotency(scope, key, ids, expires_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[])`,
  jobs: `INSERT INTO jobs(seq, id, service, status, priority, attempts, max_attempts, created_at,
      not_before, expires_at, started_at, finished_at, retain_until, nframes, params, headers,
      progress, partials, result_nframes, result, error, dedup_key, parent_id, children)
    SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::int4[],
      $7::int4[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[],
      $14::int4[], $15::bytea[], $16::text[], $17::text[], $18::int4[], $19::int4[],
      $20::bytea[], $21::text[], $22::text[], $23::text[], $24::text[])`,
  partials: `INSERT INTO job_partials(job_id, seq, nframes, body)
    SELECT * FROM unnest($1::text[], $2::int4[], $3::int4[], $4::bytea[])`,
  meta: `INSERT INTO pubsub_meta(key, value) SELECT * FROM unnest($1::text[], $2::int8[])
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
  retained: `INSERT INTO retained(topic, seq, published_at, expires_at, nframes, body, headers)
    SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int4[],
      $6::bytea[], $7::text[])`,
  subscriptions: `INSERT INTO subscriptions(name, pattern, created_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::int8[])`,
  confirmations: `INSERT INTO confirmations(topic, node, seq, at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[])`,
  /** Next value `$2 + 1` (or 1 when `$2` is 0): `setval(seq, max(n, 1), n > 0)`. */
  setval: `SELECT setval(pg_get_serial_sequence($1, $3), GREATEST($2::int8, 1), $2::int8 > 0)`,
} as const;

/** This store's idempotency scope for a key's owner. */
function scopeOf(owner: KeyOwner): string {
  switch (owner.kind) {
    case 'queue':
      return queueScope(owner.queue);
    case 'service':
      return serviceScope(owner.service);
    case 'request':
      return REQUEST_SCOPE;
  }
}

/** The columns of `rows` as arrays, one per field (the parameters of an `unnest` insert). */
function columns<T>(rows: readonly T[], keys: readonly (keyof T)[]): unknown[][] {
  return keys.map((k) => rows.map((r) => r[k]));
}

/** An open transaction on an empty, migrated schema; {@link commit} or {@link close}. */
export class PgImport {
  private done = false;

  private constructor(
    private readonly client: pg.Client,
    readonly target: PgTarget,
  ) {}

  /**
   * Connects, begins the transaction, takes the schema's migration lock and checks that the
   * schema (already migrated: migratePg) holds no data and no live broker: STORE_NOT_EMPTY.
   */
  static async open(target: PgTarget): Promise<PgImport> {
    const client = await connectPg(target);
    const out = new PgImport(client, target);
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
        schemaLockKey(target.schema),
      ]);
      await out.checkEmpty();
      return out;
    } catch (err) {
      await out.close();
      throw PgImport.mapError(err, target);
    }
  }

  private async checkEmpty(): Promise<void> {
    // A migrated schema holds the publish counter at 0 (migration 0003): not data yet.
    const used = DATA_TABLES.map(
      (t) =>
        `SELECT '${t}' AS t WHERE EXISTS (SELECT 1 FROM ${t}${t === 'pubsub_meta' ? ' WHERE value <> 0' : ''})`,
    );
    const tables = (await this.client.query<{ t: string }>(used.join(' UNION ALL '))).rows;
    const where = `schema "${this.target.schema}" at ${redactUrl(this.target.url)}`;
    if (tables.length > 0) {
      throw new FerryError(
        'STORE_NOT_EMPTY',
        `${where} already holds Ferry data (${tables.map((r) => r.t).join(', ')}); ` +
          'migrate into a new schema (--store-schema) or drop this one',
      );
    }
    const live = await this.client.query<{ id: string }>(
      `SELECT id FROM nodes WHERE heartbeat_at > ${DB_NOW_MS} - $1 ORDER BY id`,
      [LIVE_NODE_WINDOW_MS],
    );
    if (live.rows.length > 0) {
      throw new FerryError(
        'STORE_NOT_EMPTY',
        `${where} has brokers running on it (${live.rows.map((r) => r.id).join(', ')}); stop them first`,
      );
    }
  }

  private static mapError(err: unknown, target: PgTarget): FerryError {
    if (err instanceof FerryError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new FerryError(
      'STORAGE_ERROR',
      `writing to PostgreSQL at ${redactUrl(target.url)} (schema "${target.schema}") failed: ${message}`,
      { cause: err },
    );
  }

  private async insert(text: string, values: unknown[]): Promise<void> {
    try {
      await this.client.query(text, values);
    } catch (err) {
      throw PgImport.mapError(err, this.target);
    }
  }

  queues(rows: readonly QueueRecord[]): Promise<void> {
    return this.insert(SQL.queues, columns(rows, ['id', 'name', 'createdAt']));
  }

  settings(rows: readonly QueueSettingsRecord[]): Promise<void> {
    return this.insert(SQL.settings, columns(rows, ['queueId', 'paused', 'policy', 'updatedAt']));
  }

  /** Messages with no broker holding them: a leased one is refused (make it ready first). */
  messages(rows: readonly MessageRecord[]): Promise<void> {
    const states = rows.map((r) => {
      if (r.state === 'leased') {
        throw new FerryError('INTERNAL', `message ${r.id} is leased; no broker holds it here`);
      }
      return STATE_CODES[r.state satisfies MessageState];
    });
    return this.insert(SQL.messages, [
      rows.map((r) => r.id),
      rows.map((r) => r.queueId),
      states,
      ...columns(rows, [
        'priority',
        'notBefore',
        'expiresAt',
        'attempts',
        'enqueuedAt',
        'size',
        'nframes',
        'headers',
        'dedupKey',
        'deadReason',
        'body',
      ]),
    ]);
  }

  keys(rows: readonly KeyRecord[]): Promise<void> {
    return this.insert(SQL.keys, [
      rows.map((r) => scopeOf(r.owner)),
      ...columns(rows, ['key', 'ids', 'expiresAt']),
    ]);
  }

  /** Jobs with no broker running them: a running one is refused (queue it first). */
  jobs(rows: readonly JobRecord[]): Promise<void> {
    const running = rows.find((r) => r.status === 'running');
    if (running) {
      throw new FerryError('INTERNAL', `job ${running.id} is running; no broker runs it here`);
    }
    return this.insert(
      SQL.jobs,
      columns(rows, [
        'seq',
        'id',
        'service',
        'status',
        'priority',
        'attempts',
        'maxAttempts',
        'createdAt',
        'notBefore',
        'expiresAt',
        'startedAt',
        'finishedAt',
        'retainUntil',
        'nframes',
        'params',
        'headers',
        'progress',
        'partials',
        'resultNframes',
        'result',
        'error',
        'dedupKey',
        'parentId',
        'children',
      ]),
    );
  }

  partials(rows: readonly PartialRecord[]): Promise<void> {
    return this.insert(SQL.partials, columns(rows, ['jobId', 'seq', 'nframes', 'body']));
  }

  pubsubMeta(rows: readonly PubSubMetaRecord[]): Promise<void> {
    return this.insert(SQL.meta, columns(rows, ['key', 'value']));
  }

  retained(rows: readonly RetainedRecord[]): Promise<void> {
    return this.insert(
      SQL.retained,
      columns(rows, ['topic', 'seq', 'publishedAt', 'expiresAt', 'nframes', 'body', 'headers']),
    );
  }

  subscriptions(rows: readonly SubscriptionRecord[]): Promise<void> {
    return this.insert(SQL.subscriptions, columns(rows, ['name', 'pattern', 'createdAt']));
  }

  confirmations(rows: readonly ConfirmationRecord[]): Promise<void> {
    return this.insert(SQL.confirmations, columns(rows, ['topic', 'node', 'seq', 'at']));
  }

  /** The id sequences continue above the source's highest ids. */
  async continueIds(high: IdHighWater): Promise<void> {
    await this.insert(SQL.setval, ['queues', high.queues, 'id']);
    await this.insert(SQL.setval, ['messages', high.messages, 'id']);
    await this.insert(SQL.setval, ['jobs', high.jobs, 'seq']);
  }

  /** Commits everything written; the schema is then a store brokers can start on. */
  async commit(): Promise<void> {
    try {
      await this.client.query('COMMIT');
      this.done = true;
    } catch (err) {
      throw PgImport.mapError(err, this.target);
    } finally {
      await this.close();
    }
  }

  /** Rolls back whatever was not committed, and closes the connection. */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.client.query('ROLLBACK').catch(() => undefined);
    }
    await this.client.end().catch(() => undefined);
  }
}
