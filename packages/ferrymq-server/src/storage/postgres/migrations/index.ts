/**
 * Numbered, append-only schema migrations for the PostgreSQL store, applied in their own schema
 * (default `ferry`). Append a new entry for every change; never edit or reorder an existing one.
 */
import { PG_MIGRATION_0001_INIT } from './0001-init.js';
import { PG_MIGRATION_0002_WAKE } from './0002-wake.js';
import { PG_MIGRATION_0003_PUBLISHES } from './0003-publishes.js';

export interface PgMigration {
  version: number;
  name: string;
  sql: string;
}

export const PG_MIGRATIONS: readonly PgMigration[] = [
  { version: 1, name: 'init', sql: PG_MIGRATION_0001_INIT },
  { version: 2, name: 'wake', sql: PG_MIGRATION_0002_WAKE },
  { version: 3, name: 'publishes', sql: PG_MIGRATION_0003_PUBLISHES },
];
