/**
 * The local PostgreSQL for tests (127.0.0.1:5432, trust, database `test`; FERRY_TEST_PG
 * overrides): a fresh schema per use, dropped afterwards. A test that needs PostgreSQL fails
 * loudly when it is unreachable — it never skips.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';

export const PG_TEST_URL = process.env.FERRY_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

let counter = 0;

/** A schema name no other test process uses (the schema itself is created by the store). */
export function freshSchemaName(prefix = 'ferry_t'): string {
  counter++;
  const rand = Math.floor(Math.random() * 1e6).toString(36);
  return `${prefix}_${process.pid}_${counter}_${rand}`;
}

/** Runs one statement on a short-lived connection. */
export async function pgQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  text: string,
  values?: unknown[],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: PG_TEST_URL });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Drops a schema the tests made, with everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  await pgQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}

/** Prefix of the schemas {@link storeSchemaFor} names in this process. */
export function storeSchemaPrefix(): string {
  return `ferry_d_${process.pid}_`;
}

/** The schema standing for a broker's data folder (the same folder, the same schema). */
export function storeSchemaFor(dataDir: string): string {
  const hash = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  return `${storeSchemaPrefix()}${hash}`;
}

/** Drops every schema whose name starts with `prefix`. */
export async function dropSchemasLike(prefix: string): Promise<void> {
  const rows = await pgQuery<{ name: string }>(
    'SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1)',
    [prefix],
  );
  for (const r of rows) await dropSchema(r.name);
}
