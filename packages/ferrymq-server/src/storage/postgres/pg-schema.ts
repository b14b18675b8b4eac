/**
 * Connections and schema of the PostgreSQL store: the store's schema name, a connection with
 * the store's type parsers and search_path, and the migrations — applied at open under an
 * advisory lock, so that brokers starting together cannot race, and refused when the schema
 * was written by a newer Ferry.
 */
import pg from 'pg';
import { FerryError } from 'ferrymq/model';
import { PG_MIGRATIONS } from './migrations/index.js';
import { PG_TYPES } from './pg-writer.js';

/** The schema the store's tables live in unless configured. */
export const DEFAULT_PG_SCHEMA = 'ferry';
/** A schema name the store accepts: a plain, lower-case SQL identifier. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** How long opening a connection may take (a host that drops packets must not hang a start). */
const CONNECT_TIMEOUT_MS = 10_000;
/** Shown as the connection's application_name (pg_stat_activity). */
const APPLICATION_NAME = 'ferry';

/** Throws CONFIG_INVALID unless `schema` is a plain lower-case identifier. */
export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new FerryError(
      'CONFIG_INVALID',
      `store schema "${schema}" is not a plain lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63)`,
    );
  }
  return schema;
}

/** A postgres:// URL with its password hidden, for logs and stats. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(invalid url)';
  }
}

export interface PgTarget {
  /** postgres://user[:password]@host[:port]/database */
  url: string;
  schema: string;
}

/**
 * Opens a connection with the store's type parsers; with `searchPath`, the store's schema
 * (which must exist) is its search_path. A failure is STORAGE_ERROR naming the server.
 */
async function openPg(target: PgTarget, searchPath: boolean): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: target.url,
    types: PG_TYPES,
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  try {
    await client.connect();
    if (searchPath) await client.query(`SET search_path TO ${target.schema}`);
  } catch (err) {
    await client.end().catch(() => undefined);
    const message = err instanceof Error ? err.message : String(err);
    throw new FerryError(
      'STORAGE_ERROR',
      `cannot connect to PostgreSQL at ${redactUrl(target.url)}: ${message}`,
      { cause: err },
    );
  }
  return client;
}

/** Opens a connection whose search_path is the store's schema (which must exist). */
export function connectPg(target: PgTarget): Promise<pg.Client> {
  return openPg(target, true);
}

/**
 * The key of the transaction-level advisory lock that migrations of `schema` run under; a
 * copy into the schema (`ferry migrate`) holds it too, so brokers starting meanwhile wait.
 */
export function schemaLockKey(schema: string): string {
  return `ferry-migrate:${schema}`;
}

/**
 * Creates the schema if needed and applies pending migrations, in one transaction under a
 * transaction-level advisory lock keyed by the schema: a second broker starting at the same
 * moment waits, then finds them applied. Returns the schema version.
 */
export async function migratePg(target: PgTarget): Promise<number> {
  const client = await openPg(target, false);
  const s = target.schema;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schemaLockKey(s)]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`SET LOCAL search_path TO ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
    const applied = new Set(
      (await client.query<{ version: number }>('SELECT version FROM migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const latest = PG_MIGRATIONS.at(-1)?.version ?? 0;
    const newest = Math.max(0, ...applied);
    if (newest > latest) {
      throw new FerryError(
        'STORAGE_ERROR',
        `the store schema "${s}" was written by a newer Ferry (schema ${newest} > ${latest}); upgrade Ferry`,
      );
    }
    for (const mig of PG_MIGRATIONS) {
      if (applied.has(mig.version)) continue;
      await client.query(mig.sql);
      await client.query('INSERT INTO migrations(version, name, applied_at) VALUES ($1, $2, $3)', [
        mig.version,
        mig.name,
        Date.now(),
      ]);
    }
    await client.query('COMMIT');
    return latest;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (err instanceof FerryError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new FerryError('STORAGE_ERROR', `migrating the PostgreSQL store failed: ${message}`, {
      cause: err,
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}
