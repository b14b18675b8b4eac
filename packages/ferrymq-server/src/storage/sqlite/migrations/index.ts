/**
 * Numbered, append-only schema migrations for the SQLite store.
 * Append a new entry for every change; never edit or reorder an existing one.
 */
import { MIGRATION_0001_INIT } from './0001-init.js';
import { MIGRATION_0002_JOBS } from './0002-jobs.js';
import { MIGRATION_0003_PUBSUB } from './0003-pubsub.js';
import { MIGRATION_0004_QUEUE_SETTINGS } from './0004-queue-settings.js';
import { MIGRATION_0005_MESSAGE_CHUNKS } from './0005-message-chunks.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'init', sql: MIGRATION_0001_INIT },
  { version: 2, name: 'jobs', sql: MIGRATION_0002_JOBS },
  { version: 3, name: 'pubsub', sql: MIGRATION_0003_PUBSUB },
  { version: 4, name: 'queue-settings', sql: MIGRATION_0004_QUEUE_SETTINGS },
  { version: 5, name: 'message-chunks', sql: MIGRATION_0005_MESSAGE_CHUNKS },
];
